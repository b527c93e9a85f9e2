package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

// logRun is what one reduced runtime call wrote.
type logRun struct {
	runtimeLog, decisionLog, stderr string
	err                             error
}

// runLogged reduces a create call on a bundle holding cfg (a config.json
// as a Go value) the way runtimeMain does, and returns what it wrote to
// the runtime log (in format), the policy's decision log and stderr.
func runLogged(t *testing.T, format, onDenied string, cfg any) logRun {
	t.Helper()
	return runLoggedWith(t, format, "on_denied_request = \""+onDenied+"\"\n", "c1", cfg)
}

// runLoggedWith is runLogged with the top of the policy (before its rule)
// and the container id given.
func runLoggedWith(t *testing.T, format, policyTop, id string, cfg any) logRun {
	t.Helper()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	logPath, decisions := filepath.Join(dir, "log.json"), filepath.Join(dir, "decisions.jsonl")
	text := policyTop + "log = " + strconv.Quote(decisions) + "\n" +
		"[[rule]]\nname = \"chown\"\ncapabilities = [\"CAP_CHOWN\"]\n"
	pol, err := policy.Parse([]byte(text), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	// These tests are about the log lines: no container record (it would
	// go to the host's /run/capshim).
	pol.Explain = false
	ra, err := parseRuntimeArgs([]string{"--root", dir, "--log", logPath, "--log-format", format,
		"create", "--bundle", bundle, "--pid-file", filepath.Join(dir, "pid"), id})
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	l := newRuntimeLog(ra, &stderr)
	var r logRun
	if _, r.err = reduce(ra, pol, l, "/usr/bin/runc"); r.err != nil {
		l.fail(r.err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	r.runtimeLog, r.decisionLog, r.stderr = read(logPath), read(decisions), stderr.String()
	return r
}

// config builds a config.json: env and annotations as given, and the
// same capability list in every set.
func config(env []string, annotations map[string]string, caps []string) map[string]any {
	sets := map[string]any{}
	for s := spec.Bounding; s < spec.NumSets; s++ {
		sets[s.String()] = caps
	}
	cfg := map[string]any{
		"ociVersion": "1.0.2",
		"process": map[string]any{
			"user": map[string]any{"uid": 0, "gid": 0}, "args": []string{"sh"}, "cwd": "/",
			"env": append([]string{"PATH=/usr/bin:/bin"}, env...), "capabilities": sets,
		},
		"root": map[string]any{"path": "rootfs"},
	}
	if annotations != nil {
		cfg["annotations"] = annotations
	}
	return cfg
}

// checkLine checks one log output: exactly one line, at most max bytes,
// nothing in it that could drive a terminal, valid JSON when it is.
func checkLine(t *testing.T, what, out string, max int, isJSON bool) {
	t.Helper()
	if len(out) > max {
		t.Errorf("%s: %d bytes, over %d: %.300q...", what, len(out), max, out)
	}
	if n := strings.Count(out, "\n"); n != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("%s: %d lines, want exactly one: %.300q", what, n, out)
	}
	if u := safetext.Unsafe(strings.TrimSuffix(out, "\n")); u != "" {
		t.Errorf("%s holds %s: %.300q", what, u, out)
	}
	if isJSON && !json.Valid([]byte(out)) {
		t.Errorf("%s is not JSON: %.300q", what, out)
	}
}

// TestLogBounded: whatever a request or a spec holds, one start writes one
// short line to the runtime log, one to the decision log, and at most one
// to stderr, with nothing raw in them from the container. Before the
// bounds, a 1 MB request wrote about 3 MB to each log on every start.
func TestLogBounded(t *testing.T) {
	mb := 1 << 20
	mega := strings.Repeat("A", mb)
	shortNames := strings.Repeat("x,", mb/2)
	var manyUnknown []string
	for i := 0; i < 100000; i++ {
		manyUnknown = append(manyUnknown, "CAP_FUTURE_"+strconv.Itoa(i))
	}
	privileged := capability.All.Names()
	tests := []struct {
		name        string
		format      string // runtime log format: "json" or "text"
		onDenied    string
		env         []string
		annotations map[string]string
		caps        []string // every set; nil: the Docker default
		max         int      // bytes per output
		wantErr     bool
		want        []string // in the runtime log
		notWant     []string // nowhere
		wantStderr  string   // when set, all of stderr
	}{
		{
			name: "1 MB capshim annotation, drop, json", format: "json", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: mega}, max: 2048,
			want:    []string{`annotation \"capshim.io/capabilities\" refused: 1048576 bytes, over the limit of 4096 bytes; nothing in it is granted`},
			notWant: []string{strings.Repeat("A", 100)},
		},
		{
			name: "1 MB capshim annotation, drop, text", format: "text", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: mega}, max: 2048,
			want:    []string{`refused: 1048576 bytes`, `level=info`},
			notWant: []string{strings.Repeat("A", 100)},
		},
		{
			name: "1 MB podman annotation, fail", format: "json", onDenied: "fail",
			annotations: map[string]string{policy.PodmanCaps: mega}, max: 1024, wantErr: true,
			want:    []string{`"level":"error"`, `annotation \"io.containers.capabilities\" refused: 1048576 bytes`},
			notWant: []string{strings.Repeat("A", 100)},
		},
		{
			name: "1 MB env, fail, text", format: "text", onDenied: "fail",
			env: []string{policy.EnvCaps + "=" + mega}, max: 1024, wantErr: true,
			want:    []string{`level=error`, `env CAPSHIM_CAPABILITIES refused: 1048576 bytes`},
			notWant: []string{strings.Repeat("A", 100)},
		},
		{
			name: "1 MB of one-letter names, drop", format: "json", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: shortNames}, max: 2048,
			want:    []string{`refused: 1048576 bytes`},
			notWant: []string{"x,x,x"},
		},
		{
			name: "all three over the bounds, with a privileged spec", format: "json", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: mega, policy.PodmanCaps: mega},
			env:         []string{policy.EnvCaps + "=" + mega}, caps: privileged, max: 8192,
			want: []string{`annotation \"capshim.io/capabilities\" refused`, `annotation \"io.containers.capabilities\" refused`, `env CAPSHIM_CAPABILITIES refused`},
		},
		{
			name: "64 long unknown names within the bounds: 8 are shown, cut", format: "json", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: strings.Repeat("u"+strings.Repeat("z", 61)+",", 64)},
			max:         4096,
			want:        []string{"u" + strings.Repeat("z", 61), `...(56 more)`},
		},
		{
			name: "64 long unknown names, fail", format: "text", onDenied: "fail",
			annotations: map[string]string{policy.AnnotationCaps: strings.Repeat("u"+strings.Repeat("z", 61)+",", 64)},
			max:         2048, wantErr: true,
			want: []string{`not capabilities: `, `...(56 more)`},
		},
		{
			// Long names everywhere (TestLogWorstCase goes further).
			name: "long names in the spec and in two requests, privileged spec", format: "json", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: strings.Repeat(strings.Repeat("r", 63)+",", 64)},
			env:         []string{policy.EnvCaps + "=" + strings.Repeat(strings.Repeat("e", 63)+",", 64)},
			caps:        append(append([]string{}, privileged...), append(manyUnknown[:20], mega)...), max: 20 << 10,
			want: []string{`...(120 more)`, `...(13 more)`},
		},
		{
			name: "100000 unknown names in every set of the spec", format: "json", onDenied: "drop",
			caps: append([]string{"CAP_CHOWN", "CAP_SYS_ADMIN"}, manyUnknown...), max: 4096,
			want:    []string{`CAP_FUTURE_7`, `...(99992 more)`, `CAP_SYS_ADMIN`},
			notWant: []string{`CAP_FUTURE_8"`, `CAP_FUTURE_99999`},
		},
		{
			name: "100000 unknown names in every set of the spec, text", format: "text", onDenied: "drop",
			caps: manyUnknown, max: 4096,
			want: []string{`...(99992 more)`},
		},
		{
			name: "one 1 MB name in the spec", format: "text", onDenied: "drop",
			caps: []string{"CAP_KILL", mega}, max: 2048,
			want:    []string{`AAAA...(1048576 bytes)`},
			notWant: []string{strings.Repeat("A", 100)},
		},
		{
			name: "privileged spec: every dropped capability is named", format: "json", onDenied: "drop",
			caps: privileged, max: 8192,
			want: []string{`CAP_CHECKPOINT_RESTORE`, `CAP_SYS_ADMIN`, `CAP_DAC_OVERRIDE`},
		},
		// Names that are not capabilities are escaped by safetext.Name
		// before the line quotes them, so even their decoded values are
		// plain text: the line shows each escape with its backslash
		// escaped.
		{
			name: "control characters and bidi controls in the request, text", format: "text", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: "chown,evil\n\x1b[2K\x1b[1A\u202e\u0085x"},
			caps:        []string{"CAP_KILL", "fake\nlevel=info msg=\"ok\"\x1b[1A"}, max: 2048,
			want: []string{`evil\\n\\x1b[2K\\x1b[1A\\u202e\\u0085x`, `dropped fake\\nlevel=info msg=\"ok\"\\x1b[1A from`},
		},
		{
			name: "control characters and bidi controls in the request, json", format: "json", onDenied: "drop",
			annotations: map[string]string{policy.AnnotationCaps: "chown,evil\n\x1b[2K\u202e\u2066x"},
			caps:        []string{"CAP_KILL", "fake\n\x1b[1A"}, max: 2048,
			want: []string{`evil\\n\\x1b[2K\\u202e\\u2066x`, `fake\\n\\x1b[1A`},
		},
		{
			name: "control characters in the request, fail: stderr is one escaped line", format: "text", onDenied: "fail",
			annotations: map[string]string{policy.AnnotationCaps: "evil\n\x1b[2K\u202ex"},
			max:         1024, wantErr: true,
			want:       []string{`not capabilities: evil\\n\\x1b[2K\\u202ex`},
			wantStderr: "capshim: request refused (on_denied_request = \"fail\" in test.toml): not capabilities: evil\\n\\x1b[2K\\u202ex\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caps := tt.caps
			if caps == nil {
				caps = capability.DockerDefault.Names()
			}
			r := runLogged(t, tt.format, tt.onDenied, config(tt.env, tt.annotations, caps))
			if (r.err != nil) != tt.wantErr {
				t.Fatalf("reduce error = %v, want an error: %v", r.err, tt.wantErr)
			}
			t.Logf("runtime log %d bytes, decision log %d bytes, stderr %d bytes", len(r.runtimeLog), len(r.decisionLog), len(r.stderr))
			checkLine(t, "runtime log", r.runtimeLog, tt.max, tt.format == "json")
			if tt.wantErr {
				checkLine(t, "stderr", r.stderr, tt.max, false)
				if r.decisionLog != "" {
					t.Errorf("a refused start wrote the decision log: %.300q", r.decisionLog)
				}
			} else {
				checkLine(t, "decision log", r.decisionLog, tt.max, true)
				if r.stderr != "" {
					t.Errorf("stderr = %.300q, want nothing", r.stderr)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(r.runtimeLog, w) {
					t.Errorf("runtime log lacks %q:\n%s", w, r.runtimeLog)
				}
			}
			if tt.wantStderr != "" && r.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", r.stderr, tt.wantStderr)
			}
			for _, nw := range tt.notWant {
				for what, out := range map[string]string{"runtime log": r.runtimeLog, "decision log": r.decisionLog, "stderr": r.stderr} {
					if strings.Contains(out, nw) {
						t.Errorf("%s holds %.40q:\n%.600s", what, nw, out)
					}
				}
			}
		})
	}
}

