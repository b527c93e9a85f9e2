// Command e2e measures capshim end to end against a bare Go exec wrapper
// (bench/barewrap) and runc itself, side by side in one run, interleaved,
// and prints one table with the in-process Go benchmarks of the rewrite.
//
// It sets up everything it needs under one temporary directory (a busybox
// bundle, a runc --root, a policy file naming the real runtime), deletes
// every container it created and removes the directory, and sends no
// network traffic (the container has its own, empty network namespace).
//
//	e2e -capshim bin/capshim -barewrap bin/barewrap -runc /usr/bin/runc \
//	    -gobench gobench.txt -json bench/results.json -chart bench/chart.png
//	e2e -from bench/results.json -chart bench/chart.png   # chart only
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"

	"github.com/capshim/capshim/engine"
	"github.com/capshim/capshim/trace/pinned"
)

// runtimes are the programs measured, in table order. capshim runs with
// explain = false; capshim-explain is the same binary with the default
// explain = true, which records every container's capability checks from
// start to delete (a few bpf(2) calls at start and at delete once the
// recorder is pinned).
var runtimes = []string{"runc", "barewrap", "capshim", "capshim-explain"}

type stats struct {
	Median float64 `json:"median_ms"`
	P25    float64 `json:"p25_ms"`
	P75    float64 `json:"p75_ms"`
	Min    float64 `json:"min_ms"`
	// PairedVsBare and PairedVsRunc are the medians of the per-round
	// ratios (this runtime / the other, in the same round): robust to
	// load that changes during the run.
	PairedVsBare float64 `json:"paired_vs_barewrap"`
	PairedVsRunc float64 `json:"paired_vs_runc"`
}

type measure struct {
	Name     string           `json:"name"`
	N        int              `json:"n"`
	Runtimes map[string]stats `json:"runtimes"`
	Target   float64          `json:"target_vs_barewrap"`
}

type goBench struct {
	Name     string  `json:"name"`
	NsOp     float64 `json:"ns_op"`
	BOp      int64   `json:"b_op"`
	AllocsOp int64   `json:"allocs_op"`
	MBs      float64 `json:"mb_s"`
}

type results struct {
	Date    string    `json:"date"`
	Machine string    `json:"machine"`
	Go      []goBench `json:"go_benchmarks"`
	Pass    measure   `json:"pass_through"`
	Cycle   measure   `json:"create_start_delete"`
	// Start and Delete are the start and the delete of the cycles, each on
	// its own: what recording adds to them is capshim-explain's minus
	// capshim's (Added).
	Start  measure `json:"start,omitzero"`
	Delete measure `json:"delete,omitzero"`
	// Added is, for start and for delete, the median over the rounds of
	// capshim-explain's time minus capshim's in the same round, in ms.
	Added map[string]float64 `json:"recording_added_ms,omitempty"`
	// First is the start of a recorded container when no recorder is
	// pinned (it loads, attaches and pins one) against an enforced
	// container's start in the same round: medians in ms, and the median
	// of the per-round difference ("added").
	First map[string]float64 `json:"first_recorded_start_ms,omitempty"`
	// Checks is what one capability check costs with the recorder in each
	// state, one state after another (BenchmarkChown of package trace),
	// with the program's own run time.
	Checks []checkCost `json:"capability_check,omitempty"`
	// Paired is what each state adds to a check, by differences within
	// rounds that run every state (BenchmarkChownPaired); the targets are
	// judged on these.
	Paired []checkCost `json:"capability_check_paired,omitempty"`
}

// checkCost is one state of the recorder. From BenchmarkChown: the
// fchown's time (median over the passes) and the program's own run time by
// the kernel's statistics, which include the statistics' two clock reads;
// what a state adds is not taken from these passes, where the VM's drift
// between states is larger than the differences. From
// BenchmarkChownPaired: Passes is the number of rounds and AddedNs the
// median over them of what the state adds.
type checkCost struct {
	State    string   `json:"state"`
	Passes   int      `json:"passes"`
	NsOp     float64  `json:"ns_op"`
	AddedNs  *float64 `json:"added_ns,omitempty"` // paired states only
	ProgNs   float64  `json:"prog_ns_run,omitempty"`
	TargetNs float64  `json:"target_added_ns,omitempty"`
}

