package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/filecaps"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/internal/trustfs"
	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
	"github.com/capshim/capshim/trace/pinned"
)

// What capshim keeps of a container for learning and explaining: a record
// written at create (the decision), completed at start (the cgroup it
// watches) and at delete (what the processes did), in learn.RunDir while
// the container exists and in the state directory afterwards. Loading
// the BPF recorder is capshim-trace's, next to capshim, so that this
// binary never carries the BPF library; watching and harvesting on the
// recorder once pinned are a few bpf(2) calls here (trace/pinned). All of
// it is observability: a failure is one warning line, and the container
// goes on as it would without it.

// traceTool is the companion binary that does the BPF work.
const traceTool = "capshim-trace"

// traceTimeout bounds a capshim-trace call; a start or delete never waits
// longer for observability.
const traceTimeout = 5 * time.Second

// engineKeys are the annotation prefixes whose values say what the engine
// knows about a container (name, pod, namespace, image); the record keeps
// them, bounded, for explain and for naming profiles.
var engineKeys = []string{"io.kubernetes.", "io.podman.", "io.container.manager", "org.opencontainers.image."}

const (
	maxEngineKeys  = 32
	maxEngineValue = 256
)

// records is where container records live.
func records(pol *policy.Policy) *learn.Records {
	return &learn.Records{Store: &learn.Store{Dir: pol.States()}}
}

// runtimeRoot is the runtime's state root: the --root given, else the
// runtime's own default.
func runtimeRoot(runtime, root string) string {
	if root != "" {
		return root
	}
	if strings.Contains(filepath.Base(runtime), "crun") {
		return "/run/crun"
	}
	return "/run/runc"
}

// recordCreate writes the record of a container being created.
func recordCreate(ra *runtimeArgs, pol *policy.Policy, l *runtimeLog, runtime string, doc *spec.Doc, o *policy.Outcome) {
	d := &o.Decision
	if d.LearnDenied != "" {
		l.event(pol, "warning", fmt.Sprintf("capshim: %s %s: learn request %q ignored: no matching rule allows learning (set learn = true or mode = \"learn\" in a rule)",
			ra.command, safetext.Truncate(ra.id, maxLogID), safetext.Truncate(d.LearnDenied, 64)), nil)
	}
	// Only a learned or explained container gets a record, only as root
	// (the record directories are root's), and not one started with run:
	// run creates and starts in one call, so there is no moment between
	// the two at which capshim could start recording.
	traced := d.Learn || pol.Explain && pol.Mode == policy.Enforce
	if !traced || ra.command == "run" || os.Geteuid() != 0 {
		return
	}
	rec := &learn.Container{
		ID: ra.id, Root: runtimeRoot(runtime, ra.root), Runtime: runtime,
		Engine: engineInfo(doc.Annotations), Policy: pol.Source, Mode: string(pol.Mode),
		StateDir: pol.States(), Log: pol.Log,
		EngineSets: setNames(doc.Sets()), Sets: setNames(o.Sets),
		Rules: d.Rules, Requested: d.Requested.Names(), Granted: d.Granted.Names(), Denied: d.Denied.Names(),
		LearnDenied:   safetext.Truncate(d.LearnDenied, 64),
		EngineRequest: d.FromEngine.Names(),
		Trace:         true,
		Created:       time.Now().UTC(),
	}
	var dropped capability.Set
	in := doc.Sets()
	for s := range in {
		dropped |= in[s] &^ o.Sets[s]
	}
	rec.Dropped = dropped.Names()
	if d.FromEngine != 0 {
		rec.EngineFlag = d.Engine.Flag()
	}
	if d.Learn {
		rec.Mode = "learn"
		rec.Profile = learn.Sanitize(d.Profile)
		if rec.Profile == "" {
			rec.Profile = learn.ProfileName(doc.Annotations, ra.id)
		}
	}
	if err := records(pol).Save(rec); err != nil {
		l.line("warning", fmt.Sprintf("capshim: cannot keep the record of %s for learn and explain: %v", safetext.Truncate(ra.id, maxLogID), err), nil)
	}
}