// TestLogWorstCase builds the longest lines a start can make: a policy
// that keeps nothing, so all 41 capabilities are dropped from every set;
// in each set, more names that are not capabilities than are shown, each
// of control characters (which escaping makes longest) and long; requests
// at the bounds made of such names; a long container id. The lines stay
// under 16 KiB.
func TestLogWorstCase(t *testing.T) {
	sets := map[string]any{}
	for s := spec.Bounding; s < spec.NumSets; s++ {
		names := capability.All.Names()
		for i := 0; i <= 2*8; i++ {
			names = append(names, strings.Repeat("\x01", 64)+strconv.Itoa(int(s)*100+i)+strings.Repeat("x", 1<<16))
		}
		sets[s.String()] = names
	}
	req := strings.Repeat(strings.Repeat("\x01", 62)+",", policy.MaxRequestNames)
	cfg := map[string]any{
		"ociVersion": "1.0.2",
		"process":    map[string]any{"cwd": "/", "args": []string{"sh"}, "capabilities": sets, "env": []string{policy.EnvCaps + "=" + req}},
		"annotations": map[string]string{
			policy.AnnotationCaps: strings.Join(capability.All.Names(), ","),
			policy.PodmanCaps:     req,
		},
	}
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			r := runLoggedWith(t, format, "default = []\nnever = []\n", strings.Repeat("i", 4096), cfg)
			if r.err != nil {
				t.Fatal(r.err)
			}
			t.Logf("runtime log %d bytes, decision log %d bytes", len(r.runtimeLog), len(r.decisionLog))
			checkLine(t, "runtime log", r.runtimeLog, 16<<10, format == "json")
			checkLine(t, "decision log", r.decisionLog, 16<<10, true)
		})
	}
}

