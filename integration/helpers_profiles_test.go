//go:build integration

package integration

// Helpers of the tests that take the test images (nginx, postgres, redis)
// from what they used to what they need: each workload and its needed set,
// its bundle, its verdict line, `capshim learn minimize` read back, and
// the shipped profiles' rules.

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/policy"
)

// imageWorkload is one test image and what it needs: found by hand with
// runc, and what minimization must find too.
type imageWorkload struct {
	name  string
	needs []string
	// lowPort says the workload binds a port below 1024. Docker 20.10
	// opens those to everyone in a container's own network namespace
	// (net.ipv4.ip_unprivileged_port_start=0), so under Docker it does
	// not need CAP_NET_BIND_SERVICE.
	lowPort bool
}

// dockerNeeds is what the workload needs under Docker.
func (w imageWorkload) dockerNeeds() []string {
	if !w.lowPort {
		return w.needs
	}
	return slices.DeleteFunc(slices.Clone(w.needs), func(c string) bool { return c == "CAP_NET_BIND_SERVICE" })
}

// dockerSysctls are the sysctls Docker 20.10 sets in a container with a
// network namespace of its own: ports below 1024 and ICMP echo sockets
// open to every user. A bundle that is to run as Docker would run it
// needs them too.
var dockerSysctls = map[string]string{
	"net.ipv4.ip_unprivileged_port_start": "0",
	"net.ipv4.ping_group_range":           "0 2147483647",
}

func imageWorkloads() []imageWorkload {
	return []imageWorkload{
		// The master chowns its temp paths to www-data, switches the
		// workers' group and user, and binds :80.
		{name: "nginx", needs: []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE"}, lowPort: true},
		// The entrypoint chowns PGDATA (and /data) and drops to the
		// service's user.
		{name: "postgres", needs: []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"}},
		{name: "redis", needs: []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"}},
	}
}

// testImageRef is the reference of a workload's test image.
func testImageRef(name string) string { return "docker.io/capshim-test/" + name + ":1" }

// capsFirstArgs prints the container's Cap* lines, then runs the image's
// entrypoint as its process: the workload is what it would be, and the
// test sees the sets it got.
var capsFirstArgs = []string{"/bin/bash", "-c", "grep Cap /proc/self/status; exec " + workloadEntrypoint}

// capMask is the /proc status mask of the named capabilities.
func capMask(t *testing.T, names []string) uint64 {
	t.Helper()
	s, unknown := capability.ParseList(names)
	if len(unknown) > 0 {
		t.Fatalf("not capabilities: %v", unknown)
	}
	return uint64(s)
}

// verdictLine is the workload's verdict line, which must be OK (want) or
// FAIL.
func verdictLine(t *testing.T, name, out string, wantOK bool) string {
	t.Helper()
	v, err := workloadVerdict(out)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if ok := v == verdictPrefix+"OK "+name; ok != wantOK {
		t.Fatalf("verdict %q, want OK %v:\n%s", v, wantOK, out)
	}
	if !wantOK && !strings.HasPrefix(v, verdictPrefix+"FAIL "+name+": ") {
		t.Fatalf("verdict %q is neither OK nor FAIL", v)
	}
	return v
}

// minimizeResult is what `capshim learn minimize` printed, read back.
type minimizeResult struct {
	needed []string
	runs   int
	took   time.Duration
	out    string
}

var verifiedLineRE = regexp.MustCompile(`(?m)^verified by (\d+) runs in (\S+): `)

// minimizeWorkload runs `capshim learn minimize profile` on a bundle of the
// workload's image with Docker's 14 capabilities (the set the engine
// would give it) and the given sysctls, and checks that it found want.
func minimizeWorkload(t *testing.T, set, state, profile string, w imageWorkload, sysctls map[string]string, want []string) minimizeResult {
	t.Helper()
	b := imageBundle(t, set, w.name, dockerCaps)
	if len(sysctls) > 0 {
		editBundleSpec(t, b, func(s *rspec.Spec) { s.Linux.Sysctl = sysctls })
	}
	r := runCmd(cmdOpts{timeout: 30 * time.Minute, env: envWithout([]string{"CAPSHIM_"})}, capshimBin, "learn", "minimize", profile,
		"--bundle", b, "--runtime", runcPath, "--check", "(?m)^"+regexp.QuoteMeta(verdictPrefix+"OK "+w.name)+"$", "--state-dir", state)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		t.Logf("minimize %s: %s", w.name, line)
	}
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	m := minimizeResult{out: r.stdout}
	sm := verifiedLineRE.FindStringSubmatch(r.stdout)
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

// medianDuration is the median of ds.
func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

var refusedLineRE = regexp.MustCompile(`(?m)^\s*refused (CAP_[A-Z_]+) \(\d+ checks\), which the policy dropped`)

// refusedDropped lists the capabilities explain says the container was
// refused and the policy dropped.
func refusedDropped(explain string) []string {
	var out []string
	for _, m := range refusedLineRE.FindAllStringSubmatch(explain, -1) {
		out = append(out, m[1])
	}
	return out
}

// unmatchedRule is a shipped profile's rule without its match table, so
// that it applies to every container of the policy, with its keep line
// given as key (keep, or capabilities: may be asked for).
func unmatchedRule(data, key string) string {
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

// profileKeep is the keep set of a shipped profile.
func profileKeep(t *testing.T, data string) []string {
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
