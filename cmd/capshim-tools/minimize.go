package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/learn"
)

var learnMinimizeCommand = &cli.Command{
	Name:      "minimize",
	Usage:     "find which of a profile's capabilities the workload needs, by running it with fewer",
	ArgsUsage: "NAME",
	Description: `Runs the workload of the OCI bundle DIR (a config.json and its rootfs, whose
process does its work once and exits, 0 when it worked) again and again with
the real runtime, each time as a fresh container with exactly one candidate
set in its bounding, effective and permitted sets (and in inheritable and
ambient where the bundle has them there). It starts from what the profile
NAME learned (used, and what file capabilities demand) and drops one
capability at a time, keeping the drop when the workload still passes. The
result is checked: it passes once more, and fails without any one of its
members. The needed set and every run are recorded in the profile, and
"capshim learn show NAME" then keeps the needed set.

A run passes when it exits 0 and, with --check, its output (stdout and
stderr) matches REGEXP. Each run gets a fresh copy-on-write overlay of the
rootfs, so nothing one run writes there is seen by the next; the bundle's
mounts (volumes) are the bundle's own, and shared. The runs do not go through
capshim, so no policy applies to them.`,
	Flags: []cli.Flag{
		stateDirFlag,
		configFlag,
		&cli.StringFlag{Name: "bundle", Required: true, Usage: "OCI bundle `DIR` that runs the workload once"},
		&cli.StringFlag{Name: "runtime", Usage: "the real OCI runtime `PATH` (default: the policy's runtime, else runc on PATH)"},
		&cli.StringFlag{Name: "check", Usage: "a run passes only when its output matches `REGEXP`"},
		&cli.IntFlag{Name: "max-runs", Usage: "at most `N` runs (default: 2 × the learned set's size + 2)"},
		&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "a run still going after `DURATION` is killed and fails"},
		&cli.BoolFlag{Name: "shared-rootfs", Usage: "run on the bundle's rootfs itself, without an overlay (what one run writes, the next sees)"},
	},
	Action: learnMinimize,
}

// minOutputMax bounds what capshim keeps of one run's stdout and of its
// stderr: enough for --check, not a workload's whole log.
const minOutputMax = 1 << 20