func main() {
	var (
		capshim  = flag.String("capshim", "bin/capshim", "capshim binary")
		barewrap = flag.String("barewrap", "bin/barewrap", "bare Go exec wrapper binary")
		runc     = flag.String("runc", "/usr/bin/runc", "the real runtime")
		nPass    = flag.Int("pass", 400, "pass-through rounds (each runs all three)")
		nCycle   = flag.Int("cycles", 100, "create+start+delete rounds (each runs all three)")
		warmup   = flag.Int("warmup", 5, "rounds run first and not counted")
		nFirst   = flag.Int("first", 10, "rounds of first recorded starts (each loads the recorder); 0: none")
		gobench  = flag.String("gobench", "", "output of go test -bench to include in the table")
		trbench  = flag.String("tracebench", "", "output of go test -bench Chown ./trace/ (several passes) to include in the table")
		jsonOut  = flag.String("json", "", "write the results as JSON to this file")
		chart    = flag.String("chart", "", "write the chart (PNG) to this file")
		from     = flag.String("from", "", "read results from this JSON file instead of measuring (chart and table only)")
	)
	flag.Parse()
	if err := run(*capshim, *barewrap, *runc, *nPass, *nCycle, *nFirst, *warmup, *gobench, *trbench, *jsonOut, *chart, *from); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func run(capshim, barewrap, runc string, nPass, nCycle, nFirst, warmup int, gobench, trbench, jsonOut, chart, from string) error {
	var r *results
	if from != "" {
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		r = &results{}
		if err := json.Unmarshal(data, r); err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
	} else {
		var err error
		if r, err = measureAll(capshim, barewrap, runc, nPass, nCycle, nFirst, warmup); err != nil {
			return err
		}
		if gobench != "" {
			if r.Go, err = readGoBench(gobench); err != nil {
				return err
			}
		}
		if trbench != "" {
			if r.Checks, err = readCheckBench(trbench); err != nil {
				return err
			}
			if r.Paired, err = readPairedBench(trbench); err != nil {
				return err
			}
		}
	}
	printTable(os.Stdout, r)
	if jsonOut != "" && from == "" {
		data, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if chart != "" {
		if err := writeChart(chart, r); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
	}
	return nil
}

// bench is one measuring session: its temporary directory and what it
// must clean up.
type bench struct {
	dir    string
	root   string // runc --root
	bundle string
	config []byte // the pristine 14-capability config.json
	policy string
	// envExplain is the environment of capshim-explain.
	envExplain []string
	// keeper is the long-running recorded container.
	keeper  string
	bins    map[string]string
	env     []string
	devnull *os.File
	errlog  *os.File
	created map[string]bool
	// steps holds the times of the start and the delete of every counted
	// cycle, by step and runtime; warmup cycles are left out.
	steps   map[string]map[string][]float64
	warmup  int
	mounted bool // b.dir is a tmpfs of its own
	// binDir holds the copies of capshim and the bare wrapper that run.
	binDir string
	// copies holds, by runtime, the copies of the wrapper the run rotates
	// through (see install); calls counts each runtime's calls.
	copies map[string][]string
	calls  map[string]int
	// afterStart, when set, checks each cycle's start right after it.
	afterStart func(rt string) error
}

// copies is how many copies of each wrapper install writes. Which pages
// of the page cache a file lands in changes what its every start costs:
// on the VM of BENCHMARKS.md one copy of a binary measured 1.03x against
// other copies of the same bytes at 1.00x–1.01x, run after run. The run
// rotates through several copies of each, so that no wrapper's result
// rests on one file's luck.
const copies = 3

// install copies capshim (with the companions it runs next to it) and the
// bare wrapper into directories of the run on disk, copies of each, and
// the run measures those copies: a binary runs as a package or install(1)
// leaves it, written through the kernel's write path. The file the Go
// linker writes (through a memory mapping) costs more page faults at every
// start until it leaves the page cache (capshim: 316 faults against 286
// for a copy of the same bytes), and more for the larger binary, which
// would charge capshim for how it was built rather than for what it does.
// runc is measured as its package installed it.
func (b *bench) install() error {
	var err error
	if b.binDir, err = os.MkdirTemp("", "capshim-bench-bin-"); err != nil {
		return err
	}
	if err := os.Chmod(b.binDir, 0o755); err != nil {
		return err
	}
	capshim := b.bins["capshim"]
	files := map[string]string{capshim: "capshim", b.bins["barewrap"]: "barewrap"}
	for _, companion := range []string{"capshim-tools", "capshim-trace"} {
		if p := filepath.Join(filepath.Dir(capshim), companion); fileExists(p) {
			files[p] = companion
		}
	}
	b.copies = map[string][]string{}
	b.calls = map[string]int{}
	for i := range copies {
		// Each copy of capshim keeps its own name, capshim, which is how
		// it finds its policy; so each copy has a directory of its own.
		dir := filepath.Join(b.binDir, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for from, name := range files {
			if err := copyExecutable(from, filepath.Join(dir, name)); err != nil {
				return err
			}
		}
		for _, rt := range []string{"capshim", "capshim-explain"} {
			b.copies[rt] = append(b.copies[rt], filepath.Join(dir, "capshim"))
		}
		b.copies["barewrap"] = append(b.copies["barewrap"], filepath.Join(dir, "barewrap"))
	}
	for rt, c := range b.copies {
		b.bins[rt] = c[0]
	}
	return nil
}

// bin is the file the next call of rt runs: its copies in turn.
func (b *bench) bin(rt string) string {
	c := b.copies[rt]
	if len(c) == 0 {
		return b.bins[rt]
	}
	b.calls[rt]++
	return c[b.calls[rt]%len(c)]
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// copyExecutable writes a copy of the executable from at to, mode 0755.
func copyExecutable(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", from, err)
	}
	return out.Close()
}

func measureAll(capshim, barewrap, runc string, nPass, nCycle, nFirst, warmup int) (*results, error) {
	b := &bench{bins: map[string]string{}, created: map[string]bool{}}
	for name, p := range map[string]string{"capshim": capshim, "capshim-explain": capshim, "barewrap": barewrap, "runc": runc} {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		b.bins[name] = abs
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("creating containers with runc needs root")
	}
	defer b.cleanup()
	if err := b.install(); err != nil {
		return nil, err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "e2e: interrupted, cleaning up")
		b.cleanup()
		os.Exit(130)
	}()
	if err := b.setup(); err != nil {
		return nil, err
	}
	r := &results{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(b.bins["runc"])}

	fmt.Fprintf(os.Stderr, "e2e: pass-through, %d rounds of %s\n", nPass, strings.Join(runtimes, ", "))
	pass, err := b.rounds(nPass, warmup, b.passThrough)
	if err != nil {
		return nil, err
	}
	r.Pass = summarize("pass-through (state of a missing container)", pass, 1.03)

	if err := b.checkReduces(); err != nil {
		return nil, err
	}
	if nFirst > 0 {
		fmt.Fprintf(os.Stderr, "e2e: first recorded starts (nothing pinned), %d rounds of capshim, capshim-explain\n", nFirst)
		if r.First, err = b.firstStarts(nFirst); err != nil {
			return nil, err
		}
	}
	if nCycle == 0 {
		return r, nil
	}
	// A container that stays up, recorded, keeps the recorder attached,
	// as on a node that runs containers: capshim-explain's cycles then
	// measure a start and delete of one more recorded container, not the
	// first load of the recorder (BenchmarkAttach in package trace
	// measures that).
	if err := b.startKeeper(); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e: create+start+delete, %d rounds of %s\n", nCycle, strings.Join(runtimes, ", "))
	b.steps = map[string]map[string][]float64{"start": {}, "delete": {}}
	b.warmup = warmup
	cycle, err := b.rounds(nCycle, warmup, b.cycle)
	if err != nil {
		return nil, err
	}
	r.Cycle = summarize("create+start+delete (busybox, 14 caps)", cycle, 1.02)
	r.Start = summarize("start (of the cycle)", b.steps["start"], 0)
	r.Delete = summarize("delete --force (of the cycle)", b.steps["delete"], 0)
	r.Added = map[string]float64{
		"start":  medianDiff(b.steps["start"]["capshim-explain"], b.steps["start"]["capshim"]),
		"delete": medianDiff(b.steps["delete"]["capshim-explain"], b.steps["delete"]["capshim"]),
	}
	return r, nil
}

// pinnedLink is the recorder's link pin while any container is recorded.
var pinnedLink = filepath.Join(pinned.DefaultDir, pinned.PinLink)

// firstStarts measures what a recorded start costs when it has to load
// the recorder: n rounds (after one not counted) of a cycle through
// capshim and one through capshim-explain, in turns, with nothing else
// recorded, so that every capshim-explain start loads, attaches and pins
// the recorder and its delete unpins it again. The kernel symbols the
// program needs are looked up once per boot and cached, so this is every
// such start after the boot's first.
func (b *bench) firstStarts(n int) (map[string]float64, error) {
	if _, err := os.Stat(pinnedLink); err == nil {
		// A recorded container of the host's is running: no start here
		// would load the recorder.
		fmt.Fprintf(os.Stderr, "e2e: a recorder is pinned at %s (a recorded container is running): first recorded starts not measured\n", pinnedLink)
		return nil, nil
	}
	b.steps = map[string]map[string][]float64{"start": {}, "delete": {}}
	// These cycles count from firstIDs, apart from the ids of the other
	// cycles; the first is the warm-up.
	const firstIDs = 1000000
	b.warmup = firstIDs + 1
	// Every recorded start must have pinned the recorder, or it measured
	// nothing more than an enforced one.
	b.afterStart = func(rt string) error {
		if _, err := os.Stat(pinnedLink); rt == "capshim-explain" && err != nil {
			return fmt.Errorf("capshim-explain's start pinned no recorder (%v): %s", err, b.stderr())
		}
		return nil
	}
	defer func() { b.steps, b.afterStart = nil, nil }()
	for i := 0; i < n+1; i++ {
		for k := range 2 {
			rt := []string{"capshim", "capshim-explain"}[(i+k)%2]
			if _, err := b.cycle(rt, firstIDs+i); err != nil {
				return nil, err
			}
			if _, err := os.Stat(pinnedLink); err == nil {
				return nil, fmt.Errorf("the recorder is still pinned after the delete of %s's container: the next start would not load it", rt)
			}
		}
	}
	st := b.steps["start"]
	return map[string]float64{
		"capshim":         median(st["capshim"]),
		"capshim-explain": median(st["capshim-explain"]),
		"added":           medianDiff(st["capshim-explain"], st["capshim"]),
		"rounds":          float64(len(st["capshim"])),
	}, nil
}

// rounds runs f for every runtime n+warmup times, interleaved: each round
// runs all three, in an order that rotates from round to round.
func (b *bench) rounds(n, warmup int, f func(rt string, i int) (time.Duration, error)) (map[string][]float64, error) {
	out := map[string][]float64{}
	for i := 0; i < n+warmup; i++ {
		for k := range runtimes {
			rt := runtimes[(i+k)%len(runtimes)]
			d, err := f(rt, i)
			if err != nil {
				return nil, err
			}
			if i >= warmup {
				out[rt] = append(out[rt], float64(d)/float64(time.Millisecond))
			}
		}
	}
	return out, nil
}

func (b *bench) setup() error {
	var err error
	if b.dir, err = os.MkdirTemp("", "capshim-bench-"); err != nil {
		return err
	}
	// Engines keep bundles and runtime state on tmpfs (containerd's
	// /run/containerd, Podman's /run/containers): so does the benchmark,
	// which also keeps other processes' disk traffic out of the numbers.
	if err := syscall.Mount("tmpfs", b.dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=64m,mode=0700"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no tmpfs for the bundle (%v); using %s on disk\n", err, b.dir)
	} else {
		b.mounted = true
	}
	b.root = filepath.Join(b.dir, "runc-root")
	b.bundle = filepath.Join(b.dir, "bundle")
	rootfs := filepath.Join(b.bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		return err
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("static busybox missing (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("chroot", rootfs, "/bin/busybox", "--install", "-s", "/bin").CombinedOutput(); err != nil {
		return fmt.Errorf("busybox --install: %v: %s", err, out)
	}
	if b.config, err = engineSpec(); err != nil {
		return err
	}
	// The policy names the real runtime, as a deployment should: no PATH
	// scan. The directory is root's and 0700, so the trust checks pass.
	// The decision log is on, as by default, in the directory of the run
	// rather than the host's /var/log/capshim.
	b.policy = filepath.Join(b.dir, "shim.toml")
	pol := fmt.Sprintf("runtime = %q\nmode = \"enforce\"\ndefault = [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]\nstate_dir = %q\nlog = %q\n",
		b.bins["runc"], filepath.Join(b.dir, "state"), filepath.Join(b.dir, "log", "decisions.log"))
	if err := os.WriteFile(b.policy, []byte(pol+"explain = false\n"), 0o644); err != nil {
		return err
	}
	explainPolicy := filepath.Join(b.dir, "explain.toml")
	if err := os.WriteFile(explainPolicy, []byte(pol), 0o644); err != nil {
		return err
	}
	b.env = append(os.Environ(), "CAPSHIM_CONFIG="+b.policy)
	b.envExplain = append(os.Environ(), "CAPSHIM_CONFIG="+explainPolicy)
	if b.devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
		return err
	}
	b.errlog, err = os.OpenFile(filepath.Join(b.dir, "stderr.log"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	return err
}

// engineSpec is a config.json like the one Docker or containerd writes:
// the 14 default capabilities, no terminal, its own network namespace, no
// user namespace. This VM's root has no CAP_SYS_RESOURCE, so no rlimit
// above the current hard limit and no oomScoreAdj.
func engineSpec() ([]byte, error) {
	g, err := generate.New("linux")
	if err != nil {
		return nil, err
	}
	g.SetRootPath("rootfs")
	g.SetHostname("capshim-bench")
	g.SetProcessArgs([]string{"/bin/true"})
	g.SetProcessTerminal(false)
	g.ClearProcessRlimits()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	nofile := min(uint64(1024), lim.Max)
	g.AddProcessRlimits("RLIMIT_NOFILE", nofile, nofile)
	g.Config.Process.OOMScoreAdj = nil
	// Docker's and containerd's 14 default capabilities: the spec every
	// create starts from.
	caps := engine.Docker.Default().Names()
	g.Config.Process.Capabilities = &rspec.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	for _, ns := range g.Config.Linux.Namespaces {
		if ns.Type == rspec.UserNamespace {
			return nil, errors.New("the generated spec has a user namespace")
		}
	}
	if !slices.ContainsFunc(g.Config.Linux.Namespaces, func(ns rspec.LinuxNamespace) bool {
		return ns.Type == rspec.NetworkNamespace && ns.Path == ""
	}) {
		return nil, errors.New("the generated spec has no network namespace of its own")
	}
	return json.Marshal(g.Config)
}

// exec runs one runtime call with stdio on /dev/null (stderr to a log)
// and returns its wall time and exit code.
func (b *bench) exec(rt string, args ...string) (time.Duration, int, error) {
	argv := append([]string{b.bin(rt)}, args...)
	b.errlog.Truncate(0)
	t0 := time.Now()
	env := b.env
	if rt == "capshim-explain" {
		env = b.envExplain
	}
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Dir:   b.bundle,
		Env:   env,
		Files: []*os.File{b.devnull, b.devnull, b.errlog},
	})
	if err != nil {
		return 0, 0, err
	}
	st, err := p.Wait()
	d := time.Since(t0)
	if err != nil {
		return 0, 0, err
	}
	return d, st.ExitCode(), nil
}

func (b *bench) stderr() string {
	data, _ := os.ReadFile(b.errlog.Name())
	return strings.TrimSpace(string(data))
}

// passThrough is `state` of a container that does not exist: the runtime
// starts, finds nothing and exits 1. capshim passes it straight through.
func (b *bench) passThrough(rt string, _ int) (time.Duration, error) {
	d, code, err := b.exec(rt, "--root", b.root, "state", "capshim-bench-missing")
	if err != nil {
		return 0, err
	}
	if code != 1 || !strings.Contains(b.stderr(), "does not exist") {
		return 0, fmt.Errorf("%s state: exit %d, want 1 with \"does not exist\": %s", rt, code, b.stderr())
	}
	return d, nil
}

// cycle creates, starts and deletes one busybox container running
// /bin/true. The 14-capability config.json is restored first (untimed),
// so capshim reduces it every time.
func (b *bench) cycle(rt string, i int) (time.Duration, error) {
	if err := os.WriteFile(filepath.Join(b.bundle, "config.json"), b.config, 0o644); err != nil {
		return 0, err
	}
	id := fmt.Sprintf("capshim-bench-%d-%s-%d", os.Getpid(), rt, i)
	var total time.Duration
	for _, args := range [][]string{
		{"--root", b.root, "create", "--bundle", b.bundle, id},
		{"--root", b.root, "start", id},
		{"--root", b.root, "delete", "--force", id},
	} {
		if args[2] == "create" {
			b.created[id] = true
		}
		d, code, err := b.exec(rt, args...)
		if err != nil {
			return 0, err
		}
		if code != 0 {
			return 0, fmt.Errorf("%s %s %s: exit %d: %s", rt, args[2], id, code, b.stderr())
		}
		total += d
		if args[2] == "start" && b.afterStart != nil {
			if err := b.afterStart(rt); err != nil {
				return 0, err
			}
		}
		if step := args[2]; step != "create" && b.steps != nil && i >= b.warmup {
			b.steps[step][rt] = append(b.steps[step][rt], float64(d)/float64(time.Millisecond))
		}
	}
	delete(b.created, id)
	return total, nil
}

// medianDiff is the median of a[i] - b[i]: both ran in round i, so the
// load of the moment cancels out.
func medianDiff(a, b []float64) float64 {
	var d []float64
	for i := range a {
		if i < len(b) {
			d = append(d, a[i]-b[i])
		}
	}
	slices.Sort(d)
	return quantile(d, 0.5)
}

// startKeeper starts a long-running container through capshim-explain.
func (b *bench) startKeeper() error {
	var spec map[string]any
	if err := json.Unmarshal(b.config, &spec); err != nil {
		return err
	}
	spec["process"].(map[string]any)["args"] = []string{"/bin/sleep", "3600"}
	spec["root"].(map[string]any)["path"] = filepath.Join(b.bundle, "rootfs")
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.dir, "keeper")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return err
	}
	id := fmt.Sprintf("capshim-bench-%d-keeper", os.Getpid())
	b.created[id] = true
	b.keeper = id
	for _, args := range [][]string{
		{"--root", b.root, "create", "--bundle", dir, id},
		{"--root", b.root, "start", id},
	} {
		if _, code, err := b.exec("capshim-explain", args...); err != nil || code != 0 {
			return fmt.Errorf("keeper %s: exit %d (%v): %s", args[2], code, err, b.stderr())
		}
	}
	// capshim-explain must really record, or its cycles measure nothing
	// more than capshim's.
	if _, err := os.Stat(pinnedLink); err != nil || strings.Contains(b.stderr(), "not recorded") {
		return fmt.Errorf("the keeper is not recorded (%v): %s", err, b.stderr())
	}
	return nil
}

