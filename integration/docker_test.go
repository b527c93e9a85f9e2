//go:build integration

package integration

// Docker 20.10 tests: a private dockerd (own data-root, exec-root, pidfile
// and socket under a temp dir, no bridge, no iptables) runs containers
// through capshim; each container prints its own Cap* lines.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	dockerTimeout = 2 * time.Minute
)

// dockerEngine is a private dockerd and the CLI environment that talks to it.
type dockerEngine struct {
	dir    string
	sock   string
	daemon *daemonProc
	env    []string // for the docker CLI
}

// dockerStart starts dockerd with its state under a fresh temp dir, the
// given daemon.json settings (always passed with --config-file, so the host's
// /etc/docker/daemon.json is never read), extra environment (e.g.
// CAPSHIM_CONFIG, which dockerd hands down to containerd, the shim and the
// runtime) and extra flags. It waits for the API, loads the test images and
// registers cleanups that remove all containers, stop dockerd by its PID
// and check that its containerd, shims and mounts are gone.
func dockerStart(t *testing.T, daemonJSON map[string]any, extraEnv []string, extraFlags ...string) *dockerEngine {
	t.Helper()
	requireRoot(t)
	requireBinary(t, "containerd")
	requireBinary(t, "containerd-shim-runc-v2")

	dir := shortTempDir(t, "capshim-dk-")
	// Registered after shortTempDir's cleanup, so it runs before it: processes
	// first, then mounts.
	t.Cleanup(func() { killLeftovers(t, dir) })

	// dockerd 20.10 writes its libtrust key to /etc/docker/key.json unless
	// told otherwise.
	conf := map[string]any{"deprecated-key-path": filepath.Join(dir, "key.json")}
	for k, v := range daemonJSON {
		conf[k] = v
	}
	js, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("daemon.json:\n%s", js)
	cfg := filepath.Join(dir, "daemon.json")
	writeFile(t, cfg, string(js)+"\n", 0o644)
	return dockerLaunch(t, dir, cfg, extraEnv, extraFlags...)
}

// dockerLaunch starts dockerd on the daemon.json at cfg with every state
// directory under dir and no bridge or iptables, waits for its API and
// loads the test images. Cleanups remove all containers and stop dockerd
// by its PID.
func dockerLaunch(t *testing.T, dir, cfg string, extraEnv []string, extraFlags ...string) *dockerEngine {
	t.Helper()
	dockerd := requireBinary(t, "dockerd")
	docker := requireBinary(t, "docker")
	e := &dockerEngine{dir: dir, sock: filepath.Join(dir, "docker.sock")}
	e.env = envWithout([]string{"DOCKER_"},
		"DOCKER_HOST=unix://"+e.sock,
		"DOCKER_CONFIG="+filepath.Join(dir, "cli"),
	)
	args := append([]string{dockerd},
		"--config-file", cfg,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"-H", "unix://"+e.sock,
		"--bridge=none",
		"--iptables=false",
		"--ip6tables=false",
		"--ip-forward=false",
		"--ip-masq=false",
		"--userland-proxy=false",
	)
	args = append(args, extraFlags...)
	start := time.Now()
	e.daemon = startDaemon(t, filepath.Join(dir, "dockerd.log"), envWithout([]string{"DOCKER_", "CAPSHIM_"}, extraEnv...), args...)
	// Registered after the daemon's stop: runs before it, so no container
	// is left for dockerd to wait 10s on.
	t.Cleanup(func() { e.removeAll(t) })

	for {
		if e.daemon.exited() {
			t.Fatalf("dockerd exited during start-up on %s: %v\n%s", cfg, e.daemon.err, e.daemon.tail(40))
		}
		if _, err := os.Stat(e.sock); err == nil {
			if r := runCmd(cmdOpts{timeout: 10 * time.Second, env: e.env}, docker, "version", "--format", "{{.Server.Version}}"); r.err == nil {
				t.Logf("dockerd %s up in %v", strings.TrimSpace(r.stdout), time.Since(start).Round(time.Millisecond))
				break
			}
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("dockerd did not answer on %s within 60s\n%s", e.sock, e.daemon.tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}

	archive := filepath.Join(t.TempDir(), "images.tar")
	buildDockerArchive(t, archive)
	if r := e.docker("load", "-i", archive); r.err != nil {
		t.Fatalf("docker load: %v", r)
	}
	return e
}

// docker runs the docker CLI against the private daemon.
func (e *dockerEngine) docker(args ...string) cmdResult {
	return runCmd(cmdOpts{timeout: dockerTimeout, env: e.env}, "docker", args...)
}

// removeAll force-removes every container of the private daemon.
func (e *dockerEngine) removeAll(t *testing.T) {
	t.Helper()
	if e.daemon.exited() {
		return
	}
	r := e.docker("ps", "-aq")
	if r.err != nil {
		t.Logf("docker ps -aq: %v", r)
		return
	}
	if ids := strings.Fields(r.stdout); len(ids) > 0 {
		if r := e.docker(append([]string{"rm", "-f"}, ids...)...); r.err != nil {
			t.Logf("docker rm -f: %v", r)
		}
	}
}

// dockerRunCase is one `docker run ... grep Cap /proc/self/status`.
type dockerRunCase struct {
	name string
	args []string // between "run --rm --network none" and the image
	want uint64
}

// dockerRunCases runs every case and checks the container's own Cap* lines.
func dockerRunCases(t *testing.T, e *dockerEngine, cases []dockerRunCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--rm", "--network", "none"}, tc.args...)
			args = append(args, imageBusybox, "grep", "Cap", "/proc/self/status")
			r := e.docker(args...)
			if r.err != nil {
				t.Fatalf("%v\ndockerd log:\n%s", r, e.daemon.tail(20))
			}
			t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
			assertCaps(t, r.stdout, tc.want)
		})
	}
}

