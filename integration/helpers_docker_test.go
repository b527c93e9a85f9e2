//go:build integration

package integration

// A private Docker 20.10: dockerd with its own data-root, exec-root,
// pidfile and socket under a temp dir, no bridge and no iptables, and the
// docker CLI talking to it.

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
	removeNewCgroupParent(t, "docker")
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
