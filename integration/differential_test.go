//go:build integration

package integration

// Specs that runc and crun read differently, run on both real runtimes:
// first each runtime alone (the control shows what that runtime really
// grants from these bytes), then through capshim, which must refuse the
// spec or reduce it so that neither runtime grants more than the policy.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// adminCapsJSON is a capabilities object that grants CAP_SYS_ADMIN.
const adminCapsJSON = `{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN"]}`

// specEditCase changes the text of a generated config.json.
type specEditCase struct {
	name string
	edit func(t *testing.T, spec string) string
	// crunAdmin and runcAdmin say whether that runtime alone grants
	// CAP_SYS_ADMIN from the edited spec (checked by the control run).
	crunAdmin, runcAdmin bool
	// runcRefuses: runc alone does not start the container at all.
	runcRefuses bool
	// refused: capshim must refuse the spec, naming this reason. When
	// empty, capshim accepts it and the container gets the minimal set.
	refused string
}

// replaceOnce replaces the first old in s, failing the test when there
// is none.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("generated spec has no %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

func specEditCases() []specEditCase {
	return []specEditCase{
		{
			name: "process key with NUL before the real one",
			edit: func(t *testing.T, s string) string {
				return replaceOnce(t, s, `"process":`, `"process\u0000":{"user":{"uid":0,"gid":0},"args":["grep","Cap","/proc/self/status"],"env":["PATH=/bin"],"cwd":"/","capabilities":`+adminCapsJSON+`},"process":`)
			},
			crunAdmin: true, refused: "NUL character",
		},
		{
			name: "process key with NUL and no other process",
			edit: func(t *testing.T, s string) string {
				s = replaceOnce(t, s, `"process":`, `"process\u0000":`)
				for _, set := range []string{"bounding", "effective", "permitted"} {
					s = replaceOnce(t, s, `"`+set+`":[`, `"`+set+`":["CAP_SYS_ADMIN",`)
				}
				return s
			},
			crunAdmin: true, runcRefuses: true, refused: "NUL character",
		},
		{
			name: "capabilities key with NUL before the real one",
			edit: func(t *testing.T, s string) string {
				return replaceOnce(t, s, `"capabilities":`, `"capabilities\u0000x":`+adminCapsJSON+`,"capabilities":`)
			},
			crunAdmin: true, refused: "NUL character",
		},
		{
			name: "bounding key with NUL before the real one",
			edit: func(t *testing.T, s string) string {
				s = replaceOnce(t, s, `"bounding":`, `"bounding\u0000":["CAP_SYS_ADMIN"],"bounding":`)
				s = replaceOnce(t, s, `"effective":`, `"effective\u0000":["CAP_SYS_ADMIN"],"effective":`)
				return replaceOnce(t, s, `"permitted":`, `"permitted\u0000":["CAP_SYS_ADMIN"],"permitted":`)
			},
			crunAdmin: true, refused: "NUL character",
		},
		{
			name: "capabilities key in another case after the real one",
			edit: func(t *testing.T, s string) string {
				return replaceOnce(t, s, `"capabilities":`, `"Capabilities":`+adminCapsJSON+`,"capabilities":`)
			},
			refused: "only in case",
		},
		{
			name: "capability names only crun reads",
			edit: func(t *testing.T, s string) string {
				for _, set := range []string{"bounding", "effective", "permitted"} {
					s = replaceOnce(t, s, `"`+set+`":[`, `"`+set+`":["cap_sys_admin","21","CAP_SYS_ADMIN,x","CAP_SYS_ADMIN\u0000junk",`)
				}
				return s
			},
			crunAdmin: true,
		},
	}
}

