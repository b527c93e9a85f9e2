//go:build integration

package integration

// Learning and explaining with real runc and crun: busybox workloads that
// each need one known capability are learned under Docker's 14 default
// capabilities; the rule `capshim learn show` emits runs them; the default
// policy fails them and `capshim explain` names what they missed.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

// learnWorkload is a workload that needs exactly the capabilities needs.
type learnWorkload struct {
	name   string
	script string // prints OK or FAIL
	needs  []string
	// user and ambient run the workload as that uid with those ambient
	// capabilities (NET_BIND_SERVICE for a non-root server).
	user    uint32
	ambient []string
	// exec runs the script with exec in a container that only sleeps, so
	// the capability is used by an exec'd process alone.
	exec bool
	// args, when set, is the container's process instead of the script;
	// its start may fail (an entrypoint the kernel refuses to execute).
	args []string
}

// workloadCheck wraps a command: OK when it succeeds, FAIL otherwise.
func workloadCheck(name, cmd string) string {
	return fmt.Sprintf(`if %s; then echo "capshim-workload: OK %s"; else echo "capshim-workload: FAIL %s"; fi`, cmd, name, name)
}

func learnWorkloads() []learnWorkload {
	return []learnWorkload{
		{name: "chown", script: workloadCheck("chown", "touch /tmp/f && chown 1000:1000 /tmp/f"), needs: []string{"CAP_CHOWN"}},
		{name: "su", script: workloadCheck("su", "su -s /bin/sh nobody -c true"), needs: []string{"CAP_SETGID", "CAP_SETUID"}},
		// In the container's own network namespace loopback is down, so
		// the ping cannot be answered; what needs NET_RAW is opening its
		// raw socket, which fails with "permission denied" without it.
		{name: "ping", script: `out=$(ping -c1 -W1 127.0.0.1 2>&1); case "$out" in *ermission*|*ot\ permitted*) echo "capshim-workload: FAIL ping: $out";; *) echo "capshim-workload: OK ping";; esac`, needs: []string{"CAP_NET_RAW"}},
		{name: "dac", script: workloadCheck("dac", "echo x > /data/locked"), needs: []string{"CAP_DAC_OVERRIDE"}},
		{name: "mknod", script: workloadCheck("mknod", "mknod /tmp/null c 1 3"), needs: []string{"CAP_MKNOD"}},
		{name: "bind80", script: workloadCheck("bind80", "nc -l -p 80 -w 1 127.0.0.1 </dev/null & p=$!; sleep 0.3; kill -0 $p"), needs: []string{"CAP_NET_BIND_SERVICE"},
			user: 1000, ambient: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "none", script: workloadCheck("none", "true")},
		{name: "chown-exec", script: workloadCheck("chown-exec", "touch /tmp/f && chown 1000:1000 /tmp/f"), needs: []string{"CAP_CHOWN"}, exec: true},
	}
}

// learnEnv is one runtime with its own state root, rootfs and state
// directory.
type learnEnv struct {
	rt        ociRuntime
	rootfs    string
	stateRoot string
	stateDir  string
}

func setupLearnEnv(t *testing.T, rt ociRuntime) *learnEnv {
	t.Helper()
	requireRoot(t)
	e := &learnEnv{rt: rt, rootfs: filepath.Join(t.TempDir(), "rootfs"), stateRoot: shortTempDir(t, "capshim-lrn-"), stateDir: filepath.Join(t.TempDir(), "state")}
	buildRootfs(t, e.rootfs)
	if err := os.MkdirAll(filepath.Join(e.rootfs, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(e.rootfs, "data", "locked")
	writeFile(t, locked, "", 0o000)
	if err := os.Chown(locked, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return e
}

// policy writes a policy for this runtime and state directory.
func (e *learnEnv) policy(t *testing.T, body string) string {
	t.Helper()
	return writePolicy(t, fmt.Sprintf("runtime = %q\nstate_dir = %q\n", e.rt.path, e.stateDir)+body)
}

// bundle writes a config.json with Docker's 14 capabilities running args.
func (e *learnEnv) bundle(t *testing.T, w learnWorkload, args []string, env []string) string {
	t.Helper()
	g, err := generate.New("linux")
	if err != nil {
		t.Fatal(err)
	}
	g.Config.Version = "1.0.2-dev"
	g.SetRootPath(e.rootfs)
	g.SetProcessTerminal(false)
	g.SetProcessArgs(args)
	g.AddProcessEnv("PATH", "/bin")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		g.AddProcessEnv(k, v)
	}
	g.AddMount(rspec.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}})
	g.AddMount(rspec.Mount{Destination: "/data", Type: "bind", Source: filepath.Join(e.rootfs, "data"), Options: []string{"rbind", "rw"}})
	caps := append([]string(nil), dockerCaps...)
	c := &rspec.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if w.user != 0 {
		g.SetProcessUID(w.user)
		g.SetProcessGID(w.user)
		c.Effective, c.Inheritable, c.Ambient = w.ambient, w.ambient, w.ambient
	}
	g.Config.Process.Capabilities = c
	if e.rt.noDeviceRules {
		g.Config.Linux.Resources.Devices = nil
	}
	b := t.TempDir()
	// The data directory is shared by the bundles of one test; each
	// container writes only /data/locked, which it may fail to.
	if err := g.SaveToFile(filepath.Join(b, "config.json"), generate.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return b
}

// capshim runs capshim with the policy for this runtime.
func (e *learnEnv) capshim(t *testing.T, policy, log string, args ...string) cmdResult {
	argv := []string{capshimBin, "--capshim-config=" + policy, "--root", e.stateRoot, "--log", log, "--log-format", "json"}
	argv = e.rt.wrap(t, append(argv, args...))
	return runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, argv[0], argv[1:]...)
}

