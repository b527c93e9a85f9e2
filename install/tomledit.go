package install

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// TOML files are edited as text so that comments, order and layout stay as
// they were. go-toml decodes the file (parseTOML), and its parser gives the
// byte offsets of every table header and key/value (scanTOML). An edit
// replaces the bytes of one value, or inserts one line, and leaves every
// other byte as it was (setKey); the result is decoded again to check that
// it says what was meant (checkTOML).

// tomlDoc is a TOML text with the positions of its tables and keys.
type tomlDoc struct {
	data   []byte
	nl     string // the line ending the file uses: "\n" or "\r\n"
	tables []tomlTable
}

// tomlTable is a [table] or [[array]] header and the keys written under
// it. The root table (keys before the first header) has root set.
type tomlTable struct {
	key    []string
	array  bool
	root   bool
	end    int // offset just past the header's line (0 for the root table)
	indent string
	keys   []tomlKV
}

// tomlKV is one key = value, possibly over several lines.
type tomlKV struct {
	key         []string
	keyStart    int // where the key starts
	start, end  int // the value's bytes
	lineEnd     int // offset just past the line the value ends on
	first, last int // the lines (from 1) the key/value spans
	indent      string
	comments    bool // a comment inside the value (an array over several lines)
}

// parseTOML checks that data is valid TOML and returns it decoded. An
// error names the line.
func parseTOML(data []byte) (map[string]any, error) {
	m := map[string]any{}
	if err := toml.Unmarshal(data, &m); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			// go-toml's message without its "toml: " prefix, since the
			// caller already says which file.
			return nil, fmt.Errorf("line %d: %s", line, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, err
	}
	return m, nil
}

// scanTOML finds the tables and keys of data, which must be valid TOML
// (parseTOML it first).
func scanTOML(data []byte) (*tomlDoc, error) {
	d := &tomlDoc{data: data, nl: lineEnding(data)}
	p := &unstable.Parser{KeepComments: true}
	p.Reset(data)
	cur := tomlTable{root: true}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			d.tables = append(d.tables, cur)
			key, start, end := keyOf(e)
			cur = tomlTable{
				key:    key,
				array:  e.Kind == unstable.ArrayTable,
				end:    lineEnd(data, end),
				indent: indentAt(data, lineStart(data, start)),
			}
		case unstable.KeyValue:
			key, start, keyEnd := keyOf(e)
			end := int(e.Raw.Offset + e.Raw.Length)
			shape := p.Shape(e.Raw)
			cur.keys = append(cur.keys, tomlKV{
				key:      key,
				keyStart: start,
				start:    valueStart(data, keyEnd),
				end:      end,
				lineEnd:  lineEnd(data, end),
				first:    shape.Start.Line,
				last:     shape.End.Line,
				indent:   indentAt(data, lineStart(data, start)),
				comments: hasComment(e.Value()),
			})
		}
	}
	if err := p.Error(); err != nil {
		// Not seen in practice: go-toml decoded the same text before.
		return nil, err
	}
	d.tables = append(d.tables, cur)
	return d, nil
}

// keyOf returns the parts of a table header's or key/value's key and the
// offsets where the key starts and ends.
func keyOf(e *unstable.Node) (parts []string, start, end int) {
	start = -1
	for it := e.Key(); it.Next(); {
		k := it.Node()
		if start < 0 {
			start = int(k.Raw.Offset)
		}
		end = int(k.Raw.Offset + k.Raw.Length)
		parts = append(parts, string(k.Data))
	}
	return parts, start, end
}

// valueStart returns where the value of a key/value starts, given where
// its key ends. The parser gives no start for an array value, but TOML
// allows only spaces, tabs and one "=" between a key and its value.
func valueStart(data []byte, keyEnd int) int {
	i := keyEnd + bytes.IndexByte(data[keyEnd:], '=') + 1
	return i + len(data[i:]) - len(bytes.TrimLeft(data[i:], " \t"))
}

// hasComment reports whether a value holds a comment (arrays and inline
// tables over several lines may).
func hasComment(n *unstable.Node) bool {
	for it := n.Children(); it.Next(); {
		if c := it.Node(); c.Kind == unstable.Comment || hasComment(c) {
			return true
		}
	}
	return false
}

// lineStart returns the offset of the start of the line that holds off.
func lineStart(data []byte, off int) int {
	return bytes.LastIndexByte(data[:off], '\n') + 1
}

// lineEnd returns the offset just past the newline that ends the line
// holding off, or len(data) on a last line without one. After a value,
// or the key of a table header, only the header's brackets, spaces and a
// comment may follow on its line, and none of them holds a newline.
func lineEnd(data []byte, off int) int {
	if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
		return off + i + 1
	}
	return len(data)
}

