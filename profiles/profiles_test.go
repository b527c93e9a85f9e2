package profiles

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/policy"
)

const imageKey = "io.kubernetes.cri.image-name"

// headerKeys are the "# key: value" lines a profile's comments must have:
// its own header, then learn show's.
var headerKeys = []string{"capshim profile", "image", "packages", "verified", "used", "used but not needed"}

// header reads those lines from the comments above the rule.
func header(data string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
		if _, seen := out[k]; slices.Contains(headerKeys, k) && !seen {
			out[k] = v
		}
	}
	return out
}

var (
	datePrefix  = regexp.MustCompile(`^\d{4}-\d\d-\d\d\b`)
	packageItem = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]* [0-9][A-Za-z0-9.+~:-]*$`)
	verifiedBy  = regexp.MustCompile(`(?m)^# verified by \d+ runs on (\d{4}-\d\d-\d\d): the workload passes with exactly keep and fails without any one of it$`)
)

// TestShippedProfiles: every shipped profile is a policy rule that keeps a
// verified set and matches its image by the CRI image name, says which
// image, packages and day it was verified with, and has the form `capshim
// learn show` prints.
func TestShippedProfiles(t *testing.T) {
	names, err := fs.Glob(Files, "*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"nginx.toml", "postgres.toml", "redis.toml"}; !slices.Equal(names, want) {
		t.Fatalf("shipped profiles %v, want %v", names, want)
	}
	for _, file := range names {
		name := strings.TrimSuffix(file, ".toml")
		t.Run(name, func(t *testing.T) {
			raw, err := fs.ReadFile(Files, file)
			if err != nil {
				t.Fatal(err)
			}
			data := string(raw)
			h := header(data)
			for _, k := range headerKeys {
				if h[k] == "" {
					t.Errorf("no %q line in the comments", "# "+k+": ")
				}
			}
			image := "docker.io/capshim-test/" + name + ":1"
			if h["capshim profile"] != name {
				t.Errorf("header names profile %q, want %q", h["capshim profile"], name)
			}
			if !strings.HasPrefix(h["image"], image+",") {
				t.Errorf("header image %q, want %s", h["image"], image)
			}
			pkgs := strings.Split(h["packages"], ", ")
			for _, p := range pkgs {
				if !packageItem.MatchString(p) {
					t.Errorf("package %q is not NAME VERSION", p)
				}
			}
			if !slices.ContainsFunc(pkgs, func(p string) bool { return strings.HasPrefix(p, "libc6 ") }) {
				t.Errorf("packages %q do not say which libc6", h["packages"])
			}
			date := datePrefix.FindString(h["verified"])
			if date == "" {
				t.Errorf("header verified %q does not start with a date", h["verified"])
			}
			sm := verifiedBy.FindStringSubmatch(data)
			if sm == nil || sm[1] != date {
				t.Errorf("no line saying it was verified on %s, as learn show says it", date)
			}

			// A policy made of it parses, and the rule is what it says.
			pol, err := policy.Parse([]byte("mode = \"enforce\"\n\n"+data), file)
			if err != nil {
				t.Fatal(err)
			}
			if len(pol.Rules) != 1 {
				t.Fatalf("%d rules, want 1", len(pol.Rules))
			}
			r := pol.Rules[0]
			if r.Name != name || !r.HasKeep || r.Keep == 0 || r.Capabilities != 0 || r.Grant != 0 || r.Learn || r.LearnMode {
				t.Fatalf("rule %+v: want name %s and a keep, nothing else", r, name)
			}
			glob := "docker.io/capshim-test/" + name + "[:@]*"
			if !slices.Equal(r.Annotations, []policy.Match{{Key: imageKey, Glob: glob}}) {
				t.Fatalf("rule matches %+v, want the CRI image name alone, %s", r.Annotations, glob)
			}
			for ref, want := range map[string]bool{
				image: true,
				"docker.io/capshim-test/" + name + "@sha256:0123": true,
				"docker.io/capshim-test/" + name + "-exporter:1":  false,
				"docker.io/library/" + name + ":1":                false,
			} {
				if got := r.Matches(map[string]string{imageKey: ref}); got != want {
					t.Errorf("matches image %s: %v, want %v", ref, got, want)
				}
			}
			// The keep set was used, and what was used but not needed
			// is not kept.
			for _, c := range r.Keep.Names() {
				if !strings.Contains(h["used"], c+" (") {
					t.Errorf("keeps %s, which its used line does not list: %q", c, h["used"])
				}
			}
			for _, c := range strings.Split(h["used but not needed"], ", ") {
				if c != "none" && strings.Contains(r.Keep.String(), c) {
					t.Errorf("keeps %s, which it says is not needed", c)
				}
			}

			// The same form as learn show: its comments, then the rule
			// learn show emits for a profile with this verified set
			// and match.
			if !strings.Contains(data, "\n# learned by capshim from ") {
				t.Errorf("no line saying what it was learned from")
			}
			p := &learn.Profile{Name: name, Match: map[string]string{imageKey: glob},
				Verified: &learn.Verification{Needed: r.Keep.Names(), From: r.Keep.Names()}}
			emitted := p.Rule()
			emitted = emitted[strings.Index(emitted, "[[rule]]"):]
			i := strings.Index(data, "[[rule]]")
			if i < 0 || data[i:] != emitted {
				t.Errorf("the rule is not in learn show's form; learn show would print\n%s", emitted)
			}
		})
	}
}
