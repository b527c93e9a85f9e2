package install

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// TOML files are edited as text so that comments, order and layout stay as
// they were: the file is scanned into table headers and key/value lines
// (tomlDoc), one key line is replaced or inserted (setKey), and the result
// is parsed again to check that it says what was meant (checkTOML).

// tomlDoc is a TOML text with the positions of its tables and keys.
type tomlDoc struct {
	lines  []string // every line with its line ending
	nl     string   // the line ending the file uses: "\n" or "\r\n"
	tables []tomlTable
}

// tomlTable is a [table] or [[array]] header and the keys written under
// it. The root table (keys before the first header) has header -1.
type tomlTable struct {
	key    []string
	array  bool
	header int // line index
	indent string
	keys   []tomlKV
}

// tomlKV is one key = value, possibly over several lines.
type tomlKV struct {
	key         []string
	keyText     string // the key as written
	first, last int    // line indexes
	indent      string
	trail       string // what follows the value on its last line (spaces, comment)
}

// parseTOML checks that data is valid TOML and returns it decoded. A
// syntax error names the line.
func parseTOML(data []byte) (map[string]any, error) {
	m := map[string]any{}
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&m); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// The position's own line is one too far when the error is
			// at a newline; count the lines up to its offset instead.
			line := pe.Position.Line
			if s := pe.Position.Start; s >= 0 && s < len(data) {
				line = 1 + bytes.Count(data[:s], []byte("\n"))
			}
			return nil, fmt.Errorf("line %d: %s", line, pe.Message)
		}
		return nil, err
	}
	return m, nil
}

// scanTOML finds the tables and keys of data, which must be valid TOML
// (parseTOML it first).
func scanTOML(data []byte) (*tomlDoc, error) {
	s := string(data)
	d := &tomlDoc{lines: splitLines(s), nl: "\n"}
	if i := strings.IndexByte(s, '\n'); i > 0 && s[i-1] == '\r' {
		d.nl = "\r\n"
	}
	lineStart := make([]int, 0, len(d.lines))
	off := 0
	for _, l := range d.lines {
		lineStart = append(lineStart, off)
		off += len(l)
	}
	lineOf := func(pos int) int {
		lo, hi := 0, len(lineStart)-1
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if lineStart[mid] <= pos {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		return lo
	}
	sc := &scanner{s: s}
	cur := tomlTable{header: -1}
	for sc.pos < len(s) {
		start := sc.pos
		sc.skipSpace()
		indent := s[start:sc.pos]
		if sc.pos >= len(s) {
			break
		}
		switch c := s[sc.pos]; {
		case c == '\n' || c == '\r' || c == '#':
			sc.skipLine()
		case c == '[':
			d.tables = append(d.tables, cur)
			line := lineOf(sc.pos)
			sc.pos++
			array := sc.peek() == '['
			if array {
				sc.pos++
			}
			key, _, err := sc.key()
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line+1, err)
			}
			if !sc.accept("]") || array && !sc.accept("]") {
				return nil, fmt.Errorf("line %d: table header not closed", line+1)
			}
			sc.skipLine()
			cur = tomlTable{key: key, array: array, header: line, indent: indent}
		default:
			line := lineOf(sc.pos)
			key, keyText, err := sc.key()
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line+1, err)
			}
			if !sc.accept("=") {
				return nil, fmt.Errorf("line %d: no = after the key", line+1)
			}
			sc.skipSpace()
			if err := sc.value(); err != nil {
				return nil, fmt.Errorf("line %d: %w", line+1, err)
			}
			last := lineOf(max(sc.pos-1, 0))
			end := sc.pos
			sc.skipLine()
			trail := strings.TrimRight(s[end:sc.pos], "\r\n")
			cur.keys = append(cur.keys, tomlKV{key: key, keyText: keyText, first: line, last: last, indent: indent, trail: trail})
		}
	}
	d.tables = append(d.tables, cur)
	return d, nil
}