// dockerExecCases starts a long-running container under runtime and checks
// what `docker exec` (plain and --privileged) gets inside it.
func dockerExecCases(t *testing.T, e *dockerEngine, runtime string) {
	t.Helper()
	name := "capshim-exec-" + strings.ReplaceAll(runtime, "/", "-")
	r := e.docker("run", "-d", "--name", name, "--network", "none", "--runtime", runtime, imageBusybox, "sleep", "300")
	if r.err != nil {
		t.Fatalf("%v\ndockerd log:\n%s", r, e.daemon.tail(20))
	}
	t.Cleanup(func() { e.docker("rm", "-f", name) })
	cases := []struct {
		name  string
		flags []string
		exact bool // the exec'd process gets exactly maskMinimal
	}{
		{name: "exec", exact: true},
		// Docker asks for every capability for a privileged exec (runc
		// alone fails here: "unable to apply caps: operation not
		// permitted", the VM's root lacks CAP_SYS_RESOURCE). capshim must
		// cut it down to the policy.
		{name: "exec --privileged", flags: []string{"--privileged"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"exec"}, tc.flags...)
			args = append(args, name, "grep", "Cap", "/proc/self/status")
			r := e.docker(args...)
			if r.err != nil {
				t.Fatalf("%v\ndockerd log:\n%s", r, e.daemon.tail(20))
			}
			t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
			if tc.exact {
				assertCaps(t, r.stdout, maskMinimal)
			} else {
				assertCapsAtMost(t, r.stdout, maskMinimal)
			}
		})
	}
}

