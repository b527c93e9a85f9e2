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
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/profiles"
)

// prfWorkload is one test image and what it needs: found by hand with
// runc, and what minimization must find too.
type prfWorkload struct {
	name  string
	needs []string
	// lowPort says the workload binds a port below 1024. Docker 20.10
	// opens those to everyone in a container's own network namespace
	// (net.ipv4.ip_unprivileged_port_start=0), so under Docker it does
	// not need CAP_NET_BIND_SERVICE.
	lowPort bool
}

// dockerNeeds is what the workload needs under Docker.
func (w prfWorkload) dockerNeeds() []string {
	if !w.lowPort {
		return w.needs
	}
	return slices.DeleteFunc(slices.Clone(w.needs), func(c string) bool { return c == "CAP_NET_BIND_SERVICE" })
}

// prfDockerSysctls are the sysctls Docker 20.10 sets in a container with a
// network namespace of its own: ports below 1024 and ICMP echo sockets
// open to every user. A bundle that is to run as Docker would run it
// needs them too.
var prfDockerSysctls = map[string]string{
	"net.ipv4.ip_unprivileged_port_start": "0",
	"net.ipv4.ping_group_range":           "0 2147483647",
}

// prfEditBundle changes a bundle's config.json.
func prfEditBundle(t *testing.T, bundle string, edit func(*rspec.Spec)) {
	t.Helper()
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec rspec.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	edit(&spec)
	if data, err = json.MarshalIndent(&spec, "", "\t"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data), 0o644)
}

