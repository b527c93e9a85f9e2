//go:build integration

package integration

// capshim install containerd, checked the way containerd reads the result:
// for real configs (Debian's stock file, containerd config default, a GPU
// node's, files capshim refuses or repairs) a private containerd is
// started on the file before and after `capshim install containerd`, and
// `ctr plugins ls` and the CRI status (what crictl info prints) must show
// the CRI plugin ok with every runtime handler the node had plus capshim.
// How the daemon is given the files is in install_containerd_view_test.go.

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// containerdInstallCase is one config installed on.
type containerdInstallCase struct {
	name string
	in   string   // install/testdata/in file
	args []string // install flags after "containerd"
	// What containerd reads before and after install: the CRI plugin's
	// status in ctr plugins ls ("" not listed) and its default and
	// runtime handlers as containerdView.names writes them ("" without CRI).
	criBefore, before string
	criAfter, after   string
	note              string // part of install's output; "" none expected
	// enable: with the CRI plugin disabled, also start containerd on the
	// edited file with disabled_plugins emptied, and expect after then.
	enable string
}

// TestInstallContainerdKeepsCRI runs `capshim install containerd` on real
// configs and starts containerd 1.6 on the file before and after: the CRI
// plugin must be ok afterwards (or as it was, when disabled), with every
// handler it had plus capshim, and the same default (or capshim with
// --set-default). A second install changes nothing; the backup is the
// original file.
func TestInstallContainerdKeepsCRI(t *testing.T) {
	requireContainerd(t)
	t.Run("testdata holds Debian's conffile", func(t *testing.T) { checkDebianStockConfig(t) })
	cases := []containerdInstallCase{
		{name: "Debian stock config", in: "config-debian-1.6.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
		{name: "Debian stock config, --set-default", in: "config-debian-1.6.toml", args: []string{"--set-default"},
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "capshim: capshim runc"},
		{name: "containerd config default", in: "config-default-1.6.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
		{name: "another default runtime, no runc", in: "config-v2-nvidia.toml",
			criBefore: "ok", before: "nvidia: nvidia", criAfter: "ok", after: "nvidia: capshim nvidia",
			note: "the runtime nvidia sets SystemdCgroup = true"},
		{name: "deprecated default_runtime", in: "config-v2-legacy-default.toml",
			criBefore: "ok", before: "default: default runc", criAfter: "ok", after: "default: capshim default runc"},
		{name: "runc hidden by an older capshim", in: "config-capshim-old.toml",
			criBefore: "error", criAfter: "ok", after: "runc: capshim runc",
			note: "capshim's change repairs that"},
		{name: "no version, CRI disabled", in: "config-dockerio.toml",
			note:   "WARNING: the CRI plugin is disabled",
			enable: "runc: capshim runc"},
		{name: "runc on the runtime v1 shim, systemd_cgroup", in: "config-v2-runtime-v1.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkContainerdInstall(t, "", tc) })
	}
	t.Run("--set-default over default_runtime is refused", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "config.toml")
		writeFile(t, file, readInstallInput(t, "config-v2-legacy-default.toml"), 0o644)
		checkInstallRefused(t, file, `containerd 1.6/1.7 would keep the runtime "default" as its default`, "--set-default")
	})
	t.Run("--set-default over systemd_cgroup is refused", func(t *testing.T) {
		config := readInstallInput(t, "config-v2-runtime-v1.toml")
		file := filepath.Join(t.TempDir(), "config.toml")
		writeFile(t, file, config, 0o644)
		checkInstallRefused(t, file, `would not load the CRI plugin: systemd_cgroup = true works only when the default runtime has runtime_type io.containerd.runtime.v1.linux`, "--set-default")
		// What the change would have done, by hand: containerd refuses
		// the CRI plugin.
		byHand := strings.Replace(config, `default_runtime_name = "runc"`, `default_runtime_name = "capshim"`, 1) +
			"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.capshim]\n  runtime_type = \"io.containerd.runc.v2\"\n"
		d := newConfigDaemon(t, "")
		writeFile(t, d.cfgPath, privateConfig(t, d, byHand, false), 0o644)
		v := readContainerdView(t, d)
		if got := v.plugins["io.containerd.grpc.v1 cri"]; got != "error" || !strings.Contains(criPluginFailure(d), "`systemd_cgroup` only works for runtime io.containerd.runtime.v1.linux") {
			t.Errorf("with capshim as the default by hand, the CRI plugin is %q:\n%s", got, criPluginFailure(d))
		}
	})
}

// checkContainerdInstall checks one case with the containerd binary bin ("" = 1.6 on
// PATH).
func checkContainerdInstall(t *testing.T, bin string, tc containerdInstallCase) {
	t.Helper()
	two := bin != ""
	config := readInstallInput(t, tc.in)
	before := newConfigDaemon(t, bin)
	writeFile(t, before.cfgPath, privateConfig(t, before, config, two), 0o644)
	vb := readContainerdView(t, before)
	before.stop(t)
	if got := vb.plugins["io.containerd.grpc.v1 cri"]; got != tc.criBefore || vb.names() != tc.before {
		t.Fatalf("before install: CRI plugin %q with %q, want %q with %q (the input is not what the case says)\n%s", got, vb.names(), tc.criBefore, tc.before, criPluginFailure(before))
	}

	d := newConfigDaemon(t, bin)
	file := filepath.Join(d.dir, "installed.toml")
	orig := localizeConfig(config, d.dir)
	writeFile(t, file, orig, 0o644)
	// containerd hands capshim no policy: it would read the host's
	// /etc/capshim/shim.toml, so install writes none here.
	args := append([]string{"containerd", "--file", file, "--no-policy"}, tc.args...)
	out := installFresh(t, file, "", args...)
	if tc.note != "" && !strings.Contains(out, tc.note) {
		t.Errorf("install does not say %q:\n%s", tc.note, out)
	}
	if tc.note == "" && strings.Contains("\n"+out, "\nWARNING") {
		t.Errorf("install warns:\n%s", out)
	}
	installAgain(t, file, args...)
	if b := readFile(t, file+".capshim-backup"); string(b) != orig {
		t.Errorf("the backup is not the original file:\n%s", b)
	}
	edited := string(readFile(t, file))
	writeFile(t, d.cfgPath, privateConfig(t, d, edited, two), 0o644)
	va := readContainerdView(t, d)
	if got := va.plugins["io.containerd.grpc.v1 cri"]; got != tc.criAfter || va.names() != tc.after {
		t.Errorf("after install: CRI plugin %q with %q, want %q with %q\n%s\nconfig:\n%s", got, va.names(), tc.criAfter, tc.after, criPluginFailure(d), edited)
	}
	if two {
		if got := va.plugins["io.containerd.cri.v1 runtime"]; got != tc.criAfter {
			t.Errorf("after install: CRI runtime plugin %q, want %q", got, tc.criAfter)
		}
	}
	// Nothing else changed its state in ctr plugins ls.
	for id, st := range vb.plugins {
		if id != "io.containerd.grpc.v1 cri" && id != "io.containerd.cri.v1 runtime" && va.plugins[id] != st {
			t.Errorf("plugin %s: %s before install, %q after", id, st, va.plugins[id])
		}
	}
	checkInstalledHandlers(t, vb, va)

	if tc.enable != "" {
		// The CRI plugin turned on by hand later: the edited file's
		// runtimes are what containerd then uses.
		on := strings.Replace(edited, `disabled_plugins = ["io.containerd.grpc.v1.cri"]`, "disabled_plugins = []", 1)
		if on == edited {
			t.Fatalf("the edited file does not disable the CRI plugin by its full name:\n%s", edited)
		}
		e := newConfigDaemon(t, bin)
		writeFile(t, e.cfgPath, privateConfig(t, e, strings.ReplaceAll(on, d.dir, e.dir), two), 0o644)
		ve := readContainerdView(t, e)
		if got := ve.plugins["io.containerd.grpc.v1 cri"]; got != "ok" || ve.names() != tc.enable {
			t.Errorf("edited file with the CRI plugin on: %q with %q, want ok with %q\n%s", got, ve.names(), tc.enable, criPluginFailure(e))
		}
		checkInstalledHandlers(t, vb, ve)
	}
}

// checkInstalledHandlers checks the handlers after install: each one of before
// still there with its runtime_type, capshim the runc shim with capshim as
// its binary.
func checkInstalledHandlers(t *testing.T, before, after containerdView) {
	t.Helper()
	if after.runtimes == nil {
		return
	}
	for name, r := range before.runtimes {
		a, ok := after.runtimes[name]
		if !ok {
			t.Errorf("install hid the runtime handler %q", name)
			continue
		}
		if a.Type != r.Type {
			t.Errorf("runtime %q: runtime_type %q became %q", name, r.Type, a.Type)
		}
	}
	if _, had := before.runtimes["runc"]; !had {
		if r, ok := after.runtimes["runc"]; ok && r.Type != "io.containerd.runc.v2" {
			t.Errorf("runtime runc, written by install, has runtime_type %q", r.Type)
		}
	}
	c := after.runtimes["capshim"]
	if c.Type != "io.containerd.runc.v2" || c.Options["BinaryName"] != capshimBin {
		t.Errorf("runtime capshim = %+v, want the runc v2 shim with BinaryName %s", c, capshimBin)
	}
}

// checkInstallRefused runs an install that must be refused: exit 2 with want in
// its error, the file and its directory as they were.
func checkInstallRefused(t *testing.T, file, want string, flags ...string) {
	t.Helper()
	old := readFile(t, file)
	entries, _ := os.ReadDir(filepath.Dir(file))
	args := append([]string{"install", "containerd", "--file", file, "--no-policy"}, flags...)
	r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, capshimBin, args...)
	if r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("want exit 2 saying %q:\n%v", want, r)
	}
	if got := readFile(t, file); string(got) != string(old) {
		t.Errorf("refused install changed %s", file)
	}
	// The policy is written before the engine's file is edited; nothing
	// else may appear.
	after, _ := os.ReadDir(filepath.Dir(file))
	for _, e := range after {
		if e.Name() != "shim.toml" && !containsEntry(entries, e.Name()) {
			t.Errorf("refused install left %s", e.Name())
		}
	}
}

