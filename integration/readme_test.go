//go:build integration

package integration

// README tests: each engine section of README.md followed as written, with
// `capshim install ENGINE` doing the registration. There is no systemd here
// and /etc is never touched, so install edits a config file under the
// test's temp dir (--file), writes the policy there (--policy), and the
// engine is then started on that very file: dockerd --config-file,
// containerd --config, podman with CONTAINERS_CONF. The runtime finds the
// policy through CAPSHIM_CONFIG in the daemon's environment where a real
// host would have /etc/capshim/shim.toml. Helpers start with "rdm".

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	gotoml "github.com/pelletier/go-toml/v2"
)

// capshimInstall runs `capshim install ARGS...` (through capshim, which hands
// the command to capshim-tools next to it) with no CAPSHIM_ variables, and
// fails the test when it does not succeed.
func capshimInstall(t *testing.T, args ...string) cmdResult {
	t.Helper()
	r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, capshimBin, append([]string{"install"}, args...)...)
	if r.err != nil {
		t.Fatalf("capshim install failed:\n%v", r)
	}
	t.Logf("%s:\n%s", r.cmdline, r.stdout)
	return r
}

// installFresh runs install on an existing config file that does not
// register capshim as asked yet and checks what the README and install's
// help promise: the file is changed, FILE.capshim-backup holds its content
// from before capshim's first change (the old content when there was no
// backup; an earlier backup is kept), and the default policy is written to
// policy when nothing is there. It returns install's output.
func installFresh(t *testing.T, file, policy string, args ...string) string {
	t.Helper()
	old := readFile(t, file)
	wantBackup, backupErr := os.ReadFile(file + ".capshim-backup")
	if backupErr != nil {
		wantBackup = old
	}
	_, statErr := os.Lstat(policy)
	r := capshimInstall(t, args...)
	if !strings.Contains(r.stdout, "registered capshim in "+file) {
		t.Errorf("install does not say it registered capshim in %s:\n%s", file, r.stdout)
	}
	if got := readFile(t, file); string(got) == string(old) {
		t.Errorf("install left %s unchanged", file)
	}
	if b, err := os.ReadFile(file + ".capshim-backup"); err != nil || string(b) != string(wantBackup) {
		t.Errorf("backup %s.capshim-backup does not hold the content before capshim's first change (%v):\n%s\nwant:\n%s", file, err, b, wantBackup)
	}
	if kept := strings.Contains(r.stdout, "is kept"); kept != (backupErr == nil) {
		t.Errorf("install says the earlier backup is kept: %v; there was one: %v\n%s", kept, backupErr == nil, r.stdout)
	}
	switch {
	case statErr == nil && !strings.Contains(r.stdout, "policy: "+policy+" exists: kept as it is"):
		t.Errorf("install does not say it kept the existing policy %s:\n%s", policy, r.stdout)
	case statErr != nil && !strings.Contains(r.stdout, "policy: wrote capshim's default policy to "+policy):
		t.Errorf("install does not say it wrote the policy %s:\n%s", policy, r.stdout)
	}
	if _, err := os.Stat(policy); err != nil {
		t.Errorf("no policy at %s after install: %v", policy, err)
	}
	return r.stdout
}

// installAgain runs the same install a second time: it must say there
// is nothing to change and leave the file and its backup byte for byte.
func installAgain(t *testing.T, file string, args ...string) {
	t.Helper()
	before := readFile(t, file)
	backup, _ := os.ReadFile(file + ".capshim-backup")
	r := capshimInstall(t, args...)
	if !strings.Contains(r.stdout, "nothing to change") {
		t.Errorf("second install does not say there is nothing to change:\n%s", r.stdout)
	}
	if after := readFile(t, file); string(after) != string(before) {
		t.Errorf("second install changed %s:\nbefore:\n%s\nafter:\n%s", file, before, after)
	}
	if b, _ := os.ReadFile(file + ".capshim-backup"); string(b) != string(backup) {
		t.Errorf("second install changed the backup %s.capshim-backup", file)
	}
}

// ---------------------------------------------------------------------------
// Docker

