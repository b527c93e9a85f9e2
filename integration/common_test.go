//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// capshimBin is the capshim binary under test, built once by TestMain.
var capshimBin string

// Capability masks as /proc/PID/status prints them.
const (
	maskMinimal = 0x20000420 // CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE
	maskChown   = 0x1        // CAP_CHOWN
	maskDocker  = 0xa80425fb // Docker's 14 default capabilities
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "capshim-it-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Root-owned 0755 directory: the binary must live where a trust check
	// would accept it.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// capshim runs its own commands (rewrite, ...) from capshim-tools next
	// to it, as `make install` lays them out.
	capshimBin = filepath.Join(dir, "capshim")
	for _, b := range []string{"capshim", "capshim-tools", "capshim-trace"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, b), "../cmd/"+b)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b+":", err)
			return 1
		}
	}
	return m.Run()
}

// requireRoot skips a test that needs root (real containers) when run by
// an ordinary user; `make test` runs as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start real containers")
	}
}

// requireBinary fails the test when a tool is missing: `make test`
// installs every one of them, so a missing tool is a broken setup.
func requireBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH (make test installs it): %v", name, err)
	}
	return p
}

// buildRootfs fills dir with a minimal busybox root file system made from
// the static busybox binary of the host (Debian package busybox-static).
func buildRootfs(t *testing.T, dir string) {
	t.Helper()
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		t.Fatalf("static busybox missing (apt-get install busybox-static): %v", err)
	}
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("chroot", dir, "/bin/busybox", "--install", "-s", "/bin").CombinedOutput()
	if err != nil {
		t.Fatalf("busybox --install: %v: %s", err, out)
	}
	writeFile(t, filepath.Join(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n", 0o644)
	writeFile(t, filepath.Join(dir, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n", 0o644)
}

// buildImageArchive writes an OCI image layout tar holding two images that
// share one busybox layer: docker.io/capshim-test/busybox:1 (CMD /bin/sh)
// and docker.io/capshim-test/pause:1 (sleeps). `ctr images import` takes
// it as it is; Docker 20.10 and Podman need the docker-archive manifest
// that buildDockerArchive adds.
func buildImageArchive(t *testing.T, out string) {
	t.Helper()
	w := t.TempDir()
	root := filepath.Join(w, "rootfs")
	buildRootfs(t, root)
	script := `set -eu
W=$1; OUT=$2; R=$W/rootfs; B=$W/oci/blobs/sha256
mkdir -p "$B"
tar -C "$R" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$W/layer.tar" .
put() { d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$B/$d"; echo "$d"; }
L=$(put "$W/layer.tar"); LS=$(stat -c %s "$B/$L")
M=""
for spec in 'pause|["/bin/sleep","2147483647"]' 'busybox|["/bin/sh"]'; do
  name=${spec%%|*}; cmd=${spec#*|}
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"capshim integration"}]}' "$cmd" "$L" >"$W/cfg"
  C=$(put "$W/cfg"); CS=$(stat -c %s "$B/$C")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$CS" "$L" "$LS" >"$W/man"
  MD=$(put "$W/man"); MS=$(stat -c %s "$B/$MD")
  [ -n "$M" ] && M="$M,"
  M="$M$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"docker.io/capshim-test/%s:1","org.opencontainers.image.ref.name":"1"}}' "$MD" "$MS" "$name")"
done
echo '{"imageLayoutVersion":"1.0.0"}' >"$W/oci/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$M" >"$W/oci/index.json"
tar -C "$W/oci" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$OUT" .
`
	cmd := exec.Command("bash", "-c", script, "build", w, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building image archive: %v: %s", err, b)
	}
}

// writeFile writes data to path or fails the test.
func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// writePolicy writes a capshim policy file into a fresh root-owned 0755
// directory and returns its path.
func writePolicy(t *testing.T, toml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "shim.toml")
	writeFile(t, p, toml, 0o644)
	return p
}

// capLines parses the Cap* lines of a /proc/PID/status text into masks
// keyed by line name (CapInh, CapPrm, CapEff, CapBnd, CapAmb).
func capLines(t *testing.T, status string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("bad status line %q: %v", sc.Text(), err)
		}
		out[k] = n
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if _, ok := out[k]; !ok {
			t.Fatalf("no %s line in container output:\n%s", k, status)
		}
	}
	return out
}

// assertCaps checks the container's bounding, permitted and effective sets
// are exactly want and its inheritable and ambient sets are empty.
func assertCaps(t *testing.T, status string, want uint64) {
	t.Helper()
	got := capLines(t, status)
	for _, k := range []string{"CapBnd", "CapPrm", "CapEff"} {
		if got[k] != want {
			t.Errorf("%s = %016x, want %016x\n%s", k, got[k], want, status)
		}
	}
	for _, k := range []string{"CapInh", "CapAmb"} {
		if got[k] != 0 {
			t.Errorf("%s = %016x, want 0", k, got[k])
		}
	}
}

// mountsUnder lists the mount points at or below dir, deepest first, from
// /proc/self/mountinfo (octal escapes such as \040 undone).
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// unescapeMountinfo undoes the octal escapes of a mountinfo field.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
