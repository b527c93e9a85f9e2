package safetext

import (
	"encoding/json"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// controls are the bytes and runes that must never reach a terminal raw.
func hasControl(s string) string {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return "invalid UTF-8 at byte " + strconv.Itoa(i)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
			return "control " + strconv.QuoteRune(r) + " at byte " + strconv.Itoa(i)
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c:
			return "bidi control " + strconv.QuoteRune(r) + " at byte " + strconv.Itoa(i)
		}
		i += size
	}
	return ""
}

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "sleep 30", "sleep 30"},
		{"empty", "", ""},
		{"non-ASCII letters stay", "café über 東京", "café über 東京"},
		{"newline", "a\nb", `a\nb`},
		{"tab and CR", "a\tb\rc", `a\tb\rc`},
		{"erase line and cursor up", "x\x1b[2K\x1b[1Ay", `x\x1b[2K\x1b[1Ay`},
		{"NUL and DEL", "\x00\x7f", `\x00\x7f`},
		{"C1 as UTF-8", "a\u0085b\u009bc", `a\u0085b\u009bc`},
		{"C1 as a raw byte (8-bit CSI)", "a\x9b2Jb", `a\x9b2Jb`},
		{"invalid UTF-8", "\xff\xfe", `\xff\xfe`},
		{"truncated rune", "ab\xe6\x9d", `ab\xe6\x9d`},
		{"real replacement character stays", "a\ufffdb", "a\ufffdb"},
		{"right-to-left override", "evil\u202etxt.exe", `evil\u202etxt.exe`},
		{"every bidi embedding and override", "\u202a\u202b\u202c\u202d\u202e", `\u202a\u202b\u202c\u202d\u202e`},
		{"bidi isolates", "\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
		{"marks and line separator", "\u200e\u200f\u2028\u2029", `\u200e\u200f\u2028\u2029`},
		{"non-ASCII space", "a\u00a0b", `a\u00a0b`},
		{"beyond the BMP, unprintable", "\U000e0041", `\U000e0041`},
		{"emoji stays", "\U0001f600", "\U0001f600"},
		{"backslash is escaped, so escapes are unambiguous", `\x1b`, `\\x1b`},
		{"quotes stay", `say "hi"`, `say "hi"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Escape(tt.in)
			if got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if c := hasControl(got); c != "" {
				t.Errorf("Escape(%q) = %q holds a %s", tt.in, got, c)
			}
			if u := Unsafe(got); u != "" {
				t.Errorf("Unsafe(Escape(%q)) = %s", tt.in, u)
			}
			if (hasControl(tt.in) != "") && Unsafe(tt.in) == "" {
				t.Errorf("Unsafe(%q) finds nothing, but it holds a %s", tt.in, hasControl(tt.in))
			}
		})
	}
}

// TestEscapeProperties: on random bytes, Escape's output is always safe,
// it changes nothing that is safe, and it loses nothing: unquoting it
// gives the input back.
func TestEscapeProperties(t *testing.T) {
	rnd := rand.New(rand.NewSource(7))
	pieces := []string{"a", " ", "\\", "\"", "\n", "\x1b", "\x1b[2K", "\x9b", "\xff", "\u202e", "\u2066", "é", "\u0085", "\ufffd", "\U0001f600", "\U000e0001", "\t", "\x00"}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for n := rnd.Intn(12); n > 0; n-- {
			if rnd.Intn(3) == 0 {
				b.WriteByte(byte(rnd.Intn(256)))
			} else {
				b.WriteString(pieces[rnd.Intn(len(pieces))])
			}
		}
		in := b.String()
		got := Escape(in)
		if c := hasControl(got); c != "" {
			t.Fatalf("Escape(%q) = %q holds a %s", in, got, c)
		}
		plain := true // every rune of in is shown as itself
		for j := 0; j < len(in); {
			r, size := utf8.DecodeRuneInString(in[j:])
			if !visible(r) && !(r == utf8.RuneError && size == 3) {
				plain = false
			}
			j += size
		}
		if plain && got != in {
			t.Fatalf("Escape(%q) = %q changed plain text", in, got)
		}
		if u := Unsafe(Line(in)); u != "" {
			t.Fatalf("Line(%q) = %q holds %s", in, Line(in), u)
		}
		back, err := strconv.Unquote(`"` + strings.ReplaceAll(got, `"`, `\"`) + `"`)
		if err != nil || back != in {
			t.Fatalf("Escape(%q) = %q does not unquote to the input: %q, %v", in, got, back, err)
		}
		for _, w := range []int{3, 5, 10, 40} {
			cut := EscapeWidth(in, w)
			if n := utf8.RuneCountInString(cut); n > w {
				t.Fatalf("EscapeWidth(%q, %d) = %q is %d runes", in, w, cut, n)
			}
			if c := hasControl(cut); c != "" {
				t.Fatalf("EscapeWidth(%q, %d) = %q holds a %s", in, w, cut, c)
			}
			if !strings.HasPrefix(got, strings.TrimSuffix(cut, "...")) {
				t.Fatalf("EscapeWidth(%q, %d) = %q is not a prefix of %q", in, w, cut, got)
			}
		}
	}
}

func TestLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "capshim: no such file", "capshim: no such file"},
		{"a message that quotes with escapes reads as it did", `got '\n' instead`, `got '\n' instead`},
		{"raw newline and escape", "a\nb\x1b[2K", `a\nb\x1b[2K`},
		{"bidi override", "x\u202ey", `x\u202ey`},
		{"invalid UTF-8", "x\xffy", `x\xffy`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Line(tt.in)
			if got != tt.want {
				t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if u := Unsafe(got); u != "" {
				t.Errorf("Line(%q) = %q holds %s", tt.in, got, u)
			}
		})
	}
}

func TestEscapeWidth(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		width int
		want  string
	}{
		{"fits", "sleep 30", 40, "sleep 30"},
		{"exactly", "0123456789", 10, "0123456789"},
		{"cut", "0123456789ab", 10, "0123456..."},
		{"cut before an escape, not inside it", "012345\x1b[2K", 10, "012345..."},
		{"escape that fits", "012\x1b[2Kx", 10, `012\x1b...`},
		{"runes count as one", "ééééééééééé", 10, "ééééééé..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EscapeWidth(tt.in, tt.width); got != tt.want {
				t.Errorf("EscapeWidth(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"short", "CAP_ROOT", 64, "CAP_ROOT"},
		{"exact", "abcd", 4, "abcd"},
		{"long", "abcdefgh", 4, "abcd...(8 bytes)"},
		{"on a rune boundary", "aé" + strings.Repeat("x", 10), 2, "a...(13 bytes)"},
		{"a megabyte", strings.Repeat("A", 1<<20), 8, "AAAAAAAA...(1048576 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Truncate(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Truncate = %q, want %q", got, tt.want)
			}
			if len(got) > tt.max+24 {
				t.Errorf("Truncate = %d bytes, over max+24", len(got))
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate = %q is not UTF-8", got)
			}
		})
	}
}

func TestNames(t *testing.T) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = "n" + strconv.Itoa(i)
	}
	long := strings.Repeat("x", 100)
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, nil},
		{"few", []string{"a", "b"}, []string{"a", "b"}},
		{"exactly MaxNames", many[:MaxNames], many[:MaxNames]},
		{"one too many", many[:MaxNames+1], append(append([]string{}, many[:MaxNames]...), "...(1 more)")},
		{"a thousand", many, append(append([]string{}, many[:MaxNames]...), "...(992 more)")},
		{"a long name", []string{"a", long}, []string{"a", long[:MaxNameBytes] + "...(100 bytes)"}},
		{"a name with control characters", []string{"a", "b\x1b"}, []string{"a", `b\x1b`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Names(tt.in)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("Names = %q, want %q", got, tt.want)
			}
			if len(got) > MaxNames+1 {
				t.Errorf("Names kept %d entries", len(got))
			}
		})
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "CAP_ROOT", "CAP_ROOT"},
		{"escaped", "evil\n\x1b[2K\u202e", `evil\n\x1b[2K\u202e`},
		{"exactly MaxNameBytes", strings.Repeat("n", MaxNameBytes), strings.Repeat("n", MaxNameBytes)},
		{"long", strings.Repeat("n", 100), strings.Repeat("n", MaxNameBytes) + "...(100 bytes)"},
		{"long once escaped: cut between escapes", strings.Repeat("\x01", 20), strings.Repeat(`\x01`, 16) + "...(20 bytes)"},
		{"cut before an escape that does not fit", strings.Repeat("n", 62) + "\x1b", strings.Repeat("n", 62) + "...(63 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Name(tt.in)
			if got != tt.want {
				t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if u := Unsafe(got); u != "" {
				t.Errorf("Name(%q) = %q holds %s", tt.in, got, u)
			}
			if len(got) > MaxNameBytes+24 {
				t.Errorf("Name(%q) is %d bytes", tt.in, len(got))
			}
		})
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // the encoded string after JSON
	}{
		{"plain", "sleep 30", `"sleep 30"`},
		{"controls (encoding/json)", "a\nb\x1b[2K", `"a\nb\u001b[2K"`},
		{"bidi override", "x\u202ey", `"x\u202ey"`},
		{"isolates", "\u2066\u2069", `"\u2066\u2069"`},
		{"C1 as UTF-8", "\u0085\u009b", `"\u0085\u009b"`},
		{"DEL (encoding/json leaves it)", "a\x7fb", `"a\u007fb"`},
		{"letters stay", "café", `"café"`},
		{"beyond the BMP, unprintable", "\U000e0041", `"\udb40\udc41"`},
		{"emoji stays", "\U0001f600", "\"\U0001f600\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got := JSON(data)
			if string(got) != tt.want {
				t.Errorf("JSON(%s) = %s, want %s", data, got, tt.want)
			}
			if c := hasControl(string(got)); c != "" {
				t.Errorf("JSON output %q holds a %s", got, c)
			}
			var back string
			if err := json.Unmarshal(got, &back); err != nil || back != tt.in {
				t.Errorf("JSON output decodes to %q, %v; want %q", back, err, tt.in)
			}
		})
	}
}
