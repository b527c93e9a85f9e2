package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/decisionlog"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

// Bounds on one log line. The engine reads the runtime log back on every
// failed start and the decision log grows with every start, so no line may
// grow with what a container or its spec holds. Names are bounded by
// logNames; these bound the rest.
const (
	// maxLogID bounds a container id as logged: engines use 64 hex digits.
	maxLogID = 128
	// maxLogText bounds a message and every other string in a line.
	maxLogText = 8192
)

// runtimeLog writes runc-style log lines to the runtime's --log file (which
// containerd's shim reads back to report a failed create), errors also to
// stderr, and decisions to the policy's decision log.
//
// The --log file lives in the bundle and goes with it (and Podman passes
// none), so what must be found later goes to the decision log too: every
// decision and every warning about a container, each with what the engine
// says about the container (about), so that people find it by the names
// they know.
type runtimeLog struct {
	path   string // --log, or ""
	json   bool   // --log-format json
	stderr io.Writer
	// id and command are the call's, and about is what the engine says
	// about its container: every decision log entry carries them.
	id, command string
	about       learn.About
}

func newRuntimeLog(ra *runtimeArgs, stderr io.Writer) *runtimeLog {
	l := &runtimeLog{stderr: stderr}
	if ra != nil {
		l.path = ra.log
		l.json = ra.logFormat == "json"
		l.id = safetext.Truncate(ra.id, maxLogID)
		l.command = ra.command
	}
	return l
}

// line appends one log line at level with extra fields.
func (l *runtimeLog) line(level, msg string, fields map[string]any) {
	if l.path == "" {
		return
	}
	now := time.Now().Format(time.RFC3339Nano)
	msg = safetext.Truncate(msg, maxLogText)
	var b bytes.Buffer
	if l.json {
		m := map[string]any{"level": level, "msg": msg, "time": now}
		for k, v := range fields {
			if s, ok := v.(string); ok {
				v = safetext.Truncate(s, maxLogText)
			}
			m[k] = v
		}
		data, _ := json.Marshal(m) // map keys are sorted: level, msg, time...
		b.Write(safetext.JSON(data))
	} else {
		// %q writes every control character, byte that is not UTF-8 and
		// bidirectional control as an escape, so a line stays one line
		// and shows what it holds.
		fmt.Fprintf(&b, "time=%q level=%s msg=%q", now, level, msg)
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%q", k, safetext.Truncate(textValue(fields[k]), maxLogText))
		}
	}
	b.WriteByte('\n')
	appendFile(l.path, b.Bytes())
}

// appendFile appends data in one write (O_APPEND), creating the file.
func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fail reports why capshim refuses the call: one error line in the
// runtime log and the same message on stderr.
func (l *runtimeLog) fail(err error) {
	msg := "capshim: " + err.Error()
	l.line("error", msg, nil)
	// stderr may reach a terminal (Podman shows it as it is), and the
	// message may quote the spec or the request: escaped, it is one line
	// of plain text.
	fmt.Fprintln(l.stderr, safetext.Line(safetext.Truncate(msg, maxLogText)))
}

// decision logs what the policy decided for one spec (or exec --cap list):
// at info level in the runtime log, and as a JSON line in the policy's
// decision log when it has one.
func (l *runtimeLog) decision(ra *runtimeArgs, pol *policy.Policy, d *policy.Decision, file string, dropped map[string][]string, kept *spec.Sets) {
	verb := "dropped"
	if pol.Mode == policy.Audit {
		verb = "would drop"
	}
	// A spec may list any number of names that are not capabilities, and
	// all of them are dropped: the lines show them bounded.
	shown := make(map[string][]string, len(dropped))
	for set, names := range dropped {
		shown[set] = capability.ShowNames(names)
	}
	dropped = shown
	id := safetext.Truncate(ra.id, maxLogID)
	msg := fmt.Sprintf("capshim: %s %s: target %s", ra.command, id, d.Target)
	if n := len(dropped); n > 0 {
		msg += fmt.Sprintf("; %s %s", verb, summarize(dropped))
	}
	if d.Granted != 0 {
		msg += fmt.Sprintf("; granted %s (rules %v)", d.Granted, d.Rules)
	}
	refused := refusedList(d)
	if len(refused) > 0 {
		msg += fmt.Sprintf("; request not granted: %s", refused)
	}
	if d.FromEngine != 0 {
		msg += "; " + engineRequest(d)
	}
	var oversized []string
	for _, o := range d.Oversized {
		oversized = append(oversized, o.String())
		msg += "; " + o.String()
	}
	fields := map[string]any{
		"container": id,
		"command":   ra.command,
		"mode":      string(pol.Mode),
		"policy":    pol.Source,
		"spec":      file,
		"target":    d.Target.Names(),
		"granted":   d.Granted.Names(),
		"rules":     d.Rules,
		"dropped":   dropped,
	}
	if len(refused) > 0 {
		fields["denied"] = refused
	}
	if len(oversized) > 0 {
		fields["oversized"] = oversized
	}
	if d.FromEngine != 0 {
		fields["engine"] = d.Engine.String()
		fields["engine_request"] = d.FromEngine.Names()
		fields["engine_flag"] = d.Engine.Flag()
	}
	l.line("info", msg, fields)
	if !keepsLog(pol) {
		return
	}
	fields["kind"] = "decision"
	fields["time"] = time.Now().Format(time.RFC3339Nano)
	fields["requested"] = d.Requested.Names()
	if d.Learn {
		fields["learn"] = true
	}
	if kept != nil {
		k := map[string][]string{}
		for s := spec.Bounding; s < spec.NumSets; s++ {
			k[s.String()] = kept[s].Names()
		}
		fields["kept"] = k
	}
	l.keep(pol, fields)
}

