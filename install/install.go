// Package install registers capshim as a runtime of Docker, containerd or
// Podman by editing the engine's config file: daemon.json member by member
// (every other key keeps its value and place), config.toml and
// containers.conf as text (comments and layout stay). Every edit is
// checked by parsing the result; files are replaced atomically, never
// through a symbolic link, after a backup of the old content.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/capshim/capshim/spec"
)

// Engine is a container engine capshim can register with.
type Engine string

// The engines capshim registers with.
const (
	Docker     Engine = "docker"
	Containerd Engine = "containerd"
	Podman     Engine = "podman"
)

// Engines lists the engines in the order the help shows them.
var Engines = []Engine{Docker, Containerd, Podman}

// DefaultPolicyPath is where capshim reads its policy when no flag or
// environment variable names one.
const DefaultPolicyPath = "/etc/capshim/shim.toml"

// BackupSuffix is added to a config file's name for the copy of its old
// content.
const BackupSuffix = ".capshim-backup"

// ParseEngine returns the engine called name.
func ParseEngine(name string) (Engine, error) {
	for _, e := range Engines {
		if string(e) == name {
			return e, nil
		}
	}
	return "", fmt.Errorf("unknown engine %q: use docker, containerd or podman", name)
}

// ConfigPath is the engine's config file.
func (e Engine) ConfigPath() string {
	switch e {
	case Docker:
		return "/etc/docker/daemon.json"
	case Containerd:
		return "/etc/containerd/config.toml"
	case Podman:
		return "/etc/containers/containers.conf"
	}
	return ""
}

// Restart is the command that makes the engine read its new config, or ""
// when none is needed (Podman reads its config on every command).
func (e Engine) Restart() string {
	switch e {
	case Docker:
		return "systemctl restart docker"
	case Containerd:
		return "systemctl restart containerd"
	}
	return ""
}

// Verify lists commands that show capshim registered and at work.
func (e Engine) Verify(setDefault bool) []string {
	switch e {
	case Docker:
		if setDefault {
			return []string{
				"docker info --format '{{.DefaultRuntime}}'   # capshim",
				"docker run --rm busybox grep Cap /proc/self/status",
				"capshim inspect   # the sets running containers really hold",
			}
		}
		return []string{
			"docker info --format '{{json .Runtimes}}'   # lists capshim",
			"docker run --rm --runtime capshim busybox grep Cap /proc/self/status",
			"capshim inspect   # the sets running containers really hold",
		}
	case Containerd:
		return []string{
			"ctr plugins ls | grep cri   # the CRI plugin: ok, not error (containerd's log says why)",
			"crictl info | grep -A4 '\"capshim\"'   # the CRI runtime handler (a WARNING above says when CRI is off)",
			"kubectl apply -f deploy/kubernetes/runtimeclass.yaml, then runtimeClassName: capshim in a pod",
			"capshim inspect   # the sets running containers really hold",
		}
	case Podman:
		if setDefault {
			return []string{
				"podman info --format '{{.Host.OCIRuntime.Name}}'   # capshim",
				"podman run --rm busybox grep Cap /proc/self/status",
				"capshim inspect   # the sets running containers really hold",
			}
		}
		return []string{
			"podman run --rm --runtime capshim busybox grep Cap /proc/self/status",
			"capshim inspect   # the sets running containers really hold",
		}
	}
	return nil
}

// Options says how capshim is registered.
type Options struct {
	// Binary is capshim's absolute path.
	Binary string
	// RuntimeConfig is the policy file the engine passes to capshim with
	// --capshim-config; "" passes nothing. Only Docker has runtime
	// arguments; the other engines ignore it.
	RuntimeConfig string
	// SetDefault makes capshim the engine's default runtime.
	SetDefault bool
}

// Edit returns the engine's config file content with capshim registered,
// given its old content (nil or empty for a missing or empty file), and
// notes for the user. When old already registers capshim as asked, Edit
// returns old itself. A file that does not parse is an error naming the
// line.
func Edit(e Engine, old []byte, opts Options) (out []byte, notes []string, err error) {
	if !filepath.IsAbs(opts.Binary) {
		return nil, nil, fmt.Errorf("capshim's path %q is not absolute", opts.Binary)
	}
	switch e {
	case Docker:
		return editDocker(old, opts)
	case Containerd:
		return editContainerd(old, opts)
	case Podman:
		return editPodman(old, opts)
	}
	return nil, nil, fmt.Errorf("unknown engine %q", e)
}

// Plan is the change to one engine config file, computed and not yet
// written.
type Plan struct {
	Engine Engine
	Path   string
	Exists bool   // whether the file exists
	Old    []byte // its content (nil when missing)
	New    []byte // the content with capshim registered
	Notes  []string
	// BackupKept: Apply found a backup from an earlier change and kept it
	// (it holds the content before capshim first changed the file).
	BackupKept bool
	file       *spec.File
}

