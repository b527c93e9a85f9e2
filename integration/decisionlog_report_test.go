//go:build integration

package integration

// The decision log that outlives the container, and what is read back
// from it: the default log under /var/log/capshim (TestMain takes the
// tests' lines out of it again), the engine's names in every entry, and
// capshim report, explain and inspect finding containers by those names,
// with real runc, containerd's CRI and Docker 20.10.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capshim/capshim/capability"
)

// reportGroup is what the tests read of one group of `capshim report
// --format json`.
type reportGroup struct {
	Engine, Namespace, Name, Image string
	Sandbox                        bool
	Containers, Execs              int
	Dropped, Granted, Denied       map[string]int
	Refused                        map[string]struct{ Containers int }
}

// runReport runs `capshim report` on log and state, in both formats; it
// logs the text (what the README shows) and returns the JSON groups.
func runReport(t *testing.T, log, state string) []reportGroup {
	t.Helper()
	text := stateTool(state, "report", "--log", log)
	if text.err != nil {
		t.Fatalf("%v", text)
	}
	for _, line := range strings.Split(strings.TrimRight(text.stdout, "\n"), "\n") {
		t.Logf("report: %s", line)
	}
	r := stateTool(state, "report", "--log", log, "--format", "json")
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	var out struct{ Groups []reportGroup }
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("report --format json: %v\n%s", err, r.stdout)
	}
	return out.Groups
}

// findReportGroup returns the group of namespace/name, failing without it.
func findReportGroup(t *testing.T, groups []reportGroup, engine, namespace, name string, sandbox bool) reportGroup {
	t.Helper()
	for _, g := range groups {
		if g.Engine == engine && g.Namespace == namespace && g.Name == name && g.Sandbox == sandbox {
			return g
		}
	}
	t.Fatalf("no report group for engine %s, namespace %q, name %q (sandbox %v): %+v", engine, namespace, name, sandbox, groups)
	return reportGroup{}
}

// decisionEntries returns the decision log's entries for container id.
func decisionEntries(t *testing.T, log, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logLines(t, log) {
		if l.obj == nil {
			t.Errorf("a decision log line is not JSON: %s", l.raw)
			continue
		}
		if l.obj["container"] == id {
			out = append(out, l.obj)
		}
	}
	return out
}

// TestDecisionLogDefault: a policy without a log key logs every decision
// to /var/log/capshim/decisions.log, root-only, where it outlives the
// bundle (and the runtime's --log in it).
func TestDecisionLogDefault(t *testing.T) {
	requireRunc(t)
	const path = "/var/log/capshim/decisions.log"
	policy := writePolicy(t, runcPolicy) // no log key
	b := newBundle(t, bundleSpec{annotations: map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.container-name": "dflt"}})
	res, _, id := runBundle(t, b, policy)
	assertCaps(t, res.stdout, maskMinimal)

	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatalf("the default decision log: %v", err)
		}
		if st.Mode().Perm() != want || st.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: mode %04o, uid %d; want %04o, root", p, st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid, want)
		}
	}
	entries := decisionEntries(t, path, id)
	if len(entries) != 1 {
		t.Fatalf("%d entries for %s in %s, want its one decision:\n%s", len(entries), id, path, tailFile(path, 5))
	}
	e := entries[0]
	if e["kind"] != "decision" || e["command"] != "run" || e["name"] != "dflt" || e["engine"] != "containerd-cri" {
		t.Errorf("entry %v: want the run decision with the engine's name dflt", e)
	}
	t.Logf("%s: %s", path, tailFile(path, 1))
}

