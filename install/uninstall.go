package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/capshim/capshim/internal/atomicfile"
)

// Uninstalling takes out what install put in: capshim's runtime entry and,
// when capshim is the engine's default runtime, that default. Nothing is
// recorded at install time: the file itself says what is capshim's (its
// runtime is called capshim, and a default naming capshim cannot stay once
// that runtime is gone), and the backup install kept says what was there
// before.
//
// Two ways, tried in this order:
//
//  1. When the file is exactly what install makes of the backup (with the
//     binary, --config and --set-default that the file shows), nothing has
//     changed since: the backup is put back as it is, byte for byte. This
//     also undoes what only install's rewriting changed (daemon.json's
//     indentation, a version key added to an old containerd config).
//  2. Otherwise the file was changed after install, and those changes
//     stay: capshim's entries are taken out of the file as it is now. A
//     default naming capshim gets the backup's value back, or goes when
//     the backup had none (the engine's built-in default, runc, applies).
//     TOML files are edited as text, line by line, so every comment and
//     every other byte stays; daemon.json is rewritten member by member
//     with two-space indentation, and when the result is the backup's
//     document apart from white space, the backup is used as it is.
//
// containerd 1.6/1.7 lose their built-in runc when the file has a runtimes
// table, so install writes runc out when capshim's runtime would be the
// only one listed. Uninstall takes that runc out again only when nothing
// else needs it: it is exactly what install writes, the backup (if any)
// did not have it, and no other runtime is left in the table. The result
// is read as containerd reads it and refused when a runtime other than
// capshim, or the default runtime, would be lost.

// PrepareUninstall reads the engine's config file at path and its backup
// and computes the file without capshim. A missing file has nothing to
// uninstall (the plan changes nothing).
func PrepareUninstall(e Engine, path string) (*Plan, error) {
	p := &Plan{Engine: e, Path: path, uninstall: true}
	f, err := readConfig(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p, nil
	case errors.Is(err, atomicfile.ErrSymlink):
		return nil, fmt.Errorf("reading the %s config: %w: give the file it points to with --file", e, err)
	case err != nil:
		return nil, fmt.Errorf("reading the %s config: %w", e, err)
	}
	p.Exists, p.Old = true, f.data
	var backup []byte
	b, err := readConfig(p.Backup())
	switch {
	case err == nil:
		backup = b.data
		p.HasBackup = true
	case errors.Is(err, fs.ErrNotExist):
	default:
		p.Notes = append(p.Notes, fmt.Sprintf("the backup is not used: %v", err))
	}
	var fromBackup bool
	p.New, fromBackup, p.Notes, err = unedit(e, p.Old, backup, p.Notes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the file is left as it is)", path, err)
	}
	if fromBackup {
		p.FromBackup = true
		p.Notes = append(p.Notes, fmt.Sprintf("the file is what capshim install made of %s, so that backup is put back as it is (and stays)", p.Backup()))
	}
	return p, nil
}

// Unedit returns the engine's config file content cur without capshim's
// runtime and default, given the backup install kept (nil when there is
// none), and notes for the user. When cur does not register capshim,
// Unedit returns cur itself.
func Unedit(e Engine, cur, backup []byte) (out []byte, notes []string, err error) {
	out, fromBackup, notes, err := unedit(e, cur, backup, nil)
	if fromBackup {
		notes = append(notes, "the file is what capshim install made of the backup, so the backup is put back as it is")
	}
	return out, notes, err
}

func unedit(e Engine, cur, backup []byte, notes []string) ([]byte, bool, []string, error) {
	installed := backup != nil && installedFrom(e, cur, backup)
	if installed {
		// The backup may register capshim itself, when an earlier capshim
		// (or somebody by hand) did so before this install: that goes too.
		if clean, _, err := takeOut(e, backup, nil); err == nil && bytes.Equal(clean, backup) {
			return backup, true, notes, nil
		}
		notes = append(notes, "the backup registers capshim too (from before the last capshim install): capshim is taken out of the file as it is now")
	}
	out, more, err := takeOut(e, cur, backup)
	if err != nil {
		return nil, false, nil, err
	}
	if backup != nil && !installed && !bytes.Equal(out, cur) {
		notes = append(notes, "the file changed after capshim install (it is not what install makes of the backup): capshim's entries are taken out of it as it is now, and the other changes stay")
	}
	return out, false, append(notes, more...), nil
}