func prfWorkloads() []prfWorkload {
	return []prfWorkload{
		// The master chowns its temp paths to www-data, switches the
		// workers' group and user, and binds :80.
		{name: "nginx", needs: []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"}, lowPort: true},
		// The entrypoint chowns PGDATA (and /data) and drops to the
		// service's user.
		{name: "postgres", needs: []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"}},
		{name: "redis", needs: []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"}},
	}
}

// prfImage is the reference of a workload's test image.
func prfImage(name string) string { return "docker.io/capshim-test/" + name + ":1" }

// prfCapsFirst prints the container's Cap* lines, then runs the image's
// entrypoint as its process: the workload is what it would be, and the
// test sees the sets it got.
var prfCapsFirst = []string{"/bin/bash", "-c", "grep Cap /proc/self/status; exec " + imgEntrypoint}

// prfMask is the /proc status mask of the named capabilities.
func prfMask(t *testing.T, names []string) uint64 {
	t.Helper()
	s, unknown := capability.ParseList(names)
	if len(unknown) > 0 {
		t.Fatalf("not capabilities: %v", unknown)
	}
	return uint64(s)
}

// prfVerdict is the workload's verdict line, which must be OK (want) or
// FAIL.
func prfVerdict(t *testing.T, name, out string, wantOK bool) string {
	t.Helper()
	v, err := imgVerdictLine(out)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if ok := v == imgVerdict+"OK "+name; ok != wantOK {
		t.Fatalf("verdict %q, want OK %v:\n%s", v, wantOK, out)
	}
	if !wantOK && !strings.HasPrefix(v, imgVerdict+"FAIL "+name+": ") {
		t.Fatalf("verdict %q is neither OK nor FAIL", v)
	}
	return v
}

// prfMinimized is what `capshim learn minimize` printed, read back.
type prfMinimized struct {
	needed []string
	runs   int
	took   time.Duration
	out    string
}

var prfVerifiedLine = regexp.MustCompile(`(?m)^verified by (\d+) runs in (\S+): `)

// prfMinimize runs `capshim learn minimize profile` on a bundle of the
// workload's image with Docker's 14 capabilities (the set the engine
// would give it) and the given sysctls, and checks that it found want.
func prfMinimize(t *testing.T, set, state, profile string, w prfWorkload, sysctls map[string]string, want []string) prfMinimized {
	t.Helper()
	b := imgBundle(t, set, w.name, dockerCaps)
	if len(sysctls) > 0 {
		prfEditBundle(t, b, func(s *rspec.Spec) { s.Linux.Sysctl = sysctls })
	}
	r := runCmd(cmdOpts{timeout: 30 * time.Minute, env: envWithout([]string{"CAPSHIM_"})}, capshimBin, "learn", "minimize", profile,
		"--bundle", b, "--runtime", runcPath, "--check", "(?m)^"+regexp.QuoteMeta(imgVerdict+"OK "+w.name)+"$", "--state-dir", state)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		t.Logf("minimize %s: %s", w.name, line)
	}
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	m := prfMinimized{out: r.stdout}
	sm := prfVerifiedLine.FindStringSubmatch(r.stdout)
	if sm == nil {
		t.Fatalf("no verified line in:\n%s", r.stdout)
	}
	m.runs, _ = strconv.Atoi(sm[1])
	m.took, _ = time.ParseDuration(sm[2])
	for _, line := range strings.Split(r.stdout, "\n") {
		if s, ok := strings.CutPrefix(line, "needed: "); ok && s != "none" {
			m.needed = strings.Split(s, ",")
		}
	}
	want = slices.Clone(want)
	got := slices.Clone(m.needed)
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("minimize found %v, want %v", m.needed, want)
	}
	return m
}

// prfMedian is the median of ds.
func prfMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestProfilesDocker: learn with CAPSHIM_LEARN under a learn = true rule,
// minimize, then the rule serves the workload under enforce with exactly
// the needed set. Docker passes no annotations, so the rule has no match
// table: it goes into the policy of a runtime of the workload's own.
func TestProfilesDocker(t *testing.T) {
	requireBinary(t, "runc")
	set := imgSet(t)
	state := lrnEngState(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	ask := writePolicy(t, lrnEngPolicy(state, log, lrnEngRuleAsk))
	def := writePolicy(t, lrnEngPolicy(state, log))
	runtime := func(policy string) map[string]any {
		return map[string]any{"path": capshimBin, "runtimeArgs": []string{"--capshim-config=" + policy}}
	}
	quiet := writePolicy(t, lrnEngPolicy(state, log)+"explain = false\n")
	// The shipped redis profile as a request a container makes.
	redis, err := fs.ReadFile(profiles.Files, "redis.toml")
	if err != nil {
		t.Fatal(err)
	}
	request := writePolicy(t, lrnEngPolicy(state, log, prfUnmatched(string(redis), "capabilities")))
	runtimes := map[string]any{"capshim-learn": runtime(ask), "capshim": runtime(def), "capshim-quiet": runtime(quiet), "capshim-ask": runtime(request)}
	// One runtime per workload, whose policy gets the workload's rule.
	own := map[string]string{}
	for _, w := range prfWorkloads() {
		own[w.name] = writePolicy(t, lrnEngPolicy(state, log))
		runtimes["capshim-"+w.name] = runtime(own[w.name])
	}
	e := dockerStart(t, map[string]any{"runtimes": runtimes}, nil)
	for _, w := range prfWorkloads() {
		r := e.docker("load", "-i", filepath.Join(set, w.name, "image.tar"))
		// Docker names it without its registry.
		if r.err != nil || !strings.Contains(r.stdout, "Loaded image: capshim-test/"+w.name+":1") {
			t.Fatalf("docker load: %v", r)
		}
		t.Logf("docker load %s: %v", w.name, r.took.Round(time.Millisecond))
	}
	// The bundle minimize runs must be what Docker runs: it sets these.
	r := e.docker("run", "--rm", "--network", "none", "--runtime", "runc", prfImage("nginx"),
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
		out, id := lrnEngRun(t, e.docker, append(append(args, image), prfCapsFirst...)...)
		return out, id, time.Since(start)
	}

	var summary []string
	for _, w := range prfWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			image := prfImage(w.name)
			// Learn: Docker's 14, and the workload works.
			out, id, took := run(t, "capshim-learn", image, "CAPSHIM_LEARN="+w.name)
			prfVerdict(t, w.name, out, true)
			assertCaps(t, out, maskDocker)
			lrnEngLogHas(t, log, "container "+id+" learned into profile "+w.name)
			learned := lrnEngTool(state, "learn", "show", w.name)
			if learned.err != nil {
				t.Fatalf("%v", learned)
			}
			for _, line := range strings.Split(strings.TrimSpace(learned.stdout), "\n") {
				t.Logf("learned %s: %s", w.name, line)
			}
			t.Logf("learn run under Docker: %v", took.Round(time.Millisecond))

			// Minimize on the image's rootfs with runc.
			m := prfMinimize(t, set, state, w.name, w, prfDockerSysctls, w.dockerNeeds())
			rule := lrnEngShow(t, state, w.name, m.needed...)
			if !strings.Contains(rule, fmt.Sprintf("# verified by %d runs on ", m.runs)) {
				t.Fatalf("the rule does not say it was verified by %d runs:\n%s", m.runs, rule)
			}
			if strings.Contains(rule, "[rule.match") {
				t.Fatalf("a rule learned under Docker matches on something Docker did not set:\n%s", rule)
			}

			// Enforce with the rule: exactly the needed set, and it works.
			writeFile(t, own[w.name], lrnEngPolicy(state, log, rule), 0o644)
			out, _, took = run(t, "capshim-"+w.name, image)
			prfVerdict(t, w.name, out, true)
			assertCaps(t, out, prfMask(t, m.needed))
			t.Logf("enforced run with the rule: %v", took.Round(time.Millisecond))

			// The default policy: it fails, and explain names what it
			// was refused.
			out, id, _ = run(t, "capshim", image)
			v := prfVerdict(t, w.name, out, false)
			assertCaps(t, out, maskMinimal)
			// It stops at its first refusal, which is one of its needs;
			// explain may name others it was refused on the way, which
			// it did without (postgres's chmod of PGDATA: CAP_FOWNER),
			// but nothing the workload was not learned using.
			ex := lrnEngTool(state, "explain", id[:12])
			if ex.err != nil {
				t.Fatalf("%v", ex)
			}
			named := prfRefusedDropped(ex.stdout)
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
		keep := prfKeep(t, string(redis))
		out, _, _ := run(t, "capshim-ask", prfImage("redis"), "CAPSHIM_CAPABILITIES="+strings.Join(keep, ","))
		prfVerdict(t, "redis", out, true)
		assertCaps(t, out, maskMinimal|prfMask(t, keep))
		out, _, _ = run(t, "capshim-ask", prfImage("redis"))
		prfVerdict(t, "redis", out, false)
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
				r := e.docker(append(append([]string{"run", "--rm", "--network", "none"}, kind.args...), prfImage("nginx"), "true")...)
				if r.err != nil {
					t.Fatalf("%v", r)
				}
				took[k] = append(took[k], r.took)
			}
		}
		for k, kind := range kinds {
			t.Logf("docker run --rm true, %s: median %v of %d (min %v, max %v)", kind.name,
				prfMedian(took[k]).Round(time.Millisecond), rounds, slices.Min(took[k]).Round(time.Millisecond), slices.Max(took[k]).Round(time.Millisecond))
		}
	})
	for _, s := range summary {
		t.Logf("summary: %s", s)
	}
	lrnEngUnpinned(t)
}