// TestReportCRI: pods in two namespaces run a container named web that
// chowns a file. In shop a rule grants CAP_CHOWN on request and the second
// capability asked for is denied; in other nothing is granted and the
// refused chown is recorded. The report sums them up by namespace and
// name; explain finds them by name (web alone fits three); inspect finds a
// running container by namespace/pod/name and shows what its own status
// says.
func TestReportCRI(t *testing.T) {
	requireContainerd(t)
	state := newStateDir(t)
	rule := `[[rule]]
name = "shop-chown"
capabilities = ["CAP_CHOWN"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "shop"
`
	pol := newLivePolicy(t, fmt.Sprintf("state_dir = %q\n", state)+policyTOML(rule))
	d := startContainerd(t, []criHandler{{name: "runc"}, {name: "capshim", binary: capshimBin, annotations: true}}, []string{"CAPSHIM_CONFIG=" + pol.path})
	d.importImages(t, "k8s.io")
	c := dialCRI(t, d)
	script := []string{"sh", "-c", chownScript}
	pod := func() string { return fmt.Sprintf("capshim-exit-pod-%d", criPodSeq) }

	out, id1 := runPodToExit(t, c, "shop", "web", imageBusybox, map[string]string{"capshim.io/capabilities": "CAP_CHOWN,CAP_NET_RAW"}, script)
	if !chownWorked(t, out) {
		t.Fatalf("the granted chown failed:\n%s", out)
	}
	assertCaps(t, out, maskMinimal|maskChown)
	out, _ = runPodToExit(t, c, "shop", "web", imageBusybox, map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}, script)
	if !chownWorked(t, out) {
		t.Fatalf("the granted chown failed:\n%s", out)
	}
	out, id3 := runPodToExit(t, c, "other", "web", imageBusybox, nil, script)
	if chownWorked(t, out) {
		t.Fatalf("chown worked without a rule:\n%s", out)
	}
	pod3 := pod()

	// Every entry of the first container names it as CRI did.
	for _, e := range decisionEntries(t, pol.logPath, id1) {
		if e["engine"] != "containerd-cri" || e["name"] != "web" || e["namespace"] != "shop" || e["image"] != imageBusybox || !strings.HasPrefix(fmt.Sprint(e["pod"]), "capshim-exit-pod-") {
			t.Errorf("entry without the engine's names: %v", e)
		}
	}

	groups := runReport(t, pol.logPath, state)
	shop := findReportGroup(t, groups, "containerd-cri", "shop", "web", false)
	if shop.Image != imageBusybox || shop.Containers != 2 || shop.Granted["CAP_CHOWN by shop-chown"] != 2 || shop.Denied["CAP_NET_RAW"] != 1 ||
		shop.Dropped["CAP_NET_RAW"] != 2 || shop.Dropped["CAP_CHOWN"] != 0 {
		t.Errorf("shop/web: %+v; want 2 containers of %s, CAP_CHOWN granted twice by shop-chown, CAP_NET_RAW denied once and dropped from both", shop, imageBusybox)
	}
	other := findReportGroup(t, groups, "containerd-cri", "other", "web", false)
	if other.Containers != 1 || other.Dropped["CAP_CHOWN"] != 1 || other.Refused["CAP_CHOWN"].Containers != 1 || len(other.Granted) != 0 {
		t.Errorf("other/web: %+v; want 1 container, CAP_CHOWN dropped and refused", other)
	}
	if sb := findReportGroup(t, groups, "containerd-cri", "shop", "", true); sb.Containers != 2 {
		t.Errorf("shop's sandboxes: %+v; want 2", sb)
	}

	t.Run("explain by name", func(t *testing.T) {
		r := stateTool(state, "explain", "web")
		if r.err == nil || !strings.Contains(r.stderr, `"web" fits 3 containers`) || !strings.Contains(r.stderr, "other/"+pod3+"/web") {
			t.Errorf("explain web: %v; want the three candidates", r)
		}
		for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			t.Logf("explain web: %s", line)
		}
		ex := explainRefusedChown(t, state, "other/"+pod3+"/web")
		if !strings.Contains(ex, "container "+id3+" ") {
			t.Errorf("explain other/%s/web is not container %s:\n%s", pod3, id3, ex)
		}
	})

	t.Run("inspect by name", func(t *testing.T) {
		res, err := c.run(t, criPod{handler: "capshim", namespace: "live"})
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("live/capshim-pod-%d/main", criPodSeq)
		inspect := func(args ...string) cmdResult {
			return runCmd(cmdOpts{timeout: time.Minute, env: envWithout([]string{"CAPSHIM_"})}, capshimBin, append([]string{"inspect"}, args...)...)
		}
		r := inspect("--format", "json", name)
		if r.err != nil {
			t.Fatalf("%v", r)
		}
		var procs []struct {
			Container    string
			Capabilities map[string][]string
		}
		if err := json.Unmarshal([]byte(r.stdout), &procs); err != nil || len(procs) == 0 {
			t.Fatalf("inspect %s: %v\n%s", name, err, r.stdout)
		}
		own := capLines(t, res.containerStatus)
		for _, p := range procs {
			eff, _ := capability.ParseList(p.Capabilities["effective"])
			bnd, _ := capability.ParseList(p.Capabilities["bounding"])
			if p.Container != res.ctrID || uint64(bnd) != own["CapBnd"] || uint64(eff) != own["CapEff"] {
				t.Errorf("inspect %s: container %s, bounding %s, effective %s; want %s with its own CapBnd %016x, CapEff %016x",
					name, p.Container, bnd, eff, res.ctrID, own["CapBnd"], own["CapEff"])
			}
		}
		text := inspect(name)
		for _, line := range strings.Split(strings.TrimSpace(text.stdout), "\n") {
			t.Logf("inspect %s: %s", name, line)
		}
	})
	c.removeAllPods(t)
}