// scanner reads the parts of TOML text that editing needs.
type scanner struct {
	s   string
	pos int
}

func (sc *scanner) peek() byte {
	if sc.pos < len(sc.s) {
		return sc.s[sc.pos]
	}
	return 0
}

func (sc *scanner) accept(tok string) bool {
	sc.skipSpace()
	if strings.HasPrefix(sc.s[sc.pos:], tok) {
		sc.pos += len(tok)
		return true
	}
	return false
}

func (sc *scanner) skipSpace() {
	for sc.pos < len(sc.s) && (sc.s[sc.pos] == ' ' || sc.s[sc.pos] == '\t') {
		sc.pos++
	}
}

// skipLine moves past the rest of the line (a comment, spaces) and its
// newline.
func (sc *scanner) skipLine() {
	if i := strings.IndexByte(sc.s[sc.pos:], '\n'); i >= 0 {
		sc.pos += i + 1
	} else {
		sc.pos = len(sc.s)
	}
}

// skipBlank skips spaces, newlines and comments, as allowed inside arrays.
func (sc *scanner) skipBlank() {
	for sc.pos < len(sc.s) {
		switch sc.s[sc.pos] {
		case ' ', '\t', '\r', '\n':
			sc.pos++
		case '#':
			sc.skipLine()
		default:
			return
		}
	}
}

