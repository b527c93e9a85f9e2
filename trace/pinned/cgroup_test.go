package pinned

import (
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/trace/internal/cgtest"
)

func TestParseV2Root(t *testing.T) {
	tests := []struct {
		name      string
		mountinfo string
		mp, root  string
		wantErr   bool
	}{
		{
			name: "hybrid",
			mountinfo: `25 30 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
`,
			mp: "/sys/fs/cgroup/unified", root: "/",
		},
		{
			name:      "pure v2",
			mountinfo: "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
			mp:        "/sys/fs/cgroup", root: "/",
		},
		{
			name: "a sub-tree bind first, the whole hierarchy later",
			mountinfo: `40 24 0:30 /kubepods /var/lib/x\040y rw - cgroup2 cgroup2 rw
41 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
`,
			mp: "/sys/fs/cgroup", root: "/",
		},
		{
			name:      "only a sub-tree, escaped blank",
			mountinfo: "40 24 0:30 /kube\\040pods /var/lib/x\\040y rw - cgroup2 cgroup2 rw\n",
			mp:        "/var/lib/x y", root: "/kube pods",
		},
		{
			name:      "v1 only",
			mountinfo: "27 25 0:24 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory\n",
			wantErr:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp, root, err := parseV2Root(strings.NewReader(tt.mountinfo))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("found %s %s, want an error", mp, root)
				}
				return
			}
			if err != nil || mp != tt.mp || root != tt.root {
				t.Fatalf("got %q %q %v, want %q %q", mp, root, err, tt.mp, tt.root)
			}
		})
	}
}

func TestDepth(t *testing.T) {
	tests := []struct {
		name string
		path string
		want int
	}{
		{"root", "/", 0},
		{"empty", "", 0},
		{"dot", ".", 0},
		{"one", "/docker", 1},
		{"relative two", "system.slice/docker-1.scope", 2},
		{"doubled slashes", "//a//b/", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := depth(tt.path); got != tt.want {
				t.Errorf("depth(%q) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

// TestCgroupByPath needs a cgroup v2 hierarchy it may create cgroups in.
func TestCgroupByPath(t *testing.T) {
	requireRootV2(t)
	mp, _, err := V2Root()
	if err != nil {
		t.Fatal(err)
	}
	dir, cg := newCgroup(t, "")
	nested, ncg := newCgroup(t, dir)
	hier := "/" + filepath.Base(dir)
	tests := []struct {
		name  string
		path  string
		want  Cgroup
		isErr string
	}{
		{name: "directory", path: dir, want: cg},
		{name: "hierarchy path", path: hier, want: cg},
		{name: "hierarchy path without slash", path: strings.TrimPrefix(hier, "/"), want: cg},
		{name: "nested directory", path: nested, want: ncg},
		{name: "nested hierarchy path", path: hier + "/" + filepath.Base(nested), want: ncg},
		{name: "root", path: mp, want: Cgroup{ID: cg.ID, Level: 0}},
		{name: "missing", path: hier + "/nope", isErr: "no such file"},
		{name: "a file", path: dir + "/cgroup.procs", isErr: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CgroupByPath(tt.path)
			if tt.isErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.isErr) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, tt.isErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "root" {
				if got.Level != 0 || got.ID == cg.ID {
					t.Errorf("root: %+v", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if cg.Level != 1 || ncg.Level != 2 {
		t.Errorf("levels %d and %d, want 1 and 2", cg.Level, ncg.Level)
	}
	if id, err := CgroupID(dir); err != nil || id != cg.ID {
		t.Errorf("CgroupID: %d, %v", id, err)
	}
}

func TestCgroupAlive(t *testing.T) {
	requireRootV2(t)
	mp, _, err := V2Root()
	if err != nil {
		t.Fatal(err)
	}
	dir, cg := newCgroup(t, "")
	ways := []struct {
		name  string
		alive func(id uint64) (bool, error)
	}{
		{"by handle", func(id uint64) (bool, error) {
			mfd, err := unix.Open(mp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return false, err
			}
			defer unix.Close(mfd)
			return aliveByHandle(mfd, id)
		}},
		{"by walk", func(id uint64) (bool, error) {
			dirs, err := dirInodes(mp)
			return dirs[id], err
		}},
		{"either", CgroupAlive},
		{"one of many", func(id uint64) (bool, error) {
			l := newLiveness()
			defer l.close()
			if _, err := l.alive(1); err != nil { // the root's id: the handle path is used first
				return false, err
			}
			return l.alive(id)
		}},
	}
	for _, phase := range []struct {
		name  string
		alive bool
	}{{"existing", true}, {"removed", false}} {
		if !phase.alive {
			cgtest.Remove(t, dir)
		}
		for _, w := range ways {
			t.Run(phase.name+" "+w.name, func(t *testing.T) {
				if ok, err := w.alive(cg.ID); ok != phase.alive || err != nil {
					t.Errorf("alive %v, %v; want %v", ok, err, phase.alive)
				}
			})
		}
	}
}

// newCgroup creates a cgroup below parent (a directory of the v2
// hierarchy; "" is its root), removed at the end of the test.
func newCgroup(t testing.TB, parent string) (string, Cgroup) {
	t.Helper()
	if parent == "" {
		mp, _, err := V2Root()
		if err != nil {
			t.Fatal(err)
		}
		parent = mp
	}
	dir := cgtest.Dir(t, parent)
	cg, err := CgroupByPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cg
}

// requireRootV2 skips a test that creates cgroups when it cannot.
func requireRootV2(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, _, err := V2Root(); err != nil {
		t.Skipf("no cgroup v2: %v", err)
	}
}