// rdmDockerReload does what `systemctl reload docker` does (SIGHUP to
// dockerd) and waits until `docker info --format FORMAT` prints want.
func rdmDockerReload(t *testing.T, e *dockerEngine, format, want string) {
	t.Helper()
	if err := e.daemon.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP to dockerd: %v", err)
	}
	start := time.Now()
	var got string
	for time.Since(start) < 20*time.Second {
		r := e.docker("info", "--format", format)
		got = strings.TrimSpace(r.stdout)
		if r.err == nil && got == want {
			t.Logf("dockerd reloaded its config in %v: %s = %s", time.Since(start).Round(time.Millisecond), format, got)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after SIGHUP (systemctl reload docker) docker info %s = %q, want %q\ndockerd log:\n%s", format, got, want, e.daemon.tail(20))
}

// rdmDaemonJSON decodes daemon.json.
func rdmDaemonJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFile(t, path), &m); err != nil {
		t.Fatalf("%s does not decode: %v", path, err)
	}
	return m
}

// rdmDockerPolicy is a policy whose rule (no match table: Docker puts no
// annotations in the spec) lets any container ask for CAP_CHOWN. The
// runtime is runc on PATH, as in the shipped default.
const rdmDockerPolicy = policyHeader + `
[[rule]]
name = "web"
capabilities = ["CAP_CHOWN"]
`

