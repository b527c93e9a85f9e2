package policy

import (
	"github.com/capshim/capshim/internal/trustfs"
)

// CheckTrusted refuses a file that someone other than root could change
// or could have chosen: it must be a regular file owned by root and not
// writable by group or others; so must be every directory above it (a
// directory writable by others is accepted only with the sticky bit, like
// /tmp, where others cannot replace root's files); and every symbolic link
// on the way must be owned by root and sit in such a directory, as must
// everything it leads through. With exec, the file must also be
// executable.
//
// CheckTrusted only reports: a caller that then opens the path again may
// get another file. The runtime path therefore uses LoadTrusted and
// trustfs.Open, which hand over the descriptor that was checked.
func CheckTrusted(path string, exec bool) error {
	mode := trustfs.Regular
	if exec {
		mode = trustfs.Exec
	}
	f, err := trustfs.Open(path, mode)
	f.Close()
	return err
}