var prfRefusedLine = regexp.MustCompile(`(?m)^\s*refused (CAP_[A-Z_]+) \(\d+ checks\), which the policy dropped`)

// prfRefusedDropped lists the capabilities explain says the container was
// refused and the policy dropped.
func prfRefusedDropped(explain string) []string {
	var out []string
	for _, m := range prfRefusedLine.FindAllStringSubmatch(explain, -1) {
		out = append(out, m[1])
	}
	return out
}

// prfUnmatched is a shipped profile's rule without its match table, so
// that it applies to every container of the policy, with its keep line
// given as key (keep, or capabilities: may be asked for).
func prfUnmatched(data, key string) string {
	var out []string
	for _, line := range strings.Split(data, "\n") {
		if line == "[rule.match.annotations]" {
			break // the last table of the file
		}
		if s, ok := strings.CutPrefix(line, "keep = "); ok {
			line = key + " = " + s
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n") + "\n"
}

// prfKeep is the keep set of a shipped profile.
func prfKeep(t *testing.T, data string) []string {
	t.Helper()
	pol, err := policy.Parse([]byte(data), "profile")
	if err != nil || len(pol.Rules) != 1 {
		t.Fatalf("profile: %v (%d rules)", err, len(pol.Rules))
	}
	return pol.Rules[0].Keep.Names()
}

// learnedSet is the keep list of a rule capshim emitted.
func learnedSet(rule string) string {
	for _, line := range strings.Split(rule, "\n") {
		if s, ok := strings.CutPrefix(line, "keep = "); ok {
			return s
		}
	}
	return "?"
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
	set := imgSet(t)
	state := lrnEngState(t)
	policy := func(rules ...string) string {
		return fmt.Sprintf("state_dir = %q\n", state) + policyTOML(rules...)
	}
	pol := newLivePolicy(t, policy(lrnEngRuleNS))
	d := startContainerd(t, []criHandler{{name: "runc"}, {name: "capshim", binary: capshimBin, annotations: true}}, []string{"CAPSHIM_CONFIG=" + pol.path})
	d.importImages(t, "k8s.io")
	for _, w := range prfWorkloads() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := d.ctr(ctx, "k8s.io", "images", "import", filepath.Join(set, w.name, "image.tar"))
		cancel()
		if err != nil {
			t.Fatalf("ctr images import: %v\n%s", err, out)
		}
	}
	c := dialCRI(t, d)

	for i, w := range prfWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			t.Cleanup(func() { pol.set(t, policy(lrnEngRuleNS)) })
			image := prfImage(w.name)
			profile := learn.ProfileName(map[string]string{"io.kubernetes.cri.image-name": image, "io.kubernetes.cri.container-name": w.name}, "")
			start := time.Now()
			out, _ := runPodToExit(t, c, fmt.Sprintf("learn-%d", i), w.name, image, nil, prfCapsFirst)
			took := time.Since(start)
			prfVerdict(t, w.name, out, true)
			assertCaps(t, out, maskDocker)
			learned := lrnEngTool(state, "learn", "show", profile)
			if learned.err != nil {
				t.Fatalf("%v\n%s", learned, lrnEngTool(state, "learn", "list").stdout)
			}
			for _, line := range strings.Split(strings.TrimSpace(learned.stdout), "\n") {
				t.Logf("learned %s: %s", profile, line)
			}
			t.Logf("learned pod under CRI: %v", took.Round(time.Millisecond))

			// containerd 1.6's CRI opens no ports below 1024 unless
			// configured to (enable_unprivileged_ports): the bundle of
			// runc spec as it is.
			m := prfMinimize(t, set, state, profile, w, nil, w.needs)
			rule := lrnEngShow(t, state, profile, m.needed...)
			if !strings.Contains(rule, `"io.kubernetes.cri.image-name" = "`+learn.ImageName(image)+`[:@]*"`) {
				t.Fatalf("the rule does not match on the CRI image name:\n%s", rule)
			}

			pol.set(t, policy(lrnEngRuleNS, rule))
			out, _ = runPodToExit(t, c, fmt.Sprintf("prod-%d", i), w.name, image, nil, prfCapsFirst)
			prfVerdict(t, w.name, out, true)
			assertCaps(t, out, prfMask(t, m.needed))

			// The learned rule names the container too: under another
			// name the image gets the default, and fails; explain names
			// what it missed.
			other := "other-" + w.name
			out, id := runPodToExit(t, c, fmt.Sprintf("prod-%d", i), other, image, nil, prfCapsFirst)
			prfVerdict(t, w.name, out, false)
			assertCaps(t, out, maskMinimal)
			ex := lrnEngTool(state, "explain", id[:12])
			if named := prfRefusedDropped(ex.stdout); ex.err != nil || !slices.ContainsFunc(named, func(c string) bool { return slices.Contains(m.needed, c) }) {
				t.Fatalf("explain names none of %v:\n%v", m.needed, ex)
			}

			// The shipped profile matches the image under any name.
			shipped, err := os.ReadFile(filepath.Join("..", "profiles", w.name+".toml"))
			if err != nil {
				t.Fatal(err)
			}
			pol.set(t, policy(lrnEngRuleNS, string(shipped)))
			out, _ = runPodToExit(t, c, fmt.Sprintf("prod-%d", i), other, image, nil, prfCapsFirst)
			prfVerdict(t, w.name, out, true)
			assertCaps(t, out, prfMask(t, m.needed))
			t.Logf("%s: learned %s; needed %s, %d minimize runs in %v; the shipped profile serves it as %s",
				w.name, learnedSet(learned.stdout), strings.Join(m.needed, ","), m.runs, m.took, other)
		})
	}
	c.removeAllPods(t)
	lrnEngUnpinned(t)
}