// checkReduces makes sure capshim does real work in the cycle: one create
// through capshim must rewrite the 14-capability spec.
func (b *bench) checkReduces() error {
	if _, err := b.cycle("capshim", -1); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(b.bundle, "config.json"))
	if err != nil {
		return err
	}
	if bytes.Equal(data, b.config) {
		return errors.New("capshim left the 14-capability spec as it was: the benchmark would not measure a rewrite")
	}
	if bytes.Contains(data, []byte("CAP_MKNOD")) {
		return errors.New("capshim kept CAP_MKNOD: the policy was not applied")
	}
	return nil
}

func (b *bench) cleanup() {
	if b.keeper != "" {
		// Through capshim, so that its recording ends and the recorder
		// is released.
		b.exec("capshim-explain", "--root", b.root, "delete", "--force", b.keeper)
		delete(b.created, b.keeper)
		b.keeper = ""
	}
	for id := range b.created {
		// Through capshim first, which ends a recording (a cycle that
		// failed half-way may leave a recorded container); runc then
		// removes whatever is left.
		if b.errlog != nil && b.binDir != "" {
			b.exec("capshim-explain", "--root", b.root, "delete", "--force", id)
		}
		exec.Command(b.bins["runc"], "--root", b.root, "delete", "--force", id).Run()
		delete(b.created, id)
	}
	if b.devnull != nil {
		b.devnull.Close()
	}
	if b.errlog != nil {
		b.errlog.Close()
	}
	if b.binDir != "" {
		os.RemoveAll(b.binDir)
		b.binDir = ""
	}
	if b.dir != "" {
		if b.mounted {
			syscall.Unmount(b.dir, syscall.MNT_DETACH)
		}
		os.RemoveAll(b.dir)
		b.dir = ""
	}
}

