//go:build integration

package integration

// The shipped profiles (profiles/*.toml) verified again on every run, with
// the images of images/ as they are built today: each workload passes with
// exactly its profile's keep set and fails without any one of it, the
// profile's rule gives it that set through capshim when the CRI image
// name matches, and capshim's 3-capability default fails it.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/profiles"
)

// checkProfilePackages compares the package versions a profile says it was
// verified with to the image's packages.txt: a package missing from the
// image fails the test; another version is logged, since the run itself
// verifies the profile with what the image has now.
func checkProfilePackages(t *testing.T, data, packagesTxt string) {
	t.Helper()
	have := map[string]string{}
	for _, line := range strings.Split(packagesTxt, "\n") {
		if name, version, ok := strings.Cut(line, " "); ok {
			have[name] = version
		}
	}
	var listed string
	for _, line := range strings.Split(data, "\n") {
		if s, ok := strings.CutPrefix(line, "# packages: "); ok {
			listed = s
		}
	}
	if listed == "" {
		t.Fatal("the profile names no packages")
	}
	for _, item := range strings.Split(listed, ", ") {
		name, version, _ := strings.Cut(item, " ")
		switch got, ok := have[name]; {
		case !ok:
			t.Errorf("the profile was verified with %s, which the image does not have", item)
		case got != version:
			t.Logf("the profile was verified with %s; the image now has %s %s (verified again below)", item, name, got)
		default:
			t.Logf("package %s as verified", item)
		}
	}
}

// runProfileWorkload runs the workload once and returns what it printed and whether
// it exited 0. With policy set, it goes through capshim (run), else
// straight to runc.
func runProfileWorkload(t *testing.T, bundle, policyPath string) (string, bool) {
	t.Helper()
	root, id := runcRoot(t), containerID(t)
	runcCleanup(t, root, id)
	argv := []string{runcPath, "--root", root, "run", "--bundle", bundle, id}
	if policyPath != "" {
		argv = []string{capshimBin, "--capshim-config=" + policyPath, "--root", root,
			"--log", filepath.Join(filepath.Dir(bundle), "capshim.log"), "--log-format", "json", "run", "--bundle", bundle, id}
	}
	r := runCmd(cmdOpts{timeout: workloadRunTimeout, env: envWithout([]string{"CAPSHIM_"})}, argv[0], argv[1:]...)
	if r.err != nil && !strings.Contains(r.stdout, verdictPrefix) {
		t.Fatalf("%v", r)
	}
	return r.stdout, r.err == nil
}

// profileBundle is a bundle of the workload's image with caps, whose process
// prints its Cap* lines first, and annotations.
func profileBundle(t *testing.T, set, workload string, caps []string, annotations map[string]string) string {
	t.Helper()
	b := imageBundle(t, set, workload, caps)
	editBundleSpec(t, b, func(s *rspec.Spec) {
		s.Process.Args = capsFirstArgs
		s.Annotations = annotations
	})
	return b
}

func TestShippedProfilesRunc(t *testing.T) {
	requireBinary(t, "runc")
	set := imageSet(t)
	files, err := fs.Glob(profiles.Files, "*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped profiles: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(file, ".toml")
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			data, err := fs.ReadFile(profiles.Files, file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(set, name)); err != nil {
				t.Fatalf("profile %s has no image in images/: %v", file, err)
			}
			// The file as a policy rule: parsed as capshim parses it.
			toml := fmt.Sprintf("runtime = %q\nmode = \"enforce\"\nstate_dir = %q\n\n%s", runcPath, filepath.Join(t.TempDir(), "state"), data)
			pol, err := policy.Parse([]byte(toml), file)
			if err != nil {
				t.Fatal(err)
			}
			if len(pol.Rules) != 1 || !pol.Rules[0].HasKeep {
				t.Fatalf("%s is not one rule with keep: %+v", file, pol.Rules)
			}
			keep := pol.Rules[0].Keep
			polPath := writePolicy(t, toml)
			pkgs, err := os.ReadFile(filepath.Join(set, name, "packages.txt"))
			if err != nil {
				t.Fatal(err)
			}
			checkProfilePackages(t, string(data), string(pkgs))

			// Exactly the keep set, with runc alone.
			out, ok := runProfileWorkload(t, profileBundle(t, set, name, keep.Names(), nil), "")
			if verdictLine(t, name, out, true); !ok {
				t.Fatalf("exit status not 0:\n%s", out)
			}
			assertCaps(t, out, uint64(keep))

			// Through capshim: Docker's 14 in the spec and the CRI image
			// name the rule matches, so the rule keeps exactly its set.
			image := map[string]string{"io.kubernetes.cri.image-name": testImageRef(name)}
			out, ok = runProfileWorkload(t, profileBundle(t, set, name, dockerCaps, image), polPath)
			if verdictLine(t, name, out, true); !ok {
				t.Fatalf("exit status not 0:\n%s", out)
			}
			assertCaps(t, out, uint64(keep))

			// No image name (as under Docker): capshim's default, and
			// the workload fails.
			out, ok = runProfileWorkload(t, profileBundle(t, set, name, dockerCaps, nil), polPath)
			v := verdictLine(t, name, out, false)
			if ok {
				t.Fatalf("exit status 0 with %s", v)
			}
			assertCaps(t, out, maskMinimal)
			t.Logf("with the default: %s", v)

			// Every member is still needed.
			for _, c := range keep.Caps() {
				less := keep &^ capability.Of(c)
				out, ok := runProfileWorkload(t, profileBundle(t, set, name, less.Names(), nil), "")
				v := verdictLine(t, name, out, false)
				if ok {
					t.Fatalf("exit status 0 with %s", v)
				}
				t.Logf("without %s: %s", c, v)
			}
			t.Logf("%s re-verified: %s in %v", file, keep, time.Since(start).Round(time.Millisecond))
		})
	}
}
