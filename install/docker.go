package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// member is one member of a JSON object, its value kept as written.
type member struct {
	key   string
	value json.RawMessage
}

// editDocker registers capshim in daemon.json: runtimes.capshim, and
// default-runtime with SetDefault. Every other member keeps its value and
// place; the result is indented with two spaces. When nothing needs to
// change, old is returned as it is.
func editDocker(old []byte, opts Options) ([]byte, []string, error) {
	members, err := decodeObject(old, "the file")
	if err != nil {
		return nil, nil, err
	}
	want := map[string]any{"path": opts.Binary}
	if opts.RuntimeConfig != "" {
		want["runtimeArgs"] = []any{"--capshim-config=" + opts.RuntimeConfig}
	}
	entry, err := marshal(want)
	if err != nil {
		return nil, nil, err
	}
	changed := false

	// runtimes.capshim
	ri := index(members, "runtimes")
	if ri < 0 {
		members = append(members, member{"runtimes", nil})
		ri = len(members) - 1
	}
	var runtimes []member
	if members[ri].value != nil && !isNull(members[ri].value) {
		if runtimes, err = decodeObject(members[ri].value, `"runtimes"`); err != nil {
			return nil, nil, err
		}
	}
	ci := index(runtimes, "capshim")
	switch {
	case ci < 0:
		runtimes = append(runtimes, member{"capshim", entry})
		changed = true
	case !sameJSON(runtimes[ci].value, want):
		runtimes[ci].value = entry
		changed = true
	}
	if changed {
		if members[ri].value, err = encodeObject(runtimes); err != nil {
			return nil, nil, err
		}
	}

	// default-runtime
	if opts.SetDefault {
		name, _ := marshal("capshim")
		di := index(members, "default-runtime")
		switch {
		case di < 0:
			members = append(members, member{"default-runtime", name})
			changed = true
		case !sameJSON(members[di].value, "capshim"):
			members[di].value = name
			changed = true
		}
	}
	if !changed {
		return old, nil, nil
	}
	compact, err := encodeObject(members)
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, nil, fmt.Errorf("indenting the result: %w", err)
	}
	out.WriteByte('\n')
	var notes []string
	if len(bytes.TrimSpace(old)) > 0 {
		var was bytes.Buffer
		if json.Indent(&was, bytes.TrimSpace(old), "", "  ") == nil && !bytes.Equal(append(was.Bytes(), '\n'), old) {
			notes = append(notes, "the file is re-indented with two spaces; every other key keeps its value and place")
		}
	}
	return out.Bytes(), notes, nil
}

// decodeObject reads a JSON object member by member, keeping each value
// as written. Empty (or blank) data is an empty object. A syntax error
// names its line; what names the object in messages.
func decodeObject(data []byte, what string) ([]member, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var all json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("line %d: %w", 1+bytes.Count(data[:se.Offset], []byte("\n")), err)
		}
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%s is not a JSON object", what)
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("%s has the key %q twice", what, key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		members = append(members, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s has data after the JSON object", what)
	}
	return members, nil
}

// encodeObject writes members as a compact JSON object.
func encodeObject(members []member) (json.RawMessage, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal encodes v without HTML escaping and without a newline.
func marshal(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding %v: %w", v, err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func index(members []member, key string) int {
	for i, m := range members {
		if m.key == key {
			return i
		}
	}
	return -1
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// sameJSON reports whether raw decodes to want (made of strings, []any
// and map[string]any).
func sameJSON(raw json.RawMessage, want any) bool {
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		return false
	}
	return reflect.DeepEqual(got, want)
}
