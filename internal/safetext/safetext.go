// Package safetext renders text that a container controls (command lines,
// cgroup names, capability names it asks for) so that printing it can
// neither drive the reader's terminal nor make an output line grow with
// the input.
//
// Two concerns, kept apart: Escape and EscapeWidth make a string safe to
// show (they change how it looks, never what it says); Truncate and Names
// bound how much of it is shown, and always say that something was left
// out.
package safetext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds for names echoed into one line (a log line, an error): enough to
// see what was asked, too few to let the asker fill a log.
const (
	// MaxNames is how many names Names keeps.
	MaxNames = 8
	// MaxNameBytes is how long a name Names keeps may be.
	MaxNameBytes = 64
)

// visible reports whether r is shown as itself: printable text and the
// ASCII space. Everything strconv.IsPrint rejects is written as an escape:
// C0 and C1 controls, DEL, the bidirectional embeddings, overrides and
// isolates (U+202A-U+202E, U+2066-U+2069) and other format characters,
// line and paragraph separators, and spaces other than U+0020. The
// backslash is escaped too, so that an escape in the output always stands
// for the byte it names and never for text that merely looks like one.
func visible(r rune) bool {
	return r != '\\' && r != utf8.RuneError && strconv.IsPrint(r)
}

// Escape returns s with everything that is not plainly visible written as
// a Go escape: \n, \t, \r, \\, \xHH for other ASCII controls and for bytes
// that are not UTF-8, \uHHHH or \UHHHHHHHH for other runes that are not
// printable. Printable text, non-ASCII letters included, is kept as it is.
// The result holds no byte below 0x20, no DEL, no C1 control and no
// bidirectional control.
func Escape(s string) string { return escape(s, false) }

// Line is Escape for a message to a person rather than data to read back:
// a backslash stays as it is, so a message that already quotes something
// with Go escapes (got '\n') reads as it did. The result is one line
// with no control character in it.
func Line(s string) string { return escape(s, true) }

func escape(s string, keepBackslash bool) string {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !visible(r) && !(r == utf8.RuneError && size == 3) && !(keepBackslash && r == '\\') {
			break
		}
		i += size
	}
	if i == len(s) {
		return s // the common case: nothing to escape, no copy
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for i < len(s) {
		if keepBackslash && s[i] == '\\' {
			b = append(b, '\\')
			i++
			continue
		}
		unit, size := nextUnit(s[i:])
		b = append(b, unit...)
		i += size
	}
	return string(b)
}

// EscapeWidth is Escape cut to at most width runes. A cut falls between
// two escapes, never inside one, and the result then ends in "..." (within
// width).
func EscapeWidth(s string, width int) string {
	e := Escape(s)
	if utf8.RuneCountInString(e) <= width {
		return e
	}
	const more = "..."
	var b []byte
	n := 0
	for i := 0; i < len(s); {
		unit, size := nextUnit(s[i:])
		w := utf8.RuneCount(unit)
		if n+w > width-len(more) {
			break
		}
		b = append(b, unit...)
		n += w
		i += size
	}
	return string(b) + more
}

// nextUnit returns the first rune of s as Escape writes it, and how many
// bytes of s it stands for.
func nextUnit(s string) ([]byte, int) {
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size == 1:
		return hexByte(`\x`, s[0]), 1
	case r == utf8.RuneError && size == 3: // a real U+FFFD
		return []byte(s[:3]), 3
	case visible(r):
		return []byte(s[:size]), size
	case r == '\\':
		return []byte(`\\`), 1
	case r == '\n':
		return []byte(`\n`), 1
	case r == '\t':
		return []byte(`\t`), 1
	case r == '\r':
		return []byte(`\r`), 1
	case r < utf8.RuneSelf:
		return hexByte(`\x`, byte(r)), 1
	case r < 0x10000:
		return pad(`\u`, r, 4), size
	}
	return pad(`\U`, r, 8), size
}

func hexByte(prefix string, c byte) []byte {
	const hex = "0123456789abcdef"
	return []byte{prefix[0], prefix[1], hex[c>>4], hex[c&0xf]}
}

