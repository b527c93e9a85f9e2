package policy

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Globs match annotation values: '*' matches any run of characters ('/'
// included), '?' one character, '[...]' one character of a class ('[!...]'
// or '[^...]' negates, 'a-z' is a range), and '\' makes the next character
// literal.

// checkGlob reports a malformed glob.
func checkGlob(g string) error {
	for i := 0; i < len(g); i++ {
		switch g[i] {
		case '\\':
			if i+1 >= len(g) {
				return errors.New(`ends with a lone '\' (write '\\' for a backslash)`)
			}
			i++
		case '[':
			end, err := classEnd(g, i)
			if err != nil {
				return err
			}
			i = end
		}
	}
	return nil
}

// classEnd returns the index of the ']' closing the class opened at g[i].
func classEnd(g string, i int) (int, error) {
	j := i + 1
	if j < len(g) && (g[j] == '!' || g[j] == '^') {
		j++
	}
	if j < len(g) && g[j] == ']' { // a leading ']' is literal
		j++
	}
	for ; j < len(g); j++ {
		switch g[j] {
		case '\\':
			j++
		case ']':
			return j, nil
		}
	}
	return 0, errors.New("has a '[' with no closing ']' (write '\\[' for a literal bracket)")
}

// globMatch matches value against a glob that checkGlob accepted.
func globMatch(g, value string) bool {
	// Iterative matching with one backtrack point for the last '*'.
	gi, vi := 0, 0
	starG, starV := -1, 0
	for vi < len(value) {
		if gi < len(g) {
			switch g[gi] {
			case '*':
				starG, starV = gi, vi
				gi++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(value[vi:])
				gi++
				vi += n
				continue
			case '[':
				end, _ := classEnd(g, gi)
				r, n := utf8.DecodeRuneInString(value[vi:])
				if classMatch(g[gi+1:end], r) {
					gi = end + 1
					vi += n
					continue
				}
			case '\\':
				if gi+1 < len(g) && g[gi+1] == value[vi] {
					gi += 2
					vi++
					continue
				}
			default:
				if g[gi] == value[vi] {
					gi++
					vi++
					continue
				}
			}
		}
		if starG < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(value[starV:])
		starV += n
		gi, vi = starG+1, starV
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}

// classMatch matches r against the inside of a '[...]' class.
func classMatch(class string, r rune) bool {
	negate := false
	if len(class) > 0 && (class[0] == '!' || class[0] == '^') {
		negate = true
		class = class[1:]
	}
	matched := false
	for i := 0; i < len(class); {
		lo, n := classRune(class, i)
		i += n
		hi := lo
		if i+1 < len(class) && class[i] == '-' {
			hi, n = classRune(class, i+1)
			i += 1 + n
		}
		if lo <= r && r <= hi {
			matched = true
		}
	}
	return matched != negate
}

func classRune(class string, i int) (rune, int) {
	if class[i] == '\\' && i+1 < len(class) {
		r, n := utf8.DecodeRuneInString(class[i+1:])
		return r, n + 1
	}
	return utf8.DecodeRuneInString(class[i:])
}

// GlobQuote returns a glob that matches s and nothing else: the glob
// characters in it are escaped.
func GlobQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