func TestDifferentialSpecs(t *testing.T) {
	rootfs, stateRoot, _ := crunSetup(t)
	grep := []string{"grep", "Cap", "/proc/self/status"}
	for _, rt := range ociRuntimes(t) {
		policy := writePolicy(t, chownPolicy(rt.path))
		for i, tc := range specEditCases() {
			t.Run(rt.name+"/"+tc.name, func(t *testing.T) {
				base := rootfsBundle(t, rootfs, grep, nil, nil)
				orig, err := os.ReadFile(filepath.Join(base, "config.json"))
				if err != nil {
					t.Fatal(err)
				}
				compact := compactSpec(t, orig)
				edited := tc.edit(t, compact)

				// Control: the runtime alone on the edited spec.
				ctl := t.TempDir()
				writeFile(t, filepath.Join(ctl, "config.json"), edited, 0o644)
				id := fmt.Sprintf("capshim-dif-%d-%s-%d", os.Getpid(), rt.name, i)
				t.Cleanup(func() { deleteContainer(t, rt, stateRoot, id) })
				argv := rt.wrap(t, []string{rt.path, "--root", stateRoot, "run", "-b", ctl, id})
				r := runCmd(cmdOpts{}, argv[0], argv[1:]...)
				switch {
				case rt.name == "runc" && tc.runcRefuses:
					if r.err == nil {
						t.Fatalf("control: runc started a spec without a process it can read: %v", r)
					}
				case r.err != nil:
					t.Fatalf("control run failed: %v", r)
				}
				got := uint64(0)
				if r.err == nil {
					got = capLines(t, r.stdout)["CapBnd"]
				}
				want := tc.runcAdmin
				if rt.name == "crun" {
					want = tc.crunAdmin
				}
				if (got&maskSysAdmin != 0) != want {
					t.Fatalf("control: %s alone gives CapBnd %016x; expected CAP_SYS_ADMIN %v", rt.name, got, want)
				}
				deleteContainer(t, rt, stateRoot, id)

				// Through capshim.
				b := t.TempDir()
				writeFile(t, filepath.Join(b, "config.json"), edited, 0o644)
				logFile := filepath.Join(b, "log.json")
				argv = rt.wrap(t, []string{capshimBin, "--capshim-config=" + policy, "--root", stateRoot,
					"--log", logFile, "--log-format", "json", "run", "-b", b, id})
				r = runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, argv[0], argv[1:]...)
				if tc.refused != "" {
					if r.err == nil || strings.Contains(r.stdout, "CapBnd") {
						t.Fatalf("capshim let the container start: %v", r)
					}
					log := tailFile(logFile, 5)
					if !strings.Contains(log, tc.refused) {
						t.Fatalf("the log does not give the reason %q:\n%s", tc.refused, log)
					}
					after, _ := os.ReadFile(filepath.Join(b, "config.json"))
					if string(after) != edited {
						t.Fatalf("a refused spec was changed")
					}
					return
				}
				if r.err != nil {
					t.Fatalf("%v\nlog:\n%s", r, tailFile(logFile, 10))
				}
				assertCaps(t, r.stdout, maskMinimal)
			})
		}
	}
}

// TestDifferentialExec gives `exec --process` the same treatment, on a
// running container of each runtime.
func TestDifferentialExec(t *testing.T) {
	rootfs, stateRoot, _ := crunSetup(t)
	for _, rt := range ociRuntimes(t) {
		t.Run(rt.name, func(t *testing.T) {
			policy := writePolicy(t, chownPolicy(rt.path))
			b := rootfsBundle(t, rootfs, []string{"sleep", "60"}, nil, nil)
			id := fmt.Sprintf("capshim-difx-%d-%s", os.Getpid(), rt.name)
			t.Cleanup(func() { deleteContainer(t, rt, stateRoot, id) })
			logFile := filepath.Join(b, "log.json")
			// Detached, the container keeps the stdio it was given: runCmd's
			// files, so that nothing waits for it to close.
			argv := rt.wrap(t, []string{capshimBin, "--capshim-config=" + policy,
				"--root", stateRoot, "--log", logFile, "--log-format", "json", "run", "-d", "-b", b, id})
			if r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, argv[0], argv[1:]...); r.err != nil {
				t.Fatalf("%v\nlog:\n%s", r, tailFile(logFile, 10))
			}
			cases := []struct {
				name, process, refused string
			}{
				{"capabilities with NUL first", `{"capabilities\u0000":` + adminCapsJSON + `,"capabilities":{"bounding":["CAP_KILL"]},"args":["grep","Cap","/proc/self/status"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}`, "NUL character"},
				{"set with NUL first", `{"capabilities":{"bounding\u0000":["CAP_SYS_ADMIN"],"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]},"args":["grep","Cap","/proc/self/status"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}`, "NUL character"},
				{"names only crun reads", `{"capabilities":{"bounding":["CAP_KILL","cap_sys_admin","21"],"effective":["CAP_KILL","CAP_SYS_ADMIN,x"],"permitted":["CAP_KILL","CAP_SYS_ADMIN\u0000"]},"args":["grep","Cap","/proc/self/status"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}`, ""},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					p := filepath.Join(t.TempDir(), "process.json")
					writeFile(t, p, tc.process, 0o644)
					argv := rt.wrap(t, []string{capshimBin, "--capshim-config=" + policy,
						"--root", stateRoot, "--log", logFile, "--log-format", "json", "exec", "--process", p, id})
					r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, argv[0], argv[1:]...)
					if tc.refused != "" {
						if r.err == nil || strings.Contains(r.stdout, "CapBnd") {
							t.Fatalf("capshim let the exec run: %v", r)
						}
						if log := tailFile(logFile, 3); !strings.Contains(log, tc.refused) {
							t.Fatalf("the log does not give the reason %q:\n%s", tc.refused, log)
						}
						return
					}
					if r.err != nil {
						t.Fatalf("%v\nlog:\n%s", r, tailFile(logFile, 10))
					}
					if got := capLines(t, r.stdout)["CapBnd"]; got&maskSysAdmin != 0 || got&^maskMinimal != 0 {
						t.Fatalf("exec got CapBnd %016x, want within %016x", got, uint64(maskMinimal))
					}
				})
			}
		})
	}
}

// compactSpec removes the white space of a generated spec, keeping the key
// order, so the edits can find their keys.
func compactSpec(t *testing.T, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
