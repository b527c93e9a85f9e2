package trace

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capshim/capshim/trace/pinned"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a helper process that runs the steps in
// the variable (one a line) and exits; see runSteps.
const helperEnv = "CAPSHIM_TRACE_HELPER"

func TestMain(m *testing.M) {
	if steps, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(runSteps(strings.Split(steps, "\n")))
	}
	os.Exit(m.Run())
}

// runSteps runs each step on one locked OS thread, since capabilities and
// the command name belong to a thread, and prints "step: ok" or
// "step: error" for each. Steps:
//
//	chown PATH UID     chown(PATH, UID, -1)
//	mknod PATH         a character device 1:3 (what /dev/null is)
//	read PATH          open(PATH, O_RDONLY)
//	create PATH        open(PATH, O_WRONLY|O_CREAT)
//	handle PATH        open PATH by file handle (needs DAC_READ_SEARCH)
//	drop CAP           remove capability number CAP from the effective set
//	comm NAME          rename the thread
//	unshare-uts        a new UTS namespace (needs SYS_ADMIN)
//	exec PATH          run PATH and wait for it
//	mmap               a private writable page (the overcommit accounting
//	                   asks for SYS_ADMIN)
func runSteps(steps []string) int {
	runtime.LockOSThread()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, s := range steps {
		if s == "" {
			continue
		}
		f := strings.Fields(s)
		arg := func(i int) string {
			if i < len(f) {
				return f[i]
			}
			return ""
		}
		var err error
		switch f[0] {
		case "chown":
			uid, _ := strconv.Atoi(arg(2))
			err = unix.Chown(arg(1), uid, -1)
		case "mknod":
			err = unix.Mknod(arg(1), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3)))
		case "read":
			var fd int
			if fd, err = unix.Open(arg(1), unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
				unix.Close(fd)
			}
		case "create":
			var fd int
			if fd, err = unix.Open(arg(1), unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644); err == nil {
				unix.Close(fd)
			}
		case "handle":
			err = openByHandle(arg(1))
		case "drop":
			c, _ := strconv.Atoi(arg(1))
			err = dropEffective(c)
		case "comm":
			err = os.WriteFile("/proc/thread-self/comm", []byte(arg(1)), 0)
		case "unshare-uts":
			err = unix.Unshare(unix.CLONE_NEWUTS)
		case "exec":
			err = exec.Command(arg(1)).Run()
		case "mmap":
			var m []byte
			if m, err = unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
				err = unix.Munmap(m)
			}
		default:
			err = fmt.Errorf("unknown step")
		}
		if err != nil {
			fmt.Fprintf(out, "%s: %v\n", s, err)
		} else {
			fmt.Fprintf(out, "%s: ok\n", s)
		}
	}
	return 0
}

func openByHandle(path string) error {
	h, mountID, err := unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	if err != nil {
		return fmt.Errorf("name_to_handle_at: %w", err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	// Any directory of the same mount will do as the mount fd.
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == strconv.Itoa(mountID) {
			mfd, err := unix.Open(pinned.UnescapeMount(f[4]), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(mfd)
			fd, err := unix.OpenByHandleAt(mfd, h, unix.O_RDONLY|unix.O_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}
	}
	return fmt.Errorf("mount %d not found", mountID)
}

// dropEffective removes one capability from the calling thread's
// effective set.
func dropEffective(c int) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[c/32].Effective &^= 1 << uint(c%32)
	return unix.Capset(&hdr, &data[0])
}

// requireTracing skips a test that needs the real recorder when this
// process cannot have it.
func requireTracing(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := Supported(); err != nil {
		t.Skipf("tracing not supported here: %v", err)
	}
}

// testOptions are pins and a lock of this test alone, removed at its end.
func testOptions(t testing.TB) Options {
	t.Helper()
	dir := fmt.Sprintf("%s/capshim-test-%d-%d", bpffsMount, os.Getpid(), time.Now().UnixNano())
	opts := Options{Dir: dir, Lock: filepath.Join(t.TempDir(), "trace.lock")}
	t.Cleanup(func() {
		if err := removePins(dir); err != nil {
			t.Errorf("cleaning up pins: %v", err)
		}
	})
	return opts
}

// newTracer attaches a recorder of this test alone.
func newTracer(t testing.TB) (*Tracer, Options) {
	t.Helper()
	opts := testOptions(t)
	tr, err := AttachWith(opts)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, opts
}

// runHelper runs steps in a new process started inside the cgroup dir (so
// that even its exec is in there) and returns its report, a line a step.
func runHelper(t testing.TB, dir string, steps ...string) []string {
	t.Helper()
	cgfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cgfd)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(steps, "\n"))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