// TestDockerAddRuntime registers capshim with `dockerd --add-runtime
// capshim=PATH`; that form takes no arguments, so the policy reaches capshim
// through CAPSHIM_CONFIG in dockerd's environment (dockerd -> containerd ->
// containerd-shim-runc-v2 -> runtime all inherit it).
func TestDockerAddRuntime(t *testing.T) {
	policy := writePolicy(t, chownPolicy("/usr/bin/runc"))
	e := dockerStart(t, nil, []string{"CAPSHIM_CONFIG=" + policy}, "--add-runtime", "capshim="+capshimBin)

	t.Run("run", func(t *testing.T) {
		dockerRunCases(t, e, []dockerRunCase{
			{name: "capshim", args: []string{"--runtime", "capshim"}, want: maskMinimal},
			// Control: the same container under plain runc keeps Docker's
			// 14 capabilities, so the test can see a missing reduction.
			{name: "runc control", args: []string{"--runtime", "runc"}, want: maskDocker},
			{name: "request allowed by a rule", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
			{name: "request in lower case without prefix", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=chown"}, want: maskMinimal | maskChown},
			// Never escalate: Docker did not grant CHOWN, so asking for
			// it (allowed by the rule) must not add it.
			{name: "request after --cap-drop", args: []string{"--runtime", "capshim", "--cap-drop", "CHOWN", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal},
			// NET_RAW is granted by Docker but allowed by no rule.
			{name: "request denied", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_NET_RAW"}, want: maskMinimal},
			// SYS_ADMIN is granted by Docker (--cap-add) and asked for,
			// but it is in `never`: only the allowed CHOWN is kept.
			{name: "request for a never capability", args: []string{"--runtime", "capshim", "--cap-add", "SYS_ADMIN", "-e", "CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN,CAP_CHOWN"}, want: maskMinimal | maskChown},
		})
	})
	t.Run("running container", func(t *testing.T) {
		dockerExecCases(t, e, "capshim")
	})
}

// TestDockerDaemonJSON registers capshim in daemon.json (runtimes with
// runtimeArgs ["--capshim-config=..."]) and makes it the default runtime.
// More entries point at an audit-mode policy, a strict policy
// (on_denied_request = "fail") and a broken one. dockerd gets no
// CAPSHIM_CONFIG. (dockerd 20.10 runs a runtime with runtimeArgs through a
// generated wrapper script, <data-root>/runtimes/<name>.)
func TestDockerDaemonJSON(t *testing.T) {
	good := writePolicy(t, chownPolicy("/usr/bin/runc"))
	audit := writePolicy(t, strings.Replace(chownPolicy("/usr/bin/runc"), `mode = "enforce"`, `mode = "audit"`, 1))
	strict := writePolicy(t, strings.Replace(chownPolicy("/usr/bin/runc"), `on_denied_request = "drop"`, `on_denied_request = "fail"`, 1))
	broken := writePolicy(t, brokenPolicy)
	runtime := func(policy string) map[string]any {
		return map[string]any{"path": capshimBin, "runtimeArgs": []string{"--capshim-config=" + policy}}
	}
	cfg := map[string]any{
		"default-runtime": "capshim",
		"runtimes": map[string]any{
			"capshim":        runtime(good),
			"capshim-audit":  runtime(audit),
			"capshim-strict": runtime(strict),
			"capshim-broken": runtime(broken),
		},
	}
	e := dockerStart(t, cfg, nil)

	t.Run("run", func(t *testing.T) {
		dockerRunCases(t, e, []dockerRunCase{
			{name: "default runtime", want: maskMinimal},
			{name: "explicit runtime", args: []string{"--runtime", "capshim"}, want: maskMinimal},
			{name: "runc control", args: []string{"--runtime", "runc"}, want: maskDocker},
			{name: "request allowed by a rule", args: []string{"-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
			{name: "request after --cap-drop", args: []string{"--cap-drop", "CHOWN", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal},
			// Audit mode logs what it would drop and changes nothing.
			{name: "audit mode", args: []string{"--runtime", "capshim-audit"}, want: maskDocker},
			// A granted request passes a strict policy.
			{name: "strict policy, allowed request", args: []string{"--runtime", "capshim-strict", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
		})
	})
	t.Run("running container", func(t *testing.T) {
		dockerExecCases(t, e, "capshim")
	})
	t.Run("refused", func(t *testing.T) {
		cases := []struct {
			name    string
			args    []string // between "run --rm --network none" and the image
			reasons []string // the error must name one of these (case-insensitive)
		}{
			{name: "broken policy", args: []string{"--runtime", "capshim-broken"}, reasons: []string{broken, "toml", "parse", "syntax"}},
			{name: "denied request with on_denied_request=fail", args: []string{"--runtime", "capshim-strict", "-e", "CAPSHIM_CAPABILITIES=CAP_NET_RAW"}, reasons: []string{"NET_RAW"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"run", "--rm", "--network", "none"}, tc.args...)
				r := e.docker(append(args, imageBusybox, "grep", "Cap", "/proc/self/status")...)
				if r.err == nil {
					t.Fatalf("docker run succeeded; capshim must refuse to start the container\n%v", r)
				}
				t.Logf("%s failed as expected in %v:\n%s", r.cmdline, r.took.Round(time.Millisecond), r.stderr)
				if strings.Contains(r.stdout, "CapBnd") {
					t.Errorf("the container ran although capshim refused it:\n%s", r.stdout)
				}
				if !strings.Contains(r.stderr, "OCI runtime create failed: capshim:") {
					t.Errorf("docker run's error does not carry capshim's message (want %q in it):\n%s", "OCI runtime create failed: capshim:", r.stderr)
				}
				if !containsAny(r.stderr, tc.reasons...) {
					t.Errorf("docker run's error does not say why (want one of %q in it):\n%s", tc.reasons, r.stderr)
				}
			})
		}
	})
}
