package main

import (
	"testing"

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
