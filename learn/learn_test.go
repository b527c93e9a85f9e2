package learn

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "web", "web"},
		{"upper", "Web-1", "web-1"},
		{"path", "../../etc/passwd", "etc-passwd"},
		{"slashes", "docker.io/library/nginx", "docker.io-library-nginx"},
		{"dots first", "...x", "x"},
		{"nul", "a\x00b", "a-b"},
		{"nothing", "///", ""},
		{"long", strings.Repeat("a", 100), strings.Repeat("a", MaxName)},
		{"trailing", "a//", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sanitize(tt.in)
			if got != tt.want {
				t.Fatalf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got != "" {
				if err := CheckName(got); err != nil {
					t.Fatalf("sanitized name refused: %v", err)
				}
			}
		})
	}
}

func TestProfileName(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		id, want    string
	}{
		{"cri", map[string]string{"io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25@sha256:ab", "io.kubernetes.cri.container-name": "web"}, "abc", "nginx-web"},
		{"cri same names", map[string]string{"io.kubernetes.cri.image-name": "reg:5000/team/redis:7", "io.kubernetes.cri.container-name": "redis"}, "abc", "redis"},
		{"id", nil, "245f721b3f05", "245f721b3f05"},
		// containerd 1.6 gives a sandbox no image or container name.
		{"cri sandbox", map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "02cd8339fde6"}, "02cd8339fde6", SandboxProfile},
		{"cri sandbox with its image", map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.image-name": "registry.k8s.io/pause:3.9"}, "02cd8339fde6", SandboxProfile},
		{"cri container", map[string]string{"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25", "io.kubernetes.cri.container-name": "web"}, "abc", "nginx-web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ProfileName(tt.annotations, tt.id); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if ImageName("reg:5000/app") != "reg:5000/app" || ImageName("a/b:1") != "a/b" {
		t.Fatal("ImageName")
	}
}

func TestCheckName(t *testing.T) {
	for _, bad := range []string{"", ".x", "a/b", "..", "A", strings.Repeat("a", MaxName+1), "a b"} {
		if CheckName(bad) == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
}

func TestMergeAndRule(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "state")}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	match := map[string]string{"io.kubernetes.cri.image-name": "docker.io/library/nginx", "io.kubernetes.cri.sandbox-name": "a"}
	if _, err := s.Merge("nginx", "c1", Observation{Used: map[string]uint64{"CAP_CHOWN": 2}, Complete: true}, match, at); err != nil {
		t.Fatal(err)
	}
	match2 := map[string]string{"io.kubernetes.cri.image-name": "docker.io/library/nginx", "io.kubernetes.cri.sandbox-name": "b"}
	p, err := s.Merge("nginx", "c2", Observation{Used: map[string]uint64{"CAP_CHOWN": 1, "CAP_SETUID": 3},
		Refused: map[string]uint64{"CAP_NET_RAW": 1}, FileCaps: map[string][]string{"/bin/ping": {"CAP_NET_RAW"}}, Complete: true}, match2, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if p.Containers != 2 || p.Runs != 2 || p.Used["CAP_CHOWN"] != 3 || !p.Complete {
		t.Fatalf("merged %+v", p)
	}
	if _, ok := p.Match["io.kubernetes.cri.sandbox-name"]; ok || len(p.Match) != 1 {
		t.Fatalf("match keeps what differs: %v", p.Match)
	}
	// The same container again is another run, not another container.
	p, _ = s.Merge("nginx", "c2", Observation{Complete: false}, match2, at.Add(2*time.Hour))
	if p.Containers != 2 || p.Runs != 3 || p.Complete {
		t.Fatalf("merged %+v", p)
	}
	rule := p.Rule()
	for _, want := range []string{
		`name = "nginx"`,
		`keep = ["CAP_CHOWN", "CAP_SETUID", "CAP_NET_RAW"]`,
		`"io.kubernetes.cri.image-name" = "docker.io/library/nginx"`,
		"# used: CAP_CHOWN (3), CAP_SETUID (3)",
		"INCOMPLETE",
		"/bin/ping has file capabilities CAP_NET_RAW",
	} {
		if !strings.Contains(rule, want) {
			t.Errorf("rule lacks %q:\n%s", want, rule)
		}
	}
	list, err := s.Profiles()
	if err != nil || len(list) != 1 || list[0].Name != "nginx" {
		t.Fatalf("Profiles = %v, %v", list, err)
	}
	if err := s.Forget("nginx"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Profile("nginx"); err == nil {
		t.Fatal("forgotten profile still read")
	}
	if err := s.Forget("nginx"); err == nil {
		t.Fatal("forgetting twice succeeded")
	}
	if _, err := s.Merge("../x", "c", Observation{}, nil, at); err == nil {
		t.Fatal("a name with a path was accepted")
	}
}

// TestMergeConcurrent: merges of one profile from many goroutines and from
// other processes at once lose nothing.
func TestMergeConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := &Store{Dir: dir}
	const goroutines, each = 8, 10
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Merge("web", fmt.Sprintf("g%d-%d", g, i), Observation{Used: map[string]uint64{"CAP_CHOWN": 1}, Complete: true}, nil, time.Now()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	// Other processes merge at the same time (a lock within one process
	// would not be enough: every runtime call is its own process).
	var procs []*exec.Cmd
	for i := 0; i < 3; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMergeHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CAPSHIM_LEARN_HELPER_DIR="+dir, fmt.Sprintf("CAPSHIM_LEARN_HELPER_ID=p%d", i))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	wg.Wait()
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("helper process: %v", err)
		}
	}
	p, err := s.Profile("web")
	if err != nil {
		t.Fatal(err)
	}
	want := goroutines*each + 3*each
	if p.Runs != want || p.Used["CAP_CHOWN"] != uint64(want) {
		t.Fatalf("runs %d, chown %d, want %d each", p.Runs, p.Used["CAP_CHOWN"], want)
	}
}

