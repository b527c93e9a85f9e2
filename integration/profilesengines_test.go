//go:build integration

package integration

// From used to needed with real workloads, through real engines: each
// test image of images/ (nginx, postgres, redis) is learned under Docker
// 20.10 with Docker's 14 capabilities, minimized with `capshim learn
// minimize` on the image's rootfs with runc, and the rule capshim then
// emits runs it under enforce with exactly the needed set, while the
// default policy fails it and `capshim explain` names what it missed. The
// same for one image under containerd's CRI, whose rule matches on the
// image name. Every container prints its Cap* lines before the workload
// starts, so the tests read what it really got.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/profiles"
)

// TestProfilesDocker: learn with CAPSHIM_LEARN under a learn = true rule,
// minimize, then the rule serves the workload under enforce with exactly
// the needed set. Docker passes no annotations, so the rule has no match
// table: it goes into the policy of a runtime of the workload's own.
func TestProfilesDocker(t *testing.T) {
	requireBinary(t, "runc")
	set := imageSet(t)
	state := newStateDir(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	ask := writePolicy(t, engineLearnPolicy(state, log, ruleLearnOnAsk))
	def := writePolicy(t, engineLearnPolicy(state, log))
	runtime := func(policy string) map[string]any {
		return map[string]any{"path": capshimBin, "runtimeArgs": []string{"--capshim-config=" + policy}}
	}
	quiet := writePolicy(t, engineLearnPolicy(state, log)+"explain = false\n")
	// The shipped redis profile as a request a container makes.
	redis, err := fs.ReadFile(profiles.Files, "redis.toml")
	if err != nil {
		t.Fatal(err)
	}
	request := writePolicy(t, engineLearnPolicy(state, log, unmatchedRule(string(redis), "capabilities")))
	runtimes := map[string]any{"capshim-learn": runtime(ask), "capshim": runtime(def), "capshim-quiet": runtime(quiet), "capshim-ask": runtime(request)}
	// One runtime per workload, whose policy gets the workload's rule.
	own := map[string]string{}
	for _, w := range imageWorkloads() {
		own[w.name] = writePolicy(t, engineLearnPolicy(state, log))
		runtimes["capshim-"+w.name] = runtime(own[w.name])
	}
	e := dockerStart(t, map[string]any{"runtimes": runtimes}, nil)
	for _, w := range imageWorkloads() {
		r := e.docker("load", "-i", filepath.Join(set, w.name, "image.tar"))
		// Docker names it without its registry.
		if r.err != nil || !strings.Contains(r.stdout, "Loaded image: capshim-test/"+w.name+":1") {
			t.Fatalf("docker load: %v", r)
		}
		t.Logf("docker load %s: %v", w.name, r.took.Round(time.Millisecond))
	}
	// The bundle minimize runs must be what Docker runs: it sets these.
	r := e.docker("run", "--rm", "--network", "none", "--runtime", "runc", testImageRef("nginx"),
		"cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/net/ipv4/ping_group_range")
	if got := strings.Fields(r.stdout); r.err != nil || !slices.Equal(got, []string{"0", "0", "2147483647"}) {
		t.Fatalf("Docker did not open low ports and ICMP sockets as expected (%q): %v", got, r)
	}
	run := func(t *testing.T, runtime, image string, env ...string) (string, string, time.Duration) {
		t.Helper()
		args := []string{"--runtime", runtime}
		for _, kv := range env {
			args = append(args, "-e", kv)
		}
		start := time.Now()
		out, id := runEngineContainer(t, e.docker, append(append(args, image), capsFirstArgs...)...)
		return out, id, time.Since(start)
	}

	var summary []string
	for _, w := range imageWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			image := testImageRef(w.name)
			// Learn: Docker's 14, and the workload works.
			out, id, took := run(t, "capshim-learn", image, "CAPSHIM_LEARN="+w.name)
			verdictLine(t, w.name, out, true)
			assertCaps(t, out, maskDocker)
			requireLogLine(t, log, "container "+id+" learned into profile "+w.name)
			learned := stateTool(state, "learn", "show", w.name)
			if learned.err != nil {
				t.Fatalf("%v", learned)
			}
			for _, line := range strings.Split(strings.TrimSpace(learned.stdout), "\n") {
				t.Logf("learned %s: %s", w.name, line)
			}
			t.Logf("learn run under Docker: %v", took.Round(time.Millisecond))

			// Minimize on the image's rootfs with runc.
			m := minimizeWorkload(t, set, state, w.name, w, dockerSysctls, w.dockerNeeds())
			rule := learnShow(t, state, w.name, m.needed...)
			if !strings.Contains(rule, fmt.Sprintf("# verified by %d runs on ", m.runs)) {
				t.Fatalf("the rule does not say it was verified by %d runs:\n%s", m.runs, rule)
			}
			if strings.Contains(rule, "[rule.match") {
				t.Fatalf("a rule learned under Docker matches on something Docker did not set:\n%s", rule)
			}

			// Enforce with the rule: exactly the needed set, and it works.
			writeFile(t, own[w.name], engineLearnPolicy(state, log, rule), 0o644)
			out, _, took = run(t, "capshim-"+w.name, image)
			verdictLine(t, w.name, out, true)
			assertCaps(t, out, capMask(t, m.needed))
			t.Logf("enforced run with the rule: %v", took.Round(time.Millisecond))

			// The default policy: it fails, and explain names what it
			// was refused.
			out, id, _ = run(t, "capshim", image)
			v := verdictLine(t, w.name, out, false)
			assertCaps(t, out, maskMinimal)
			// It stops at its first refusal, which is one of its needs;
			// explain may name others it was refused on the way, which
			// it did without (postgres's chmod of PGDATA: CAP_FOWNER),
			// but nothing the workload was not learned using.
			ex := stateTool(state, "explain", id[:12])
			if ex.err != nil {
				t.Fatalf("%v", ex)
			}
			named := refusedDropped(ex.stdout)
			used := learnedSet(learned.stdout)
			if !slices.ContainsFunc(named, func(c string) bool { return slices.Contains(m.needed, c) }) {
				t.Fatalf("explain names none of %v as refused and dropped:\n%s", m.needed, ex.stdout)
			}
			for _, c := range named {
				if !strings.Contains(used, `"`+c+`"`) {
					t.Errorf("explain names %s, which the workload was not learned using (%s):\n%s", c, used, ex.stdout)
				}
			}
			t.Logf("default policy: %s; explain names %v", v, named)
			for _, line := range strings.Split(strings.TrimSpace(ex.stdout), "\n") {
				t.Logf("explain: %s", line)
			}
			summary = append(summary, fmt.Sprintf("%s: learned %s; needed %s, %d minimize runs in %v",
				w.name, learnedSet(learned.stdout), strings.Join(m.needed, ","), m.runs, m.took))
		})
	}

	// The shipped profile as a rule with no match table that lets every
	// container of the runtime ask for the set: the container asks in
	// its environment and gets the default and the set.
	t.Run("shipped profile as a request", func(t *testing.T) {
		keep := profileKeep(t, string(redis))
		out, _, _ := run(t, "capshim-ask", testImageRef("redis"), "CAPSHIM_CAPABILITIES="+strings.Join(keep, ","))
		verdictLine(t, "redis", out, true)
		assertCaps(t, out, maskMinimal|capMask(t, keep))
		out, _, _ = run(t, "capshim-ask", testImageRef("redis"))
		verdictLine(t, "redis", out, false)
		assertCaps(t, out, maskMinimal)
	})

	// What learning adds to a start: the same short container (the
	// nginx image running true) through runc alone, through capshim
	// enforcing the default without recording (explain = false) and with
	// it (explain = true, the default), and learned, interleaved.
	t.Run("start cost", func(t *testing.T) {
		const rounds = 9
		kinds := []struct {
			name string
			args []string
		}{
			{name: "runc", args: []string{"--runtime", "runc"}},
			{name: "capshim enforce, explain = false", args: []string{"--runtime", "capshim-quiet"}},
			{name: "capshim enforce, explain = true", args: []string{"--runtime", "capshim"}},
			{name: "capshim learn", args: []string{"--runtime", "capshim-learn", "-e", "CAPSHIM_LEARN=start-cost"}},
		}
		took := make([][]time.Duration, len(kinds))
		for i := 0; i < rounds; i++ {
			for k, kind := range kinds {
				r := e.docker(append(append([]string{"run", "--rm", "--network", "none"}, kind.args...), testImageRef("nginx"), "true")...)
				if r.err != nil {
					t.Fatalf("%v", r)
				}
				took[k] = append(took[k], r.took)
			}
		}
		for k, kind := range kinds {
			t.Logf("docker run --rm true, %s: median %v of %d (min %v, max %v)", kind.name,
				medianDuration(took[k]).Round(time.Millisecond), rounds, slices.Min(took[k]).Round(time.Millisecond), slices.Max(took[k]).Round(time.Millisecond))
		}
	})
	for _, s := range summary {
		t.Logf("summary: %s", s)
	}
	requireRecorderUnpinned(t)
}

