// Package proc reads what the kernel says about processes: their
// capability sets and user from /proc/PID/status, and the container they
// belong to from /proc/PID/cgroup.
package proc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/spec"
)

// Status is the part of /proc/PID/status capshim reports.
type Status struct {
	Name string
	UID  int // effective user id
	// Caps holds CapBnd, CapEff, CapInh, CapPrm, CapAmb as spec sets.
	Caps spec.Sets
}

// statusSets maps the status lines to capability sets.
var statusSets = [spec.NumSets]string{
	spec.Bounding:    "CapBnd",
	spec.Effective:   "CapEff",
	spec.Inheritable: "CapInh",
	spec.Permitted:   "CapPrm",
	spec.Ambient:     "CapAmb",
}

// ParseStatus reads a /proc/PID/status text. All five Cap lines and the
// Uid line must be present. Bits above the capabilities capshim knows are
// ignored (a newer kernel may have more).
func ParseStatus(r io.Reader) (*Status, error) {
	st := &Status{UID: -1}
	var seen [spec.NumSets]bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Name":
			st.Name = val
		case "Uid":
			f := strings.Fields(val)
			if len(f) < 2 {
				return nil, fmt.Errorf("bad Uid line %q", sc.Text())
			}
			uid, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, fmt.Errorf("bad Uid line %q: %w", sc.Text(), err)
			}
			st.UID = uid
		default:
			for s, name := range statusSets {
				if key != name {
					continue
				}
				mask, err := strconv.ParseUint(val, 16, 64)
				if err != nil {
					return nil, fmt.Errorf("bad %s line %q: %w", name, sc.Text(), err)
				}
				st.Caps[s] = capability.Set(mask) & capability.All
				seen[s] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for s, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("no %s line", statusSets[s])
		}
	}
	if st.UID < 0 {
		return nil, fmt.Errorf("no Uid line")
	}
	return st, nil
}

// ContainerID finds the container a process belongs to from its
// /proc/PID/cgroup text: a 64-hex-digit id in the path (Docker, containerd
// CRI, Podman, CRI-O), with the usual systemd decorations removed
// ("docker-ID.scope", "cri-containerd-ID.scope", "libpod-ID.scope"). It
// returns "" when there is none.
func ContainerID(cgroup string) string {
	for _, line := range strings.Split(cgroup, "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		elems := strings.Split(parts[2], "/")
		for i := len(elems) - 1; i >= 0; i-- {
			if id := trimID(elems[i]); isHexID(id) {
				return id
			}
		}
	}
	return ""
}

// LastCgroup returns the last element of a process's cgroup path, for
// containers whose ids are not 64 hex digits (ctr run ID, runc run ID).
func LastCgroup(cgroup string) string {
	for _, line := range strings.Split(cgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[2] != "/" && parts[2] != "" {
			return trimID(filepath.Base(parts[2]))
		}
	}
	return ""
}

func trimID(e string) string {
	e = strings.TrimSuffix(e, ".scope")
	if i := strings.LastIndexByte(e, '-'); i >= 0 && isHexID(e[i+1:]) {
		return e[i+1:]
	}
	return e
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Process is one process as capshim inspect reports it.
type Process struct {
	PID       int
	Container string
	Command   string
	// CommandCut says the command line was longer than MaxCommand and
	// Command holds only its start.
	CommandCut bool
	Status     *Status
}

// MaxCommand bounds how much of a command line Read reads. A process
// chooses its own command line, and with CAP_SYS_RESOURCE it can point it
// at any part of its memory, so its length is not the kernel's to bound.
const MaxCommand = 64 << 10

// Read reads one process from a proc file system mounted at root
// (normally "/proc"). A container id is set when the process is in a
// container: by ContainerID, or, for a process in another PID namespace
// than capshim itself, the last element of its cgroup path.
func Read(root string, pid int) (*Process, error) {
	dir := filepath.Join(root, strconv.Itoa(pid))
	f, err := os.Open(filepath.Join(dir, "status"))
	if err != nil {
		return nil, err
	}
	st, err := ParseStatus(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s/status: %w", dir, err)
	}
	p := &Process{PID: pid, Status: st, Command: st.Name}
	if cmd, cut, err := readAtMost(filepath.Join(dir, "cmdline"), MaxCommand); err == nil && len(cmd) > 0 {
		p.Command = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		p.CommandCut = cut
	}
	cg, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err == nil {
		p.Container = ContainerID(string(cg))
		if p.Container == "" && otherPIDNamespace(root, pid) {
			p.Container = LastCgroup(string(cg))
		}
	}
	return p, nil
}

// readAtMost reads up to max bytes of a file, and says whether there was
// more.
func readAtMost(path string, max int) (data []byte, cut bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, int64(max)+1))
	if len(data) > max {
		return data[:max], true, err
	}
	return data, false, err
}

func otherPIDNamespace(root string, pid int) bool {
	mine, err := os.Readlink(filepath.Join(root, strconv.Itoa(pid), "ns", "pid"))
	if err != nil {
		return false
	}
	host, err := os.Readlink(filepath.Join(root, "self", "ns", "pid"))
	return err == nil && mine != host
}

// PIDs lists the process ids under root.
func PIDs(root string) ([]int, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out, nil
}