func TestMergeHelperProcess(t *testing.T) {
	dir := os.Getenv("CAPSHIM_LEARN_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestMergeConcurrent")
	}
	s := &Store{Dir: dir}
	for i := 0; i < 10; i++ {
		if _, err := s.Merge("web", fmt.Sprintf("%s-%d", os.Getenv("CAPSHIM_LEARN_HELPER_ID"), i), Observation{Used: map[string]uint64{"CAP_CHOWN": 1}, Complete: true}, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateDirTrust: as root, a state directory others could write or read
// is refused (a forged profile would become policy).
func TestStateDirTrust(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the owner check applies to root")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Store{Dir: dir}
	_, err := s.Merge("web", "c", Observation{}, nil, time.Now())
	if err == nil || !strings.Contains(err.Error(), "mode 0700") {
		t.Fatalf("err = %v", err)
	}
}

func TestRecords(t *testing.T) {
	base := t.TempDir()
	r := &Records{Run: filepath.Join(base, "run"), Store: &Store{Dir: filepath.Join(base, "state")}}
	c := &Container{ID: "245f721b3f05abcd", Root: "/run/runc", Mode: "enforce", Policy: "/etc/capshim/shim.toml",
		Engine:  map[string]string{"io.kubernetes.cri.container-name": "web"},
		Created: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Dropped: []string{"CAP_CHOWN"}}
	if err := r.Save(c); err != nil {
		t.Fatal(err)
	}
	got, err := r.Load("/run/runc", c.ID)
	if err != nil || got.ID != c.ID || got.Name() != "web" {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	if _, err := r.Load("/other", c.ID); err != ErrNotFound {
		t.Fatalf("another root's container found: %v", err)
	}
	if !r.Exists("/run/runc", c.ID) || r.Started("/run/runc", c.ID) {
		t.Fatal("a saved record not there, or started before its start")
	}
	started := c.Created.Add(time.Second)
	if err := r.SaveStart("/run/runc", c.ID, 4711, started); err != nil {
		t.Fatal(err)
	}
	got, err = r.Load("/run/runc", c.ID)
	if err != nil || !r.Started("/run/runc", c.ID) || got.CgroupID != 4711 || !got.Started.Equal(started) {
		t.Fatalf("after its start: %+v, %v", got, err)
	}
	for _, q := range []string{"245f", "web"} {
		if found, err := r.Find(q); err != nil || len(found) != 1 || found[0].CgroupID != 4711 {
			t.Fatalf("Find(%q) = %v, %v", q, found, err)
		}
	}
	c = got
	c.Deleted = c.Created.Add(time.Minute)
	c.Observed = &Observation{Refused: map[string]uint64{"CAP_CHOWN": 2}, Complete: true}
	if err := r.Finish(c); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load("/run/runc", c.ID); err != ErrNotFound || r.Started("/run/runc", c.ID) {
		t.Fatal("a finished record is still running")
	}
	found, err := r.Find("web")
	if err != nil || len(found) != 1 || found[0].Observed.Refused["CAP_CHOWN"] != 2 {
		t.Fatalf("Find after delete = %v, %v", found, err)
	}
	// Old records are pruned.
	for i := 0; i < maxRecentRecords+5; i++ {
		d := &Container{ID: fmt.Sprintf("c%d", i), Deleted: c.Deleted.Add(time.Duration(i) * time.Second)}
		if err := r.Finish(d); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(base, "state", "recent"))
	if len(entries) != maxRecentRecords {
		t.Fatalf("%d recent records kept, want %d", len(entries), maxRecentRecords)
	}
	if found, _ := r.Find("web"); len(found) != 0 {
		t.Fatal("the oldest record was not pruned")
	}
}

// TestFinishInOwnStateDir: a record finished by a call that found another
// policy (Podman's cleanup finds none) goes to the state directory of the
// policy that created the container, and so do records pruned there.
func TestFinishInOwnStateDir(t *testing.T) {
	base := t.TempDir()
	own := filepath.Join(base, "own")
	other := &Records{Run: filepath.Join(base, "run"), Store: &Store{Dir: filepath.Join(base, "other")}}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		c        *Container
		finish   func(c *Container) error
		wantDir  string
		notInDir string
	}{
		{
			name:    "finished at delete",
			c:       &Container{ID: "deleted", StateDir: own, Created: now, Deleted: now},
			finish:  other.Finish,
			wantDir: own, notInDir: other.Store.Dir,
		},
		{
			name: "pruned",
			c:    &Container{ID: "pruned", StateDir: own, Created: now.Add(-time.Hour)},
			finish: func(c *Container) error {
				if err := other.Save(c); err != nil {
					return err
				}
				if n := other.Prune(func(p *Container) bool { return p.ID == c.ID }, now); n != 1 {
					return fmt.Errorf("pruned %d records, want 1", n)
				}
				return nil
			},
			wantDir: own, notInDir: other.Store.Dir,
		},
		{
			name:    "an old record naming no state directory",
			c:       &Container{ID: "old", Created: now, Deleted: now},
			finish:  other.Finish,
			wantDir: other.Store.Dir,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.finish(tt.c); err != nil {
				t.Fatal(err)
			}
			in := &Records{Run: other.Run, Store: &Store{Dir: tt.wantDir}}
			if found, err := in.Find(tt.c.ID); err != nil || len(found) != 1 {
				t.Fatalf("record not in %s: %v, %v", tt.wantDir, found, err)
			}
			if tt.notInDir != "" {
				if found, _ := (&Records{Run: other.Run, Store: &Store{Dir: tt.notInDir}}).Find(tt.c.ID); len(found) != 0 {
					t.Fatalf("record also in %s", tt.notInDir)
				}
			}
		})
	}
}

func TestPrune(t *testing.T) {
	base := t.TempDir()
	r := &Records{Run: filepath.Join(base, "run"), Store: &Store{Dir: filepath.Join(base, "state")}}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []*Container{
		{ID: "gone-old", Created: now.Add(-time.Hour), Trace: true},
		{ID: "gone-new", Created: now.Add(-time.Second)},
		{ID: "alive", Created: now.Add(-time.Hour)},
	} {
		if err := r.Save(c); err != nil {
			t.Fatal(err)
		}
	}
	n := r.Prune(func(c *Container) bool { return strings.HasPrefix(c.ID, "gone") }, now)
	if n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	if _, err := r.Load("", "gone-old"); err != ErrNotFound {
		t.Fatal("the old record of a gone container was kept")
	}
	for _, id := range []string{"gone-new", "alive"} {
		if _, err := r.Load("", id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	found, _ := r.Find("gone-old")
	if len(found) != 1 || !strings.Contains(found[0].TraceError, "deleted without capshim") {
		t.Fatalf("finished record: %+v", found)
	}
}

func TestPruneEvery(t *testing.T) {
	base := t.TempDir()
	r := &Records{Run: filepath.Join(base, "run"), Store: &Store{Dir: filepath.Join(base, "state")}}
	now := time.Now()
	if err := r.Save(&Container{ID: "gone", Created: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	gone := func(*Container) bool { return true }
	if n := r.PruneEvery(time.Minute, gone, now); n != 1 {
		t.Fatalf("first prune finished %d", n)
	}
	if err := r.Save(&Container{ID: "gone2", Created: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := r.PruneEvery(time.Minute, gone, now.Add(time.Second)); n != 0 {
		t.Fatalf("a prune within the interval finished %d", n)
	}
	if n := r.PruneEvery(time.Minute, gone, now.Add(2*time.Minute)); n != 1 {
		t.Fatalf("a prune after the interval finished %d", n)
	}
}
