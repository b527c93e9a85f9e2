//go:build integration

package integration

// Real workloads under real runc: images/build.sh builds nginx, postgres
// and redis root file systems from Debian's packages (cached outside the
// repository, so only the first run pays for it), and each image's
// entrypoint starts its service the way the official image does and
// exercises it over loopback, ending with one verdict line:
//
//	capshim-workload: OK <name>
//	capshim-workload: FAIL <name>: <step>: <reason>
//
// Under Docker's 14 default capabilities every workload must work; under
// the 3 that capshim keeps by default (AUDIT_WRITE, KILL,
// NET_BIND_SERVICE) every one must fail, at the step that needs what was
// taken away. These are the facts a capshim policy for such images has to
// be written against.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	imageBuildTimeout  = 30 * time.Minute
	workloadRunTimeout = 3 * time.Minute
	workloadEntrypoint = "/usr/local/bin/capshim-workload"
	verdictPrefix      = "capshim-workload: "
)

// ociMinimalCaps are the capabilities capshim keeps by default (maskMinimal).
var ociMinimalCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

var (
	imageSetOnce sync.Once
	imageSetDir  string
	imageSetErr  error
)

// imageSet runs images/build.sh once per test binary and returns the image
// set directory it printed: a cold cache builds (a minute or two), a warm
// one only checks.
func imageSet(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	imageSetOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), imageBuildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join("images", "build.sh"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			imageSetErr = fmt.Errorf("images/build.sh failed after %v: %w\n%s", took, err, lastLines(stderr.String(), 40))
			return
		}
		imageSetDir = strings.TrimSpace(string(out))
		if !filepath.IsAbs(imageSetDir) || strings.Contains(imageSetDir, "\n") {
			imageSetErr = fmt.Errorf("images/build.sh printed %q, want one absolute directory", out)
			return
		}
		t.Logf("images/build.sh took %v: %s", took, imageSetDir)
	})
	if imageSetErr != nil {
		t.Fatal(imageSetErr)
	}
	return imageSetDir
}

// TestImagesBuildCached runs build.sh again after imageSet: with nothing
// changed it must print the same directory at once, without building.
func TestImagesBuildCached(t *testing.T) {
	set := imageSet(t)
	tests := []struct {
		name string
		args []string
	}{
		{name: "all workloads", args: nil},
		{name: "one workload", args: []string{"redis"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(cmdOpts{}, "bash", append([]string{filepath.Join("images", "build.sh")}, tc.args...)...)
			if r.err != nil {
				t.Fatalf("%v", r)
			}
			if got := strings.TrimSpace(r.stdout); got != set {
				t.Errorf("printed %q, want %q\n%v", got, set, r)
			}
			if strings.Contains(r.stderr, "building") {
				t.Errorf("built again although nothing changed:\n%v", r)
			}
			// A warm run only looks at a few files; seconds would mean
			// it did real work.
			if r.took > 5*time.Second {
				t.Errorf("warm run took %v", r.took)
			}
			t.Logf("warm run: %v", r.took.Round(time.Millisecond))
		})
	}
}

// imageBundle makes a bundle whose rootfs is an overlay on the cached rootfs
// of workload (the container writes PGDATA, /data and logs; the cache must
// stay as built), with a config.json from `runc spec`: the entrypoint as
// args, no terminal, writable root, caps in bounding, effective and
// permitted, and runc spec's own new network namespace (loopback only).
func imageBundle(t *testing.T, set, workload string, caps []string) string {
	t.Helper()
	w := t.TempDir()
	b := filepath.Join(w, "bundle")
	root := filepath.Join(b, "rootfs")
	for _, d := range []string{root, filepath.Join(w, "upper"), filepath.Join(w, "work")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lower := filepath.Join(set, workload, "rootfs")
	if _, err := os.Stat(filepath.Join(lower, strings.TrimPrefix(workloadEntrypoint, "/"))); err != nil {
		t.Fatalf("image %s has no entrypoint: %v", workload, err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(w, "upper"), filepath.Join(w, "work"))
	if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
		t.Fatalf("mounting the overlay on %s: %v", root, err)
	}
	// Registered before the container's cleanup, so it runs after it.
	t.Cleanup(func() {
		if err := syscall.Unmount(root, 0); err != nil {
			t.Errorf("unmounting %s: %v (detaching it)", root, err)
			_ = syscall.Unmount(root, syscall.MNT_DETACH)
		}
	})

	if out, err := exec.Command(runcPath, "spec", "--bundle", b).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	editBundleSpec(t, b, func(spec *rspec.Spec) { imageBundleSpec(t, spec, caps) })
	return b
}

// imageBundleSpec turns the spec runc generated into the workload's: its
// entrypoint, exactly caps, a file limit this host can grant, and a
// network namespace of its own.
func imageBundleSpec(t *testing.T, spec *rspec.Spec, caps []string) {
	spec.Root = &rspec.Root{Path: "rootfs", Readonly: false}
	spec.Hostname = "capshim-test"
	spec.Process.Terminal = false
	spec.Process.Args = []string{workloadEntrypoint}
	spec.Process.Capabilities = &rspec.LinuxCapabilities{
		Bounding: slices.Clone(caps), Effective: slices.Clone(caps), Permitted: slices.Clone(caps),
	}
	// This VM's root may lack CAP_SYS_RESOURCE: no rlimit above the
	// current hard limit.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile := min(uint64(1024), lim.Max)
	spec.Process.Rlimits = []rspec.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}}
	netns := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == rspec.NetworkNamespace && ns.Path == "" {
			netns = true
		}
	}
	if !netns {
		t.Fatal("runc spec gave no network namespace of its own: the workload would share the host's network")
	}
}

