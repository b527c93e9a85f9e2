//go:build integration

package integration

// capshim status on the configs `capshim install` wrote for docker,
// containerd and podman: every capshim runtime found, its binary of this
// build, the policy it reads loading and trusted, the real runtime; and a
// policy others could change reported as the runtime would refuse it,
// with the fix, and exit 1.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatusInstalled(t *testing.T) {
	requireRoot(t)
	dir := shortTempDir(t, "capshim-st-")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// containerd and podman hand capshim nothing: a link named
	// capshim-status reads CONFIG_DIR/capshim-status.toml, CONFIG_DIR
	// being $CAPSHIM_CONFIG_DIR here, so the host's /etc/capshim plays no
	// part.
	link := filepath.Join(filepath.Dir(capshimBin), "capshim-status")
	if err := os.Symlink(capshimBin, link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(link) })
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(etc, "capshim-status.toml"), chownPolicy(runcPath), 0o644)
	pol := writePolicy(t, ipKillOnlyPolicy)

	daemon := filepath.Join(dir, "daemon.json")
	ctd := filepath.Join(dir, "config.toml")
	conf := filepath.Join(dir, "containers.conf")
	capshimInstall(t, "docker", "--file", daemon, "--policy", pol, "--set-default")
	capshimInstall(t, "containerd", "--file", ctd, "--binary", link, "--no-policy")
	capshimInstall(t, "podman", "--file", conf, "--binary", link, "--no-policy")

	status := func() cmdResult {
		r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"}, "CAPSHIM_CONFIG_DIR="+etc)}, capshimBin,
			"status", "--docker", daemon, "--containerd", ctd, "--podman", conf)
		t.Logf("%s (exit %d):\n%s%s", r.cmdline, r.code, r.stdout, r.stderr)
		return r
	}
	r := status()
	if r.code != 0 || !strings.HasSuffix(r.stdout, "status: ok\n") {
		t.Errorf("status on what install wrote: exit %d, want 0 and status: ok", r.code)
	}
	for _, want := range []string{
		"docker: " + daemon + " (default runtime: capshim)\n  runtime capshim: " + capshimBin + ", the default runtime\n",
		"    policy: " + pol + " (named on the command line): ok (loads, trusted): mode enforce, default CAP_KILL, ",
		"containerd: " + ctd + " (default runtime: the engine's own)\n  runtime capshim: " + link + "\n",
		"podman: " + conf + " (default runtime: the engine's own)\n  runtime capshim: " + link + "\n",
		"    policy: " + filepath.Join(etc, "capshim-status.toml") + " (the name capshim-status): ok (loads, trusted): ",
		"    runtime: " + runcPath + " (named in the policy): ok\n",
		" (the same as capshim-tools)\n",
		"learn/explain: ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q", want)
		}
	}

	// A policy others could write: the runtime refuses it, status says so.
	if err := os.Chmod(pol, 0o666); err != nil {
		t.Fatal(err)
	}
	r = status()
	if r.code != 1 || !strings.Contains(r.stdout, "    problem: docker runtime capshim: capshim: untrusted policy: ") ||
		!strings.Contains(r.stdout, "      fix: every create, run and exec of this runtime fails until it loads") ||
		!strings.HasSuffix(r.stdout, "status: 1 problem(s)\n") {
		t.Errorf("status with a world-writable policy: exit %d, want 1 with the problem and its fix", r.code)
	}
}
