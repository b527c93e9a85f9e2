package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
)

// TestCapsSpellings checks that a capability is found whatever its case and
// with or without the CAP_ prefix.
func TestCapsSpellings(t *testing.T) {
	want, err := renderCaps("text", "CAP_CHOWN", 40)
	if err != nil {
		t.Fatalf("renderCaps: %v", err)
	}
	tests := []struct {
		name string
		arg  string
	}{
		{name: "lower case", arg: "chown"},
		{name: "upper case", arg: "CHOWN"},
		{name: "lower-case prefix", arg: "cap_chown"},
		{name: "mixed case and blanks", arg: " Cap_Chown "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderCaps("text", tt.arg, 40)
			if err != nil {
				t.Fatalf("renderCaps(%q): %v", tt.arg, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("renderCaps(%q) =\n%s\nwant\n%s", tt.arg, got, want)
			}
		})
	}
}

// TestCapsKernelLine checks the kernel line for kernels that know fewer,
// exactly as many, and more capabilities than capshim, or cannot be read.
func TestCapsKernelLine(t *testing.T) {
	tests := []struct {
		name    string
		lastCap int
		want    string
	}{
		{name: "unknown", lastCap: -1, want: "Could not read which capabilities this kernel knows."},
		{name: "older kernel", lastCap: 35, want: "This kernel knows 36 capabilities (0-35); those marked * are not supported here."},
		{name: "same", lastCap: 40, want: "This kernel knows all 41 capabilities (0-40)."},
		{name: "newer kernel", lastCap: 42, want: "This kernel knows 43 capabilities (0-42); capshim only knows the first 41."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := capsKernelLine(tt.lastCap); got != tt.want {
				t.Errorf("capsKernelLine(%d) = %q, want %q", tt.lastCap, got, tt.want)
			}
			table := string(renderCapsTable(tt.lastCap))
			if !strings.Contains(table, "\n"+tt.want+"\n") {
				t.Errorf("table for last cap %d lacks line %q", tt.lastCap, tt.want)
			}
			stars := 0
			for _, line := range strings.Split(table, "\n") {
				if f := strings.Fields(line); len(f) > 0 && strings.HasSuffix(f[0], "*") {
					stars++
				}
			}
			wantStars := 0
			if tt.lastCap >= 0 && tt.lastCap < capability.NumCaps-1 {
				wantStars = capability.NumCaps - 1 - tt.lastCap
			}
			if stars != wantStars {
				t.Errorf("table for last cap %d marks %d capabilities unsupported, want %d", tt.lastCap, stars, wantStars)
			}
		})
	}
}

// TestCapsRenderErrors checks the errors of renderCaps.
func TestCapsRenderErrors(t *testing.T) {
	tests := []struct {
		name   string
		format string
		arg    string
		want   []string
	}{
		{name: "unknown capability", format: "text", arg: "NOSUCH", want: []string{`"NOSUCH"`, "capshim caps"}},
		{name: "unknown capability as json", format: "json", arg: "cap_nosuch", want: []string{`"cap_nosuch"`}},
		{name: "empty prefix only", format: "text", arg: "CAP_", want: []string{`"CAP_"`}},
		{name: "unknown format", format: "yaml", want: []string{`"yaml"`, "text", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := renderCaps(tt.format, tt.arg, 40)
			if err == nil {
				t.Fatalf("renderCaps(%q, %q) = %q, want an error", tt.format, tt.arg, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

// TestCapsRunJSON checks the JSON output through run: its keys, and one
// object per capability, or one object for NAME.
func TestCapsRunJSON(t *testing.T) {
	wantKeys := []string{"allows", "detail", "docker_default", "name", "number", "oci_default", "podman_default", "risk"}
	keysOf := func(m map[string]any) []string {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys
	}

	t.Run("list", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run([]string{"capshim", "caps", "--format", "json"}, &out, &errOut); code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, &errOut)
		}
		var list []map[string]any
		if err := json.Unmarshal(out.Bytes(), &list); err != nil {
			t.Fatalf("decode output: %v\n%s", err, &out)
		}
		if len(list) != capability.NumCaps {
			t.Fatalf("got %d objects, want %d", len(list), capability.NumCaps)
		}
		for i, obj := range list {
			if got := keysOf(obj); !slices.Equal(got, wantKeys) {
				t.Errorf("object %d has keys %v, want %v", i, got, wantKeys)
			}
			if obj["number"] != float64(i) || obj["name"] != capability.Cap(i).String() {
				t.Errorf("object %d is %v %v, want %d %s", i, obj["number"], obj["name"], i, capability.Cap(i))
			}
		}
	})

	t.Run("one", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run([]string{"capshim", "caps", "--format", "json", "setuid"}, &out, &errOut); code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, &errOut)
		}
		var obj map[string]any
		if err := json.Unmarshal(out.Bytes(), &obj); err != nil {
			t.Fatalf("decode output: %v\n%s", err, &out)
		}
		if got := keysOf(obj); !slices.Equal(got, wantKeys) {
			t.Errorf("keys %v, want %v", got, wantKeys)
		}
		want := map[string]any{
			"number": float64(7), "name": "CAP_SETUID", "risk": "root-equivalent",
			"oci_default": false, "docker_default": true, "podman_default": true,
		}
		for k, v := range want {
			if obj[k] != v {
				t.Errorf("%s = %v, want %v", k, obj[k], v)
			}
		}
	})
}