// TestReportDocker: Docker 20.10 tells the runtime no name, pod or image;
// its entries say engine docker (from the runtime's --root), and the
// report sums its containers up in one group.
func TestReportDocker(t *testing.T) {
	state := newStateDir(t)
	log := filepath.Join(t.TempDir(), "logs", "decisions.log")
	policy := writePolicy(t, engineLearnPolicy(state, log, ruleChown))
	e := dockerStart(t, map[string]any{"runtimes": map[string]any{
		"capshim": map[string]any{"path": capshimBin, "runtimeArgs": []string{"--capshim-config=" + policy}},
	}}, nil)
	out, id1 := runEngineContainer(t, e.docker, "--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN", imageBusybox, "sh", "-c", chownScript)
	if !chownWorked(t, out) {
		t.Fatalf("the granted chown failed:\n%s", out)
	}
	out, _ = runEngineContainer(t, e.docker, "--runtime", "capshim", imageBusybox, "sh", "-c", chownScript)
	if chownWorked(t, out) {
		t.Fatalf("chown worked without a request:\n%s", out)
	}
	entries := decisionEntries(t, log, id1)
	if len(entries) == 0 || entries[0]["engine"] != "docker" || entries[0]["kind"] != "decision" {
		t.Errorf("entries of %s: %v; want a decision with engine docker", id1, entries)
	}
	g := findReportGroup(t, runReport(t, log, state), "docker", "", "", false)
	if g.Containers != 2 || g.Granted["CAP_CHOWN by chown-anywhere"] != 1 || g.Refused["CAP_CHOWN"].Containers != 1 {
		t.Errorf("docker group: %+v; want 2 containers, CAP_CHOWN granted once by chown-anywhere, refused once", g)
	}

	// inspect NAME asks Docker's CLI for the id of the name, and reads
	// the container's processes.
	r := e.docker("run", "-d", "--name", "rpt-web", "--network", "none", "--runtime", "capshim", imageBusybox, "sh", "-c", "grep Cap /proc/self/status; exec sleep 120")
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	id := strings.TrimSpace(r.stdout)
	var own string
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(own, "CapAmb") && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		own = e.docker("logs", "rpt-web").stdout
	}
	status := capLines(t, own)
	ins := runCmd(cmdOpts{timeout: time.Minute, env: e.env}, capshimBin, "inspect", "--format", "json", "rpt-web")
	if ins.err != nil {
		t.Fatalf("%v", ins)
	}
	var procs []struct {
		Container    string
		Capabilities map[string][]string
	}
	if err := json.Unmarshal([]byte(ins.stdout), &procs); err != nil || len(procs) == 0 {
		t.Fatalf("inspect rpt-web: %v\n%s", err, ins.stdout)
	}
	for _, p := range procs {
		eff, _ := capability.ParseList(p.Capabilities["effective"])
		if p.Container != id || uint64(eff) != status["CapEff"] || status["CapEff"] != maskMinimal {
			t.Errorf("inspect rpt-web: container %s, effective %s; want %s with its own CapEff %016x (the default)", p.Container, eff, id, status["CapEff"])
		}
	}
	text := runCmd(cmdOpts{timeout: time.Minute, env: e.env}, capshimBin, "inspect", "rpt-web")
	for _, line := range strings.Split(strings.TrimSpace(text.stdout), "\n") {
		t.Logf("inspect rpt-web: %s", line)
	}
}

// TestReportPodman: Podman marks its containers (io.container.manager =
// libpod), and passes no --log at all: the decision log is where its
// decisions can be found.
func TestReportPodman(t *testing.T) {
	p := podmanSetup(t)
	state := newStateDir(t)
	log := filepath.Join(t.TempDir(), "decisions.log")
	policy := writePolicy(t, engineLearnPolicy(state, log))
	cli := func(argv ...string) cmdResult {
		return p.podman("containers.conf", append([]string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + policy}, argv...)...)
	}
	out, id := runEngineContainer(t, cli, "--name", "pm-web", imageBusybox, "sh", "-c", chownScript)
	if chownWorked(t, out) {
		t.Fatalf("chown worked without a rule:\n%s", out)
	}
	entries := decisionEntries(t, log, id)
	if len(entries) == 0 || entries[0]["engine"] != "podman" {
		t.Errorf("entries of %s: %v; want a decision with engine podman", id, entries)
	}
	// What Podman 4.3 says about a container, as its record keeps it.
	if r := stateTool(state, "explain", "--format", "json", id); r.err == nil {
		var recs []struct{ Engine map[string]string }
		if json.Unmarshal([]byte(r.stdout), &recs) == nil && len(recs) > 0 {
			t.Logf("podman's annotations as recorded: %v", recs[0].Engine)
		}
	}
	g := findReportGroup(t, runReport(t, log, state), "podman", "", "", false)
	if g.Containers != 1 || g.Dropped["CAP_CHOWN"] != 1 {
		t.Errorf("podman group: %+v; want 1 container with CAP_CHOWN dropped", g)
	}
}