// run runs a workload through capshim from create to delete, as engines
// do, and returns what it printed and its runtime log.
func (e *learnEnv) run(t *testing.T, policy string, w learnWorkload, id string, env []string) (output, log string) {
	t.Helper()
	args := []string{"sh", "-c", w.script}
	if w.exec {
		args = []string{"sleep", "30"}
	}
	if w.args != nil {
		args = w.args
	}
	b := e.bundle(t, w, args, env)
	log = filepath.Join(b, "log.json")
	t.Cleanup(func() { deleteContainer(t, e.rt, e.stateRoot, id) })
	// create's stdio stays with the container, which prints to it after
	// create returned: runCmd keeps the files in the bundle.
	argv := e.rt.wrap(t, []string{capshimBin, "--capshim-config=" + policy, "--root", e.stateRoot, "--log", log, "--log-format", "json", "create", "--bundle", b, id})
	cr := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"}), outDir: b}, argv[0], argv[1:]...)
	if cr.err != nil {
		t.Fatalf("create %s: %v\nlog:\n%s", id, cr, tailFile(log, 10))
	}
	if r := e.capshim(t, policy, log, "start", id); r.err != nil && w.args == nil {
		t.Fatalf("start %s: %v", id, r)
	}
	if w.exec {
		p := filepath.Join(b, "process.json")
		writeFile(t, p, execProcessJSON(w), 0o644)
		r := e.capshim(t, policy, log, "exec", "--process", p, id)
		if r.err != nil && !strings.Contains(r.stdout, "capshim-workload") {
			t.Fatalf("exec %s: %v", id, r)
		}
		output = r.stdout
		e.capshim(t, policy, log, "kill", id, "KILL")
	}
	e.waitStopped(t, id)
	if r := e.capshim(t, policy, log, "delete", id); r.err != nil {
		t.Fatalf("delete %s: %v", id, r)
	}
	if !w.exec {
		stdout, _ := os.ReadFile(cr.stdoutPath)
		stderr, _ := os.ReadFile(cr.stderrPath)
		output = string(stdout) + string(stderr)
	}
	logData, _ := os.ReadFile(log)
	return output, string(logData)
}

// execProcessJSON is the process.json of an exec'd workload: Docker's 14
// capabilities, as docker exec asks for them.
func execProcessJSON(w learnWorkload) string {
	caps, _ := json.Marshal(dockerCaps)
	args, _ := json.Marshal([]string{"sh", "-c", w.script})
	return fmt.Sprintf(`{"args":%s,"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":%s,"effective":%s,"permitted":%s}}`, args, caps, caps, caps)
}

func (e *learnEnv) waitStopped(t *testing.T, id string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		argv := e.rt.wrap(t, []string{e.rt.path, "--root", e.stateRoot, "state", id})
		r := runCmd(cmdOpts{timeout: 10 * time.Second}, argv[0], argv[1:]...)
		if r.err != nil || strings.Contains(r.stdout, `"stopped"`) {
			return
		}
	}
	t.Fatalf("container %s did not stop", id)
}

// tools runs a capshim command (learn, explain) on this state directory.
func (e *learnEnv) tools(t *testing.T, args ...string) cmdResult {
	t.Helper()
	return runCmd(cmdOpts{}, capshimBin, append(args, "--state-dir", e.stateDir)...)
}

const learnAllPolicy = `
[[rule]]
name = "learn-everything"
mode = "learn"
`