// engineInfo keeps the annotations that describe the container, bounded.
func engineInfo(annotations map[string]string) map[string]string {
	var out map[string]string
	for k, v := range annotations {
		if len(out) >= maxEngineKeys {
			break
		}
		for _, p := range engineKeys {
			if strings.HasPrefix(k, p) && len(k) <= maxEngineValue {
				if out == nil {
					out = map[string]string{}
				}
				out[k] = safetext.Truncate(v, maxEngineValue)
				break
			}
		}
	}
	return out
}

func setNames(s spec.Sets) map[string][]string {
	out := make(map[string][]string, spec.NumSets)
	for i := spec.Bounding; i < spec.NumSets; i++ {
		out[i.String()] = s[i].Names()
	}
	return out
}

// ownPolicy is pol with the state directory and decision log of the
// policy that created the container, as its record names them: the later
// calls of the runtime for one container may find another policy, or
// none (Podman's cleanup deletes with no runtime flags and an empty
// environment), and what the container did belongs with what was
// decided for it.
func ownPolicy(pol *policy.Policy, rec *learn.Container) *policy.Policy {
	if rec.StateDir == "" || (rec.StateDir == pol.States() && rec.Log == pol.Log) {
		return pol
	}
	own := *pol
	own.StateDir, own.Log = rec.StateDir, rec.Log
	return &own
}

// recordStart starts recording a traced container, before the runtime
// starts it: its first process waits in the runtime's init until then.
// Engines wait for a start, so on success it neither reads nor rewrites
// the record: the cgroup goes into a line of its own (Records.SaveStart).
func recordStart(ra *runtimeArgs, pol *policy.Policy, l *runtimeLog, runtime string) {
	if os.Geteuid() != 0 || ra.id == "" {
		return
	}
	r := records(pol)
	root := runtimeRoot(runtime, ra.root)
	// Only a recorded container has a record (recordCreate); one started
	// before has its start.
	if !r.Exists(root, ra.id) || r.Started(root, ra.id) {
		return
	}
	now := time.Now().UTC()
	pid, err := initPID(root, ra.id)
	var cg uint64
	if err == nil {
		cg, err = watch(pid)
	}
	if err == nil {
		if err := r.SaveStart(root, ra.id, cg, now); err != nil {
			l.line("warning", fmt.Sprintf("capshim: cannot update the record of %s: %v", safetext.Truncate(ra.id, maxLogID), err), nil)
		}
		return
	}
	rec, lerr := r.Load(root, ra.id)
	if lerr != nil || !rec.Trace {
		return // not capshim's, or not traced
	}
	pol = ownPolicy(pol, rec)
	l.about = rec.About()
	rec.Started = now
	rec.Trace, rec.TraceError = false, err.Error()
	l.event(pol, "warning", fmt.Sprintf("capshim: start %s: capability checks are not recorded (the container runs as without it): %v",
		safetext.Truncate(ra.id, maxLogID), err), nil)
	if err := r.Save(rec); err != nil {
		l.line("warning", fmt.Sprintf("capshim: cannot update the record of %s: %v", safetext.Truncate(ra.id, maxLogID), err), nil)
	}
}