// takeOut takes capshim's entries out of cur, the engine's way.
func takeOut(e Engine, cur, backup []byte) ([]byte, []string, error) {
	switch e {
	case Docker:
		return uneditDocker(cur, backup)
	case Containerd:
		return uneditContainerd(cur, backup)
	case Podman:
		return uneditPodman(cur, backup)
	}
	return nil, nil, fmt.Errorf("unknown engine %q", e)
}

// installedFrom reports whether cur is exactly what install makes of
// backup, with the options cur shows (capshim's binary, the docker
// runtime's --capshim-config, whether capshim is the default): a run with
// --set-default, or one without and then one with it.
func installedFrom(e Engine, cur, backup []byte) bool {
	opts, ok := installedOptions(e, cur)
	if !ok {
		return false
	}
	try := func(steps ...Options) bool {
		data := backup
		for _, o := range steps {
			var err error
			if data, _, err = Edit(e, data, o); err != nil {
				return false
			}
		}
		return bytes.Equal(data, cur)
	}
	if try(opts) {
		return true
	}
	plain := opts
	plain.SetDefault = false
	return opts.SetDefault && try(plain, opts)
}

// installedOptions reads, from a file install wrote, the options it was
// written with. ok is false when capshim's entry is not in install's form.
func installedOptions(e Engine, cur []byte) (Options, bool) {
	var o Options
	switch e {
	case Docker:
		var d daemonRuntimes
		if json.Unmarshal(cur, &d) != nil {
			return o, false
		}
		rt, ok := d.Runtimes["capshim"]
		if !ok {
			return o, false
		}
		o.Binary, o.SetDefault = rt.Path, d.Default == "capshim"
		switch len(rt.RuntimeArgs) {
		case 0:
		case 1:
			cfg, ok := strings.CutPrefix(rt.RuntimeArgs[0], "--capshim-config=")
			if !ok || cfg == "" {
				return o, false
			}
			o.RuntimeConfig = cfg
		default:
			return o, false
		}
	case Containerd:
		m, err := parseTOML(cur)
		if err != nil {
			return o, false
		}
		cri := []string{"plugins", criPlugin(m), "containerd"}
		bin, _ := lookup(m, append(slices.Clone(cri), "runtimes", "capshim", "options", "BinaryName")...).(string)
		o.Binary = bin
		o.SetDefault = lookup(m, append(slices.Clone(cri), "default_runtime_name")...) == "capshim"
	case Podman:
		m, err := parseTOML(cur)
		if err != nil {
			return o, false
		}
		arr, _ := lookup(m, "engine", "runtimes", "capshim").([]any)
		if len(arr) != 1 {
			return o, false
		}
		o.Binary, _ = arr[0].(string)
		o.SetDefault = lookup(m, "engine", "runtime") == "capshim"
	}
	return o, o.Binary != ""
}

// criPlugin is the CRI plugin's name for the config's version.
func criPlugin(m map[string]any) string {
	if m["version"] == int64(3) {
		return criV3
	}
	return criV2
}