// TestReadmeDocker follows README "Docker": capshim install docker, restart
// (here: start) dockerd on the edited daemon.json, docker run --runtime
// capshim; then --set-default and --config with a reload (SIGHUP, what
// `systemctl reload docker` sends), `docker run --privileged`, and
// `capshim inspect` on Docker's containers. One dockerd start.
func TestReadmeDocker(t *testing.T) {
	requireRoot(t)
	for _, b := range []string{"dockerd", "docker", "containerd", "containerd-shim-runc-v2"} {
		requireBinary(t, b)
	}
	began := time.Now()
	dir := shortTempDir(t, "capshim-rdk-")
	t.Cleanup(func() { killLeftovers(t, dir) })
	cfg := filepath.Join(dir, "daemon.json")
	policy := filepath.Join(dir, "shim.toml")
	web := filepath.Join(dir, "web.toml")
	// The test daemon's own settings, as dockerStart writes them: the key
	// must stay through every install.
	keyPath := filepath.Join(dir, "key.json")
	js, err := json.MarshalIndent(map[string]any{"deprecated-key-path": keyPath}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, string(js)+"\n", 0o644)
	writeFile(t, web, rdmDockerPolicy, 0o644)

	var e *dockerEngine
	steps := []struct {
		name    string
		install []string // install flags after "docker --file CFG"
		policy  string   // the policy install reports on
		// reload: docker info format and the value it must show after
		// SIGHUP ("" for the first step, which starts dockerd).
		infoFormat, infoWant string
		wantEntry            map[string]any // runtimes.capshim
		wantDefault          any            // default-runtime (nil: absent)
		runs                 []dockerRunCase
	}{
		{
			name:      "install docker",
			install:   []string{"--policy", policy},
			policy:    policy,
			wantEntry: map[string]any{"path": capshimBin},
			runs: []dockerRunCase{
				// README: docker run --rm --runtime capshim --network none busybox grep Cap /proc/self/status
				{name: "README docker run --runtime capshim", args: []string{"--runtime", "capshim"}, want: maskMinimal},
				// Control: the default runtime is still runc.
				{name: "runc control: plain docker run", want: maskDocker},
				// The default policy has no rule: the request is dropped.
				{name: "request under the default policy", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal},
			},
		},
		{
			name:        "install docker --set-default",
			install:     []string{"--set-default", "--policy", policy},
			policy:      policy,
			infoFormat:  "{{.DefaultRuntime}}",
			infoWant:    "capshim",
			wantEntry:   map[string]any{"path": capshimBin},
			wantDefault: "capshim",
			runs: []dockerRunCase{
				{name: "plain docker run", want: maskMinimal},
				{name: "runc control: --runtime runc", args: []string{"--runtime", "runc"}, want: maskDocker},
			},
		},
		{
			// README "Several policies": capshim install docker --config FILE.
			name:        "install docker --config web.toml",
			install:     []string{"--config", web},
			policy:      web,
			infoFormat:  "{{json .Runtimes.capshim}}",
			infoWant:    fmt.Sprintf(`{"path":%q,"runtimeArgs":["--capshim-config=%s"]}`, capshimBin, web),
			wantEntry:   map[string]any{"path": capshimBin, "runtimeArgs": []any{"--capshim-config=" + web}},
			wantDefault: "capshim",
			runs: []dockerRunCase{
				{name: "request allowed by web.toml", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
				{name: "no request", args: []string{"--runtime", "capshim"}, want: maskMinimal},
			},
		},
	}
	for i, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			args := append([]string{"docker", "--file", cfg}, st.install...)
			out := installFresh(t, cfg, st.policy, args...)
			if strings.Contains(out, "WARNING") {
				t.Errorf("install warns:\n%s", out)
			}
			installAgain(t, cfg, args...)
			m := rdmDaemonJSON(t, cfg)
			if m["deprecated-key-path"] != keyPath {
				t.Errorf("install lost the daemon's own setting deprecated-key-path: %v", m)
			}
			rt, _ := m["runtimes"].(map[string]any)
			if !reflect.DeepEqual(rt["capshim"], st.wantEntry) {
				t.Errorf("runtimes.capshim = %#v, want %#v", rt["capshim"], st.wantEntry)
			}
			if len(rt) != 1 {
				t.Errorf("runtimes = %v, want only capshim", rt)
			}
			if !reflect.DeepEqual(m["default-runtime"], st.wantDefault) {
				t.Errorf("default-runtime = %#v, want %#v", m["default-runtime"], st.wantDefault)
			}
		})
		if !ok {
			break
		}
		if i == 0 {
			// systemctl restart docker: dockerd on the edited file, started
			// by the test itself so that it lives through every step. The
			// policy install wrote reaches capshim as /etc/capshim/shim.toml
			// would: CAPSHIM_CONFIG.
			e = dockerLaunch(t, dir, cfg, []string{"CAPSHIM_CONFIG=" + policy})
			// install's own "verify" hint.
			if r := e.docker("info", "--format", "{{json .Runtimes}}"); r.err != nil || !strings.Contains(r.stdout, `"capshim"`) {
				t.Fatalf("docker info does not list the runtime capshim:\n%v", r)
			}
		}
		ok = t.Run(st.name+" (docker run)", func(t *testing.T) {
			if i != 0 {
				// systemctl reload docker
				rdmDockerReload(t, e, st.infoFormat, st.infoWant)
			}
			dockerRunCases(t, e, st.runs)
			if i == 0 {
				t.Run("inspect", func(t *testing.T) { rdmDockerInspect(t, e) })
				t.Run("run --privileged", func(t *testing.T) { rdmDockerPrivileged(t, e) })
			}
		})
		if !ok {
			break
		}
	}
	t.Logf("TestReadmeDocker took %v", time.Since(began).Round(time.Second))
}

// rdmDockerPrivileged checks README's claim that `docker run --privileged`
// is reduced to the target, and that under capshim such a container starts
// on a host whose root lacks some capability, where plain runc fails with
// "unable to apply caps". If it does not start under capshim either, the
// subtest is skipped with the reason (the claim is not asserted).
func rdmDockerPrivileged(t *testing.T, e *dockerEngine) {
	t.Helper()
	run := func(rt string) cmdResult {
		return e.docker("run", "--rm", "--network", "none", "--privileged", "--runtime", rt, imageBusybox, "grep", "Cap", "/proc/self/status")
	}
	ctl := run("runc")
	if ctl.err != nil {
		t.Logf("control: docker run --privileged --runtime runc fails on this host:\n%s", strings.TrimSpace(ctl.stderr))
	} else {
		t.Logf("control: docker run --privileged --runtime runc starts on this host (CapBnd %016x)", capLines(t, ctl.stdout)["CapBnd"])
	}
	r := run("capshim")
	if r.err != nil {
		t.Skipf("README claim NOT confirmed: docker run --privileged --runtime capshim fails here:\n%v\ndockerd log:\n%s", r, e.daemon.tail(10))
	}
	t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
	assertCaps(t, r.stdout, maskMinimal)
}