// TestLogOversizedReportedOnce: an oversized request is named once per
// line, by its size, in the message and in its own field.
func TestLogOversizedReportedOnce(t *testing.T) {
	r := runLogged(t, "json", "drop", config(nil, map[string]string{policy.AnnotationCaps: strings.Repeat("B", 5000)}, nil))
	var line struct {
		Msg       string   `json:"msg"`
		Oversized []string `json:"oversized"`
		Denied    []string `json:"denied"`
	}
	if err := json.Unmarshal([]byte(r.runtimeLog), &line); err != nil {
		t.Fatalf("runtime log: %v: %q", err, r.runtimeLog)
	}
	want := `annotation "capshim.io/capabilities" refused: 5000 bytes, over the limit of 4096 bytes; nothing in it is granted`
	if strings.Count(line.Msg, want) != 1 || len(line.Oversized) != 1 || line.Oversized[0] != want {
		t.Errorf("msg %q, oversized %q; want %q once in each", line.Msg, line.Oversized, want)
	}
	if len(line.Denied) != 0 {
		t.Errorf("denied = %q, want none (the request was not read)", line.Denied)
	}
	if strings.Contains(r.decisionLog, "BBBB") || !strings.Contains(r.decisionLog, `"oversized":[`) {
		t.Errorf("decision log: %s", r.decisionLog)
	}
}