func summarize(name string, d map[string][]float64, target float64) measure {
	m := measure{Name: name, N: len(d["runc"]), Runtimes: map[string]stats{}, Target: target}
	if m.N == 0 {
		// A phase asked for with no rounds (-cycles 0): nothing to sum up,
		// and the table leaves it out.
		return m
	}
	for _, rt := range runtimes {
		s := slices.Clone(d[rt])
		slices.Sort(s)
		m.Runtimes[rt] = stats{
			Median:       quantile(s, 0.5),
			P25:          quantile(s, 0.25),
			P75:          quantile(s, 0.75),
			Min:          s[0],
			PairedVsBare: pairedRatio(d[rt], d["barewrap"]),
			PairedVsRunc: pairedRatio(d[rt], d["runc"]),
		}
	}
	return m
}

func pairedRatio(a, b []float64) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	slices.Sort(r)
	return quantile(r, 0.5)
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[i]
	}
	return sorted[i] + (sorted[i+1]-sorted[i])*(pos-float64(i))
}

// readGoBench reads the result lines of `go test -bench -benchmem`.
func readGoBench(path string) ([]goBench, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []goBench
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		g := goBench{Name: strings.TrimPrefix(fields[0], "Benchmark")}
		if i := strings.LastIndexByte(g.Name, '-'); i > 0 {
			g.Name = g.Name[:i]
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, _ := strconv.ParseFloat(fields[i], 64)
			switch fields[i+1] {
			case "ns/op":
				g.NsOp = v
			case "B/op":
				g.BOp = int64(v)
			case "allocs/op":
				g.AllocsOp = int64(v)
			case "MB/s":
				g.MBs = v
			}
		}
		out = append(out, g)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results", path)
	}
	return out, sc.Err()
}

