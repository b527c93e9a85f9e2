package main

import (
	"testing"
	"time"

	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/policy"
)

func TestOwnPolicy(t *testing.T) {
	found := &policy.Policy{Source: "built-in default", StateDir: "", Log: ""}
	tests := []struct {
		name             string
		pol              *policy.Policy
		rec              *learn.Container
		wantDir, wantLog string
		same             bool // pol itself comes back
	}{
		{
			// Podman's cleanup deletes with no policy flag: the built-in
			// policy is found, the record says where the container's went.
			name:    "another policy at delete",
			pol:     found,
			rec:     &learn.Container{StateDir: "/tmp/state", Log: "/tmp/capshim.log"},
			wantDir: "/tmp/state", wantLog: "/tmp/capshim.log",
		},
		{
			name:    "the same policy",
			pol:     &policy.Policy{StateDir: "/tmp/state", Log: "/tmp/capshim.log"},
			rec:     &learn.Container{StateDir: "/tmp/state", Log: "/tmp/capshim.log"},
			wantDir: "/tmp/state", wantLog: "/tmp/capshim.log", same: true,
		},
		{
			// The container's policy had no log: none is written to, even
			// if the policy found now has one.
			name:    "the container's policy had no log",
			pol:     &policy.Policy{StateDir: "/var/lib/other", Log: "/var/log/other.log"},
			rec:     &learn.Container{StateDir: policy.DefaultStateDir},
			wantDir: policy.DefaultStateDir, wantLog: "",
		},
		{
			name:    "a record from before records named their state directory",
			pol:     &policy.Policy{StateDir: "/tmp/state", Log: "/tmp/capshim.log"},
			rec:     &learn.Container{},
			wantDir: "/tmp/state", wantLog: "/tmp/capshim.log", same: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, log := tt.pol.StateDir, tt.pol.Log
			got := ownPolicy(tt.pol, tt.rec)
			if got.States() != tt.wantDir || got.Log != tt.wantLog || (got == tt.pol) != tt.same {
				t.Errorf("state dir %q, log %q (same policy: %v); want %q, %q (%v)", got.States(), got.Log, got == tt.pol, tt.wantDir, tt.wantLog, tt.same)
			}
			if tt.pol.StateDir != dir || tt.pol.Log != log {
				t.Errorf("the policy found was changed: %+v", tt.pol)
			}
		})
	}
}

// TestProfileMatch renders the rule a learned workload gets, loads it as
// a policy would, and asks which containers it matches.
func TestProfileMatch(t *testing.T) {
	cri := func(typ, image, name string) map[string]string {
		m := map[string]string{"io.kubernetes.cri.container-type": typ, "io.kubernetes.cri.sandbox-namespace": "learn-1"}
		if image != "" {
			m["io.kubernetes.cri.image-name"] = image
		}
		if name != "" {
			m["io.kubernetes.cri.container-name"] = name
		}
		return m
	}
	tests := []struct {
		name    string
		learned map[string]string // the learned container's engine annotations
		matches []map[string]string
		misses  []map[string]string
	}{
		{
			name:    "image with a tag",
			learned: cri("container", "docker.io/library/nginx:1.25", "web"),
			matches: []map[string]string{
				cri("container", "docker.io/library/nginx:1.25", "web"),
				cri("container", "docker.io/library/nginx:1.26", "web"),
				cri("container", "docker.io/library/nginx@sha256:0123", "web"),
			},
			misses: []map[string]string{
				cri("container", "docker.io/library/nginx-exporter:1", "web"),
				cri("container", "docker.io/library/nginx2:1", "web"),
				cri("container", "docker.io/library/nginx:1.25", "sidecar"),
				cri("container", "evil.example/nginx:1.25", "web"),
				{},
			},
		},
		{
			name:    "image without a tag",
			learned: cri("container", "reg:5000/team/app", "app"),
			matches: []map[string]string{cri("container", "reg:5000/team/app", "app")},
			misses:  []map[string]string{cri("container", "reg:5000/team/app:2", "app"), cri("container", "reg:5000/team/apps", "app")},
		},
		{
			name:    "image name with glob characters",
			learned: cri("container", "reg/a[1]*:1", "x"),
			matches: []map[string]string{cri("container", "reg/a[1]*:2", "x")},
			misses:  []map[string]string{cri("container", "reg/a1:2", "x"), cri("container", "reg/a[1]b:2", "x")},
		},
		{
			name:    "pod sandbox",
			learned: cri("sandbox", "", ""),
			matches: []map[string]string{cri("sandbox", "", "")},
			misses:  []map[string]string{cri("container", "docker.io/library/nginx:1.25", "web"), {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &learn.Profile{Name: learn.ProfileName(tt.learned, "abc")}
			p.Merge("abc", learn.Observation{Used: map[string]uint64{"CAP_CHOWN": 1}, Complete: true}, profileMatch(tt.learned), time.Now())
			pol, err := policy.Parse([]byte(p.Rule()), "learned")
			if err != nil {
				t.Fatalf("the emitted rule does not load: %v\n%s", err, p.Rule())
			}
			r := &pol.Rules[0]
			for _, a := range tt.matches {
				if !r.Matches(a) {
					t.Errorf("does not match %v:\n%s", a, p.Rule())
				}
			}
			for _, a := range tt.misses {
				if r.Matches(a) {
					t.Errorf("matches %v:\n%s", a, p.Rule())
				}
			}
		})
	}
}

func TestTopLevelInt(t *testing.T) {
	tests := []struct {
		name string
		data string
		key  string
		want int
		ok   bool
	}{
		{name: "runc state", data: `{"id":"x","init_process_pid":42,"config":{"init_process_pid":7}}`, key: "init_process_pid", want: 42, ok: true},
		{name: "after a nested object", data: `{"config":{"pid":7,"a":[1,{"pid":8}]},"pid":9}`, key: "pid", want: 9, ok: true},
		{name: "only nested", data: `{"config":{"pid":7}}`, key: "pid"},
		{name: "not a number", data: `{"pid":"7"}`, key: "pid"},
		{name: "not an object", data: `[1]`, key: "pid"},
		{name: "truncated", data: `{"id":"x",`, key: "pid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := topLevelInt([]byte(tt.data), tt.key)
			if got != tt.want || ok != tt.ok {
				t.Errorf("topLevelInt = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