func TestLogNames(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"empty", nil, []string{}},
		{"capabilities are all kept", capability.All.Names(), capability.All.Names()},
		{"repeated capabilities are left out", []string{"CAP_KILL", "CAP_KILL", "CAP_CHOWN", "CAP_KILL"}, []string{"CAP_KILL", "CAP_CHOWN", "...(2 more)"}},
		{"other names: the first 8", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, []string{"a", "b", "c", "d", "e", "f", "g", "h", "...(2 more)"}},
		{"capabilities after many other names are kept", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "CAP_BPF"}, []string{"a", "b", "c", "d", "e", "f", "g", "h", "CAP_BPF", "...(1 more)"}},
		{"a long name is cut", []string{strings.Repeat("n", 70)}, []string{strings.Repeat("n", 64) + "...(70 bytes)"}},
		{"lower-case names are not capabilities", []string{"kill", "cap_kill"}, []string{"kill", "cap_kill"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := capability.ShowNames(tt.in)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("logNames = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLogTextEscapes: in the text format every value is quoted, so an id,
// a path or a message with control characters stays one line that shows
// them; a long message is cut.
func TestLogTextEscapes(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		fields map[string]any
		want   []string
	}{
		{"newline and escape in the message", "a\nb\x1b[2K", nil, []string{`msg="a\nb\x1b[2K"`}},
		{"bidi and C1 in a field", "m", map[string]any{"spec": "x\u202ey\u0085"}, []string{`spec="x\u202ey\u0085"`}},
		{"invalid UTF-8 in a list", "m", map[string]any{"denied": []string{"\xff", "ok"}}, []string{`denied="\xff,ok"`}},
		{"a megabyte message is cut", strings.Repeat("M", 1<<20), nil, []string{`...(1048576 bytes)"`}},
		{"a megabyte field is cut", "m", map[string]any{"spec": strings.Repeat("S", 1<<20)}, []string{`...(1048576 bytes)"`}},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "log")
				l := &runtimeLog{path: p, json: format == "json", stderr: &bytes.Buffer{}}
				l.line("info", tt.msg, tt.fields)
				out, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				checkLine(t, "line", string(out), 2*maxLogText+512, format == "json")
				if format == "text" {
					for _, w := range tt.want {
						if !strings.Contains(string(out), w) {
							t.Errorf("line lacks %q: %.300q", w, out)
						}
					}
				}
			})
		}
	}
}