// key reads a dotted key and returns its parts and the text it was
// written as.
func (sc *scanner) key() (parts []string, text string, err error) {
	sc.skipSpace()
	start := sc.pos
	for {
		sc.skipSpace()
		var part string
		switch sc.peek() {
		case '"':
			b := sc.pos
			if err := sc.basicString(); err != nil {
				return nil, "", err
			}
			raw := sc.s[b:sc.pos]
			if part, err = strconv.Unquote(raw); err != nil {
				part = raw[1 : len(raw)-1]
			}
		case '\'':
			b := sc.pos
			i := strings.IndexByte(sc.s[b+1:], '\'')
			if i < 0 {
				return nil, "", errors.New("literal string not closed")
			}
			part = sc.s[b+1 : b+1+i]
			sc.pos = b + i + 2
		default:
			b := sc.pos
			for sc.pos < len(sc.s) && isBare(sc.s[sc.pos]) {
				sc.pos++
			}
			if sc.pos == b {
				return nil, "", fmt.Errorf("unexpected %q in a key", sc.peek())
			}
			part = sc.s[b:sc.pos]
		}
		parts = append(parts, part)
		end := sc.pos
		sc.skipSpace()
		if sc.peek() != '.' {
			return parts, sc.s[start:end], nil
		}
		sc.pos++
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// basicString moves past a "..." string at pos.
func (sc *scanner) basicString() error {
	for i := sc.pos + 1; i < len(sc.s); i++ {
		switch sc.s[i] {
		case '\\':
			i++
		case '"':
			sc.pos = i + 1
			return nil
		case '\n':
			return errors.New("string not closed on its line")
		}
	}
	return errors.New("string not closed")
}

// multiline moves past a multi-line string (three q quotes each side) at pos.
func (sc *scanner) multiline(q byte) error {
	delim := strings.Repeat(string(q), 3)
	for i := sc.pos + 3; i < len(sc.s); i++ {
		if q == '"' && sc.s[i] == '\\' {
			i++
			continue
		}
		if strings.HasPrefix(sc.s[i:], delim) {
			end := i + 3
			// Up to two quotes right before the delimiter belong to the
			// string: """a""""" is a"".
			for k := 0; k < 2 && end < len(sc.s) && sc.s[end] == q; k++ {
				end++
			}
			sc.pos = end
			return nil
		}
	}
	return errors.New("multi-line string not closed")
}

// value moves past one value at pos.
func (sc *scanner) value() error {
	switch {
	case strings.HasPrefix(sc.s[sc.pos:], `"""`):
		return sc.multiline('"')
	case strings.HasPrefix(sc.s[sc.pos:], `'''`):
		return sc.multiline('\'')
	case sc.peek() == '"':
		return sc.basicString()
	case sc.peek() == '\'':
		i := strings.IndexByte(sc.s[sc.pos+1:], '\'')
		if i < 0 {
			return errors.New("literal string not closed")
		}
		sc.pos += i + 2
		return nil
	case sc.peek() == '[':
		sc.pos++
		for {
			sc.skipBlank()
			if sc.peek() == ']' {
				sc.pos++
				return nil
			}
			if err := sc.value(); err != nil {
				return err
			}
			sc.skipBlank()
			if sc.peek() == ',' {
				sc.pos++
			} else if sc.peek() != ']' {
				return fmt.Errorf("unexpected %q in an array", sc.peek())
			}
		}
	case sc.peek() == '{':
		sc.pos++
		for {
			sc.skipBlank()
			if sc.peek() == '}' {
				sc.pos++
				return nil
			}
			if _, _, err := sc.key(); err != nil {
				return err
			}
			if !sc.accept("=") {
				return errors.New("no = in an inline table")
			}
			sc.skipSpace()
			if err := sc.value(); err != nil {
				return err
			}
			sc.skipBlank()
			if sc.peek() == ',' {
				sc.pos++
			} else if sc.peek() != '}' {
				return fmt.Errorf("unexpected %q in an inline table", sc.peek())
			}
		}
	default:
		// Numbers, booleans, dates (which may hold one space).
		b := sc.pos
		for sc.pos < len(sc.s) && !strings.ContainsRune(",]}#\r\n", rune(sc.s[sc.pos])) {
			sc.pos++
		}
		for sc.pos > b && (sc.s[sc.pos-1] == ' ' || sc.s[sc.pos-1] == '\t') {
			sc.pos--
		}
		if sc.pos == b {
			return fmt.Errorf("unexpected %q where a value should be", sc.peek())
		}
		return nil
	}
}

// table returns the [table] with the given key (the root table for an
// empty key), or nil.
func (d *tomlDoc) table(key []string) *tomlTable {
	for i := range d.tables {
		t := &d.tables[i]
		if t.header < 0 {
			if len(key) == 0 {
				return t
			}
			continue
		}
		if !t.array && slicesEqual(t.key, key) {
			return t
		}
	}
	return nil
}

func slicesEqual(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// setKey returns data with key = value (value is TOML text) in [table]:
// the line of an existing key is replaced (keeping its indentation and a
// comment after the value), a missing key is added after the table's last
// key (or after its header), and a missing table is added at the end of
// the file. note is set when comments inside a replaced multi-line value
// are lost.
func setKey(data []byte, table []string, key, value string) (out []byte, note string, err error) {
	d, err := scanTOML(data)
	if err != nil {
		return nil, "", err
	}
	line := func(indent, keyText, trail string) string {
		return indent + keyText + " = " + value + trail + d.nl
	}
	t := d.table(table)
	if t == nil {
		var b strings.Builder
		b.Write(data)
		if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
			b.WriteString(d.nl)
		}
		if len(bytes.TrimSpace(data)) > 0 && !bytes.HasSuffix(data, []byte("\n\n")) && !bytes.HasSuffix(data, []byte("\r\n\r\n")) {
			b.WriteString(d.nl)
		}
		b.WriteString("[" + formatKey(table) + "]" + d.nl)
		b.WriteString(line("", formatKey([]string{key}), ""))
		return []byte(b.String()), "", nil
	}
	lines := d.lines
	for _, kv := range t.keys {
		if slicesEqual(kv.key, []string{key}) {
			if kv.last > kv.first && strings.Contains(strings.Join(lines[kv.first:kv.last+1], ""), "#") {
				note = fmt.Sprintf("comments inside the old value of %s (lines %d-%d) are not kept", key, kv.first+1, kv.last+1)
			}
			out := append([]string{}, lines[:kv.first]...)
			out = append(out, line(kv.indent, kv.keyText, kv.trail))
			out = append(out, lines[kv.last+1:]...)
			return []byte(strings.Join(out, "")), note, nil
		}
	}
	at, indent := t.header+1, t.indent
	if n := len(t.keys); n > 0 {
		at, indent = t.keys[n-1].last+1, t.keys[n-1].indent
	}
	if at > 0 && at == len(lines) && !strings.HasSuffix(lines[at-1], "\n") {
		lines = append([]string{}, lines...)
		lines[at-1] += d.nl
	}
	out = []byte(strings.Join(lines[:at], "") + line(indent, formatKey([]string{key}), "") + strings.Join(lines[at:], ""))
	return out, "", nil
}

// formatKey writes a dotted key, quoting the parts that are not bare.
func formatKey(parts []string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		bare := p != ""
		for j := 0; j < len(p); j++ {
			bare = bare && isBare(p[j])
		}
		if bare {
			q[i] = p
		} else {
			q[i] = tomlString(p)
		}
	}
	return strings.Join(q, ".")
}

// tomlString writes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		case r == utf8.RuneError:
			b.WriteString(`\uFFFD`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlStrings writes a TOML array of strings on one line.
func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// lookup returns the decoded value at the dotted path, or nil.
func lookup(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = mm[p]; !ok {
			return nil
		}
	}
	return v
}

// tomlSetting is one key capshim sets in a TOML file and the value it
// means (a string or a []string).
type tomlSetting struct {
	table []string
	key   string
	value any
}

// text is the setting's value as TOML text.
func (s tomlSetting) text() string {
	switch v := s.value.(type) {
	case string:
		return tomlString(v)
	case []string:
		return tomlStrings(v)
	}
	panic(fmt.Sprintf("install: unsupported value %T", s.value))
}

// holds reports whether the decoded document already has the setting.
func (s tomlSetting) holds(m map[string]any) bool {
	got := lookup(m, append(append([]string{}, s.table...), s.key)...)
	switch v := s.value.(type) {
	case string:
		return got == v
	case []string:
		arr, ok := got.([]any)
		if !ok || len(arr) != len(v) {
			return false
		}
		for i := range v {
			if arr[i] != v[i] {
				return false
			}
		}
		return true
	}
	return false
}

// path is the setting's dotted key for messages.
func (s tomlSetting) path() string {
	return formatKey(append(append([]string{}, s.table...), s.key))
}

// applyTOML sets every setting that data does not hold yet, then checks
// that the result parses and holds all of them. It returns data itself
// when nothing needs to change.
func applyTOML(data []byte, settings []tomlSetting) (out []byte, notes []string, err error) {
	m, err := parseTOML(data)
	if err != nil {
		return nil, nil, err
	}
	out = data
	for _, s := range settings {
		if s.holds(m) {
			continue
		}
		var note string
		out, note, err = setKey(out, s.table, s.key, s.text())
		if err != nil {
			return nil, nil, fmt.Errorf("capshim cannot edit this file as text (%w); add the settings by hand", err)
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	if err := checkTOML(out, settings); err != nil {
		return nil, nil, err
	}
	return out, notes, nil
}

// checkTOML parses the edited text and checks that it holds every setting.
func checkTOML(data []byte, settings []tomlSetting) error {
	m, err := parseTOML(data)
	if err != nil {
		return fmt.Errorf("the edited file would not parse (%w): the file defines these tables in a form capshim does not edit; add the settings by hand", err)
	}
	for _, s := range settings {
		if !s.holds(m) {
			return fmt.Errorf("the edited file would not set %s = %s: the file defines it in a form capshim does not edit; set it by hand", s.path(), s.text())
		}
	}
	return nil
}
