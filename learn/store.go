package learn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/capshim/capshim/internal/atomicfile"
)

// DefaultDir is where profiles and container records live unless the
// policy's state_dir says otherwise.
const DefaultDir = "/var/lib/capshim"

// maxFile bounds what the store reads of one of its own files.
const maxFile = 4 << 20

// Store is a state directory.
type Store struct {
	Dir string
}

// ErrNotFound is a profile or container record that does not exist.
var ErrNotFound = errors.New("not found")

func (s *Store) profileDir() string { return filepath.Join(s.Dir, "profiles") }

// ensure creates the state directory and a subdirectory, root-only: the
// profiles say what a workload needs, and a forged one would become
// policy.
func (s *Store) ensure(sub string) (string, error) {
	dir := filepath.Join(s.Dir, sub)
	for _, d := range []string{s.Dir, dir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("creating the state directory %s: %w", d, err)
		}
		st, err := os.Lstat(d)
		if err != nil {
			return "", fmt.Errorf("state directory %s: %w", d, err)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("state directory %s is not a directory", d)
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && (sys.Uid != 0 || st.Mode().Perm()&0o077 != 0) {
			return "", fmt.Errorf("state directory %s must be owned by root with mode 0700 (it is uid %d, mode %04o); fix: chown root %s && chmod 0700 %s",
				d, sys.Uid, st.Mode().Perm(), d, d)
		}
	}
	return dir, nil
}

// Merge adds one container's observation to the profile name, under the
// profile's lock: read, merge, write atomically.
func (s *Store) Merge(name, id string, o Observation, match map[string]string, at time.Time) (*Profile, error) {
	return s.change(name, true, func(p *Profile) error {
		p.Merge(id, o, match, at)
		return nil
	})
}

func (s *Store) writeProfile(p *Profile) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding profile %s: %w", p.Name, err)
	}
	return atomicfile.Write(filepath.Join(s.profileDir(), p.Name+".json"), append(data, '\n'),
		atomicfile.Options{Kind: "profile", Mode: 0o600, SyncDir: true})
}

// Update changes a stored profile under its lock (minimisation records
// its findings this way).
func (s *Store) Update(name string, change func(*Profile) error) (*Profile, error) {
	return s.change(name, false, change)
}

// change reads the profile under its lock (a new one when create is set
// and there is none), applies fn and writes it back atomically.
func (s *Store) change(name string, create bool, fn func(*Profile) error) (*Profile, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	dir, err := s.ensure("profiles")
	if err != nil {
		return nil, err
	}
	unlock, err := lock(filepath.Join(dir, name+".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := s.Profile(name)
	if create && errors.Is(err, ErrNotFound) {
		p, err = &Profile{Name: name}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := fn(p); err != nil {
		return nil, err
	}
	return p, s.writeProfile(p)
}

// Profile reads one profile.
func (s *Store) Profile(name string) (*Profile, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(s.profileDir(), name+".json")
	data, err := atomicfile.ReadFile(path, maxFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("profile %q: %w (capshim learn list shows the profiles)", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	p.Name = name
	return &p, nil
}

// Profiles lists the stored profiles by name.
func (s *Store) Profiles() ([]*Profile, error) {
	entries, err := os.ReadDir(s.profileDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing profiles: %w", err)
	}
	var out []*Profile
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || CheckName(name) != nil {
			continue
		}
		p, err := s.Profile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Profile) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Forget removes a profile.
func (s *Store) Forget(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	dir := s.profileDir()
	unlock, err := lock(filepath.Join(dir, name+".lock"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("profile %q: %w", name, ErrNotFound)
		}
		return err
	}
	defer unlock()
	err = os.Remove(filepath.Join(dir, name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("profile %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("removing profile %s: %w", name, err)
	}
	os.Remove(filepath.Join(dir, name+".lock"))
	return nil
}

// lock takes an exclusive lock on path (created if needed) and returns its
// release.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
