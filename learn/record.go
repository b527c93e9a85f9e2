package learn

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capshim/capshim/internal/atomicfile"
)

// RunDir holds the records of running containers. It is in tmpfs: a
// record is written on every container start, and dies with the
// containers at a reboot.
const RunDir = "/run/capshim/containers"

// maxRecent is how many deleted containers' records are kept for explain.
const maxRecentRecords = 256

// Container is what capshim decided for one container and, once deleted,
// what its processes did. explain reads it.
type Container struct {
	ID      string `json:"id"`
	Root    string `json:"root,omitempty"`
	Runtime string `json:"runtime,omitempty"`
	// Engine is what the engine said about the container: its name, pod,
	// namespace, image (annotation keys as the engine wrote them).
	Engine map[string]string `json:"engine,omitempty"`
	Policy string            `json:"policy"`
	Mode   string            `json:"mode"` // enforce, audit or learn
	// StateDir and Log are the state directory and the decision log of
	// the policy that decided at create. The container's profile and
	// finished record go there, and its warnings to that log, whichever
	// policy a later call of the runtime finds: an engine may delete a
	// container without the flags it created it with (Podman's cleanup
	// passes no runtime flags, hence no --capshim-config).
	StateDir string `json:"state_dir,omitempty"`
	Log      string `json:"log,omitempty"`
	// The sets, by set name, as the engine granted them and as capshim
	// left them.
	EngineSets map[string][]string `json:"engine_sets"`
	Sets       map[string][]string `json:"sets"`
	Dropped    []string            `json:"dropped,omitempty"` // granted by the engine, not kept
	Rules      []string            `json:"rules,omitempty"`
	Requested  []string            `json:"requested,omitempty"`
	Granted    []string            `json:"granted,omitempty"`
	Denied     []string            `json:"denied,omitempty"`
	// EngineRequest is what the engine's own flag asked for (what it
	// granted beyond its default set), and EngineFlag names that flag
	// ("docker --cap-add"); it is part of Requested.
	EngineRequest []string `json:"engine_request,omitempty"`
	EngineFlag    string   `json:"engine_flag,omitempty"`
	// Profile is the learned profile, LearnDenied a learn request no rule
	// allowed.
	Profile     string `json:"profile,omitempty"`
	LearnDenied string `json:"learn_denied,omitempty"`
	// Trace says whether capability checks are recorded, and why not.
	Trace      bool   `json:"trace"`
	TraceError string `json:"trace_error,omitempty"`
	CgroupID   uint64 `json:"cgroup_id,omitempty"`

	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Deleted time.Time `json:"deleted,omitzero"`
	// Observed is what the processes did, filled in at delete.
	Observed *Observation `json:"observed,omitempty"`
}

// Name is the container's name as the engine knows it, or "".
func (c *Container) Name() string {
	for _, k := range []string{"io.kubernetes.cri.container-name", "io.kubernetes.pod.name", "io.podman.annotations.name"} {
		if v := c.Engine[k]; v != "" {
			return v
		}
	}
	return ""
}

// recordKey names a container's record: the id, sanitised, and a hash of
// the runtime root and the id, since ids are unique only per root.
func recordKey(root, id string) string {
	// FNV, not a cryptographic hash: the name only has to be unique per
	// root and id (the record holds both and is checked), and the runtime
	// binary, which writes records, should not carry a crypto package.
	h := fnv.New64a()
	h.Write([]byte(root + "\x00" + id))
	s := Sanitize(id)
	if len(s) > 32 {
		s = s[:32]
	}
	return s + "-" + strconv.FormatUint(h.Sum64(), 16)
}

// Records keeps container records: running ones under Run, deleted ones
// in the store's recent directory.
type Records struct {
	Run   string // RunDir unless set
	Store *Store
}

func (r *Records) runDir() string {
	if r.Run != "" {
		return r.Run
	}
	return RunDir
}

// Save writes a running container's record. It is observability: a
// failure is reported to the caller, which logs it and goes on.
func (r *Records) Save(c *Container) error {
	if err := os.MkdirAll(r.runDir(), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", r.runDir(), err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding the record of %s: %w", c.ID, err)
	}
	return atomicfile.Write(filepath.Join(r.runDir(), recordKey(c.Root, c.ID)+".json"), data,
		atomicfile.Options{Kind: "container record", Mode: 0o600, NoSync: true})
}

// Load reads a running container's record.
func (r *Records) Load(root, id string) (*Container, error) {
	c, err := readRecord(filepath.Join(r.runDir(), recordKey(root, id)+".json"))
	if err == nil && (c.ID != id || c.Root != root) {
		// Another container's record under the same name: not this one.
		return nil, ErrNotFound
	}
	return c, err
}

func readRecord(path string) (*Container, error) {
	data, err := atomicfile.ReadFile(path, maxFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("container record %s: %w", path, err)
	}
	if c.CgroupID == 0 {
		if id, started, ok := readStart(strings.TrimSuffix(path, ".json") + startSuffix); ok {
			c.CgroupID, c.Started = id, started
		}
	}
	return &c, nil
}

