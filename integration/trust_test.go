//go:build integration

package integration

// Races against capshim's trust checks: while capshim runs again and
// again, a goroutine swaps what a path names between a state capshim
// trusts and one an unprivileged user (uid 65534) chose. capshim must
// only ever use what it checked: every run either uses the trusted
// policy or runtime, or refuses; the attacker's choice is never used.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// trustAttacker is the uid that owns what the attacker places.
const trustAttacker = 65534

// Bounds of one race: whichever is reached first.
const (
	trustRaceRuns = 200
	trustRaceTime = 20 * time.Second
)

// trustSetProtectedSymlinks sets fs.protected_symlinks for the test and
// puts the old value back when it ends.
func trustSetProtectedSymlinks(t *testing.T, v string) {
	t.Helper()
	const p = "/proc/sys/fs/protected_symlinks"
	old, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("cannot read %s: %v", p, err)
	}
	if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
		t.Skipf("cannot set %s: %v", p, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(p, old, 0o644); err != nil {
			t.Errorf("restoring %s to %q: %v", p, strings.TrimSpace(string(old)), err)
		}
	})
}

// trustUserLink makes a symbolic link at path, owned by the attacker.
func trustUserLink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, trustAttacker, trustAttacker); err != nil {
		t.Fatal(err)
	}
}

// trustUserDir makes a directory owned by the attacker (mode 0755).
func trustUserDir(t *testing.T) string {
	t.Helper()
	d := newDir(t, 0o755)
	if err := os.Chown(d, trustAttacker, trustAttacker); err != nil {
		t.Fatal(err)
	}
	return d
}

// trustMarkerRuntime writes an executable script that appends one line to
// marker and exits 0, owned by uid.
func trustMarkerRuntime(t *testing.T, path, marker string, uid int) string {
	t.Helper()
	writeFile(t, path, fmt.Sprintf("#!/bin/sh\necho ran >> %s\n", marker), 0o755)
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	return path
}

// trustLines counts the lines of a marker file (0 when it is absent).
func trustLines(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

// trustRace is one race: setup prepares two names, a and b, in a
// directory; the flipper swaps them with one atomic rename (exchange),
// so the path capshim reads names the trusted object and the attacker's
// one in turn.
type trustRace struct {
	name string
	// setup returns the two names to swap, the policy capshim is given,
	// the capshim arguments, and the marker files the trusted and the
	// attacker's choice leave when they are used.
	setup func(t *testing.T) (a, b, policy string, args []string, good, evil string)
	// accepted: the trusted state must be used at least once (a race
	// whose trusted state capshim accepts); false when capshim must
	// refuse every state.
	accepted bool
}

func trustRaces() []trustRace {
	// policyPair writes the trusted policy (runtime: a root-owned script
	// leaving goodMarker) and the attacker's (owned by uid 65534, in the
	// attacker's directory; runtime: a root-owned program leaving
	// evilMarker: a policy of the attacker's choosing can name any
	// root-owned program).
	policyPair := func(t *testing.T) (goodPolicy, evilPolicy, goodMarker, evilMarker string) {
		markers := t.TempDir()
		goodMarker = filepath.Join(markers, "good")
		evilMarker = filepath.Join(markers, "evil")
		bin := newDir(t, 0o755)
		goodRT := trustMarkerRuntime(t, filepath.Join(bin, "good-runtime"), goodMarker, 0)
		evilRT := trustMarkerRuntime(t, filepath.Join(bin, "evil-runtime"), evilMarker, 0)
		goodPolicy = writePolicy(t, strings.Replace(runcPolicy, runcPath, goodRT, 1))
		attacker := trustUserDir(t)
		evilPolicy = filepath.Join(attacker, "evil.toml")
		writeFile(t, evilPolicy, strings.Replace(runcPolicy, runcPath, evilRT, 1), 0o644)
		if err := os.Chown(evilPolicy, trustAttacker, trustAttacker); err != nil {
			t.Fatal(err)
		}
		return
	}
	// exec loads the policy (it fails closed) and runs the policy's
	// runtime. It reads the container's state first, so a minimal runc
	// state stands in for a container; none runs.
	execArgs := func(t *testing.T) []string {
		root := runcRoot(t)
		if err := os.MkdirAll(filepath.Join(root, "nosuch"), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "nosuch", "state.json"), `{"config":{"labels":[]}}`, 0o600)
		return append(globalArgs(root, filepath.Join(t.TempDir(), "log.json")), "exec", "nosuch", "true")
	}
	return []trustRace{
		{name: "policy: a root-owned file and a user's link swapped in a sticky directory", accepted: true,
			setup: func(t *testing.T) (string, string, string, []string, string, string) {
				good, evil, gm, em := policyPair(t)
				sticky := newDir(t, os.ModeSticky|0o777)
				a, b := filepath.Join(sticky, "shim.toml"), filepath.Join(sticky, "alt")
				copyFile(t, good, a, 0o644)
				trustUserLink(t, evil, b)
				return a, b, a, execArgs(t), gm, em
			}},
		{name: "policy: a root-owned link and a user's link swapped in a sticky directory", accepted: true,
			setup: func(t *testing.T) (string, string, string, []string, string, string) {
				good, evil, gm, em := policyPair(t)
				sticky := newDir(t, os.ModeSticky|0o777)
				a, b := filepath.Join(sticky, "shim.toml"), filepath.Join(sticky, "alt")
				if err := os.Symlink(good, a); err != nil {
					t.Fatal(err)
				}
				trustUserLink(t, evil, b)
				return a, b, a, execArgs(t), gm, em
			}},
		{name: "policy: second hop of a root-owned link, in the user's directory, flipped",
			setup: func(t *testing.T) (string, string, string, []string, string, string) {
				good, evil, gm, em := policyPair(t)
				attacker := trustUserDir(t)
				a, b := filepath.Join(attacker, "hop"), filepath.Join(attacker, "alt")
				trustUserLink(t, good, a)
				trustUserLink(t, evil, b)
				policy := filepath.Join(newDir(t, 0o755), "shim.toml")
				if err := os.Symlink(a, policy); err != nil {
					t.Fatal(err)
				}
				return a, b, policy, execArgs(t), gm, em
			}},
		{name: "runtime: a root-owned link to runc and a user's link to the user's program swapped in a sticky directory", accepted: true,
			setup: func(t *testing.T) (string, string, string, []string, string, string) {
				markers := t.TempDir()
				evilMarker := filepath.Join(markers, "evil")
				attacker := trustUserDir(t)
				evilRT := trustMarkerRuntime(t, filepath.Join(attacker, "evil"), evilMarker, trustAttacker)
				sticky := newDir(t, os.ModeSticky|0o777)
				a, b := filepath.Join(sticky, "runc"), filepath.Join(sticky, "alt")
				if err := os.Symlink("/usr/sbin/runc", a); err != nil {
					t.Fatal(err)
				}
				trustUserLink(t, evilRT, b)
				policy := policyWithRuntime(t, a)
				// --version loads the policy, then runs the runtime.
				return a, b, policy, []string{"--version"}, "", evilMarker
			}},
	}
}