func TestLearnAndExplain(t *testing.T) {
	for _, rt := range recordingRuntimes(t) {
		t.Run(rt.name, func(t *testing.T) {
			e := setupLearnEnv(t, rt)
			learnPolicy := e.policy(t, learnAllPolicy)
			defaultPolicy := e.policy(t, "")
			for i, w := range learnWorkloads() {
				t.Run(w.name, func(t *testing.T) {
					profile := rt.name + "-" + w.name
					// Learn: the container keeps Docker's 14 and works.
					out, learnLog := e.run(t, learnPolicy, w, fmt.Sprintf("capshim-lrn-%d-%s-%d-l", os.Getpid(), rt.name, i), []string{"CAPSHIM_LEARN=" + profile})
					if !strings.Contains(out, "capshim-workload: OK") {
						t.Fatalf("learned workload failed:\n%s", out)
					}
					r := e.tools(t, "learn", "show", profile)
					if r.err != nil {
						t.Fatalf("%v\nlog:\n%s", r, learnLog)
					}
					want := keepLine(w.needs...)
					if !strings.Contains(r.stdout, want) {
						t.Fatalf("learned rule does not hold exactly %s:\n%s", strings.TrimSpace(want), r.stdout)
					}
					t.Logf("learned %s: %s", profile, strings.TrimSpace(want))

					// Enforce with the emitted rule: it works again.
					rulePolicy := e.policy(t, "\n"+r.stdout)
					out, _ = e.run(t, rulePolicy, w, fmt.Sprintf("capshim-lrn-%d-%s-%d-r", os.Getpid(), rt.name, i), nil)
					if !strings.Contains(out, "capshim-workload: OK") {
						t.Fatalf("the learned rule does not run the workload:\n%s\nrule:\n%s", out, r.stdout)
					}

					// The default policy fails it, and explain says why.
					if len(w.needs) == 0 || w.name == "bind80" {
						return // the default keeps NET_BIND_SERVICE
					}
					id := fmt.Sprintf("capshim-lrn-%d-%s-%d-d", os.Getpid(), rt.name, i)
					out, log := e.run(t, defaultPolicy, w, id, nil)
					if !strings.Contains(out, "capshim-workload: FAIL") {
						t.Fatalf("the workload works without %v:\n%s", w.needs, out)
					}
					// A workload stops at its first refusal (su fails at
					// setgroups and never asks for SETUID): explain names
					// at least one of its needs, and nothing else.
					ex := e.tools(t, "explain", id)
					named := 0
					for _, c := range w.needs {
						if strings.Contains(ex.stdout, "refused "+c) && strings.Contains(log, "was refused "+c) {
							named++
						}
					}
					if named == 0 || strings.Count(ex.stdout, "which the policy dropped") != named {
						t.Fatalf("explain and the log should name what of %v was refused, and nothing else:\n%s\nlog:\n%s", w.needs, ex.stdout, log)
					}
				})
			}

			t.Run("learn request without a permitting rule", func(t *testing.T) {
				w := learnWorkloads()[0]
				id := fmt.Sprintf("capshim-lrn-%d-%s-deny", os.Getpid(), rt.name)
				out, log := e.run(t, defaultPolicy, w, id, []string{"CAPSHIM_LEARN=sneaky"})
				if !strings.Contains(out, "capshim-workload: FAIL") || !strings.Contains(log, `learn request \"sneaky\" ignored`) {
					t.Fatalf("a denied learn request escaped reduction:\n%s\nlog:\n%s", out, log)
				}
				if r := e.tools(t, "learn", "show", "sneaky"); r.err == nil {
					t.Fatalf("a denied learn request made a profile:\n%s", r.stdout)
				}
			})

			t.Run("two containers learn one profile at once", func(t *testing.T) {
				w := learnWorkloads()[0]
				var wg sync.WaitGroup
				for k := 0; k < 2; k++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						e.run(t, learnPolicy, w, fmt.Sprintf("capshim-lrn-%d-%s-par%d", os.Getpid(), rt.name, k), []string{"CAPSHIM_LEARN=" + rt.name + "-together"})
					}()
				}
				wg.Wait()
				r := e.tools(t, "learn", "show", "--format", "json", rt.name+"-together")
				var p struct {
					Containers, Runs int
					Used             map[string]uint64
				}
				if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Containers != 2 || p.Runs != 2 || p.Used["CAP_CHOWN"] < 2 {
					t.Fatalf("profile after two concurrent learners: %+v (%v)\n%s", p, err, r.stdout)
				}
			})
		})
	}
	// Nothing of capshim's stays attached once no container is watched.
	if _, err := os.Stat("/sys/fs/bpf/capshim"); err == nil {
		t.Fatalf("capshim's BPF pins remain after the last delete")
	}
}

// TestLearnWithoutCgroupV2 runs crun with cgroup v1 alone, as on a host
// with hybrid cgroups: its container stays in capshim's own cgroup v2, so
// its checks cannot be told apart. Recording must step aside with one
// warning, the container must run as it would without recording, and no
// profile may be made of what capshim itself did.
func TestLearnWithoutCgroupV2(t *testing.T) {
	if !crunNeedsPrivateCgroupNS() {
		t.Skip("crun uses this host's cgroup v2 hierarchy")
	}
	rt := ociRuntimes(t)[1] // crun, with cgroup v1 alone
	e := setupLearnEnv(t, rt)
	w := learnWorkloads()[0]
	out, log := e.run(t, e.policy(t, learnAllPolicy), w, fmt.Sprintf("capshim-lrn-%d-hybrid", os.Getpid()), []string{"CAPSHIM_LEARN=hybrid"})
	if !strings.Contains(out, "capshim-workload: OK") {
		t.Fatalf("the learned workload failed:\n%s\nlog:\n%s", out, log)
	}
	if strings.Count(log, "capability checks are not recorded") != 1 {
		t.Fatalf("want one warning that nothing is recorded:\n%s", log)
	}
	if r := e.tools(t, "learn", "show", "hybrid"); r.err == nil {
		t.Fatalf("a container that was not recorded made a profile:\n%s", r.stdout)
	}
}
