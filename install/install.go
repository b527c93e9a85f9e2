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
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/capshim/capshim/internal/atomicfile"
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

// kind names the engine's config file in errors.
func (e Engine) kind() string {
	switch e {
	case Docker:
		return "daemon.json"
	case Containerd:
		return "containerd config"
	case Podman:
		return "containers.conf"
	}
	return "config"
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
	// HasBackup: for an uninstall, the backup was there and read;
	// FromBackup: the uninstall puts the backup's content back as it is.
	HasBackup, FromBackup bool
	// uninstall: the plan takes capshim out (PrepareUninstall). Apply
	// then leaves the backup as it is and keeps the content it replaces
	// as Previous().
	uninstall bool
}

// Prepare reads the engine's config file at path (which may be missing,
// but not a symbolic link) and computes the edit.
func Prepare(e Engine, path string, opts Options) (*Plan, error) {
	p := &Plan{Engine: e, Path: path}
	f, err := readConfig(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, atomicfile.ErrSymlink):
		return nil, fmt.Errorf("reading the %s config: %w: give the file it points to with --file", e, err)
	case err != nil:
		return nil, fmt.Errorf("reading the %s config: %w", e, err)
	default:
		p.Exists, p.Old = true, f.data
	}
	p.New, p.Notes, err = Edit(e, p.Old, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the file is left as it is)", path, err)
	}
	return p, nil
}

// Changed reports whether the plan changes the file.
func (p *Plan) Changed() bool {
	if p.uninstall && !p.Exists {
		return false // nothing to take capshim out of
	}
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

// Previous is where an uninstall keeps the content it replaces.
func (p *Plan) Previous() string {
	return p.Path + PreviousSuffix
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
	kind := p.Engine.kind()
	root := os.Geteuid() == 0
	if !p.Exists {
		appeared := fmt.Errorf("%s appeared while capshim was editing it: run capshim install again", p.Path)
		if _, err := os.Lstat(p.Path); !errors.Is(err, fs.ErrNotExist) {
			return appeared
		}
		if err := mkdirAll(filepath.Dir(p.Path)); err != nil {
			return err
		}
		err := atomicfile.Write(p.Path, p.New, atomicfile.Options{
			Kind: kind, Mode: 0o644, Chown: root, NoReplace: true, SyncDir: true,
		})
		switch {
		case errors.Is(err, fs.ErrExist), errors.Is(err, atomicfile.ErrSymlink):
			return appeared
		case err != nil:
			return fmt.Errorf("creating %s: %w", p.Path, err)
		}
		return nil
	}
	now, err := readConfig(p.Path)
	if err != nil {
		return fmt.Errorf("reading %s again: %w", p.Path, err)
	}
	if !bytes.Equal(now.data, p.Old) {
		return fmt.Errorf("%s changed while capshim was editing it: run capshim %s again", p.Path, p.verb())
	}
	if p.uninstall {
		// The backup stays as install left it. The content replaced now
		// is kept, so that the uninstall can be undone.
		err := atomicfile.Write(p.Previous(), p.Old, atomicfile.Options{
			Kind: kind + " copy", Mode: now.mode, UID: now.uid, GID: now.gid, Chown: root, SyncDir: true,
		})
		if err != nil {
			return fmt.Errorf("keeping the content of %s: %w", p.Path, err)
		}
		return p.write(kind, now, root)
	}
	if err := checkBackup(p.Backup()); err != nil {
		return err
	}
	// The backup appears whole or not at all, and never over a file that
	// is there already: that is the first backup, which is kept.
	err = atomicfile.Write(p.Backup(), p.Old, atomicfile.Options{
		Kind: kind + " backup", Mode: now.mode, UID: now.uid, GID: now.gid, Chown: root,
		NoReplace: true, SyncDir: true,
	})
	switch {
	case errors.Is(err, fs.ErrExist):
		p.BackupKept = true
	case err != nil:
		return fmt.Errorf("backing up %s: %w", p.Path, err)
	}
	return p.write(kind, now, root)
}

// write replaces the file with the plan's content, with the mode and
// owner it has now.
func (p *Plan) write(kind string, now *configFile, root bool) error {
	err := atomicfile.Write(p.Path, p.New, atomicfile.Options{
		Kind: kind, Mode: now.mode, UID: now.uid, GID: now.gid, Chown: root, SyncDir: true,
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", p.Path, err)
	}
	return nil
}

// verb is the command that made the plan, for messages.
func (p *Plan) verb() string {
	if p.uninstall {
		return "uninstall"
	}
	return "install"
}

// maxConfigSize is the largest config file capshim reads. Engine configs
// are a few KB; a larger file is refused instead of being read into
// memory.
const maxConfigSize = 64 << 20

// configFile is an engine config read from disk, with the mode and owner
// its replacement and backup get.
type configFile struct {
	data     []byte
	mode     fs.FileMode
	uid, gid int
}

// readConfig reads the config file at path without following a symbolic
// link there (atomicfile.ErrSymlink): capshim writes the file it read, and
// never through a link.
func readConfig(path string) (*configFile, error) {
	// O_NONBLOCK: a FIFO at the path must not hang capshim; it makes no
	// difference to a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s %w", path, atomicfile.ErrSymlink)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s is more than the %d bytes capshim reads", path, maxConfigSize)
	}
	c := &configFile{data: data, mode: st.Mode().Perm()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		c.uid, c.gid = int(sys.Uid), int(sys.Gid)
	}
	return c, nil
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
// unless something is already there: an existing policy (or a link) is
// never replaced. It reports whether it wrote the file. The file appears
// whole or not at all. Run as root, both are owned by root.
func WritePolicy(path string, data []byte) (written bool, err error) {
	if exists, err := PolicyExists(path); err != nil || exists {
		return false, err
	}
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		return false, err
	}
	err = atomicfile.Write(path, data, atomicfile.Options{
		Kind: "policy", Mode: 0o644, Chown: os.Geteuid() == 0, NoReplace: true, SyncDir: true,
	})
	switch {
	case errors.Is(err, fs.ErrExist), errors.Is(err, atomicfile.ErrSymlink):
		// Made by somebody else since PolicyExists: kept, as any policy.
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