// TestTrustRace runs each race with fs.protected_symlinks 0 and 1: the
// outcome must not depend on it.
func TestTrustRace(t *testing.T) {
	requireRunc(t)
	for _, ps := range []string{"0", "1"} {
		for _, tc := range trustRaces() {
			t.Run("protected_symlinks="+ps+"/"+tc.name, func(t *testing.T) {
				trustSetProtectedSymlinks(t, ps)
				trustRunRace(t, tc)
			})
		}
	}
}

func trustRunRace(t *testing.T, tc trustRace) {
	a, b, policy, args, goodMarker, evilMarker := tc.setup(t)
	stop := make(chan struct{})
	var flips atomic.Int64
	var flipErr atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
				flipErr.Store(err)
				return
			}
			flips.Add(1)
		}
	}()
	began := time.Now()
	var ok, refused, runs int
	var firstRefusal string
	for runs < trustRaceRuns && time.Since(began) < trustRaceTime {
		runs++
		res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, args...))
		if trustLines(evilMarker) > 0 {
			t.Errorf("run %d used the attacker's choice (marker %s written)\n%s", runs, evilMarker, res)
			break
		}
		if res.code == 0 {
			ok++
			continue
		}
		refused++
		if !strings.Contains(res.stderr, "untrusted") {
			t.Errorf("run %d failed (exit %d) without naming the trust problem:\n%s", runs, res.code, res)
			break
		}
		if firstRefusal == "" {
			firstRefusal = strings.TrimSpace(res.stderr)
		}
	}
	close(stop)
	wg.Wait()
	if err := flipErr.Load(); err != nil {
		t.Fatalf("flipping %s and %s: %v", a, b, err)
	}
	t.Logf("%d runs in %v, %d flips: %d used the trusted state, %d refused; refusal: %s",
		runs, time.Since(began).Round(time.Millisecond), flips.Load(), ok, refused, firstRefusal)
	if goodMarker != "" && trustLines(goodMarker) != ok {
		t.Errorf("%d runs succeeded but the trusted runtime ran %d times", ok, trustLines(goodMarker))
	}
	if tc.accepted && ok == 0 {
		t.Errorf("the trusted state was never used: the race did not exercise the check")
	}
	if !tc.accepted && ok != 0 {
		t.Errorf("%d runs succeeded; every state must be refused", ok)
	}
	if refused == 0 {
		t.Errorf("no run was refused: the flipper never showed capshim the attacker's state")
	}
}