func containsEntry(entries []os.DirEntry, name string) bool {
	for _, e := range entries {
		if e.Name() == name {
			return true
		}
	}
	return false
}

// checkDebianStockConfig checks that install/testdata/in/config-debian-1.6.toml
// is the file Debian's containerd package installs: when this host's
// /etc/containerd/config.toml is unmodified (its MD5 is the one dpkg
// recorded for the conffile), both must be equal.
func checkDebianStockConfig(t *testing.T) {
	const conffile = "/etc/containerd/config.toml"
	out, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "containerd").Output()
	if err != nil {
		t.Skipf("dpkg-query: %v", err)
	}
	var sum string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == conffile {
			sum = f[1]
		}
	}
	host, err := os.ReadFile(conffile)
	if err != nil || sum == "" {
		t.Skipf("no %s of the containerd package here (%v)", conffile, err)
	}
	if h := md5.Sum(host); hex.EncodeToString(h[:]) != sum {
		t.Skipf("%s was modified on this host; cannot compare", conffile)
	}
	if got := readInstallInput(t, "config-debian-1.6.toml"); got != string(host) {
		t.Errorf("config-debian-1.6.toml differs from the package's %s:\n%s", conffile, host)
	}
}

// TestInstallContainerd2KeepsCRI does the same with containerd 2.x, whose
// CRI plugin keeps its runc whatever the file lists, on version 3 configs
// and on Debian's version 2 one. No Debian release ships containerd 2.x:
// CAPSHIM_CONTAINERD2 names its binary (built, for example, with
// CGO_ENABLED=0 GOBIN=DIR go install -tags "no_btrfs no_devmapper no_zfs"
// github.com/containerd/containerd/v2/cmd/containerd@v2.2.7); without it
// the test is skipped. containerd 2.x creates /run/containerd whatever its
// state directory is; the test removes it again when it was not there and
// is empty.
// containerd2Version matches what a containerd 2.x says to --version:
// "containerd github.com/containerd/containerd/v2 v2.2.7 ..." when built
// from the module (the version with its "v"), " 2.x.y" in release builds.
var containerd2Version = regexp.MustCompile(`(?m)^containerd \S+ v?2\.`)

func TestInstallContainerd2KeepsCRI(t *testing.T) {
	bin := os.Getenv("CAPSHIM_CONTAINERD2")
	if bin == "" {
		t.Skip("CAPSHIM_CONTAINERD2 does not name a containerd 2.x binary")
	}
	requireContainerd(t)
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !containerd2Version.Match(out) {
		t.Fatalf("%s --version: %q %v, want containerd 2.x", bin, out, err)
	}
	if _, err := os.Lstat("/run/containerd"); err != nil {
		t.Cleanup(func() { _ = syscall.Rmdir("/run/containerd") }) // only when empty
	}
	cases := []containerdInstallCase{
		{name: "version 3 without runtimes", in: "config-v3-minimal.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
		{name: "version 3, another default", in: "config-v3-nvidia.toml",
			criBefore: "ok", before: "nvidia: nvidia runc", criAfter: "ok", after: "nvidia: capshim nvidia runc",
			note: "the runtime nvidia sets SystemdCgroup = true"},
		{name: "containerd config default 2.2", in: "config-default-2.2.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc", note: "the file imports"},
		{name: "Debian stock config (version 2)", in: "config-debian-1.6.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkContainerdInstall(t, bin, tc) })
	}
}