// TestProfilesCRI: under containerd's CRI, a rule learns the pods of the
// learn-* namespaces; each workload's profile is minimized; its rule,
// which matches on the CRI image and container name, runs the workload in
// another namespace with exactly the needed set, and the same image under
// another container name gets the default and fails. Then the shipped
// profile, which matches on the image alone, runs it under that name.
// The pods use the node's network (there is no CNI here): the workloads
// listen on the node's loopback, nginx on :80 of every address, briefly.
func TestProfilesCRI(t *testing.T) {
	requireContainerd(t)
	set := imageSet(t)
	state := newStateDir(t)
	policy := func(rules ...string) string {
		return fmt.Sprintf("state_dir = %q\n", state) + policyTOML(rules...)
	}
	pol := newLivePolicy(t, policy(ruleLearnNamespace))
	d := startContainerd(t, []criHandler{{name: "runc"}, {name: "capshim", binary: capshimBin, annotations: true}}, []string{"CAPSHIM_CONFIG=" + pol.path})
	d.importImages(t, "k8s.io")
	for _, w := range imageWorkloads() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := d.ctr(ctx, "k8s.io", "images", "import", filepath.Join(set, w.name, "image.tar"))
		cancel()
		if err != nil {
			t.Fatalf("ctr images import: %v\n%s", err, out)
		}
	}
	c := dialCRI(t, d)

	for i, w := range imageWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			t.Cleanup(func() { pol.set(t, policy(ruleLearnNamespace)) })
			image := testImageRef(w.name)
			profile := learn.ProfileName(map[string]string{"io.kubernetes.cri.image-name": image, "io.kubernetes.cri.container-name": w.name}, "")
			start := time.Now()
			out, _ := runPodToExit(t, c, fmt.Sprintf("learn-%d", i), w.name, image, nil, capsFirstArgs)
			took := time.Since(start)
			verdictLine(t, w.name, out, true)
			assertCaps(t, out, maskDocker)
			learned := stateTool(state, "learn", "show", profile)
			if learned.err != nil {
				t.Fatalf("%v\n%s", learned, stateTool(state, "learn", "list").stdout)
			}
			for _, line := range strings.Split(strings.TrimSpace(learned.stdout), "\n") {
				t.Logf("learned %s: %s", profile, line)
			}
			t.Logf("learned pod under CRI: %v", took.Round(time.Millisecond))

			// containerd 1.6's CRI opens no ports below 1024 unless
			// configured to (enable_unprivileged_ports): the bundle of
			// runc spec as it is.
			m := minimizeWorkload(t, set, state, profile, w, nil, w.needs)
			rule := learnShow(t, state, profile, m.needed...)
			if !strings.Contains(rule, `"io.kubernetes.cri.image-name" = "`+learn.ImageName(image)+`[:@]*"`) {
				t.Fatalf("the rule does not match on the CRI image name:\n%s", rule)
			}

			pol.set(t, policy(ruleLearnNamespace, rule))
			out, _ = runPodToExit(t, c, fmt.Sprintf("prod-%d", i), w.name, image, nil, capsFirstArgs)
			verdictLine(t, w.name, out, true)
			assertCaps(t, out, capMask(t, m.needed))

			// The learned rule names the container too: under another
			// name the image gets the default, and fails; explain names
			// what it missed.
			other := "other-" + w.name
			out, id := runPodToExit(t, c, fmt.Sprintf("prod-%d", i), other, image, nil, capsFirstArgs)
			verdictLine(t, w.name, out, false)
			assertCaps(t, out, maskMinimal)
			ex := stateTool(state, "explain", id[:12])
			if named := refusedDropped(ex.stdout); ex.err != nil || !slices.ContainsFunc(named, func(c string) bool { return slices.Contains(m.needed, c) }) {
				t.Fatalf("explain names none of %v:\n%v", m.needed, ex)
			}

			// The shipped profile matches the image under any name.
			shipped, err := os.ReadFile(filepath.Join("..", "profiles", w.name+".toml"))
			if err != nil {
				t.Fatal(err)
			}
			pol.set(t, policy(ruleLearnNamespace, string(shipped)))
			out, _ = runPodToExit(t, c, fmt.Sprintf("prod-%d", i), other, image, nil, capsFirstArgs)
			verdictLine(t, w.name, out, true)
			assertCaps(t, out, capMask(t, m.needed))
			t.Logf("%s: learned %s; needed %s, %d minimize runs in %v; the shipped profile serves it as %s",
				w.name, learnedSet(learned.stdout), strings.Join(m.needed, ","), m.runs, m.took, other)
		})
	}
	c.removeAllPods(t)
	requireRecorderUnpinned(t)
}