// rdmDockerInspect runs README "Check what containers really have" on a
// capshim container and a runc control container of the private dockerd.
func rdmDockerInspect(t *testing.T, e *dockerEngine) {
	t.Helper()
	ids := map[string]string{}
	for _, rt := range []string{"capshim", "runc"} {
		r := e.docker("run", "-d", "--runtime", rt, "--network", "none", imageBusybox, "sleep", "300")
		if r.err != nil {
			t.Fatalf("%v\ndockerd log:\n%s", r, e.daemon.tail(20))
		}
		id := strings.TrimSpace(r.stdout)
		ids[rt] = id
		t.Cleanup(func() { e.docker("rm", "-f", id) })
	}
	checkInspect(t, ids["capshim"], ids["runc"])
}

// ---------------------------------------------------------------------------
// Inspect

// rdmInspectProc is one process of `capshim inspect --format json`.
type rdmInspectProc struct {
	PID          int                 `json:"pid"`
	Container    string              `json:"container"`
	Command      string              `json:"command"`
	UID          int                 `json:"uid"`
	Capabilities map[string][]string `json:"capabilities"`
}

// rdmInspect runs `capshim inspect ARGS...` as the README shows it: no
// --config and no CAPSHIM_ variables (the policy default is then
// /etc/capshim/shim.toml, or the built-in one where there is none).
func rdmInspect(t *testing.T, args ...string) cmdResult {
	t.Helper()
	r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, capshimBin, append([]string{"inspect"}, args...)...)
	if r.err != nil {
		t.Fatalf("capshim inspect failed:\n%v", r)
	}
	return r
}

// checkInspect checks `capshim inspect --format json` and `capshim
// inspect ID-PREFIX` for a running container reduced by capshim (capID)
// and a control container started by plain runc with Docker's 14
// capabilities (ctlID). Both ids are 64 hex digits.
func checkInspect(t *testing.T, capID, ctlID string) {
	t.Helper()
	if _, err := os.Stat("/etc/capshim/shim.toml"); err == nil {
		t.Logf("note: /etc/capshim/shim.toml exists; inspect marks against its default")
	}
	minimal := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	t.Run("json", func(t *testing.T) {
		r := rdmInspect(t, "--format", "json")
		var procs []rdmInspectProc
		if err := json.Unmarshal([]byte(r.stdout), &procs); err != nil {
			t.Fatalf("inspect --format json does not decode: %v\n%s", err, r.stdout)
		}
		found := map[string]int{}
		for _, p := range procs {
			if p.Container != capID && p.Container != ctlID {
				continue
			}
			found[p.Container]++
			if p.PID <= 0 || p.Command == "" {
				t.Errorf("process without pid or command: %+v", p)
			}
			if p.Container != capID {
				continue
			}
			for _, set := range []string{"bounding", "effective", "permitted"} {
				got := append([]string{}, p.Capabilities[set]...)
				slices.Sort(got)
				if !reflect.DeepEqual(got, minimal) {
					t.Errorf("pid %d (%s) %s = %v, want %v", p.PID, p.Command, set, got, minimal)
				}
			}
			for _, set := range []string{"inheritable", "ambient"} {
				if len(p.Capabilities[set]) != 0 {
					t.Errorf("pid %d (%s) %s = %v, want none", p.PID, p.Command, set, p.Capabilities[set])
				}
			}
		}
		for _, id := range []string{capID, ctlID} {
			if found[id] == 0 {
				t.Errorf("inspect --format json lists no process of container %s:\n%s", id, r.stdout)
			}
		}
	})
	t.Run("text, capshim container", func(t *testing.T) {
		r := rdmInspect(t, capID[:12])
		t.Logf("capshim inspect %s:\n%s", capID[:12], r.stdout)
		if !strings.Contains(r.stdout, capID[:12]) {
			t.Errorf("output does not name the container %s", capID[:12])
		}
		if strings.Contains(r.stdout, "!") {
			t.Errorf("a capability is marked beyond the default (\"!\") in a container capshim reduced:\n%s", r.stdout)
		}
		for _, c := range minimal {
			if !strings.Contains(r.stdout, c) {
				t.Errorf("output lacks %s", c)
			}
		}
	})
	t.Run("text, runc control container", func(t *testing.T) {
		r := rdmInspect(t, ctlID[:12])
		t.Logf("capshim inspect %s:\n%s", ctlID[:12], r.stdout)
		for _, c := range []string{"CAP_CHOWN!", "CAP_NET_RAW!", "CAP_SETUID!"} {
			if !strings.Contains(r.stdout, c) {
				t.Errorf("output of a runc container with Docker's 14 capabilities lacks %q", c)
			}
		}
		if strings.Contains(r.stdout, "CAP_KILL!") {
			t.Errorf("CAP_KILL (in the default) is marked \"!\"")
		}
	})
}