func pad(prefix string, r rune, digits int) []byte {
	h := strconv.FormatInt(int64(r), 16)
	return []byte(prefix + strings.Repeat("0", digits-len(h)) + h)
}

// Truncate returns s when it is at most max bytes long, else its first
// bytes (cut on a rune boundary) followed by "...(N bytes)", N being the
// length of s. The result is at most max plus 24 bytes long.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// Name renders one name that is not a capability for a list in a line:
// escaped as Escape does, so that whoever decodes the line and prints it
// (jq -r) prints no control character either, and, when that is longer
// than MaxNameBytes, cut between two escapes and followed by
// "...(N bytes)", N being the length of the name itself. Escaping before
// cutting keeps the cost of a name in a line at most MaxNameBytes plus the
// marker, whatever its bytes are.
func Name(s string) string {
	e := Escape(s)
	if len(e) <= MaxNameBytes {
		return e
	}
	var b []byte
	for i := 0; i < len(s); {
		unit, size := nextUnit(s[i:])
		if len(b)+len(unit) > MaxNameBytes {
			break
		}
		b = append(b, unit...)
		i += size
	}
	return string(b) + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// Names bounds a list of names for one line: the first MaxNames names,
// each rendered by Name, and, when names were left out, a last entry
// "...(N more)". It returns names itself when nothing needs changing.
func Names(names []string) []string {
	change := len(names) > MaxNames
	for i := 0; i < len(names) && i < MaxNames && !change; i++ {
		change = Name(names[i]) != names[i]
	}
	if !change {
		return names
	}
	n := min(len(names), MaxNames)
	out := make([]string, 0, n+1)
	for _, name := range names[:n] {
		out = append(out, Name(name))
	}
	if rest := len(names) - n; rest > 0 {
		out = append(out, More(rest))
	}
	return out
}

// More is the entry that stands for n names left out of a list. It cannot
// be mistaken for a capability name.
func More(n int) string { return "...(" + strconv.Itoa(n) + " more)" }

// JSON rewrites encoded JSON so that it shows safely in a terminal: DEL
// and every non-ASCII rune that is not printable (C1 controls, the
// bidirectional controls) become \uHHHH escapes. encoding/json already
// escapes the other ASCII controls and U+2028/U+2029, and it writes no
// invalid UTF-8. Outside strings a JSON text holds none of these, so each
// is inside a string, and the rewritten text decodes to exactly the same
// values.
func JSON(data []byte) []byte {
	i := 0
	for i < len(data) {
		r, size := utf8.DecodeRune(data[i:])
		if !jsonKeeps(r, size) {
			break
		}
		i += size
	}
	if i == len(data) {
		return data
	}
	out := make([]byte, 0, len(data)+16)
	out = append(out, data[:i]...)
	for i < len(data) {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case jsonKeeps(r, size):
			out = append(out, data[i:i+size]...)
		case r == utf8.RuneError:
			out = append(out, `\ufffd`...) // not produced by encoding/json
		case r < 0x10000:
			out = append(out, pad(`\u`, r, 4)...)
		default: // JSON writes a rune beyond the BMP as a surrogate pair
			r -= 0x10000
			out = append(out, pad(`\u`, 0xd800+(r>>10), 4)...)
			out = append(out, pad(`\u`, 0xdc00+(r&0x3ff), 4)...)
		}
		i += size
	}
	return out
}

// jsonKeeps reports whether JSON keeps the rune r (size bytes) as it is.
func jsonKeeps(r rune, size int) bool {
	if r < utf8.RuneSelf {
		return r != 0x7f
	}
	return strconv.IsPrint(r) || r == utf8.RuneError && size == 3
}

// Unsafe describes the first thing in s that Escape never lets through:
// a byte that is not UTF-8, or a rune that is not printable (a control
// character, a bidirectional control, a newline...). It returns "" when
// there is none. Tests check output with it, line by line.
func Unsafe(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return "byte " + strconv.QuoteToASCII(s[i:i+1]) + " (not UTF-8) at byte " + strconv.Itoa(i)
		case !visible(r) && r != '\\' && r != utf8.RuneError:
			return "rune " + strconv.QuoteRuneToASCII(r) + " at byte " + strconv.Itoa(i)
		}
		i += size
	}
	return ""
}