// Prepare reads the engine's config file at path (which may be missing,
// but not a symbolic link) and computes the edit.
func Prepare(e Engine, path string, opts Options) (*Plan, error) {
	p := &Plan{Engine: e, Path: path}
	f, err := spec.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, spec.ErrSymlink):
		return nil, fmt.Errorf("reading the %s config: %w: give the file it points to with --file", e, err)
	case err != nil:
		return nil, fmt.Errorf("reading the %s config: %w", e, err)
	default:
		p.file, p.Exists, p.Old = f, true, f.Data
	}
	p.New, p.Notes, err = Edit(e, p.Old, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the file is left as it is)", path, err)
	}
	return p, nil
}

// Changed reports whether the plan changes the file.
func (p *Plan) Changed() bool {
	return !p.Exists || !bytes.Equal(p.Old, p.New)
}

// Diff is the change as a unified diff ("" when there is none).
func (p *Plan) Diff() string {
	if !p.Changed() {
		return ""
	}
	oldName := p.Path
	if !p.Exists {
		oldName = "/dev/null"
	}
	return Diff(oldName, p.Path, p.Old, p.New)
}

// Backup is the name of the copy of the old file.
func (p *Plan) Backup() string {
	return p.Path + BackupSuffix
}

// Apply writes the plan. An existing file is first copied to Backup()
// (with its mode and owner) unless a backup is there already, then
// replaced atomically; a missing file is created (mode 0644, its directory
// 0755). The first backup is never replaced: it is the file as it was
// before capshim changed it, which a later run (another flag, a newer
// capshim, the DaemonSet started again) must not overwrite with content
// capshim wrote. It does nothing when nothing changes, and fails without
// writing when the file changed since Prepare.
func (p *Plan) Apply() error {
	if !p.Changed() {
		return nil
	}
	if !p.Exists {
		if _, err := os.Lstat(p.Path); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s appeared while capshim was editing it: run capshim install again", p.Path)
		}
		if err := mkdirAll(filepath.Dir(p.Path)); err != nil {
			return err
		}
		f := &spec.File{Path: p.Path, Mode: 0o644}
		if err := f.Replace(p.New); err != nil {
			return fmt.Errorf("creating %s: %w", p.Path, err)
		}
		return nil
	}
	now, err := spec.ReadFile(p.Path)
	if err != nil {
		return fmt.Errorf("reading %s again: %w", p.Path, err)
	}
	if !bytes.Equal(now.Data, p.Old) {
		return fmt.Errorf("%s changed while capshim was editing it: run capshim install again", p.Path)
	}
	if err := checkBackup(p.Backup()); err != nil {
		return err
	}
	created, err := createFile(p.Backup(), p.Old, now.Mode, now.UID, now.GID)
	if err != nil {
		return fmt.Errorf("backing up %s: %w", p.Path, err)
	}
	p.BackupKept = !created
	if err := now.Replace(p.New); err != nil {
		return fmt.Errorf("writing %s: %w", p.Path, err)
	}
	return nil
}

// checkBackup fails when something other than a regular file is at the
// backup's path: capshim neither writes there nor calls it a backup.
func checkBackup(path string) error {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("checking the backup %s: %w", path, err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s exists and is not a regular file (%v): move it away and run capshim install again", path, st.Mode().Type())
	}
	return nil
}

// createFile creates path with data, mode and owner (the owner only as
// root) unless something is there already, and reports whether it did.
// The file appears whole or not at all: a temporary file next to it is
// written, synced and linked to path, which fails if path exists.
func createFile(path string, data []byte, mode os.FileMode, uid, gid int) (created bool, err error) {
	if _, err := os.Lstat(path); err == nil {
		return false, nil
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".capshim-*")
	if err != nil {
		return false, fmt.Errorf("creating a temporary file next to %s: %w", path, err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil && os.Geteuid() == 0 {
		err = tmp.Chown(uid, gid)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("creating %s: %w", path, err)
	}
	return true, nil
}

// mkdirAll creates dir and its missing parents with mode 0755 (whatever
// the umask).
func mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirAll(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", dir, err)
	}
	return nil
}

// PolicyExists reports whether something (a file, or a link) is at path.
func PolicyExists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("checking the policy %s: %w", path, err)
}

// WritePolicy writes data to path (mode 0644; missing directories 0755)
// unless something is already there: an existing policy is never
// replaced. It reports whether it wrote the file. The file appears whole
// or not at all (a temporary file is linked to path, which fails if path
// exists). Run as root, both are owned by root.
func WritePolicy(path string, data []byte) (written bool, err error) {
	if exists, err := PolicyExists(path); err != nil || exists {
		return false, err
	}
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		return false, err
	}
	return createFile(path, data, 0o644, 0, 0)
}