func learnMinimize(c *cli.Context) error {
	name, err := learnName(c)
	if err != nil {
		return err
	}
	store := learnStore(c)
	p, err := store.Profile(name)
	if errors.Is(err, learn.ErrNotFound) {
		return cli.Exit(err.Error(), 1)
	}
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if n := c.Int("max-runs"); n < 0 {
		return cli.Exit(fmt.Sprintf("--max-runs %d: want a positive number of runs", n), 2)
	}
	var check *regexp.Regexp
	if s := c.String("check"); s != "" {
		if check, err = regexp.Compile(s); err != nil {
			return cli.Exit(fmt.Sprintf("--check: %v", err), 2)
		}
	}
	if c.Duration("timeout") <= 0 {
		return cli.Exit("--timeout: want a positive duration", 2)
	}
	b, err := loadTrialBundle(c.String("bundle"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	shared := c.Bool("shared-rootfs")
	if !shared && strings.ContainsAny(b.rootfs, ",:\\") {
		return cli.Exit(fmt.Sprintf("rootfs %s: an overlay cannot name a directory with ',', ':' or '\\' in its path; use --shared-rootfs, or move the bundle", b.rootfs), 2)
	}
	rt, err := minimizeRuntime(c)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	work, err := os.MkdirTemp("", "capshim-minimize-")
	if err != nil {
		return cli.Exit(fmt.Sprintf("making a work directory: %v", err), 2)
	}
	r := &trialRunner{runtime: rt, bundle: b, work: work, check: check, timeout: c.Duration("timeout"), shared: shared, errOut: c.App.ErrWriter}
	defer r.cleanup()

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	from := p.Learned()
	maxRuns := c.Int("max-runs")
	if maxRuns == 0 {
		maxRuns = learn.DefaultMaxRuns(from.Len())
	}
	w := c.App.Writer
	fmt.Fprintf(w, "minimizing profile %s: %d learned capabilities (%s), at most %d runs of %s with %s\n",
		name, from.Len(), from, maxRuns, b.dir, rt)
	m := &learn.Minimizer{
		Run:     r.run,
		MaxRuns: maxRuns,
		Progress: func(n int, t learn.Trial) {
			printTrial(w, n, maxRuns, t)
		},
	}
	start := time.Now()
	res, err := m.Minimize(ctx, from)
	took := shortDuration(time.Since(start))
	if err != nil {
		code := 1
		if ctx.Err() != nil {
			code = 2
		}
		return cli.Exit(fmt.Sprintf("minimize %s: %v (after %d runs in %v; the profile is unchanged)", name, err, len(res.Trials), took), code)
	}
	v := &learn.Verification{
		Needed:  res.Needed.Names(),
		From:    from.Names(),
		Runs:    len(res.Trials),
		At:      time.Now().UTC(),
		Runtime: rt,
		Bundle:  b.dir,
		Args:    b.args,
		Check:   c.String("check"),
		Trials:  res.Trials,
	}
	if _, err := store.Update(name, func(p *learn.Profile) error {
		p.Verified = v
		return nil
	}); err != nil {
		return cli.Exit(fmt.Sprintf("recording the result in profile %s: %v", name, err), 2)
	}
	fmt.Fprintf(w, "needed: %s\nused but not needed: %s\n", res.Needed, from&^res.Needed)
	fmt.Fprintf(w, "verified by %d runs in %v: the workload passes with exactly the needed set and fails without any one of it\n", v.Runs, took)
	fmt.Fprintf(w, "recorded in profile %s; capshim learn show %s prints its rule\n", name, name)
	return nil
}

// printTrial prints one run: what it was for, with which set, and how it
// went, then the line of output kept as evidence.
func printTrial(w io.Writer, n, max int, t learn.Trial) {
	verdict := "fail"
	if t.Pass {
		verdict = "pass"
	}
	set := "none"
	if len(t.Caps) > 0 {
		set = strings.Join(t.Caps, ",")
	}
	fmt.Fprintf(w, "run %d/%d  %s  exit %d  %v  %s: %s\n", n, max, verdict, t.Exit,
		shortDuration(time.Duration(t.TookMS)*time.Millisecond), t.Why, set)
	if t.Error != "" {
		fmt.Fprintf(w, "    error: %s\n", t.Error)
	}
	if t.Output != "" {
		fmt.Fprintf(w, "    %s\n", t.Output)
	}
}

// shortDuration rounds d to what a person reads: milliseconds below a
// second, tenths of a second above.
func shortDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// minimizeRuntime is the runtime the runs use: --runtime, else the
// policy's runtime, else runc on PATH; never capshim itself, which would
// apply its policy to the candidate sets.
func minimizeRuntime(c *cli.Context) (string, error) {
	rt := c.String("runtime")
	if rt == "" {
		if pol, _, err := cliPolicy(c); err == nil && pol.Runtime != "" {
			rt = pol.Runtime
		} else {
			rt = "runc"
		}
	}
	path, err := exec.LookPath(rt)
	if err != nil {
		return "", fmt.Errorf("runtime %s: %w (name the real runtime with --runtime)", rt, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return "", fmt.Errorf("runtime %s: %w", rt, err)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("runtime %s: %w", path, err)
	}
	if strings.HasPrefix(filepath.Base(real), "capshim") {
		return "", fmt.Errorf("runtime %s is capshim: minimize runs the real runtime (runc, crun), so that no policy changes the sets it tries", path)
	}
	return path, nil
}

// trialBundle is the bundle a search runs, read once: each run's
// config.json is this one with other capability sets and root.
type trialBundle struct {
	dir    string // absolute
	rootfs string // absolute
	args   []string
	top    map[string]json.RawMessage
	proc   map[string]json.RawMessage
	root   map[string]json.RawMessage
	// The bundle's inheritable and ambient sets, and whether it has them
	// at all: a run has there what it has of them, and no more.
	inh, amb       capability.Set
	hasInh, hasAmb bool
}

func loadTrialBundle(dir string) (*trialBundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	b := &trialBundle{dir: abs}
	cfg := filepath.Join(abs, "config.json")
	data, err := os.ReadFile(cfg)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := json.Unmarshal(data, &b.top); err != nil {
		return nil, fmt.Errorf("bundle config %s: %w", cfg, err)
	}
	if err := json.Unmarshal(b.top["process"], &b.proc); err != nil || b.proc == nil {
		return nil, fmt.Errorf("bundle config %s: no process object to run", cfg)
	}
	if err := json.Unmarshal(b.top["root"], &b.root); err != nil || b.root == nil {
		return nil, fmt.Errorf("bundle config %s: no root object", cfg)
	}
	var rootPath string
	if err := json.Unmarshal(b.root["path"], &rootPath); err != nil || rootPath == "" {
		return nil, fmt.Errorf("bundle config %s: root.path is not a path", cfg)
	}
	if !filepath.IsAbs(rootPath) {
		rootPath = filepath.Join(abs, rootPath)
	}
	if st, err := os.Stat(rootPath); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("bundle config %s: root.path %s is not a directory", cfg, rootPath)
	}
	b.rootfs = rootPath
	if raw, ok := b.proc["args"]; ok {
		if err := json.Unmarshal(raw, &b.args); err != nil {
			return nil, fmt.Errorf("bundle config %s: process.args: %w", cfg, err)
		}
	}
	var pc struct {
		Inheritable *[]string `json:"inheritable"`
		Ambient     *[]string `json:"ambient"`
	}
	if raw, ok := b.proc["capabilities"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &pc); err != nil {
			return nil, fmt.Errorf("bundle config %s: process.capabilities: %w", cfg, err)
		}
	}
	if pc.Inheritable != nil {
		b.hasInh = true
		b.inh, _ = capability.ParseList(*pc.Inheritable)
	}
	if pc.Ambient != nil {
		b.hasAmb = true
		b.amb, _ = capability.ParseList(*pc.Ambient)
	}
	return b, nil
}

// config is the config.json of a run with caps on the root file system
// rootfs: everything else as the bundle has it, but no terminal (capshim
// reads the output).
func (b *trialBundle) config(caps capability.Set, rootfs string) ([]byte, error) {
	sets := map[string][]string{
		"bounding":  caps.Names(),
		"effective": caps.Names(),
		"permitted": caps.Names(),
	}
	// The kernel raises an ambient capability only when it is permitted
	// and inheritable.
	inh := b.inh & caps
	if b.hasInh {
		sets["inheritable"] = inh.Names()
	}
	if b.hasAmb {
		sets["ambient"] = (b.amb & caps & inh).Names()
	}
	top := clone(b.top)
	proc := clone(b.proc)
	root := clone(b.root)
	var err error
	put := func(m map[string]json.RawMessage, k string, v any) {
		if err != nil {
			return
		}
		m[k], err = json.Marshal(v)
	}
	put(proc, "capabilities", sets)
	put(proc, "terminal", false)
	put(root, "path", rootfs)
	put(top, "process", proc)
	put(top, "root", root)
	if err != nil {
		return nil, fmt.Errorf("writing a run's config.json: %w", err)
	}
	return json.MarshalIndent(top, "", "\t")
}

func clone(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// trialRunner runs the bundle with one set at a time.
type trialRunner struct {
	runtime string
	bundle  *trialBundle
	work    string
	check   *regexp.Regexp
	timeout time.Duration
	shared  bool
	errOut  io.Writer
	n       int
	// stuck is set when a run's overlay could not be unmounted: the work
	// directory then stays, rather than be removed through a mount.
	stuck bool
}

func (r *trialRunner) cleanup() {
	if r.stuck {
		fmt.Fprintf(r.errOut, "capshim: leaving %s in place: a mount under it could not be removed\n", r.work)
		return
	}
	os.RemoveAll(r.work)
}

// run is one trial; a run that cannot be made or judged is a failure with
// its reason.
func (r *trialRunner) run(ctx context.Context, caps capability.Set) learn.RunResult {
	r.n++
	res := learn.RunResult{Exit: -1}
	start := time.Now()
	if err := r.runOnce(ctx, caps, &res); err != nil {
		res.Err = err
		res.Pass = false
	}
	res.Took = time.Since(start)
	return res
}

func (r *trialRunner) runOnce(ctx context.Context, caps capability.Set, res *learn.RunResult) error {
	dir := filepath.Join(r.work, fmt.Sprintf("run-%d", r.n))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("making the run's bundle: %w", err)
	}
	rootfs := r.bundle.rootfs
	if !r.shared {
		rootfs = filepath.Join(dir, "rootfs")
		if err := r.overlay(dir, rootfs); err != nil {
			return err
		}
		defer r.unmount(rootfs)
	}
	cfg, err := r.bundle.config(caps, rootfs)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return fmt.Errorf("writing the run's config.json: %w", err)
	}
	var suffix [4]byte
	rand.Read(suffix[:])
	id := fmt.Sprintf("capshim-minimize-%d-%d-%s", os.Getpid(), r.n, hex.EncodeToString(suffix[:]))
	root := filepath.Join(r.work, "runtime")
	defer r.delete(root, id)

	tctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, r.runtime, "--root", root, "run", "--bundle", dir, id)
	// Killing the container ends the runtime's run; the runtime itself
	// only when that does not work.
	cmd.Cancel = func() error {
		kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer kcancel()
		if exec.CommandContext(kctx, r.runtime, "--root", root, "kill", id, "KILL").Run() != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
	stdout, stderr := &capped{max: minOutputMax}, &capped{max: minOutputMax}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		res.Exit = 0
	case errors.As(runErr, &ee):
		res.Exit = ee.ExitCode()
	default:
		return fmt.Errorf("running %s: %w", r.runtime, runErr)
	}
	res.Output = firstLine(stdout.buf.Bytes())
	if res.Output == "" {
		res.Output = firstLine(stderr.buf.Bytes())
	}
	if tctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("killed after %v (--timeout)", r.timeout)
	}
	res.Pass = res.Exit == 0
	if r.check != nil && res.Pass {
		res.Pass = r.check.Match(stdout.buf.Bytes()) || r.check.Match(stderr.buf.Bytes())
	}
	return nil
}