// describe notes what the engine says about the container of this call,
// for the decision log's entries: the spec's annotations (at exec, the
// ones it was created with) and the runtime root.
func (l *runtimeLog) describe(annotations map[string]string, root string) {
	l.about = learn.Describe(annotations, root)
}

// keepsLog reports whether this call writes the policy's decision log.
// The default log is root's: a rootless capshim keeps none unless its
// policy names a log it can write.
func keepsLog(pol *policy.Policy) bool {
	if pol == nil || pol.Log == "" {
		return false
	}
	return pol.Log != policy.DefaultLog || os.Geteuid() == 0
}

// keep appends one entry to the decision log, with what the engine said
// about the container. A log that cannot be written is observability lost,
// never a failed call: it is one warning line in the runtime log.
func (l *runtimeLog) keep(pol *policy.Policy, entry map[string]any) {
	a := l.about
	for k, v := range map[string]string{"container": l.id, "command": l.command, "engine": a.Engine, "name": a.Name, "pod": a.Pod, "namespace": a.Namespace, "image": a.Image} {
		if _, set := entry[k]; !set && v != "" {
			entry[k] = v
		}
	}
	if a.Sandbox {
		entry["sandbox"] = true
	}
	data, _ := json.Marshal(entry)
	dl := decisionlog.Log{Path: pol.Log}
	if err := dl.Append(append(safetext.JSON(data), '\n')); err != nil {
		l.line("warning", "capshim: "+err.Error()+" (the container is not affected; this entry is not in the decision log)", nil)
	}
}

// engineRequest says what the engine's own flag asked for and what of it
// the policy granted and denied.
func engineRequest(d *policy.Decision) string {
	var parts []string
	if g := d.FromEngine & d.Target; g != 0 {
		parts = append(parts, "granted "+g.String())
	}
	if n := d.FromEngine &^ d.Target; n != 0 {
		parts = append(parts, "denied "+n.String()+" (no matching rule allows it)")
	}
	return fmt.Sprintf("%s asked for %s: %s", d.Engine.Flag(), d.FromEngine, strings.Join(parts, ", "))
}

// textValue renders a field for the text log format.
func textValue(v any) string {
	switch v := v.(type) {
	case []string:
		return strings.Join(v, ",")
	case map[string][]string:
		return summarize(v)
	}
	return fmt.Sprint(v)
}

// summarize renders dropped names, grouping the sets that lose the same
// names: "CAP_CHOWN,CAP_MKNOD from bounding,effective,permitted".
func summarize(dropped map[string][]string) string {
	var groups []string
	bySet := map[string][]string{} // names → sets, in set order
	for s := spec.Bounding; s < spec.NumSets; s++ {
		names, ok := dropped[s.String()]
		if !ok {
			continue
		}
		key := strings.Join(names, ",")
		if _, seen := bySet[key]; !seen {
			groups = append(groups, key)
		}
		bySet[key] = append(bySet[key], s.String())
	}
	if c, ok := dropped["cap"]; ok {
		key := strings.Join(c, ",")
		groups = append(groups, key)
		bySet[key] = append(bySet[key], "--cap flags")
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = g + " from " + strings.Join(bySet[g], ",")
	}
	return strings.Join(parts, "; ")
}

// refusedList names what the request asked for and did not get: the
// denied capabilities, then the names that are not capabilities (bounded
// by logNames).
func refusedList(d *policy.Decision) []string {
	return capability.ShowNames(append(d.Denied.Names(), d.Unknown...))
}

// event writes a line to the runtime log and, when the policy has one, to
// the decision log: warnings and findings that the user must be able to
// find after the bundle (and its log) is gone.
func (l *runtimeLog) event(pol *policy.Policy, level, msg string, fields map[string]any) {
	l.line(level, msg, fields)
	if !keepsLog(pol) {
		return
	}
	entry := map[string]any{"level": level, "msg": safetext.Truncate(msg, maxLogText), "time": time.Now().Format(time.RFC3339Nano)}
	for k, v := range fields {
		entry[k] = v
	}
	l.keep(pol, entry)
}
