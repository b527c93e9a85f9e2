package main

import "testing"

// TestSpecPath: capshim reduces the file the runtime will open, for every
// way the bundle and crun's --config can be given.
func TestSpecPath(t *testing.T) {
	tests := []struct {
		name, bundle, config, want string
	}{
		{name: "default bundle", want: "config.json"},
		{name: "bundle", bundle: "/b", want: "/b/config.json"},
		{name: "bundle with slash", bundle: "/b/", want: "/b/config.json"},
		{name: "root bundle", bundle: "/", want: "/config.json"},
		{name: "relative bundle", bundle: "b", want: "b/config.json"},
		// crun opens exactly "config.json" inside the bundle.
		{name: "config.json named", bundle: "/b", config: "config.json", want: "/b/config.json"},
		// Any other name is relative to the working directory, not the
		// bundle.
		{name: "relative config", bundle: "/b", config: "alt.json", want: "alt.json"},
		{name: "dot config.json", bundle: "/b", config: "./config.json", want: "./config.json"},
		{name: "absolute config", bundle: "/b", config: "/c/alt.json", want: "/c/alt.json"},
		// No lexical cleaning: the kernel resolves a before "..".
		{name: "dot-dot kept", bundle: "/b/a/..", want: "/b/a/../config.json"},
		{name: "dot-dot config kept", bundle: "/b", config: "a/../alt.json", want: "a/../alt.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := specPath(tt.bundle, tt.config); got != tt.want {
				t.Fatalf("specPath(%q, %q) = %q, want %q", tt.bundle, tt.config, got, tt.want)
			}
		})
	}
}