// uneditDocker takes runtimes.capshim out of daemon.json, and a
// default-runtime naming capshim (given the backup's value back, or
// removed). An empty runtimes object that install added goes too.
func uneditDocker(cur, backup []byte) ([]byte, []string, error) {
	members, err := decodeObject(cur, "the file")
	if err != nil {
		return nil, nil, err
	}
	var old []member
	if backup != nil {
		if old, err = decodeObject(backup, "the backup"); err != nil {
			old, backup = nil, nil
		}
	}
	changed := false
	var notes []string
	if ri := index(members, "runtimes"); ri >= 0 && !isNull(members[ri].value) {
		runtimes, err := decodeObject(members[ri].value, `"runtimes"`)
		if err != nil {
			return nil, nil, err
		}
		if ci := index(runtimes, "capshim"); ci >= 0 {
			runtimes = slices.Delete(runtimes, ci, ci+1)
			changed = true
			if len(runtimes) == 0 && index(old, "runtimes") < 0 {
				members = slices.Delete(members, ri, ri+1)
			} else if members[ri].value, err = encodeObject(runtimes); err != nil {
				return nil, nil, err
			}
		}
	}
	if di := index(members, "default-runtime"); di >= 0 && sameJSON(members[di].value, "capshim") {
		changed = true
		if bi := index(old, "default-runtime"); bi >= 0 && !sameJSON(old[bi].value, "capshim") {
			members[di].value = old[bi].value
			notes = append(notes, fmt.Sprintf("default-runtime is set back to %s, as in the backup", old[bi].value))
		} else {
			members = slices.Delete(members, di, di+1)
			notes = append(notes, `default-runtime named capshim and is removed: docker uses its built-in default runtime, runc`)
		}
	}
	if !changed {
		return cur, nil, nil
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
	if backup != nil {
		var a, b bytes.Buffer
		if json.Compact(&a, out.Bytes()) == nil && json.Compact(&b, backup) == nil && bytes.Equal(a.Bytes(), b.Bytes()) {
			// The same document as the backup, apart from white space:
			// the backup's layout is the one the user wrote.
			return backup, notes, nil
		}
	}
	return out.Bytes(), notes, nil
}

// uneditPodman takes [engine.runtimes] capshim out of containers.conf, and
// [engine] runtime when it names capshim.
func uneditPodman(cur, backup []byte) ([]byte, []string, error) {
	u := tomlUndo{
		remove:  [][]string{{"engine", "runtimes", "capshim"}},
		restore: []tomlRestore{{path: []string{"engine", "runtime"}, value: "capshim"}},
	}
	out, notes, err := u.apply(cur, backup)
	if err != nil {
		return nil, nil, err
	}
	return out, notes, nil
}

// uneditContainerd takes the runtime handler capshim out of containerd's
// config.toml, and default_runtime_name when it names capshim; then the
// runc install wrote out, when nothing else needs it.
func uneditContainerd(cur, backup []byte) ([]byte, []string, error) {
	m, err := parseTOML(cur)
	if err != nil {
		return nil, nil, err
	}
	var version int64 = 2
	if v, ok := m["version"].(int64); ok {
		version = v
	}
	plugin := criPlugin(m)
	cri := []string{"plugins", plugin, "containerd"}
	runtimes := append(slices.Clone(cri), "runtimes")
	u := tomlUndo{
		remove:  [][]string{append(slices.Clone(runtimes), "capshim")},
		restore: []tomlRestore{{path: append(slices.Clone(cri), "default_runtime_name"), value: "capshim", builtin: builtinRuntime}},
	}
	out, notes, err := u.apply(cur, backup)
	if err != nil {
		return nil, nil, err
	}
	var old map[string]any
	if backup != nil {
		if old, err = parseTOML(backup); err != nil {
			old = nil
		}
	}
	if version != 3 {
		edited, err := parseTOML(out)
		if err != nil {
			return nil, nil, err
		}
		runc := append(slices.Clone(runtimes), builtinRuntime)
		rts, _ := lookup(edited, runtimes...).(map[string]any)
		entry, _ := lookup(edited, runc...).(map[string]any)
		if len(rts) == 1 && len(entry) == 1 && entry["runtime_type"] == "io.containerd.runc.v2" && lookup(old, runc...) == nil {
			// Exactly the runc install writes out, and the only runtime
			// left: without a runtimes table containerd 1.6/1.7 have
			// their built-in runc again, which is the same runtime.
			u := tomlUndo{remove: [][]string{runc}}
			if out, _, err = u.apply(out, nil); err != nil {
				return nil, nil, err
			}
		}
	}
	if old != nil && old["version"] == nil && m["version"] != nil && !bytes.Equal(out, cur) {
		notes = append(notes, fmt.Sprintf("version = %d, which capshim install added, stays: the file means the same with it", version))
	}
	before, err := parseTOML(cur)
	if err != nil {
		return nil, nil, err
	}
	after, err := parseTOML(out)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range readersOf(version) {
		if err := checkUninstallCRI(readCRI(before, version, r), readCRI(after, version, r)); err != nil {
			return nil, nil, err
		}
	}
	return out, notes, nil
}

// checkUninstallCRI compares what one containerd line makes of the file
// before and after capshim is taken out: it must not refuse a file it
// accepted, lose a runtime other than capshim, or change a default that
// was not capshim.
func checkUninstallCRI(b, a criView) error {
	switch {
	case b.err == nil && a.err != nil:
		return fmt.Errorf("taking capshim out would break the file: %s %w", a.reader, a.err)
	case a.runtimes["capshim"]:
		return fmt.Errorf("%s would still see the runtime capshim: it is written in a form capshim does not edit; remove it by hand", a.reader)
	case b.err != nil:
		return nil
	}
	var lost []string
	for name := range b.runtimes {
		if name != "capshim" && !a.runtimes[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		return fmt.Errorf("taking capshim out would hide the runtime %q from %s", lost, a.reader)
	}
	if b.defaultName != "capshim" && a.defaultName != b.defaultName {
		return fmt.Errorf("taking capshim out would make %s use the runtime %q by default, not %q", a.reader, a.defaultName, b.defaultName)
	}
	return nil
}

// tomlUndo is what uninstall takes out of a TOML file.
type tomlUndo struct {
	// remove: these tables, every table below them and every key at or
	// below them (dotted keys and inline tables included).
	remove [][]string
	// restore: keys capshim set to a value; they get the backup's value
	// back, or go when the backup has none.
	restore []tomlRestore
}

// tomlRestore is one key capshim set, and the value it set.
type tomlRestore struct {
	path  []string
	value string
	// builtin is the engine's own default for the key, written in the
	// value's place when there is no backup to say what was there: the
	// line may be the user's, with a comment, whose value install
	// replaced, and it means the same as no line at all. "" removes the
	// key.
	builtin string
}

// textEdit replaces data[start:end] with text.
type textEdit struct {
	start, end int
	text       string
}

// apply takes u out of data as text: the lines of removed keys, the
// header and keys of removed tables (with the blank lines after them), and
// then any table header that the removal left with nothing under it, not
// even a comment, unless the backup has that header too. When the removal
// reaches the end of the file, the blank line install put before the
// tables it appended goes as well. The result must parse and hold none of
// u's keys.
func (u tomlUndo) apply(data, backup []byte) ([]byte, []string, error) {
	d, err := scanTOML(data)
	if err != nil {
		return nil, nil, err
	}
	var bd *tomlDoc
	var bm map[string]any
	if backup != nil {
		if bm, err = parseTOML(backup); err == nil {
			bd, _ = scanTOML(backup)
		}
	}
	m, err := parseTOML(data)
	if err != nil {
		return nil, nil, err
	}
	under := func(path []string) bool {
		for _, p := range u.remove {
			if hasPrefix(path, p) {
				return true
			}
		}
		return false
	}
	var edits []textEdit
	var notes []string
	removed := make([]bool, len(d.tables))
	touched := make([]bool, len(d.tables))
	for i := range d.tables {
		t := &d.tables[i]
		if !t.root && under(t.key) {
			removed[i] = true
			edits = append(edits, textEdit{start: headerStart(data, t), end: d.tableEnd(i)})
			continue
		}
		for _, kv := range t.keys {
			if under(append(slices.Clone(t.key), kv.key...)) {
				touched[i] = true
				edits = append(edits, textEdit{start: lineStart(data, kv.keyStart), end: kv.lineEnd})
			}
		}
	}
	for _, r := range u.restore {
		if lookup(m, r.path...) != r.value {
			continue
		}
		kv, ti := d.findKV(r.path)
		if kv == nil || removed[ti] {
			continue // a dotted key or inline table in a form not edited here; checked below
		}
		old := lookup(bm, r.path...)
		if s, ok := old.(string); ok && s != r.value && bd != nil {
			if bkv, _ := bd.findKV(r.path); bkv != nil {
				text := string(backup[bkv.start:bkv.end])
				edits = append(edits, textEdit{start: kv.start, end: kv.end, text: text})
				notes = append(notes, fmt.Sprintf("%s is set back to %s, as in the backup", formatKey(r.path), text))
				continue
			}
		}
		if r.builtin != "" && bd == nil {
			text := tomlString(r.builtin)
			edits = append(edits, textEdit{start: kv.start, end: kv.end, text: text})
			notes = append(notes, fmt.Sprintf("%s named capshim and is set to %s, the engine's built-in default (there is no backup to say what it was)", formatKey(r.path), text))
			continue
		}
		touched[ti] = true
		edits = append(edits, textEdit{start: lineStart(data, kv.keyStart), end: kv.lineEnd})
		notes = append(notes, fmt.Sprintf("%s named capshim and is removed: the engine's built-in default applies", formatKey(r.path)))
	}
	// Tables the removal emptied.
	for i := range d.tables {
		t := &d.tables[i]
		if t.root || removed[i] || !touched[i] || bd != nil && bd.table(t.key) != nil {
			continue
		}
		if blankAfter(data, t.end, d.sectionEnd(i), edits) {
			edits = append(edits, textEdit{start: headerStart(data, t), end: d.sectionEnd(i)})
		}
	}
	out := data
	if len(edits) > 0 {
		var atEnd bool
		out, atEnd = splice2(data, edits)
		nl := d.nl
		if atEnd && bytes.HasSuffix(out, []byte(nl+nl)) && !bytes.HasSuffix(out, []byte(nl+nl+nl)) {
			out = out[:len(out)-len(nl)]
		}
	}
	edited, err := parseTOML(out)
	if err != nil {
		return nil, nil, fmt.Errorf("the file without capshim would not parse (%w): the file defines capshim's settings in a form capshim does not edit; remove them by hand", err)
	}
	for _, p := range u.remove {
		if lookup(edited, p...) != nil {
			return nil, nil, fmt.Errorf("%s is written in a form capshim does not edit (an inline table?): remove it by hand", formatKey(p))
		}
	}
	for _, r := range u.restore {
		if lookup(edited, r.path...) == r.value {
			return nil, nil, fmt.Errorf("%s = %q is written in a form capshim does not edit: set it by hand", formatKey(r.path), r.value)
		}
	}
	return out, notes, nil
}

// headerStart is the offset of the line of a table's header.
func headerStart(data []byte, t *tomlTable) int {
	return lineStart(data, t.end-1)
}

// sectionEnd is where the text under table i ends: the line of the next
// header, or the end of the file.
func (d *tomlDoc) sectionEnd(i int) int {
	for j := i + 1; j < len(d.tables); j++ {
		if t := &d.tables[j]; !t.root {
			return headerStart(d.data, t)
		}
	}
	return len(d.data)
}

// tableEnd is where a removed table's text ends: after its last key (or
// its header, with none) and the blank lines that follow, so that a
// comment written before the next header stays with that header.
func (d *tomlDoc) tableEnd(i int) int {
	t := &d.tables[i]
	end := t.end
	if n := len(t.keys); n > 0 {
		end = t.keys[n-1].lineEnd
	}
	limit := d.sectionEnd(i)
	for end < limit {
		next := lineEnd(d.data, end)
		if len(bytes.TrimSpace(d.data[end:next])) != 0 {
			break
		}
		end = next
	}
	return end
}

// findKV is find that also gives the index of the table holding the key.
func (d *tomlDoc) findKV(path []string) (*tomlKV, int) {
	for i := range d.tables {
		t := &d.tables[i]
		if t.array {
			continue
		}
		for j := range t.keys {
			kv := &t.keys[j]
			if len(t.key)+len(kv.key) == len(path) && slices.Equal(t.key, path[:len(t.key)]) && slices.Equal(kv.key, path[len(t.key):]) {
				return kv, i
			}
		}
	}
	return nil, -1
}

// blankAfter reports whether data[start:end] holds only white space once
// the removals among edits are made.
func blankAfter(data []byte, start, end int, edits []textEdit) bool {
	keep := make([]bool, end-start)
	for i := range keep {
		keep[i] = true
	}
	for _, e := range edits {
		if e.text != "" {
			continue
		}
		for o := max(e.start, start); o < min(e.end, end); o++ {
			keep[o-start] = false
		}
	}
	for i, k := range keep {
		if k && !bytes.ContainsAny(data[start+i:start+i+1], " \t\r\n") {
			return false
		}
	}
	return true
}

// splice2 makes the edits, which may overlap when they only remove text
// (a replacement that a removal covers is dropped). atEnd reports that a
// removal reached the end of data.
func splice2(data []byte, edits []textEdit) (out []byte, atEnd bool) {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var b bytes.Buffer
	pos := 0
	for _, e := range edits {
		if e.end <= pos && e.start < pos {
			continue // inside a removal already made
		}
		if e.start < pos {
			if e.text != "" {
				continue
			}
			e.start = pos
		}
		b.Write(data[pos:e.start])
		b.WriteString(e.text)
		pos = e.end
		if e.text == "" && e.end == len(data) {
			atEnd = true
		}
	}
	b.Write(data[pos:])
	return b.Bytes(), atEnd
}

// hasPrefix reports whether key starts with the parts of prefix.
func hasPrefix(key, prefix []string) bool {
	return len(key) >= len(prefix) && slices.Equal(key[:len(prefix)], prefix)
}
