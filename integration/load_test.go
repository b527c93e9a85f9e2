//go:build integration

package integration

// Under load (32 bundles at once, and 16 runs sharing one bundle) every
// container is reduced and every config.json stays whole: a concurrent
// reader sees the old or the new file, never a mix.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	capshim "github.com/capshim/capshim"
)

// runAll starts every command line (capshim's arguments) at once,
// after a common barrier, and waits for all of them. The goroutines call
// no t method: runCmd needs none.
func runAll(env []string, cmds [][]string) []cmdResult {
	out := make([]cmdResult, len(cmds))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = runCmd(cmdOpts{env: env}, capshimBin, args...)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestHardLoad(t *testing.T) {
	requireRunc(t)
	// The built-in default as a policy file, so /etc/capshim/shim.toml
	// does not matter; the expected result is `capshim rewrite --builtin`.
	policy := writePolicy(t, string(capshim.DefaultPolicy))
	env := shimEnv(policy)
	grepCaps := []string{"grep", "Cap", "/proc/self/status"}

	t.Run("32 bundles", func(t *testing.T) {
		const n = 32
		began := time.Now()
		root, side := runcRoot(t), t.TempDir()
		type job struct{ bundle, id, log, orig string }
		jobs := make([]job, n)
		cmds := make([][]string, n)
		base := containerID(t)
		for i := range jobs {
			b := newBundle(t, bundleSpec{args: grepCaps})
			j := job{bundle: b, id: fmt.Sprintf("%s-%02d", base, i),
				log: filepath.Join(side, fmt.Sprintf("log-%02d.json", i)), orig: filepath.Join(side, fmt.Sprintf("orig-%02d.json", i))}
			copyFile(t, filepath.Join(b, "config.json"), j.orig, 0o644)
			runcCleanup(t, root, j.id)
			jobs[i] = j
			cmds[i] = append(globalArgs(root, j.log), "run", "-b", b, j.id)
		}
		setup := time.Since(began)
		began = time.Now()
		outs := runAll(env, cmds)
		t.Logf("setup %v; %d parallel runs %v", setup.Round(time.Millisecond), n, time.Since(began).Round(time.Millisecond))
		for i, o := range outs {
			j := jobs[i]
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				if !o.exited {
					t.Fatalf("%v\n%s", o.err, o)
				}
				if o.code != 0 {
					t.Fatalf("run failed:\n%s", o)
				}
				assertCaps(t, o.stdout, maskMinimal)
				got := readFile(t, filepath.Join(j.bundle, "config.json"))
				if !json.Valid(got) {
					t.Errorf("config.json is not valid JSON afterwards:\n%s", got)
				} else if want := rewriteSpec(t, j.orig, "--builtin"); !bytes.Equal(got, want) {
					t.Errorf("config.json is not what capshim rewrite --builtin gives:\ngot:  %s\nwant: %s", got, want)
				}
				if tmp := capshimTempFiles(t, j.bundle); len(tmp) > 0 {
					t.Errorf("temporary files left: %v", tmp)
				}
				if runcExists(root, j.id) {
					t.Errorf("runc run left container %s behind", j.id)
				}
				if t.Failed() {
					t.Logf("details:\n%s", o)
				}
			})
		}
	})

	t.Run("16 runs sharing one bundle", func(t *testing.T) {
		const n = 16
		root, side := runcRoot(t), t.TempDir()
		b := newBundle(t, bundleSpec{args: grepCaps})
		cfg := filepath.Join(b, "config.json")
		orig := readFile(t, cfg)
		origPath := filepath.Join(side, "orig.json")
		copyFile(t, cfg, origPath, 0o644)
		want := rewriteSpec(t, origPath, "--builtin")
		if bytes.Equal(want, orig) {
			t.Fatal("the policy changes nothing in this bundle: the test would prove nothing")
		}
		base := containerID(t)
		// Several rounds, each starting from the original, so that many
		// writers race to replace the same file each time.
		for round := 0; round < 4; round++ {
			copyFile(t, origPath, cfg, 0o644)
			cmds := make([][]string, n)
			ids := make([]string, n)
			for i := range cmds {
				ids[i] = fmt.Sprintf("%s-r%d-%02d", base, round, i)
				runcCleanup(t, root, ids[i])
				cmds[i] = append(globalArgs(root, filepath.Join(side, fmt.Sprintf("log-r%d-%02d.json", round, i))), "run", "-b", b, ids[i])
			}
			// A reader sees the old or the new content, never a mix.
			stop := make(chan struct{})
			var reads, bad int
			var badSample []byte
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					data, err := os.ReadFile(cfg)
					reads++
					if err != nil || !bytes.Equal(data, orig) && !bytes.Equal(data, want) {
						bad++
						if badSample == nil {
							badSample = fmt.Appendf(nil, "%d bytes, error %v, starting: %.300q", len(data), err, data)
						}
					}
				}
			}()
			began := time.Now()
			outs := runAll(env, cmds)
			close(stop)
			<-done
			t.Logf("round %d: %d parallel runs on one bundle %v; %d concurrent reads", round, n, time.Since(began).Round(time.Millisecond), reads)
			if bad > 0 {
				t.Errorf("round %d: %d of %d concurrent reads saw neither the original nor the reduced config.json, e.g.:\n%s", round, bad, reads, badSample)
			}
			for i, o := range outs {
				if o.code != 0 {
					t.Errorf("round %d run %d failed: %v\n%s", round, i, o.err, o)
					continue
				}
				assertCaps(t, o.stdout, maskMinimal)
				if t.Failed() {
					t.Logf("details:\n%s", o)
				}
			}
			got := readFile(t, cfg)
			if !bytes.Equal(got, want) {
				t.Errorf("round %d: shared config.json is not what capshim rewrite --builtin gives (valid JSON: %v):\ngot:  %s\nwant: %s", round, json.Valid(got), got, want)
			}
			if tmp := capshimTempFiles(t, b); len(tmp) > 0 {
				t.Errorf("round %d: temporary files left: %v", round, tmp)
			}
			// The info line of every run names its container: each one
			// decided on its own.
			for i, id := range ids {
				lp := filepath.Join(side, fmt.Sprintf("log-r%d-%02d.json", round, i))
				found := false
				for _, m := range logMsgs(t, lp, "info") {
					found = found || strings.Contains(m, id)
				}
				if !found {
					t.Errorf("round %d: no capshim info line for %s in %s", round, id, lp)
				}
			}
		}
	})
}