// TestProfilesPodman: the shipped profiles as they are, in one policy that
// podman hands capshim with --runtime-flag. Podman puts no image name into
// the spec; the container says which image it is with an annotation, which
// whoever runs podman sets (a convenience on a host whose podman users are
// trusted with their containers, not a boundary). Without it the default
// applies, and the workload fails.
func TestProfilesPodman(t *testing.T) {
	p := podmanSetup(t)
	set := imageSet(t)
	state := newStateDir(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	var rules []string
	for _, w := range imageWorkloads() {
		data, err := fs.ReadFile(profiles.Files, w.name+".toml")
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, string(data))
		if r := p.podman("containers.conf", "load", "-i", filepath.Join(set, w.name, "image.tar")); r.err != nil {
			t.Fatalf("podman load: %v", r)
		}
	}
	pol := writePolicy(t, engineLearnPolicy(state, log, rules...))
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cli := func(argv ...string) cmdResult {
			return p.podman("containers.conf", append([]string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + pol}, argv...)...)
		}
		out, _ := runEngineContainer(t, cli, args...)
		return out
	}
	for i, w := range imageWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			keep := profileKeep(t, rules[i])
			image := testImageRef(w.name)
			out := run(t, append([]string{"--annotation", "io.kubernetes.cri.image-name=" + image, image}, capsFirstArgs...)...)
			verdictLine(t, w.name, out, true)
			assertCaps(t, out, capMask(t, keep))
			out = run(t, append([]string{image}, capsFirstArgs...)...)
			v := verdictLine(t, w.name, out, false)
			assertCaps(t, out, maskPodmanMinimal)
			t.Logf("%s: keep %v with the annotation; without it: %s", w.name, keep, v)
		})
	}
	requireRecorderUnpinned(t)
}
