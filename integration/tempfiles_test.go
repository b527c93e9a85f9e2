//go:build integration

package integration

// A successful reduce leaves the bundle as it was apart from config.json's
// content: no temporary file stays, and config.json, replaced by a rename,
// keeps its mode and owner.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHardTempFiles(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)
	for _, tc := range []struct {
		name     string
		cmd      string
		mode     os.FileMode
		uid, gid int
	}{
		{name: "run 0640 root", cmd: "run", mode: 0o640},
		{name: "create 0640 root", cmd: "create", mode: 0o640},
		{name: "run 0600 uid 1234 gid 5678", cmd: "run", mode: 0o600, uid: 1234, gid: 5678},
		{name: "run 0444 root", cmd: "run", mode: 0o444},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, bundleSpec{})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			cfg := filepath.Join(b, "config.json")
			if err := os.Chown(cfg, tc.uid, tc.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfg, tc.mode); err != nil {
				t.Fatal(err)
			}
			orig := filepath.Join(t.TempDir(), "orig.json")
			copyFile(t, cfg, orig, 0o644)
			want := rewriteSpec(t, orig, "--config", policy)
			before := snapshot(t, cfg)
			listBefore := listing(t, b)
			side := t.TempDir()
			log := filepath.Join(side, "log.json")
			args := append(globalArgs(root, log), tc.cmd, "--bundle", b)
			if tc.cmd == "create" {
				args = append(args, "--pid-file", filepath.Join(side, "init.pid"))
			}
			res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(args, id)...)
			defer func() {
				if t.Failed() {
					t.Logf("details:\n%s", res)
				}
			}()
			if res.code != 0 {
				t.Fatalf("capshim %s failed", tc.cmd)
			}
			if tc.cmd == "run" {
				assertCaps(t, res.stdout, maskMinimal)
			} else {
				pid := strings.TrimSpace(string(readFile(t, filepath.Join(side, "init.pid"))))
				assertCaps(t, string(readFile(t, "/proc/"+pid+"/status")), maskMinimal)
			}
			after := snapshot(t, cfg)
			if d := diffListing(listBefore, listing(t, b)); d != "" {
				t.Errorf("the bundle changed beyond config.json's content:\n%s", d)
			}
			if tmp := capshimTempFiles(t, b); len(tmp) > 0 {
				t.Errorf("temporary files left in the bundle: %v", tmp)
			}
			if after.mode != before.mode || after.mode.Perm() != tc.mode {
				t.Errorf("config.json mode %v, want %v", after.mode, before.mode)
			}
			if int(after.uid) != tc.uid || int(after.gid) != tc.gid {
				t.Errorf("config.json owner %d:%d, want %d:%d", after.uid, after.gid, tc.uid, tc.gid)
			}
			if !json.Valid(after.data) {
				t.Errorf("config.json is not valid JSON:\n%s", after.data)
			}
			if !bytes.Equal(after.data, want) {
				t.Errorf("config.json is not what capshim rewrite gives:\ngot:  %s\nwant: %s", after.data, want)
			}
			if bytes.Equal(after.data, before.data) {
				t.Errorf("config.json unchanged in enforce mode")
			}
			// Replaced by rename, not written in place.
			if after.ino == before.ino {
				t.Errorf("config.json kept inode %d: written in place, not replaced atomically", after.ino)
			}
		})
	}
}