func printTable(w io.Writer, r *results) {
	fmt.Fprintf(w, "capshim benchmarks, %s\n%s\n\n", r.Date, r.Machine)
	fmt.Fprintln(w, "| measure | runtime | median (go: ns/op) | p25 – p75 (go: throughput) | vs bare wrapper | vs runc | target | B/op | allocs/op |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---|---:|---:|")
	for _, g := range r.Go {
		target := ""
		if g.Name == "RewriteDockerDefault" {
			target = verdict(g.NsOp/1000 <= 30, "≤ 30 µs")
		}
		fmt.Fprintf(w, "| go bench: %s | in process | %s | %.0f MB/s | | | %s | %d | %d |\n",
			g.Name, dur(g.NsOp/1e6), g.MBs, target, g.BOp, g.AllocsOp)
	}
	for _, m := range []measure{r.Pass, r.Cycle, r.Start, r.Delete} {
		if m.N == 0 {
			continue
		}
		for _, rt := range runtimes {
			s := m.Runtimes[rt]
			bare, runc := m.Runtimes["barewrap"].Median, m.Runtimes["runc"].Median
			target := ""
			if rt == "capshim" && m.Target > 0 {
				target = verdict(s.Median/bare <= m.Target, fmt.Sprintf("≤ %.2fx bare", m.Target))
			}
			fmt.Fprintf(w, "| e2e: %s, n=%d | %s | %s | %s – %s | %.3fx (paired %.3fx) | %.3fx (paired %.3fx) | %s | | |\n",
				m.Name, m.N, rt, dur(s.Median), dur(s.P25), dur(s.P75),
				s.Median/bare, s.PairedVsBare, s.Median/runc, s.PairedVsRunc, target)
		}
	}
	if r.Added != nil {
		fmt.Fprintf(w, "| e2e: recording's cost, capshim-explain − capshim in the same round (median): a later start | capshim-explain | %s | | | | %s | | |\n",
			signed(r.Added["start"]), verdict(r.Added["start"] <= 1, "≤ 1 ms"))
		fmt.Fprintf(w, "| e2e: recording's cost, capshim-explain − capshim in the same round (median): its delete, with the harvest | capshim-explain | %s | | | |  | | |\n",
			signed(r.Added["delete"]))
	}
	if r.First != nil {
		fmt.Fprintf(w, "| e2e: first recorded start (nothing pinned: load, attach, pin), n=%.0f | capshim-explain | %s | | | | | | |\n", r.First["rounds"], dur(r.First["capshim-explain"]))
		fmt.Fprintf(w, "| e2e: first recorded start − an enforced start in the same round (median) | capshim-explain | %s | | | | | | |\n", signed(r.First["added"]))
	}
	for _, c := range r.Checks {
		if c.State == "detached" {
			fmt.Fprintf(w, "| kernel: a capability check (fchown, BenchmarkChown ×%d), detached: no program | kernel | %.0f ns | | | | | | |\n", c.Passes, c.NsOp)
			continue
		}
		// What a state adds is judged on the paired rows below: run one
		// state after another, the drift of a busy VM's speed between
		// states is larger than the differences.
		fmt.Fprintf(w, "| kernel: a capability check, %s: the program's own run time (BPF statistics) | kernel | %.0f ns | | | | | | |\n",
			c.State, c.ProgNs)
	}
	for _, c := range r.Paired {
		if c.State == "detached" {
			fmt.Fprintf(w, "| kernel: a capability check (fchown, BenchmarkChownPaired, %d rounds), detached: no program | kernel | %.0f ns | | | | | | |\n", c.Passes, c.NsOp)
			continue
		}
		if c.AddedNs == nil {
			continue // a results file without the figure: nothing to say
		}
		target := ""
		if c.TargetNs > 0 {
			target = verdict(*c.AddedNs <= c.TargetNs, fmt.Sprintf("≤ %.0f ns added", c.TargetNs))
		}
		fmt.Fprintf(w, "| kernel: a capability check, %s: added, paired within rounds (median) | kernel | %+.1f ns | | | | %s | | |\n",
			c.State, *c.AddedNs, target)
	}
}

