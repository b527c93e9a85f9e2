package policy

import (
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		name  string
		glob  string
		value string
		want  bool
	}{
		{name: "literal", glob: "web", value: "web", want: true},
		{name: "literal mismatch", glob: "web", value: "wed", want: false},
		{name: "literal prefix only", glob: "web", value: "web-1", want: false},
		{name: "literal longer than value", glob: "web-1", value: "web", want: false},
		{name: "star alone matches anything", glob: "*", value: "anything at all", want: true},
		{name: "star alone matches empty", glob: "*", value: "", want: true},
		{name: "star suffix", glob: "web-*", value: "web-prod", want: true},
		{name: "star suffix empty rest", glob: "web-*", value: "web-", want: true},
		{name: "star suffix mismatch", glob: "web-*", value: "api-prod", want: false},
		{name: "star prefix", glob: "*-prod", value: "web-prod", want: true},
		{name: "star middle", glob: "a*z", value: "abcz", want: true},
		{name: "star middle needs backtrack", glob: "a*bc", value: "abcbc", want: true},
		{name: "two stars", glob: "*a*b*", value: "xxaxxbxx", want: true},
		{name: "two stars wrong order", glob: "*b*a", value: "ab", want: false},
		{name: "consecutive stars", glob: "a**b", value: "ab", want: true},
		{name: "star matches slash", glob: "registry/*", value: "registry/team/app", want: true},
		{name: "star matches slashes in middle", glob: "a*z", value: "a/b/c/z", want: true},
		{name: "question one char", glob: "web-?", value: "web-1", want: true},
		{name: "question needs a char", glob: "web-?", value: "web-", want: false},
		{name: "question only one char", glob: "web-?", value: "web-12", want: false},
		{name: "question matches slash", glob: "a?b", value: "a/b", want: true},
		{name: "question matches one rune", glob: "?", value: "é", want: true},
		{name: "question matches one rune not two", glob: "?", value: "éé", want: false},
		{name: "question on 4-byte rune", glob: "x?y", value: "x😀y", want: true},
		{name: "class", glob: "[abc]", value: "b", want: true},
		{name: "class miss", glob: "[abc]", value: "d", want: false},
		{name: "class range", glob: "ns-[0-9]", value: "ns-7", want: true},
		{name: "class range miss", glob: "ns-[0-9]", value: "ns-x", want: false},
		{name: "class two ranges", glob: "[a-cx-z]", value: "y", want: true},
		{name: "class range and literal", glob: "[a-c_]", value: "_", want: true},
		{name: "class trailing dash literal", glob: "[a-]", value: "-", want: true},
		{name: "class leading dash literal", glob: "[-a]", value: "-", want: true},
		{name: "class reversed range matches nothing", glob: "[z-a]", value: "m", want: false},
		{name: "class negated bang", glob: "[!abc]", value: "d", want: true},
		{name: "class negated bang miss", glob: "[!abc]", value: "a", want: false},
		{name: "class negated caret", glob: "[^0-9]", value: "x", want: true},
		{name: "class negated caret miss", glob: "[^0-9]", value: "5", want: false},
		{name: "class negated needs a char", glob: "[!a]", value: "", want: false},
		{name: "class leading bracket literal", glob: "[]a]", value: "]", want: true},
		{name: "class negated leading bracket", glob: "[!]]", value: "]", want: false},
		{name: "class negated leading bracket other", glob: "[!]]", value: "x", want: true},
		{name: "class escaped bracket", glob: `[\]]`, value: "]", want: true},
		{name: "class escaped dash", glob: `[a\-z]`, value: "-", want: true},
		{name: "class escaped dash no range", glob: `[a\-z]`, value: "m", want: false},
		{name: "class unicode member", glob: "[é]", value: "é", want: true},
		{name: "class unicode range", glob: "[α-ω]", value: "λ", want: true},
		{name: "class unicode range miss", glob: "[α-ω]", value: "a", want: false},
		{name: "class negated unicode", glob: "[!é]", value: "e", want: true},
		{name: "class star inside is literal", glob: "[*]", value: "*", want: true},
		{name: "class star inside not wildcard", glob: "[*]", value: "x", want: false},
		{name: "class then star", glob: "[wa]*", value: "api", want: true},
		{name: "escaped star", glob: `web\*`, value: "web*", want: true},
		{name: "escaped star is literal", glob: `web\*`, value: "webx", want: false},
		{name: "escaped question", glob: `\?`, value: "?", want: true},
		{name: "escaped question is literal", glob: `\?`, value: "x", want: false},
		{name: "escaped bracket", glob: `\[x]`, value: "[x]", want: true},
		{name: "escaped backslash", glob: `a\\b`, value: `a\b`, want: true},
		{name: "escaped ordinary char", glob: `\a`, value: "a", want: true},
		{name: "escaped unicode", glob: `\é`, value: "é", want: true},
		{name: "star then escaped star", glob: `*\*`, value: "ab*", want: true},
		{name: "star then escaped star miss", glob: `*\*`, value: "ab", want: false},
		{name: "empty glob empty value", glob: "", value: "", want: true},
		{name: "empty glob nonempty value", glob: "", value: "x", want: false},
		{name: "nonempty glob empty value", glob: "a", value: "", want: false},
		{name: "question empty value", glob: "?", value: "", want: false},
		{name: "unicode literal", glob: "équipe-*", value: "équipe-web", want: true},
		{name: "unicode literal miss", glob: "équipe", value: "equipe", want: false},
		{name: "star before unicode", glob: "*é", value: "café", want: true},
		{name: "kubernetes namespace", glob: "team-[a-z]*-prod", value: "team-payments-prod", want: true},
		{name: "kubernetes namespace miss", glob: "team-[a-z]*-prod", value: "team-1-prod", want: false},
		{name: "case sensitive", glob: "Web", value: "web", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkGlob(tt.glob); err != nil {
				t.Fatalf("checkGlob(%q) = %v, want nil", tt.glob, err)
			}
			if got := globMatch(tt.glob, tt.value); got != tt.want {
				t.Errorf("globMatch(%q, %q) = %v, want %v", tt.glob, tt.value, got, tt.want)
			}
			if got := refMatch(tt.glob, tt.value); got != tt.want {
				t.Errorf("reference matcher disagrees with the table: refMatch(%q, %q) = %v, want %v", tt.glob, tt.value, got, tt.want)
			}
		})
	}
}

