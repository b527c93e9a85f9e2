//go:build integration

package integration

// `capshim install ENGINE` run as the README shows it, with the checks
// every install must pass: the file changed, its backup holds what was
// there before capshim's first change, the policy is written or kept, and
// a second run changes nothing.

import (
	"os"
	"strings"
	"testing"
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
// policy when nothing is there; policy "" is an install with --no-policy,
// which must say it wrote none. It returns install's output.
func installFresh(t *testing.T, file, policy string, args ...string) string {
	t.Helper()
	old := readFile(t, file)
	wantBackup, backupErr := os.ReadFile(file + ".capshim-backup")
	if backupErr != nil {
		wantBackup = old
	}
	var statErr error = os.ErrNotExist
	if policy != "" {
		_, statErr = os.Lstat(policy)
	}
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
	if policy == "" {
		if !strings.Contains(r.stdout, "policy: none written (--no-policy)") {
			t.Errorf("install does not say it wrote no policy:\n%s", r.stdout)
		}
		return r.stdout
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