// pairedStates names BenchmarkChownPaired's states (the unit of each
// metric after "added-ns/") as the table says them, with the project's
// bound on what a check may gain in that state, in ns (0: none).
var pairedStates = []struct {
	unit, state string
	target      float64
}{
	{"empty", "an empty program attached", 0},
	{"nothing-watched", "attached, nothing watched", 60},
	{"other-watched", "another cgroup watched, caller at its level", 60},
	{"watched", "watched", 100},
	{"watched-hash", "watched, its slot held by another watched cgroup", 100},
}

// readPairedBench reads BenchmarkChownPaired's line from the file of
// the capability-check benchmarks; none there is no result.
func readPairedBench(path string) ([]checkCost, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if !strings.HasPrefix(fieldAt(fields, 0), "BenchmarkChownPaired") || len(fields) < 4 {
			continue
		}
		rounds, err := strconv.Atoi(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s: rounds of %q: %w", path, line, err)
		}
		metric := map[string]float64{}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %w", path, line, err)
			}
			metric[fields[i+1]] = v
		}
		det, ok := metric["detached-ns/check"]
		if !ok {
			return nil, fmt.Errorf("%s: no detached-ns/check in %q", path, line)
		}
		out := []checkCost{{State: "detached", Passes: rounds, NsOp: det}}
		for _, s := range pairedStates {
			v, ok := metric["added-ns/"+s.unit]
			if !ok {
				return nil, fmt.Errorf("%s: no added-ns/%s in %q", path, s.unit, line)
			}
			out = append(out, checkCost{State: s.state, Passes: rounds, NsOp: det + v, AddedNs: &v, TargetNs: s.target})
		}
		return out, nil
	}
	return nil, nil
}