// rdmHexID returns a random container id of 64 hex digits, the form
// capshim inspect recognises in a cgroup path.
func rdmHexID(t *testing.T) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestReadmeInspect runs README "Check what containers really have"
// against containers started directly: one with `capshim run -d` (runc
// behind it), one control with plain `runc run -d`, both with Docker's 14
// capabilities in their config.json.
func TestReadmeInspect(t *testing.T) {
	requireRunc(t)
	began := time.Now()
	policy := writePolicy(t, runcPolicy)
	root := runcRoot(t)
	ids := map[string]string{}
	for _, bin := range []string{capshimBin, runcPath} {
		b := newBundle(t, bundleSpec{args: []string{"sleep", "300"}})
		id := rdmHexID(t)
		runcCleanup(t, root, id)
		log := filepath.Join(b, "log.json")
		res := runCmd(cmdOpts{env: shimEnv(policy)}, bin, append(globalArgs(root, log), "run", "-d", "--bundle", b, id)...)
		if res.code != 0 {
			t.Fatalf("run -d failed:\n%s", res)
		}
		runcWaitStatus(t, root, id, "running")
		ids[bin] = id
	}
	checkInspect(t, ids[capshimBin], ids[runcPath])
	t.Logf("TestReadmeInspect took %v", time.Since(began).Round(time.Millisecond))
}

// ---------------------------------------------------------------------------
// containerd

// rdmCtdRuncDirs watches runc's default state root of the runc v2 shim,
// /run/containerd/runc/NAMESPACE: the handler install writes sets no Root,
// so CRI containers keep their runc state there. At cleanup (after the
// daemon's teardown, when registered before it) it reports state the test
// left and removes the directories it created, if empty.
func rdmCtdRuncDirs(t *testing.T, ns string) {
	t.Helper()
	dirs := []string{"/run/containerd", "/run/containerd/runc", "/run/containerd/runc/" + ns}
	existed := map[string]bool{}
	for _, d := range dirs {
		if _, err := os.Lstat(d); err == nil {
			existed[d] = true
		}
	}
	before := map[string]bool{}
	if ents, err := os.ReadDir(dirs[2]); err == nil {
		for _, e := range ents {
			before[e.Name()] = true
		}
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dirs[2])
		for _, e := range ents {
			if !before[e.Name()] {
				t.Errorf("runc state %s/%s left after the pods were removed", dirs[2], e.Name())
			}
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if !existed[dirs[i]] {
				_ = syscall.Rmdir(dirs[i]) // only when empty
			}
		}
	})
}

