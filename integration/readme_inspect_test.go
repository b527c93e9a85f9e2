//go:build integration

package integration

// README "Check what containers really have": `capshim inspect`, in text
// and JSON, on a container capshim reduced and on a control container of
// plain runc.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// inspectProc is one process of `capshim inspect --format json`.
type inspectProc struct {
	PID          int                 `json:"pid"`
	Container    string              `json:"container"`
	Command      string              `json:"command"`
	UID          int                 `json:"uid"`
	Capabilities map[string][]string `json:"capabilities"`
}

// runInspect runs `capshim inspect ARGS...` as the README shows it: no
// --config and no CAPSHIM_ variables (the policy default is then
// /etc/capshim/shim.toml, or the built-in one where there is none).
func runInspect(t *testing.T, args ...string) cmdResult {
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
		r := runInspect(t, "--format", "json")
		var procs []inspectProc
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
		r := runInspect(t, capID[:12])
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
		r := runInspect(t, ctlID[:12])
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

// randomHexID returns a random container id of 64 hex digits, the form
// capshim inspect recognises in a cgroup path.
func randomHexID(t *testing.T) string {
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
		id := randomHexID(t)
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
