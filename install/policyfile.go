package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/capshim/capshim/internal/atomicfile"
	"github.com/capshim/capshim/internal/trustfs"
)

// PreviousSuffix is added to a file's name for the content that capshim
// last replaced there: `capshim policy install` keeps the policy it
// replaces, `capshim uninstall` the engine config it replaces, so that
// either step can be undone by putting that file back.
const PreviousSuffix = ".capshim-previous"

// PolicyChange says what ReplacePolicy did.
type PolicyChange struct {
	Path string
	// Existed: a policy was at Path; its content is now at Previous.
	Existed  bool
	Previous string
	// Unchanged: Path already held the new content; nothing was written.
	Unchanged bool
}

// ReplacePolicy puts data at path as the policy the runtime reads: the
// file there (never a symbolic link) is first copied, with its mode and
// owner, to path+PreviousSuffix (replacing an earlier copy), then
// replaced atomically. The new file keeps the old one's mode without
// group and other write bits (0644 for a new file) and, run as root, is
// owned by root: capshim trusts nothing else. Missing directories are
// made (0755), but only below a directory that capshim's trust check
// accepts, since a policy under any other would be refused anyway.
//
// verify is called once the new file is in place (it loads it as the
// runtime will); when it fails, the old content is put back (or the new
// file removed) and its error returned, so a policy that the runtime
// would refuse never stays active.
func ReplacePolicy(path string, data []byte, verify func() error) (*PolicyChange, error) {
	ch := &PolicyChange{Path: path, Previous: path + PreviousSuffix}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("policy path %q is not absolute", path)
	}
	old, err := readConfig(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, atomicfile.ErrSymlink):
		return nil, fmt.Errorf("policy %w; capshim does not write a policy through a link: give the file it points to with --to", err)
	case err != nil:
		return nil, fmt.Errorf("reading the policy: %w", err)
	default:
		ch.Existed = true
		if bytes.Equal(old.data, data) {
			ch.Unchanged = true
			return ch, nil
		}
	}
	if err := trustedAncestor(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		return nil, err
	}
	root := os.Geteuid() == 0
	mode := fs.FileMode(0o644)
	if ch.Existed {
		mode = old.mode &^ 0o022
		err := atomicfile.Write(ch.Previous, old.data, atomicfile.Options{
			Kind: "previous policy", Mode: old.mode, UID: old.uid, GID: old.gid, Chown: root, SyncDir: true,
		})
		if err != nil {
			return nil, fmt.Errorf("keeping the previous policy: %w", err)
		}
	}
	err = atomicfile.Write(path, data, atomicfile.Options{
		Kind: "policy", Mode: mode, Chown: root, NoReplace: !ch.Existed, SyncDir: true,
	})
	if err != nil {
		return nil, fmt.Errorf("writing the policy: %w", err)
	}
	if verr := verify(); verr != nil {
		if ch.Existed {
			err = atomicfile.Write(path, old.data, atomicfile.Options{
				Kind: "policy", Mode: old.mode, UID: old.uid, GID: old.gid, Chown: root, SyncDir: true,
			})
		} else {
			err = os.Remove(path)
		}
		if err != nil {
			return nil, fmt.Errorf("%w; and putting the old policy back failed: %v (it is in %s)", verr, err, ch.Previous)
		}
		return nil, fmt.Errorf("%w (the old policy is back in place)", verr)
	}
	return ch, nil
}

// trustedAncestor checks the nearest directory of dir that exists (dir
// itself, or the first one above it) with capshim's trust rule.
func trustedAncestor(dir string) error {
	for {
		_, err := os.Lstat(dir)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || dir == "/" {
			break
		}
		dir = filepath.Dir(dir)
	}
	f, err := trustfs.Open(dir, trustfs.Dir)
	if err != nil {
		return fmt.Errorf("the policy's directory: %w", err)
	}
	f.Close()
	return nil
}