// rdmCtdConfig is the CRI part of containerd's config, for decoding.
type rdmCtdConfig struct {
	Version int `toml:"version"`
	Plugins struct {
		CRI struct {
			Containerd struct {
				DefaultRuntimeName string `toml:"default_runtime_name"`
				Runtimes           map[string]struct {
					RuntimeType          string         `toml:"runtime_type"`
					PodAnnotations       []string       `toml:"pod_annotations"`
					ContainerAnnotations []string       `toml:"container_annotations"`
					Options              map[string]any `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"io.containerd.grpc.v1.cri"`
	} `toml:"plugins"`
}

// TestReadmeContainerd follows README "containerd and Kubernetes": capshim
// install containerd on a version 2 config that holds the private daemon's
// settings, (re)start containerd on it, run a CRI pod with the handler
// "capshim" and the README's pod annotation, and `ctr run --runc-binary`.
func TestReadmeContainerd(t *testing.T) {
	requireContainerd(t)
	began := time.Now()
	rdmCtdRuncDirs(t, "k8s.io") // before the daemon: its cleanup runs last
	d := newContainerd(t)
	// The private daemon's settings (root, state, sockets, CRI with
	// restrict_oom_score_adj, disable_apparmor, sandbox_image, CNI dirs,
	// disabled plugins) and its runc handler: exactly what the ctd tests
	// run on. capshim is not registered yet.
	writeFile(t, d.cfgPath, containerdConfig(d.dir, d.sock, []criHandler{{name: "runc"}}), 0o644)
	policy := filepath.Join(d.dir, "shim.toml")
	args := []string{"containerd", "--file", d.cfgPath, "--policy", policy}

	t.Run("install", func(t *testing.T) {
		out := installFresh(t, d.cfgPath, policy, args...)
		if strings.Contains(out, "CRI plugin is disabled") {
			t.Errorf("install says the CRI plugin is disabled; it is enabled in %s:\n%s", d.cfgPath, out)
		}
		// install states the CRI plugin's state only when it is disabled
		// (a WARNING, see the dry run below); for an enabled plugin it
		// names "the CRI runtime handler" in its verify hint.
		if !strings.Contains(out, "CRI") {
			t.Errorf("install's output does not mention the CRI plugin:\n%s", out)
		}
		installAgain(t, d.cfgPath, args...)
		var c rdmCtdConfig
		if err := gotoml.Unmarshal(readFile(t, d.cfgPath), &c); err != nil {
			t.Fatalf("%s does not decode after install: %v", d.cfgPath, err)
		}
		h, ok := c.Plugins.CRI.Containerd.Runtimes["capshim"]
		if c.Version != 2 || !ok {
			t.Fatalf("%s: version %d, handler capshim present %v", d.cfgPath, c.Version, ok)
		}
		if h.RuntimeType != "io.containerd.runc.v2" {
			t.Errorf("runtime_type = %q", h.RuntimeType)
		}
		if h.Options["BinaryName"] != capshimBin {
			t.Errorf("options.BinaryName = %v, want %s (the capshim next to capshim-tools)", h.Options["BinaryName"], capshimBin)
		}
		if want := []string{"capshim.io/*", "io.containers.capabilities"}; !reflect.DeepEqual(h.PodAnnotations, want) {
			t.Errorf("pod_annotations = %q, want %q (README)", h.PodAnnotations, want)
		}
		if want := []string{"capshim.io/*"}; !reflect.DeepEqual(h.ContainerAnnotations, want) {
			t.Errorf("container_annotations = %q, want %q (README)", h.ContainerAnnotations, want)
		}
		if _, ok := c.Plugins.CRI.Containerd.Runtimes["runc"]; !ok || c.Plugins.CRI.Containerd.DefaultRuntimeName != "runc" {
			t.Errorf("install changed the daemon's runc handler or default runtime: %+v", c.Plugins.CRI.Containerd)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("CRI dry run on a config with CRI disabled", func(t *testing.T) {
		// The other state of the CRI plugin: install warns. A version 2
		// file names the plugin in full; by its short id "cri" containerd
		// does not start at all, and install says that instead.
		for list, want := range map[string]string{
			`["io.containerd.grpc.v1.cri"]`: "WARNING: the CRI plugin is disabled",
			`["cri"]`:                       `would not start: disabled_plugins holds "cri"`,
		} {
			off := filepath.Join(t.TempDir(), "config.toml")
			writeFile(t, off, "version = 2\ndisabled_plugins = "+list+"\n", 0o644)
			r := capshimInstall(t, "containerd", "--dry-run", "--file", off, "--policy", filepath.Join(filepath.Dir(off), "shim.toml"))
			if !strings.Contains(r.stdout, want) {
				t.Errorf("disabled_plugins = %s: install does not say %q:\n%s", list, want, r.stdout)
			}
		}
	})

	// The policy install wrote is capshim's default (no rule); the test
	// replaces it with one that lets any pod ask for CAP_CHOWN.
	pol := &livePolicy{path: policy, logPath: filepath.Join(d.dir, "decisions.log")}
	pol.set(t, policyTOML(ruleChown))
	d.launch(t, []string{"CAPSHIM_CONFIG=" + policy})
	d.importImages(t, "k8s.io")
	c := dialCRI(t, d)

	t.Run("CRI pod", func(t *testing.T) {
		req := map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}
		cases := []struct {
			name                       string
			pod                        criPod
			wantSandbox, wantContainer uint64
		}{
			{name: "runtimeClassName capshim with the README annotation", pod: criPod{handler: "capshim", namespace: "default", podAnnotation: req}, wantSandbox: maskMinimal | maskChown, wantContainer: maskMinimal | maskChown},
			{name: "runtimeClassName capshim without a request", pod: criPod{handler: "capshim", namespace: "default"}, wantSandbox: maskMinimal, wantContainer: maskMinimal},
			{name: "runc control", pod: criPod{handler: "runc", namespace: "default", podAnnotation: req}, wantSandbox: maskDocker, wantContainer: maskDocker},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := c.run(t, tc.pod)
				if err != nil {
					t.Fatalf("%v\ncontainerd log:\n%s\ncapshim decisions:\n%s", err, d.logTail(20), pol.decisions(3))
				}
				t.Run("sandbox", func(t *testing.T) { assertCaps(t, got.sandboxStatus, tc.wantSandbox) })
				t.Run("container", func(t *testing.T) { assertCaps(t, got.containerStatus, tc.wantContainer) })
				t.Run("exec", func(t *testing.T) { assertCaps(t, got.execStatus, tc.wantContainer) })
				if t.Failed() {
					t.Logf("config.json annotations: %v\ncapshim decisions:\n%s", got.specAnnotations, pol.decisions(3))
				}
			})
		}
	})

	t.Run("ctr run --runc-binary", func(t *testing.T) {
		const ns = "capshim-it-rdm"
		d.importImages(t, ns)
		cases := []struct {
			name       string
			runcBinary string
			annotation bool
			want       uint64
		}{
			// README: ctr run --runtime io.containerd.runc.v2 --runc-binary /usr/local/bin/capshim --annotation capshim.io/capabilities=CAP_CHOWN ...
			{name: "README line", runcBinary: capshimBin, annotation: true, want: maskMinimal | maskChown},
			{name: "no request", runcBinary: capshimBin, want: maskMinimal},
			{name: "runc control", annotation: true, want: maskDocker},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("capshim-rdm-%d-%d", os.Getpid(), i)
				args := append([]string{"run", "--rm"}, d.ctrRunFlags(id)...) // --runtime io.containerd.runc.v2 and private dirs
				if tc.runcBinary != "" {
					args = append(args, "--runc-binary", tc.runcBinary)
				}
				if tc.annotation {
					args = append(args, "--annotation", "capshim.io/capabilities=CAP_CHOWN")
				}
				args = append(args, imageBusybox, id, "grep", "Cap", "/proc/self/status")
				t.Cleanup(func() { d.ctrRemove(ns, id) })
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				start := time.Now()
				out, err := d.ctr(ctx, ns, args...)
				if err != nil {
					t.Fatalf("%v\ncontainerd log:\n%s\ncapshim decisions:\n%s", err, d.logTail(15), pol.decisions(3))
				}
				t.Logf("ctr %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
				assertCaps(t, out, tc.want)
			})
		}
	})
	t.Logf("TestReadmeContainerd took %v (before teardown)", time.Since(began).Round(time.Second))
}

// ---------------------------------------------------------------------------
// Podman

// rdmPodmanRun is one podman command line and the capabilities its
// container must get.
type rdmPodmanRun struct {
	name string
	args []string // podman arguments before the image
	want uint64
}

// TestReadmePodman follows README "Podman": capshim install podman on a
// containers.conf holding the test podman's settings, then `podman run
// --rm --runtime capshim --network none ...`, and --set-default. Podman
// and conmon hand the runtime no environment, so capshim reads
// /etc/capshim/shim.toml, or its built-in default where there is none (as
// here): the policy install writes to --policy is the same default, but
// this test cannot show that the runtime read it.
func TestReadmePodman(t *testing.T) {
	began := time.Now()
	p := podmanSetup(t)
	const conf = "readme.conf"
	p.writeConf(t, conf, "")
	file := filepath.Join(p.dir, conf)
	policy := filepath.Join(p.dir, "shim.toml")
	grep := []string{imageBusybox, "grep", "Cap", "/proc/self/status"}

	steps := []struct {
		name    string
		install []string
		runs    []rdmPodmanRun
	}{
		{
			name: "install podman",
			runs: []rdmPodmanRun{
				// README: podman run --rm --runtime capshim --network none busybox grep Cap /proc/self/status
				{name: "README podman run --runtime capshim", args: []string{"run", "--rm", "--runtime", "capshim", "--network", "none"}, want: maskPodmanMinimal},
				{name: "podman --runtime capshim run", args: []string{"--runtime", "capshim", "run", "--rm", "--network", "none"}, want: maskPodmanMinimal},
				// README: podman --runtime /usr/local/bin/capshim works without installing.
				{name: "runtime by path", args: []string{"--runtime", capshimBin, "run", "--rm", "--network", "none"}, want: maskPodmanMinimal},
				// Control. Podman's own default runtime here is crun, which
				// fails on this host's hybrid cgroups; the test podman
				// runs use runc.
				{name: "runc control", args: []string{"--runtime", runcPath, "run", "--rm", "--network", "none"}, want: maskPodman},
			},
		},
		{
			name:    "install podman --set-default",
			install: []string{"--set-default"},
			runs: []rdmPodmanRun{
				{name: "plain podman run", args: []string{"run", "--rm", "--network", "none"}, want: maskPodmanMinimal},
				{name: "runc control", args: []string{"--runtime", runcPath, "run", "--rm", "--network", "none"}, want: maskPodman},
			},
		},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			args := append([]string{"podman", "--file", file, "--policy", policy}, st.install...)
			out := installFresh(t, file, policy, args...)
			if !strings.Contains(out, "nothing to restart") {
				t.Errorf("install does not say podman needs no restart:\n%s", out)
			}
			installAgain(t, file, args...)
			var m struct {
				Containers map[string]any `toml:"containers"`
				Engine     struct {
					Runtime  string              `toml:"runtime"`
					Runtimes map[string][]string `toml:"runtimes"`
				} `toml:"engine"`
			}
			// Read the way Podman reads containers.conf (BurntSushi/toml).
			if _, err := toml.DecodeFile(file, &m); err != nil {
				t.Fatalf("%s does not decode: %v", file, err)
			}
			if got := m.Engine.Runtimes["capshim"]; !reflect.DeepEqual(got, []string{capshimBin}) {
				t.Errorf("[engine.runtimes] capshim = %q, want [%q]", got, capshimBin)
			}
			wantRuntime := ""
			if len(st.install) > 0 {
				wantRuntime = "capshim"
			}
			if m.Engine.Runtime != wantRuntime {
				t.Errorf("[engine] runtime = %q, want %q", m.Engine.Runtime, wantRuntime)
			}
			if caps, _ := m.Containers["default_capabilities"].([]any); m.Containers["default_ulimits"] == nil || len(caps) != 11 {
				t.Errorf("install lost the test's [containers] settings: %v", m.Containers)
			}
			if t.Failed() {
				t.FailNow()
			}
			if wantRuntime != "" {
				r := p.podman(conf, "info", "--format", "{{.Host.OCIRuntime.Name}}")
				if r.err != nil || strings.TrimSpace(r.stdout) != "capshim" {
					t.Errorf("podman info does not show capshim as the runtime:\n%v", r)
				}
			}
			for _, rc := range st.runs {
				t.Run(rc.name, func(t *testing.T) {
					r := p.podman(conf, append(append([]string{}, rc.args...), grep...)...)
					if r.err != nil {
						t.Fatalf("%v", r)
					}
					t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
					assertCaps(t, r.stdout, rc.want)
				})
			}
		})
		if !ok {
			break
		}
	}
	t.Run("runtime state removed", func(t *testing.T) { podmanCheckRuntimeState(t, p.dir) })
	t.Logf("TestReadmePodman took %v (before cleanup)", time.Since(began).Round(time.Second))
}