func TestCheckGlob(t *testing.T) {
	tests := []struct {
		name    string
		glob    string
		wantErr string // "" for a good glob
	}{
		{name: "empty", glob: ""},
		{name: "plain", glob: "web-prod"},
		{name: "star", glob: "*"},
		{name: "class", glob: "[a-z]"},
		{name: "negated class", glob: "[!a-z]"},
		{name: "leading bracket in class", glob: "[]]"},
		{name: "escaped bracket in class", glob: `[\]]`},
		{name: "escaped open bracket", glob: `\[`},
		{name: "escaped backslash at end", glob: `a\\`},
		{name: "close bracket alone is literal", glob: "a]"},
		{name: "unicode", glob: "[é-ö]*"},
		{name: "lone backslash", glob: `web\`, wantErr: `ends with a lone '\'`},
		{name: "only backslash", glob: `\`, wantErr: `ends with a lone '\'`},
		{name: "unclosed class", glob: "[a-z", wantErr: "has a '[' with no closing ']'"},
		{name: "unclosed bracket alone", glob: "[", wantErr: "has a '[' with no closing ']'"},
		{name: "empty class", glob: "[]", wantErr: "has a '[' with no closing ']'"},
		{name: "empty negated class", glob: "[!]", wantErr: "has a '[' with no closing ']'"},
		{name: "escaped close in class", glob: `[\]`, wantErr: "has a '[' with no closing ']'"},
		{name: "backslash at end of class", glob: `[a\`, wantErr: "has a '[' with no closing ']'"},
		{name: "unclosed after good class", glob: "[a]x[", wantErr: "has a '[' with no closing ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkGlob(tt.glob)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkGlob(%q) = %v, want nil", tt.glob, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("checkGlob(%q) = nil, want an error containing %q", tt.glob, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("checkGlob(%q) = %q, want it to contain %q", tt.glob, err, tt.wantErr)
			}
			if ok := refWellFormed(tt.glob); ok != (tt.wantErr == "") {
				t.Errorf("reference parser: refWellFormed(%q) = %v", tt.glob, ok)
			}
		})
	}
}

// TestGlobMatchProperty compares globMatch with refMatch, a plain recursive
// matcher, on random globs and values over a small alphabet.
func TestGlobMatchProperty(t *testing.T) {
	globAlphabet := []string{"a", "b", "é", "/", "-", "*", "*", "?", "[", "]", "!", "^", `\`, "z"}
	valueAlphabet := []string{"a", "b", "é", "/", "-", "]", "*", `\`, "z", "!"}
	rnd := rand.New(rand.NewSource(20240611))
	random := func(alphabet []string, maxLen int) string {
		var b strings.Builder
		for n := rnd.Intn(maxLen + 1); n > 0; n-- {
			b.WriteString(alphabet[rnd.Intn(len(alphabet))])
		}
		return b.String()
	}
	const iterations = 20000
	wellFormed := 0
	for i := 0; i < iterations; i++ {
		g := random(globAlphabet, 8)
		if got, want := checkGlob(g) == nil, refWellFormed(g); got != want {
			t.Fatalf("checkGlob(%q) accepts=%v, reference accepts=%v", g, got, want)
		}
		if checkGlob(g) != nil {
			continue
		}
		wellFormed++
		for j := 0; j < 8; j++ {
			v := random(valueAlphabet, 7)
			if got, want := globMatch(g, v), refMatch(g, v); got != want {
				t.Fatalf("globMatch(%q, %q) = %v, reference says %v", g, v, got, want)
			}
		}
	}
	if wellFormed < iterations/10 {
		t.Fatalf("only %d of %d random globs were well formed; the generator is too weak", wellFormed, iterations)
	}
}

// refClass parses the class opening at g[0] == '['. It returns the members
// as ranges, whether it is negated, and the rest of the glob after ']'.
func refClass(g string) (ranges [][2]rune, negate bool, rest string, ok bool) {
	g = g[1:]
	if g != "" && (g[0] == '!' || g[0] == '^') {
		negate = true
		g = g[1:]
	}
	var items []rune // members, with -1 standing for an unescaped '-'
	first := true
	for {
		if g == "" {
			return nil, false, "", false
		}
		r, n := utf8.DecodeRuneInString(g)
		switch {
		case r == ']' && !first:
			rest = g[n:]
			// Build ranges: x '-' y is a range when '-' is neither
			// first nor last.
			for i := 0; i < len(items); i++ {
				lo := items[i]
				if lo == -1 {
					lo = '-'
				}
				if i+2 < len(items) && items[i+1] == -1 {
					hi := items[i+2]
					if hi == -1 {
						hi = '-'
					}
					ranges = append(ranges, [2]rune{lo, hi})
					i += 2
					continue
				}
				ranges = append(ranges, [2]rune{lo, lo})
			}
			return ranges, negate, rest, true
		case r == '\\':
			if len(g) < 2 {
				return nil, false, "", false
			}
			e, m := utf8.DecodeRuneInString(g[1:])
			items = append(items, e)
			g = g[1+m:]
		case r == '-':
			items = append(items, -1)
			g = g[n:]
		default:
			items = append(items, r)
			g = g[n:]
		}
		first = false
	}
}

// refWellFormed reports whether the reference parser accepts g.
func refWellFormed(g string) bool {
	for g != "" {
		switch g[0] {
		case '\\':
			if len(g) < 2 {
				return false
			}
			_, n := utf8.DecodeRuneInString(g[1:])
			g = g[1+n:]
		case '[':
			_, _, rest, ok := refClass(g)
			if !ok {
				return false
			}
			g = rest
		default:
			_, n := utf8.DecodeRuneInString(g)
			g = g[n:]
		}
	}
	return true
}

// refMatch is a simple recursive glob matcher over runes: the
// specification globMatch is checked against.
func refMatch(g, v string) bool {
	if g == "" {
		return v == ""
	}
	switch g[0] {
	case '*':
		for i := 0; ; {
			if refMatch(g[1:], v[i:]) {
				return true
			}
			if i == len(v) {
				return false
			}
			_, n := utf8.DecodeRuneInString(v[i:])
			i += n
		}
	case '?':
		if v == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(v)
		return refMatch(g[1:], v[n:])
	case '[':
		ranges, negate, rest, _ := refClass(g)
		if v == "" {
			return false
		}
		r, n := utf8.DecodeRuneInString(v)
		in := false
		for _, rg := range ranges {
			if rg[0] <= r && r <= rg[1] {
				in = true
			}
		}
		return in != negate && refMatch(rest, v[n:])
	case '\\':
		g = g[1:]
	}
	gr, gn := utf8.DecodeRuneInString(g)
	if v == "" {
		return false
	}
	vr, vn := utf8.DecodeRuneInString(v)
	return gr == vr && refMatch(g[gn:], v[vn:])
}

func TestGlobQuote(t *testing.T) {
	for _, s := range []string{"docker.io/library/nginx", "a*b?c[d]e\\f", "", "web-[1]"} {
		g := GlobQuote(s)
		if err := checkGlob(g); err != nil {
			t.Fatalf("GlobQuote(%q) = %q: %v", s, g, err)
		}
		if !globMatch(g, s) || globMatch(g, s+"x") || s != "" && globMatch(g, "x"+s) {
			t.Fatalf("GlobQuote(%q) = %q matches more or less than %q", s, g, s)
		}
	}
}