// workloadVerdict returns the one verdict line the entrypoint printed on
// stdout, or an error when there is none or more than one.
func workloadVerdict(stdout string) (string, error) {
	var found []string
	for line := range strings.SplitSeq(stdout, "\n") {
		if strings.HasPrefix(line, verdictPrefix) {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("want exactly one %q line on stdout, got %d", verdictPrefix, len(found))
	}
	return found[0], nil
}

// TestImagesWorkloadsUnderRunc runs each workload image with the real
// runc, with Docker's 14 default capabilities and with capshim's 3.
func TestImagesWorkloadsUnderRunc(t *testing.T) {
	requireBinary(t, "runc")
	set := imageSet(t)
	const permDenied = "Operation not permitted"
	tests := []struct {
		name     string
		workload string
		caps     []string
		// wantFail is "" when the workload must print OK; else the
		// start of the FAIL reason (the step), and wantReason what the
		// reason must also say.
		wantFail   string
		wantReason string
	}{
		{name: "nginx with Docker's 14 capabilities", workload: "nginx", caps: dockerCaps},
		{name: "postgres with Docker's 14 capabilities", workload: "postgres", caps: dockerCaps},
		{name: "redis with Docker's 14 capabilities", workload: "redis", caps: dockerCaps},
		{
			// The master creates its temp paths and gives them to the
			// workers' user before anything listens: CAP_CHOWN.
			name: "nginx with capshim's 3 capabilities", workload: "nginx", caps: ociMinimalCaps,
			wantFail:   "nginx listens on 127.0.0.1:80: nginx exited (code 1)",
			wantReason: `chown("/var/lib/nginx/body", 33) failed (1: ` + permDenied,
		},
		{
			// A root-owned PGDATA (a fresh volume) goes to postgres first:
			// CAP_CHOWN.
			name: "postgres with capshim's 3 capabilities", workload: "postgres", caps: ociMinimalCaps,
			wantFail:   "chown PGDATA to postgres",
			wantReason: permDenied,
		},
		{
			// Likewise /data for redis: CAP_CHOWN.
			name: "redis with capshim's 3 capabilities", workload: "redis", caps: ociMinimalCaps,
			wantFail:   "chown /data to redis",
			wantReason: permDenied,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := imageBundle(t, set, tc.workload, tc.caps)
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			r := runCmd(cmdOpts{timeout: workloadRunTimeout}, runcPath, "--root", root, "run", "--bundle", b, id)
			verdict, err := workloadVerdict(r.stdout)
			if err != nil {
				t.Fatalf("%v\n%v", err, r)
			}
			t.Logf("%s (%v)", verdict, r.took.Round(time.Millisecond))
			if !r.exited {
				t.Fatalf("runc run: %v\n%v", r.err, r)
			}
			code := r.code
			if tc.wantFail == "" {
				if want := verdictPrefix + "OK " + tc.workload; verdict != want || code != 0 {
					t.Fatalf("got %q (exit %d), want %q (exit 0)\n%v", verdict, code, want, r)
				}
				return
			}
			prefix := verdictPrefix + "FAIL " + tc.workload + ": " + tc.wantFail
			if !strings.HasPrefix(verdict, prefix) || !strings.Contains(verdict, tc.wantReason) || code != 1 {
				t.Fatalf("got %q (exit %d), want a line starting %q and saying %q (exit 1)\n%v",
					verdict, code, prefix, tc.wantReason, r)
			}
		})
	}
}