// overlay mounts a fresh overlay of the bundle's rootfs on rootfs. Its
// upper directory takes the mode and owner of the rootfs, which the
// container's / gets from it.
func (r *trialRunner) overlay(dir, rootfs string) error {
	upper, wd := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{rootfs, upper, wd} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("making the run's overlay: %w", err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(r.bundle.rootfs, &st); err != nil {
		return fmt.Errorf("rootfs %s: %w", r.bundle.rootfs, err)
	}
	if err := os.Chmod(upper, os.FileMode(st.Mode&0o7777)); err != nil {
		return fmt.Errorf("making the run's overlay: %w", err)
	}
	if err := os.Lchown(upper, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("making the run's overlay: %w", err)
	}
	opts := "lowerdir=" + r.bundle.rootfs + ",upperdir=" + upper + ",workdir=" + wd
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting a fresh overlay of %s for the run: %w (--shared-rootfs runs without one)", r.bundle.rootfs, err)
	}
	return nil
}

func (r *trialRunner) unmount(rootfs string) {
	if err := unix.Unmount(rootfs, 0); err == nil {
		return
	}
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
		fmt.Fprintf(r.errOut, "capshim: unmounting %s: %v\n", rootfs, err)
		r.stuck = true
	}
}

// delete removes the run's container whatever state it is in.
func (r *trialRunner) delete(root, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, r.runtime, "--root", root, "delete", "--force", id)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil && !bytes.Contains(out.Bytes(), []byte("not exist")) {
		fmt.Fprintf(r.errOut, "capshim: %s delete --force %s: %v: %s\n", r.runtime, id, err, safetext.Line(strings.TrimSpace(out.String())))
	}
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// firstLine is the first line of out that is not blank, made safe to
// print and bounded.
func firstLine(out []byte) string {
	for line := range strings.SplitSeq(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return safetext.Truncate(safetext.Line(line), 400)
		}
	}
	return ""
}