// TestDecisionLogAbout: each decision log entry says what the engine said
// about the container, as the engines put it in the spec and on the
// command line; a log that cannot be written is one warning and the
// container's call goes on.
func TestDecisionLogAbout(t *testing.T) {
	cri := map[string]string{
		"io.kubernetes.cri.container-type":    "container",
		"io.kubernetes.cri.container-name":    "web",
		"io.kubernetes.cri.sandbox-name":      "web-7d4b9",
		"io.kubernetes.cri.sandbox-namespace": "shop",
		"io.kubernetes.cri.image-name":        "docker.io/library/nginx:1.25",
	}
	sandbox := map[string]string{
		"io.kubernetes.cri.container-type":    "sandbox",
		"io.kubernetes.cri.sandbox-name":      "web-7d4b9",
		"io.kubernetes.cri.sandbox-namespace": "shop",
	}
	tests := []struct {
		name        string
		annotations map[string]string
		root        string // "": a temporary directory
		badLog      bool   // the log's directory is a symbolic link
		want        map[string]any
		wantWarning string
	}{
		{
			name: "CRI container", annotations: cri,
			want: map[string]any{"engine": "containerd-cri", "name": "web", "pod": "web-7d4b9", "namespace": "shop", "image": "docker.io/library/nginx:1.25"},
		},
		{
			name: "CRI pod sandbox", annotations: sandbox,
			want: map[string]any{"engine": "containerd-cri", "pod": "web-7d4b9", "namespace": "shop", "sandbox": true},
		},
		{
			name: "Podman", annotations: map[string]string{"io.container.manager": "libpod"},
			want: map[string]any{"engine": "podman"},
		},
		{
			name: "Docker: its runtime root", root: "/run/docker-test/runtime-capshim/moby",
			want: map[string]any{"engine": "docker"},
		},
		{
			name: "a long and hostile name is bounded and escaped",
			annotations: map[string]string{"io.kubernetes.cri.container-type": "container",
				"io.kubernetes.cri.container-name": "evil\n\x1b[2J" + strings.Repeat("n", 10000)},
			want: map[string]any{"engine": "containerd-cri", "name": "evil\n\x1b[2J" + strings.Repeat("n", 256-len("evil\n\x1b[2J")) + "...(10009 bytes)"},
		},
		{
			name: "log directory is a symbolic link", annotations: cri, badLog: true,
			wantWarning: "is a symbolic link; make it a directory owned by root with mode 0700",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bundle := filepath.Join(dir, "bundle")
			if err := os.Mkdir(bundle, 0o755); err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal(config(nil, tt.annotations, capability.DockerDefault.Names()))
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			logDir := filepath.Join(dir, "logs")
			if tt.badLog {
				if err := os.Mkdir(filepath.Join(dir, "elsewhere"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("elsewhere", logDir); err != nil {
					t.Fatal(err)
				}
			}
			decisions := filepath.Join(logDir, "decisions.log")
			pol, err := policy.Parse([]byte("log = "+strconv.Quote(decisions)+"\n"), "test.toml")
			if err != nil {
				t.Fatal(err)
			}
			pol.Explain = false
			root := tt.root
			if root == "" {
				root = dir
			}
			runtimeLog := filepath.Join(dir, "log.json")
			ra, err := parseRuntimeArgs([]string{"--root", root, "--log", runtimeLog, "--log-format", "json", "create", "--bundle", bundle, "c1"})
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			if _, err := reduce(ra, pol, newRuntimeLog(ra, &stderr), "/usr/bin/runc"); err != nil {
				t.Fatalf("reduce: %v (a decision log is observability: it never fails the call)", err)
			}
			rl, _ := os.ReadFile(runtimeLog)
			if tt.wantWarning != "" {
				if !strings.Contains(string(rl), tt.wantWarning) || !strings.Contains(string(rl), `"level":"warning"`) {
					t.Errorf("runtime log has no warning %q:\n%s", tt.wantWarning, rl)
				}
				if entries, _ := os.ReadDir(filepath.Join(dir, "elsewhere")); len(entries) != 0 {
					t.Errorf("written through the link: %v", entries)
				}
				return
			}
			out, err := os.ReadFile(decisions)
			if err != nil {
				t.Fatal(err)
			}
			checkLine(t, "decision log", string(out), 4096, true)
			var entry map[string]any
			if err := json.Unmarshal(out, &entry); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"engine", "name", "pod", "namespace", "image", "sandbox"} {
				if fmt.Sprint(entry[k]) != fmt.Sprint(tt.want[k]) {
					t.Errorf("%s = %q, want %q", k, entry[k], tt.want[k])
				}
			}
			if entry["container"] != "c1" || entry["command"] != "create" || entry["kind"] != "decision" {
				t.Errorf("entry %v: want container c1, command create, kind decision", entry)
			}
			if st, _ := os.Stat(decisions); st.Mode().Perm() != 0o600 {
				t.Errorf("decision log mode %04o, want 0600", st.Mode().Perm())
			}
		})
	}
}