// TestCapsInfos checks every capInfos entry: a valid risk, a short one-line
// Allows, and a Detail of two to four sentences.
func TestCapsInfos(t *testing.T) {
	for c := capability.Cap(0); c < capability.NumCaps; c++ {
		t.Run(c.String(), func(t *testing.T) {
			info := capInfos[c]
			switch info.Risk {
			case riskRootEquivalent, riskHigh, riskLow:
			default:
				t.Errorf("risk %q is not one of %q, %q, %q", info.Risk, riskRootEquivalent, riskHigh, riskLow)
			}
			if info.Allows == "" {
				t.Error("empty Allows")
			}
			if len(info.Allows) > 60 || strings.ContainsAny(info.Allows, "\n\t") || strings.HasSuffix(info.Allows, ".") {
				t.Errorf("Allows %q is not one short line without a final period", info.Allows)
			}
			if info.Detail == "" {
				t.Fatal("empty Detail")
			}
			if !strings.HasSuffix(info.Detail, ".") || strings.ContainsAny(info.Detail, "\n\t") || strings.Contains(info.Detail, "  ") {
				t.Errorf("Detail is not plain sentences ending with a period: %q", info.Detail)
			}
			if n := strings.Count(info.Detail, ". ") + 1; n < 2 || n > 4 {
				t.Errorf("Detail has %d sentences, want 2 to 4: %q", n, info.Detail)
			}
		})
	}
}

// TestCapsRiskRatings checks the ratings fixed by grsecurity's analysis: its
// 19 root-equivalent capabilities, and the three it calls "very likely"
// root-equivalent, which capshim rates high.
func TestCapsRiskRatings(t *testing.T) {
	rootEquivalent := []string{
		"SYS_ADMIN", "SYS_TTY_CONFIG", "MKNOD", "SYS_PTRACE", "SYS_RAWIO", "SYS_MODULE",
		"SETFCAP", "FSETID", "SETGID", "SETUID", "DAC_OVERRIDE", "SETPCAP", "IPC_OWNER",
		"CHOWN", "SYS_CHROOT", "DAC_READ_SEARCH", "SYS_BOOT", "AUDIT_CONTROL", "FOWNER",
	}
	if len(rootEquivalent) != 19 {
		t.Fatalf("test lists %d root-equivalent capabilities, want 19", len(rootEquivalent))
	}
	tests := []struct {
		name       string
		caps       []string
		risk       string
		detailHint string
	}{
		{name: "grsecurity root-equivalent", caps: rootEquivalent, risk: riskRootEquivalent},
		{name: "grsecurity very likely", caps: []string{"KILL", "NET_ADMIN", "NET_RAW"}, risk: riskHigh, detailHint: "very likely"},
		{name: "bpf", caps: []string{"BPF"}, risk: riskRootEquivalent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range tt.caps {
				c, ok := capability.Lookup(name)
				if !ok {
					t.Fatalf("unknown capability %s", name)
				}
				if got := capInfos[c].Risk; got != tt.risk {
					t.Errorf("%s: risk %q, want %q", c, got, tt.risk)
				}
				if !strings.Contains(capInfos[c].Detail, tt.detailHint) {
					t.Errorf("%s: Detail does not say %q", c, tt.detailHint)
				}
			}
		})
	}
}

// TestCapsWrapText checks that capsWrapText keeps lines within the width
// and loses no words.
func TestCapsWrapText(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		width int
		want  string
	}{
		{name: "empty", text: "", width: 10, want: ""},
		{name: "fits", text: "one two", width: 10, want: "one two\n"},
		{name: "exact width", text: "aaaa bbbbb", width: 10, want: "aaaa bbbbb\n"},
		{name: "breaks", text: "aaaa bbbbb c", width: 10, want: "aaaa bbbbb\nc\n"},
		{name: "long word", text: "a bbbbbbbbbbbb c", width: 10, want: "a\nbbbbbbbbbbbb\nc\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := capsWrapText(tt.text, tt.width); got != tt.want {
				t.Errorf("capsWrapText(%q, %d) = %q, want %q", tt.text, tt.width, got, tt.want)
			}
		})
	}
}