// recordDelete completes a container's record: what its processes did,
// merged into its profile when it was learned, and a warning for every
// capability the policy dropped that it was then refused.
func recordDelete(ra *runtimeArgs, pol *policy.Policy, l *runtimeLog, runtime string) {
	if os.Geteuid() != 0 || ra.id == "" {
		return
	}
	r := records(pol)
	rec, err := r.Load(runtimeRoot(runtime, ra.root), ra.id)
	if err != nil {
		return
	}
	pol = ownPolicy(pol, rec)
	l.about = rec.About()
	id := safetext.Truncate(ra.id, maxLogID)
	if rec.CgroupID != 0 {
		r, err := pinned.HarvestPinned(pinned.Options{}, rec.CgroupID)
		if errors.Is(err, pinned.ErrNoPins) {
			err = errors.New("the recorder was not attached (it was removed, or the host rebooted): nothing was recorded")
		}
		if err != nil {
			rec.TraceError = err.Error()
			l.event(pol, "warning", fmt.Sprintf("capshim: delete %s: what the container did is not known: %v", id, err), nil)
		} else {
			rec.Observed = pinned.Observation(r)
			root := runtimeRoot(runtime, ra.root)
			fileCaps(rec.Observed, root, ra.id, r.Execs)
			if rec.Mode != "learn" && len(rec.Dropped) > 0 && !ranAnything(r.Execs) && r.Complete {
				entrypointCaps(rec.Observed, root, ra.id)
			}
		}
	}
	rec.Deleted = time.Now().UTC()
	if o := rec.Observed; o != nil {
		dropped, _ := capability.ParseList(rec.Dropped)
		for _, exe := range slices.Sorted(maps.Keys(o.FileCaps)) {
			demanded, _ := capability.ParseList(o.FileCaps[exe])
			if miss := demanded & dropped; rec.Mode != "learn" && miss != 0 {
				l.event(pol, "warning", fmt.Sprintf("capshim: container %s could not execute %s: it carries file capabilities %s that the policy dropped (the kernel refuses such an exec with EPERM, without a capability check); to grant them, add %q to the capabilities of a rule that matches the container and ask with capshim.io/capabilities=%s (or CAPSHIM_CAPABILITIES=%s), or see capshim explain %s",
					id, safetext.Truncate(exe, 256), miss, strings.Join(miss.Names(), ","), strings.Join(miss.Names(), ","), strings.Join(miss.Names(), ","), id), map[string]any{"container": id, "file_caps": miss.String()})
			}
		}
		for _, c := range (o.RefusedSet() & dropped).Caps() {
			l.event(pol, "warning", fmt.Sprintf("capshim: container %s was refused %s (%d checks) that the policy dropped; to grant it, add %q to the capabilities of a rule that matches the container and ask with capshim.io/capabilities=%s (or CAPSHIM_CAPABILITIES=%s), or see capshim explain %s",
				id, c, o.Refused[c.String()], c.String(), c.String(), c.String(), id), map[string]any{"container": id, "refused": c.String(), "checks": o.Refused[c.String()]})
		}
		if rec.Profile != "" {
			p, err := r.StoreOf(rec).Merge(rec.Profile, rec.ID, *o, profileMatch(rec.Engine), rec.Deleted)
			if err != nil {
				l.event(pol, "warning", fmt.Sprintf("capshim: delete %s: cannot merge into profile %s: %v", id, rec.Profile, err), nil)
			} else {
				l.event(pol, "info", fmt.Sprintf("capshim: container %s learned into profile %s (%d containers): used %s", id, p.Name, p.Containers, o.UsedSet()),
					map[string]any{"container": id, "profile": p.Name})
			}
		}
	}
	if err := r.Finish(rec); err != nil {
		l.line("warning", fmt.Sprintf("capshim: cannot keep the record of %s: %v", id, err), nil)
	}
	// Records of containers deleted behind capshim's back go too (at most
	// once a minute, so a delete does not read every record); their
	// recorder entries are reclaimed by capshim-trace's harvest.
	r.PruneEvery(time.Minute, func(c *learn.Container) bool {
		_, err := os.Lstat(filepath.Join(c.Root, c.ID))
		return errors.Is(err, fs.ErrNotExist)
	}, time.Now().UTC())
}

// profileMatch is what a learned workload's rule matches on: the CRI
// image (any tag or digest) and container name, which the requester
// cannot forge under Kubernetes, and for a pod sandbox its type.
func profileMatch(engine map[string]string) map[string]string {
	out := map[string]string{}
	if img := engine["io.kubernetes.cri.image-name"]; img != "" {
		base := learn.ImageName(img)
		// The tag or digest follows a ':' or '@': "nginx*" would also
		// match the image nginx-exporter, which is another workload.
		out["io.kubernetes.cri.image-name"] = policy.GlobQuote(base) + "[:@]*"
		if base == img {
			out["io.kubernetes.cri.image-name"] = policy.GlobQuote(base)
		}
	}
	if n := engine["io.kubernetes.cri.container-name"]; n != "" {
		out["io.kubernetes.cri.container-name"] = policy.GlobQuote(n)
	}
	// A sandbox has no container name: without its type, its rule would
	// match every container.
	if engine["io.kubernetes.cri.container-type"] == "sandbox" {
		out["io.kubernetes.cri.container-type"] = "sandbox"
	}
	return out
}

