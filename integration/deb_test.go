//go:build integration

package integration

// make deb's package, installed on this machine with dpkg: the binaries
// land in /usr/bin (one directory, of one build), capshim status and
// capshim version work from there, the man page and the bash completion
// are where man and bash look, and dpkg --purge leaves nothing behind
// (the package has no conffile; /usr/local/bin is not touched).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDebPackage(t *testing.T) {
	requireRoot(t)
	for _, b := range []string{"dpkg", "dpkg-deb", "dpkg-query"} {
		requireBinary(t, b)
	}
	if exec.Command("dpkg-query", "-W", "capshim").Run() == nil {
		t.Skip("a capshim package is installed on this machine; the test installs and purges its own")
	}
	if _, err := os.Lstat("/usr/bin/capshim"); err == nil {
		t.Skip("/usr/bin/capshim exists outside a package; the test would replace it")
	}
	localBefore := listing(t, "/usr/local/bin")

	out := t.TempDir()
	arch := strings.TrimSpace(runCmd(cmdOpts{}, "dpkg", "--print-architecture").stdout)
	r := runCmd(cmdOpts{timeout: 2 * time.Minute}, "../packaging/deb/build.sh", filepath.Dir(capshimBin), arch, out)
	if r.err != nil {
		t.Fatalf("building the package: %v", r)
	}
	deb := strings.TrimSpace(r.stdout)
	contents := runCmd(cmdOpts{}, "dpkg-deb", "-c", deb)
	if contents.err != nil {
		t.Fatalf("%v", contents)
	}
	t.Logf("%s:\n%s", deb, contents.stdout)
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(contents.stdout), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && !strings.HasSuffix(f[5], "/") {
			files = append(files, strings.TrimPrefix(f[5], "."))
		}
		if len(f) >= 2 && f[1] != "root/root" {
			t.Errorf("%s is owned by %s, not root/root: capshim would not trust it", f[len(f)-1], f[1])
		}
	}

	t.Cleanup(func() {
		if exec.Command("dpkg-query", "-W", "capshim").Run() == nil {
			if r := runCmd(cmdOpts{timeout: 2 * time.Minute}, "dpkg", "--purge", "capshim"); r.err != nil {
				t.Errorf("cleanup: %v", r)
			}
		}
	})
	if r := runCmd(cmdOpts{timeout: 2 * time.Minute}, "dpkg", "-i", deb); r.err != nil {
		t.Fatalf("%v", r)
	}
	for _, want := range []string{"/usr/bin/capshim", "/usr/bin/capshim-tools", "/usr/bin/capshim-trace",
		"/usr/share/doc/capshim/shim.toml.example", "/usr/share/man/man1/capshim.1.gz", "/usr/share/bash-completion/completions/capshim"} {
		if _, err := os.Stat(want); err != nil {
			t.Errorf("installed package: %v", err)
		}
	}
	if r := runCmd(cmdOpts{}, "dpkg-query", "-W", "-f", "${Conffiles}", "capshim"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("the package has conffiles: %q", r.stdout)
	}

	env := envWithout([]string{"CAPSHIM_"})
	v := runCmd(cmdOpts{env: env}, "/usr/bin/capshim", "version")
	t.Logf("%v", v)
	if v.err != nil || strings.Contains(v.stdout, "different builds") ||
		!strings.Contains(v.stdout, "  /usr/bin/capshim\n") || !strings.Contains(v.stdout, "  /usr/bin/capshim-trace\n") || !strings.Contains(v.stdout, "runc version") {
		t.Errorf("capshim version from the package: want exit 0, the three binaries in /usr/bin of one build, and runc's version")
	}

	// status on a daemon.json the packaged capshim installed into.
	dir := shortTempDir(t, "capshim-deb-")
	cfg := filepath.Join(dir, "daemon.json")
	pol := filepath.Join(dir, "shim.toml")
	if r := runCmd(cmdOpts{env: env}, "/usr/bin/capshim", "install", "docker", "--file", cfg, "--policy", pol); r.err != nil {
		t.Fatalf("%v", r)
	}
	st := runCmd(cmdOpts{env: env}, "/usr/bin/capshim", "status", "--engine", "docker", "--docker", cfg)
	t.Logf("%v", st)
	if st.err != nil || !strings.Contains(st.stdout, "  runtime capshim: /usr/bin/capshim\n") ||
		!strings.Contains(st.stdout, "    policy: "+pol+" (named on the command line): ok (loads, trusted)") ||
		!strings.HasSuffix(st.stdout, "status: ok\n") {
		t.Errorf("capshim status from the package: want exit 0 and the runtime /usr/bin/capshim with its policy")
	}
	if r := runCmd(cmdOpts{}, "man", "-w", "capshim"); r.err != nil || strings.TrimSpace(r.stdout) != "/usr/share/man/man1/capshim.1.gz" {
		t.Errorf("man -w capshim: %v", r)
	}
	comp := runCmd(cmdOpts{}, "bash", "-c", `source /usr/share/bash-completion/completions/capshim && COMP_WORDS=(capshim sta) COMP_CWORD=1 && _capshim && echo "${COMPREPLY[@]}"`)
	if comp.err != nil || strings.TrimSpace(comp.stdout) != "status" {
		t.Errorf("bash completion of 'capshim sta': %v", comp)
	}

	if r := runCmd(cmdOpts{timeout: 2 * time.Minute}, "dpkg", "--purge", "capshim"); r.err != nil {
		t.Fatalf("%v", r)
	}
	if exec.Command("dpkg-query", "-W", "capshim").Run() == nil {
		t.Errorf("dpkg-query still knows capshim after dpkg --purge")
	}
	for _, f := range append(files, "/usr/share/doc/capshim") {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("%s is left after dpkg --purge", f)
		}
	}
	if d := diffListing(localBefore, listing(t, "/usr/local/bin")); d != "" {
		t.Errorf("/usr/local/bin changed:\n%s", d)
	}
}