// TestProfilesPodman: the shipped profiles as they are, in one policy that
// podman hands capshim with --runtime-flag. Podman puts no image name into
// the spec; the container says which image it is with an annotation, which
// whoever runs podman sets (a convenience on a host whose podman users are
// trusted with their containers, not a boundary). Without it the default
// applies, and the workload fails.
func TestProfilesPodman(t *testing.T) {
	p := podmanSetup(t)
	set := imgSet(t)
	state := lrnEngState(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	var rules []string
	for _, w := range prfWorkloads() {
		data, err := fs.ReadFile(profiles.Files, w.name+".toml")
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, string(data))
		if r := p.podman("containers.conf", "load", "-i", filepath.Join(set, w.name, "image.tar")); r.err != nil {
			t.Fatalf("podman load: %v", r)
		}
	}
	pol := writePolicy(t, lrnEngPolicy(state, log, rules...))
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cli := func(argv ...string) cmdResult {
			return p.podman("containers.conf", append([]string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + pol}, argv...)...)
		}
		out, _ := lrnEngRun(t, cli, args...)
		return out
	}
	for i, w := range prfWorkloads() {
		t.Run(w.name, func(t *testing.T) {
			keep := prfKeep(t, rules[i])
			image := prfImage(w.name)
			out := run(t, append([]string{"--annotation", "io.kubernetes.cri.image-name=" + image, image}, prfCapsFirst...)...)
			prfVerdict(t, w.name, out, true)
			assertCaps(t, out, prfMask(t, keep))
			out = run(t, append([]string{image}, prfCapsFirst...)...)
			v := prfVerdict(t, w.name, out, false)
			assertCaps(t, out, maskPodmanMinimal)
			t.Logf("%s: keep %v with the annotation; without it: %s", w.name, keep, v)
		})
	}
	lrnEngUnpinned(t)
}