// indentAt returns the spaces and tabs at the start of the line at start.
func indentAt(data []byte, start int) string {
	rest := data[start:]
	return string(rest[:len(rest)-len(bytes.TrimLeft(rest, " \t"))])
}

// lineEnding returns the line ending the file's first line uses.
func lineEnding(data []byte) string {
	if i := bytes.IndexByte(data, '\n'); i > 0 && data[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// table returns the [table] with the given key (the root table for an
// empty key), or nil.
func (d *tomlDoc) table(key []string) *tomlTable {
	for i := range d.tables {
		t := &d.tables[i]
		if t.root {
			if len(key) == 0 {
				return t
			}
			continue
		}
		if !t.array && slices.Equal(t.key, key) {
			return t
		}
	}
	return nil
}

// find returns the key/value whose full key (its table's key and its own)
// is path, or nil. Keys under [[array]] headers are not looked at: their
// path names one element of an array.
func (d *tomlDoc) find(path []string) *tomlKV {
	for i := range d.tables {
		t := &d.tables[i]
		if t.array {
			continue
		}
		for j := range t.keys {
			kv := &t.keys[j]
			if len(t.key)+len(kv.key) == len(path) && slices.Equal(t.key, path[:len(t.key)]) && slices.Equal(kv.key, path[len(t.key):]) {
				return kv
			}
		}
	}
	return nil
}

// dotted returns the table whose dotted keys define the table at path
// (as "[engine]" holds "runtimes.crun = ..." for engine.runtimes), the
// last of those keys, and the path's part below that table; nil when no
// dotted key does. TOML forbids a [path] header for such a table: a key is
// added to it as one more dotted key.
func (d *tomlDoc) dotted(path []string) (t *tomlTable, last *tomlKV, rel []string) {
	for i := range d.tables {
		t := &d.tables[i]
		if t.array || len(t.key) >= len(path) || !slices.Equal(t.key, path[:len(t.key)]) {
			continue
		}
		rel := path[len(t.key):]
		for j := range t.keys {
			kv := &t.keys[j]
			if len(kv.key) > len(rel) && slices.Equal(kv.key[:len(rel)], rel) {
				last = kv
			}
		}
		if last != nil {
			return t, last, rel
		}
	}
	return nil, nil, nil
}

// setKey returns data with key = value (value is TOML text) in [table]:
// the bytes of an existing key's value are replaced (the key, its
// indentation and a comment after the value stay), a missing key is added
// after the table's last key (or after its header, or as one more dotted
// key where dotted keys define the table), and a missing table is added at
// the end of the file. note is set when comments inside a replaced
// multi-line value are lost.
func setKey(data []byte, table []string, key, value string) (out []byte, note string, err error) {
	d, err := scanTOML(data)
	if err != nil {
		return nil, "", err
	}
	path := append(slices.Clone(table), key)
	if kv := d.find(path); kv != nil {
		if kv.comments {
			note = fmt.Sprintf("comments inside the old value of %s (lines %d-%d) are not kept", key, kv.first, kv.last)
		}
		return splice(data, kv.start, kv.end, value), note, nil
	}
	var at int
	var line string
	if t := d.table(table); t != nil {
		at, line = t.end, t.indent
		if n := len(t.keys); n > 0 {
			at, line = t.keys[n-1].lineEnd, t.keys[n-1].indent
		}
		line += formatKey([]string{key})
	} else if _, kv, rel := d.dotted(table); kv != nil {
		at, line = kv.lineEnd, kv.indent+formatKey(append(slices.Clone(rel), key))
	} else {
		var b bytes.Buffer
		b.Write(data)
		if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
			b.WriteString(d.nl)
		}
		if len(bytes.TrimSpace(data)) > 0 && !bytes.HasSuffix(data, []byte("\n\n")) && !bytes.HasSuffix(data, []byte("\r\n\r\n")) {
			b.WriteString(d.nl)
		}
		b.WriteString("[" + formatKey(table) + "]" + d.nl)
		b.WriteString(formatKey([]string{key}) + " = " + value + d.nl)
		return b.Bytes(), "", nil
	}
	line += " = " + value + d.nl
	if at > 0 && at == len(data) && data[at-1] != '\n' {
		// The last line has no newline: it gets one before the new line.
		line = d.nl + line
	}
	return splice(data, at, at, line), "", nil
}

// splice returns data with the bytes from start to end replaced by s.
func splice(data []byte, start, end int, s string) []byte {
	out := make([]byte, 0, len(data)-(end-start)+len(s))
	out = append(out, data[:start]...)
	out = append(out, s...)
	return append(out, data[end:]...)
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

// isBare reports whether c may appear in a key written without quotes.
func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
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
