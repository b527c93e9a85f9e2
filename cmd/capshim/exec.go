package main

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/capshim/capshim/internal/trustfs"
)

// realRuntime is the real runtime capshim becomes: the path it was found
// by, which stays argv[0] (what the engine asked for, and what ps shows),
// and the descriptor that passed the trust check, which is what runs.
type realRuntime struct {
	path string
	file trustfs.File
}

// execRuntime becomes the runtime: execveat(fd, "", AT_EMPTY_PATH) of the
// checked descriptor, never a second lookup of its path, which someone
// could have pointed elsewhere since the check. It returns only on
// failure.
func execRuntime(rt realRuntime, argv, env []string) error {
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	restoreFileLimit()
	fd := rt.file.Fd
	script := false
	for {
		_, _, errno := syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
			uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.ENOENT && !script:
			// The kernel runs a script (#!) by handing its interpreter
			// the path /dev/fd/N, and refuses with ENOENT when that
			// descriptor would be closed by the exec, as ours is. Keep
			// it open across the exec for the interpreter, and try once
			// more. A binary keeps the descriptor closed by the exec; it
			// gets ENOENT only when its loader is missing, and then the
			// second try fails the same way.
			script = true
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return errno
			}
			continue
		}
		return errno
	}
}

// restoreFileLimit gives back the soft limit on open files that the Go
// runtime raised when capshim started, so that the real runtime starts
// with the limit the engine gave capshim: a container whose spec sets no
// RLIMIT_NOFILE inherits it. Go keeps the old value to itself and sets it
// back only inside syscall.Exec, before it calls execve; execve of the
// empty path then fails at once with ENOENT, starting nothing, and the
// limit stays as the engine set it. TestExecRuntime checks the limit the
// runtime sees.
func restoreFileLimit() {
	_ = syscall.Exec("", nil, nil) // always fails (ENOENT); see above
}