// watch starts recording the cgroup of the container's first process. On
// a recorder already pinned (every start but the first of a boot, or the
// first after the recorder was released) it is a few bpf(2) calls in this
// process; otherwise capshim-trace loads and pins the recorder, and
// watches.
func watch(pid int) (uint64, error) {
	cg, err := pinned.ProcessCgroup(pid)
	if err != nil {
		return 0, err
	}
	err = pinned.WatchPinned(pinned.Options{}, cg)
	var stale *pinned.StaleError
	if errors.Is(err, pinned.ErrNoPins) || errors.As(err, &stale) {
		res, err := runTrace("watch", strconv.Itoa(pid))
		return res.CgroupID, err
	}
	if err != nil {
		return 0, err
	}
	return cg.ID, nil
}

// fileCaps adds to o the executables the container ran that carry file
// capabilities with the effective bit: the kernel refuses to execute them
// when those are not all in the bounding set, and does so without a
// capability check. The root file system is still mounted at delete,
// before the real runtime runs. An executable that cannot be read there
// (run from a volume, or a path relative to a working directory) makes
// the observation incomplete.
func fileCaps(o *learn.Observation, root, id string, execs []string) {
	if len(execs) == 0 {
		return
	}
	rootfs, err := rootfsOf(root, id)
	if err != nil {
		o.Complete = false
		return
	}
	for _, exe := range execs {
		// The runtime's own re-exec (runc exec starts its init so); the
		// binary behind it was executed under its own name first.
		if exe == "/proc/self/exe" {
			continue
		}
		c, ok, err := filecaps.Read(rootfs, exe)
		if err != nil {
			o.Complete = false
			continue
		}
		if !ok || !c.Effective || c.Permitted == 0 {
			continue
		}
		if o.FileCaps == nil {
			o.FileCaps = map[string][]string{}
		}
		o.FileCaps[exe] = c.Permitted.Names()
	}
}

// ranAnything reports whether the container executed anything of its
// own: an enforced container whose entrypoint was refused ran nothing.
func ranAnything(execs []string) bool {
	for _, exe := range execs {
		if exe != "/proc/self/exe" {
			return true
		}
	}
	return false
}

// entrypointCaps adds to o the entrypoint's file capabilities when the
// container ran nothing: the kernel refuses to execute a binary whose
// file capabilities are not all in the bounding set, and a failed exec
// leaves nothing for the recorder to see. Only then is the bundle's
// config.json read again.
func entrypointCaps(o *learn.Observation, root, id string) {
	rootfs, bundle, err := stateOf(root, id)
	if err != nil || bundle == "" {
		return
	}
	data, err := readStateFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return
	}
	var cfg struct {
		Process struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
			Cwd  string   `json:"cwd"`
		} `json:"process"`
	}
	if json.Unmarshal(data, &cfg) != nil || len(cfg.Process.Args) == 0 || cfg.Process.Args[0] == "" {
		return
	}
	arg0 := cfg.Process.Args[0]
	var candidates []string
	switch {
	case strings.HasPrefix(arg0, "/"):
		candidates = []string{arg0}
	case strings.Contains(arg0, "/"):
		candidates = []string{filepath.Join("/", cfg.Process.Cwd, arg0)}
	default:
		path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range cfg.Process.Env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		for _, dir := range filepath.SplitList(path) {
			if strings.HasPrefix(dir, "/") {
				candidates = append(candidates, filepath.Join(dir, arg0))
			}
		}
	}
	for _, exe := range candidates {
		c, ok, err := filecaps.Read(rootfs, exe)
		if err != nil {
			continue // not there: the next directory of the path
		}
		if ok && c.Effective && c.Permitted != 0 {
			if o.FileCaps == nil {
				o.FileCaps = map[string][]string{}
			}
			o.FileCaps[exe] = c.Permitted.Names()
		}
		return
	}
}

// rootfsOf reads the container's root file system from the runtime's
// state.
func rootfsOf(root, id string) (string, error) {
	rootfs, _, err := stateOf(root, id)
	return rootfs, err
}