// readCheckBench reads BenchmarkChown's passes: each line is one state of
// one pass, in the order the benchmark runs them (detached first and
// last).
func readCheckBench(path string) ([]checkCost, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var order []string
	ns := map[string][]float64{}
	prog := map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		name, ok := strings.CutPrefix(fieldAt(fields, 0), "BenchmarkChown/")
		if !ok || len(fields) < 4 {
			continue
		}
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		name = strings.ReplaceAll(name, "_", " ")
		if _, seen := ns[name]; !seen {
			order = append(order, name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, _ := strconv.ParseFloat(fields[i], 64)
			switch fields[i+1] {
			case "ns/op":
				ns[name] = append(ns[name], v)
			case "prog-ns/run":
				prog[name] = append(prog[name], v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// A pass's detached time is the mean of its runs before and after the
	// attached states (the second only in passes that have it).
	detached := slices.Clone(ns["detached"])
	if len(detached) == 0 {
		return nil, fmt.Errorf("%s: no BenchmarkChown/detached results", path)
	}
	for i, v := range ns["detached again"] {
		if i < len(detached) {
			detached[i] = (detached[i] + v) / 2
		}
	}
	var out []checkCost
	for _, name := range order {
		if name == "detached again" {
			continue
		}
		c := checkCost{State: name, Passes: len(ns[name]), NsOp: median(ns[name])}
		if name == "detached" {
			c.NsOp = median(detached)
		} else {
			c.ProgNs = median(prog[name])
		}
		out = append(out, c)
	}
	return out, nil
}

// median is the middle of v (unsorted).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return quantile(s, 0.5)
}

func fieldAt(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// signed formats milliseconds that may be negative.
func signed(ms float64) string {
	if ms < 0 {
		return "−" + dur(-ms)
	}
	return "+" + dur(ms)
}

func verdict(ok bool, target string) string {
	if ok {
		return target + ": met"
	}
	return target + ": MISSED"
}

// dur formats milliseconds.
func dur(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 1:
		return fmt.Sprintf("%.3f ms", ms)
	default:
		return fmt.Sprintf("%.1f µs", ms*1000)
	}
}

// machine describes where the numbers come from.
func machine(runc string) string {
	var parts []string
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				parts = append(parts, strings.TrimSpace(v))
				break
			}
		}
	}
	parts = append(parts, fmt.Sprintf("%d CPUs", runtime.NumCPU()))
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		parts = append(parts, "Linux "+b.String())
	}
	parts = append(parts, runtime.Version())
	if out, err := exec.Command(runc, "--version").Output(); err == nil {
		parts = append(parts, strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0])
	}
	return strings.Join(parts, ", ")
}