// A container's start adds to its record only the cgroup it watches and
// when: a line in a file of its own next to the record ("ID UNIXNANO"), so
// that a start, which engines wait for, neither decodes nor encodes the
// record. Reading the record merges it in.
const startSuffix = ".start"

// Exists reports whether a running container has a record (only recorded
// containers have one).
func (r *Records) Exists(root, id string) bool {
	_, err := os.Lstat(filepath.Join(r.runDir(), recordKey(root, id)+".json"))
	return err == nil
}

// Started reports whether the container's start was recorded.
func (r *Records) Started(root, id string) bool {
	_, err := os.Lstat(filepath.Join(r.runDir(), recordKey(root, id)+startSuffix))
	return err == nil
}

// SaveStart records the start of a container: the cgroup it watches.
func (r *Records) SaveStart(root, id string, cgroupID uint64, started time.Time) error {
	line := strconv.FormatUint(cgroupID, 10) + " " + strconv.FormatInt(started.UnixNano(), 10) + "\n"
	return atomicfile.Write(filepath.Join(r.runDir(), recordKey(root, id)+startSuffix), []byte(line),
		atomicfile.Options{Kind: "container start", Mode: 0o600, NoSync: true})
}

func readStart(path string) (uint64, time.Time, bool) {
	data, err := atomicfile.ReadFile(path, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	idText, nanoText, ok := strings.Cut(strings.TrimSpace(string(data)), " ")
	id, err1 := strconv.ParseUint(idText, 10, 64)
	nano, err2 := strconv.ParseInt(nanoText, 10, 64)
	if !ok || err1 != nil || err2 != nil || id == 0 {
		return 0, time.Time{}, false
	}
	return id, time.Unix(0, nano).UTC(), true
}

// StoreOf is the state directory of a container: the one its record
// names, else r's.
func (r *Records) StoreOf(c *Container) *Store {
	if c.StateDir != "" && c.StateDir != r.Store.Dir {
		return &Store{Dir: c.StateDir}
	}
	return r.Store
}

// Finish moves a deleted container's record to the recent records of its
// state directory (StoreOf), where explain finds it, and drops the oldest
// beyond maxRecentRecords.
func (r *Records) Finish(c *Container) error {
	dir, err := r.StoreOf(c).ensure("recent")
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the record of %s: %w", c.ID, err)
	}
	name := c.Deleted.UTC().Format("20060102T150405.000000000Z") + "-" + recordKey(c.Root, c.ID) + ".json"
	// A record of a deleted container is for explain: losing the last
	// ones in a crash costs no more than the time a sync would cost every
	// delete.
	if err := atomicfile.Write(filepath.Join(dir, name), data, atomicfile.Options{Kind: "container record", Mode: 0o600, NoSync: true}); err != nil {
		return err
	}
	os.Remove(filepath.Join(r.runDir(), recordKey(c.Root, c.ID)+".json"))
	os.Remove(filepath.Join(r.runDir(), recordKey(c.Root, c.ID)+startSuffix))
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > maxRecentRecords {
		for _, e := range entries[:len(entries)-maxRecentRecords] {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// Find returns the records of containers, running first and then deleted
// (newest first), whose id starts with query or whose engine name is
// query.
func (r *Records) Find(query string) ([]*Container, error) {
	var out []*Container
	add := func(dir string, newestFirst bool) error {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if newestFirst {
			slices.Reverse(entries)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			c, err := readRecord(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			if query == "" || strings.HasPrefix(c.ID, query) || c.Name() == query || c.About().Matches(query) {
				out = append(out, c)
			}
		}
		return nil
	}
	if err := add(r.runDir(), false); err != nil {
		return nil, err
	}
	if err := add(filepath.Join(r.Store.Dir, "recent"), true); err != nil {
		return nil, err
	}
	return out, nil
}

// staleAfter is how old a running record must be before Prune may take
// its container for gone: capshim writes the record just before the
// runtime creates the container's state.
const staleAfter = time.Minute

// Prune finishes the records of containers that are gone although capshim
// never saw them deleted (an engine that crashed, a runtime called
// directly): gone reports whether a record's container no longer exists.
// It returns how many it finished.
func (r *Records) Prune(gone func(*Container) bool, now time.Time) int {
	entries, err := os.ReadDir(r.runDir())
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		c, err := readRecord(filepath.Join(r.runDir(), e.Name()))
		if err != nil || now.Sub(c.Created) < staleAfter || !gone(c) {
			continue
		}
		c.Deleted = now
		if c.TraceError == "" && c.Trace {
			c.TraceError = "the container was deleted without capshim; what it did is not known"
		}
		if r.Finish(c) == nil {
			n++
		}
	}
	return n
}

// PruneEvery runs Prune at most once per interval, across processes: the
// time of the last run is the modification time of a marker file in the
// directory of running records.
func (r *Records) PruneEvery(interval time.Duration, gone func(*Container) bool, now time.Time) int {
	marker := filepath.Join(r.runDir(), ".pruned")
	if st, err := os.Stat(marker); err == nil && now.Sub(st.ModTime()) < interval {
		return 0
	}
	if f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
		f.Close()
		os.Chtimes(marker, now, now)
	}
	return r.Prune(gone, now)
}