// stateOf reads the container's root file system and bundle from the
// runtime's state: runc's state.json (the bundle is a label there),
// crun's status.
func stateOf(root, id string) (rootfs, bundle string, err error) {
	dir := filepath.Join(root, id)
	if data, err := readStateFile(filepath.Join(dir, "state.json")); err == nil {
		var st struct {
			Config struct {
				Rootfs string   `json:"rootfs"`
				Labels []string `json:"labels"`
			} `json:"config"`
		}
		if err := json.Unmarshal(data, &st); err != nil || !filepath.IsAbs(st.Config.Rootfs) {
			return "", "", fmt.Errorf("no rootfs in %s/state.json", dir)
		}
		for _, l := range st.Config.Labels {
			if v, ok := strings.CutPrefix(l, "bundle="); ok {
				bundle = v
			}
		}
		return st.Config.Rootfs, bundle, nil
	}
	data, err := readStateFile(filepath.Join(dir, "status"))
	if err != nil {
		return "", "", fmt.Errorf("no state of container %q under %s: %w", id, root, err)
	}
	var st struct {
		Rootfs string `json:"rootfs"`
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal(data, &st); err != nil || !filepath.IsAbs(st.Rootfs) {
		return "", "", fmt.Errorf("no rootfs in %s/status", dir)
	}
	return st.Rootfs, st.Bundle, nil
}

// initPID reads the pid of the container's first process from the
// runtime's state: runc's state.json, crun's status. The pid is among
// the first keys of both, so the reading stops there instead of decoding
// the whole state (runc's holds the container's whole config).
func initPID(root, id string) (int, error) {
	dir := filepath.Join(root, id)
	if data, err := readStateFile(filepath.Join(dir, "state.json")); err == nil {
		if pid, ok := topLevelInt(data, "init_process_pid"); ok && pid > 0 {
			return pid, nil
		}
		return 0, fmt.Errorf("no init pid in %s/state.json", dir)
	}
	data, err := readStateFile(filepath.Join(dir, "status"))
	if err != nil {
		return 0, fmt.Errorf("no state of container %q under %s: %w", id, root, err)
	}
	if pid, ok := topLevelInt(data, "pid"); ok && pid > 0 {
		return pid, nil
	}
	return 0, fmt.Errorf("no pid in %s/status", dir)
}

// topLevelInt reads the integer member key of the JSON object in data,
// stopping at it.
func topLevelInt(data []byte, key string) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, false
		}
		if k, _ := t.(string); k == key {
			var n int
			if err := dec.Decode(&n); err != nil {
				return 0, false
			}
			return n, true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return 0, false
		}
	}
	return 0, false
}

// traceResult is capshim-trace's answer.
type traceResult struct {
	CgroupID uint64             `json:"cgroup_id"`
	Observed *learn.Observation `json:"observed"`
	Summary  string             `json:"summary"`
	Error    string             `json:"error"`
}

// runTrace runs capshim-trace from next to capshim's own executable,
// opened and checked like the runtime, and waits for it (at most
// traceTimeout). os.StartProcess, not os/exec, keeps the runtime binary
// small.
func runTrace(args ...string) (traceResult, error) {
	var res traceResult
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return res, fmt.Errorf("finding %s: %w", traceTool, err)
	}
	f, err := trustfs.Open(filepath.Join(filepath.Dir(exe), traceTool), trustfs.Exec)
	if err != nil {
		return res, fmt.Errorf("%s: %w (install it next to capshim: make install does)", traceTool, err)
	}
	defer f.Close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("running %s: %w", traceTool, err)
	}
	defer rd.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return res, fmt.Errorf("running %s: %w", traceTool, err)
	}
	defer null.Close()
	// The path names the checked descriptor, resolved by the kernel in the
	// child before the descriptor closes at exec.
	p, err := os.StartProcess("/proc/self/fd/"+strconv.Itoa(f.Fd), append([]string{traceTool}, args...),
		&os.ProcAttr{Files: []*os.File{null, wr, null}})
	wr.Close()
	if err != nil {
		return res, fmt.Errorf("running %s: %w", traceTool, err)
	}
	timer := time.AfterFunc(traceTimeout, func() { p.Kill() })
	// The answer is one short line; read it all, then reap the process.
	data, _ := io.ReadAll(io.LimitReader(rd, 1<<20))
	_, werr := p.Wait()
	timer.Stop()
	if jerr := json.Unmarshal(data, &res); jerr != nil {
		if werr == nil {
			werr = jerr
		}
		return res, fmt.Errorf("%s %s: %v", traceTool, args[0], werr)
	}
	if res.Error != "" {
		return res, fmt.Errorf("%s", res.Error)
	}
	return res, nil
}
