//go:build integration

package integration

// File capabilities with real runc and crun: the kernel refuses to execute a binary
// whose file capabilities (security.capability, effective bit) are not all
// in the bounding set, with EPERM and no capability check. The workload
// runs a copy of busybox given cap_net_raw+ep that does nothing with it
// (its applet is true), so the only sign that it needs NET_RAW is the
// executable it runs.

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netRawEP is a security.capability value (revision 2) of cap_net_raw+ep.
func netRawEP() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, 0x02000000|1) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<13)    // permitted: CAP_NET_RAW
	return b
}

func TestLearnFileCapabilities(t *testing.T) {
	for _, rt := range recordingRuntimes(t) {
		t.Run(rt.name, func(t *testing.T) { learnFileCapabilities(t, rt) })
	}
	if _, err := os.Stat("/sys/fs/bpf/capshim"); err == nil {
		t.Fatalf("capshim's BPF pins remain after the last delete")
	}
}

func learnFileCapabilities(t *testing.T, rt ociRuntime) {
	e := setupLearnEnv(t, rt)
	data, err := os.ReadFile(filepath.Join(e.rootfs, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	fcap := filepath.Join(e.rootfs, "fcap")
	if err := os.MkdirAll(fcap, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(fcap, "true")
	writeFile(t, exe, string(data), 0o755)
	if err := unix.Setxattr(exe, "security.capability", netRawEP(), 0); err != nil {
		t.Fatalf("setting file capabilities: %v", err)
	}
	w := learnWorkload{name: "filecap", script: workloadCheck("filecap", "/fcap/true"), needs: []string{"CAP_NET_RAW"}}
	profile := rt.name + "-filecap"

	out, log := e.run(t, e.policy(t, learnAllPolicy), w, fmt.Sprintf("capshim-lfc-%d-%s-l", os.Getpid(), rt.name), []string{"CAPSHIM_LEARN=" + profile})
	if !strings.Contains(out, "capshim-workload: OK") {
		t.Fatalf("learned workload failed:\n%s\nlog:\n%s", out, log)
	}
	r := e.tools(t, "learn", "show", profile)
	if r.err != nil {
		t.Fatalf("%v\nlog:\n%s", r, log)
	}
	if !strings.Contains(r.stdout, `keep = ["CAP_NET_RAW"]`+"\n") || !strings.Contains(r.stdout, "/fcap/true has file capabilities CAP_NET_RAW") {
		t.Fatalf("learned rule does not hold exactly NET_RAW with its evidence:\n%s", r.stdout)
	}
	js := e.tools(t, "learn", "show", "--format", "json", profile)
	if strings.Contains(js.stdout, `"used"`) && strings.Contains(js.stdout, "CAP_NET_RAW\":") {
		t.Fatalf("NET_RAW counted as a capability check, so the test does not test file capabilities:\n%s", js.stdout)
	}
	t.Logf("learned:\n%s", r.stdout)

	// The emitted rule runs it.
	out, _ = e.run(t, e.policy(t, "\n"+r.stdout), w, fmt.Sprintf("capshim-lfc-%d-%s-r", os.Getpid(), rt.name), nil)
	if !strings.Contains(out, "capshim-workload: OK") {
		t.Fatalf("the learned rule does not run the workload:\n%s\nrule:\n%s", out, r.stdout)
	}

	// The default policy fails it: the exec is refused.
	out, _ = e.run(t, e.policy(t, ""), w, fmt.Sprintf("capshim-lfc-%d-%s-d", os.Getpid(), rt.name), nil)
	if !strings.Contains(out, "capshim-workload: FAIL") {
		t.Fatalf("the workload runs without NET_RAW:\n%s", out)
	}
	t.Logf("default policy: %s", strings.TrimSpace(out))

	// Run as the entrypoint, it is refused before anything of the
	// container ran, and explain names what its file capabilities demand.
	direct := w
	direct.args = []string{"/fcap/true"}
	id := fmt.Sprintf("capshim-lfc-%d-%s-e", os.Getpid(), rt.name)
	_, log = e.run(t, e.policy(t, ""), direct, id, nil)
	ex := e.tools(t, "explain", id)
	if !strings.Contains(ex.stdout, "/fcap/true carries file capabilities CAP_NET_RAW, which the policy dropped") ||
		!strings.Contains(log, "could not execute /fcap/true: it carries file capabilities CAP_NET_RAW that the policy dropped") {
		t.Fatalf("explain and the log do not name NET_RAW for the refused entrypoint:\n%s\nlog:\n%s", ex.stdout, log)
	}
	t.Logf("explain of the refused entrypoint:\n%s", ex.stdout)
}
