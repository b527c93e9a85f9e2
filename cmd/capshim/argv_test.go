package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/capshim/capshim/internal/clinames"
)

// The global flags that Docker 20.10, containerd's CRI plugin and ctr were
// seen passing to runc, with container ids and bundles of the same shape:
// the command lines capshim must read exactly as runc does.
const (
	dockerID     = "2c5efd6985239f1799b3467ec36ded8ccad657ae1dc3699b55bf63a454171091"
	dockerBundle = "/run/containerd/io.containerd.runtime.v2.task/moby/" + dockerID
	dockerGlobal = "--root /var/run/docker/runtime-runc/moby --log " + dockerBundle + "/log.json --log-format json"
	criID        = "7d3c0f4b5a6e"
	criBundle    = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + criID
	criGlobal    = "--root /run/containerd/runc/k8s.io --log " + criBundle + "/log.json --log-format json"
	ctrBundle    = "/var/lib/containerd/state/io.containerd.runtime.v2.task/cri-study-ctr/ctr-run-1"
	ctrGlobal    = "--root /run/containerd/runc/cri-study-ctr --log " + ctrBundle + "/log.json --log-format json"
)

func TestParseRuntimeArgs(t *testing.T) {
	tests := []struct {
		name string
		args string // split on blanks; argsList wins when set
		list []string

		wantArgv    []string // nil: the input
		command     string
		cmdAt       int
		log, format string
		root        string
		version     bool
		policy      string
		bundle      string
		configFile  string
		process     string
		caps        []capArg
		id          string
		wantErr     string // non-empty: the error must contain it
	}{
		// Docker 20.10 (containerd-shim-runc-v2 under dockerd).
		{
			name:    "docker create",
			args:    dockerGlobal + " create --bundle " + dockerBundle + " --pid-file " + dockerBundle + "/init.pid " + dockerID,
			command: "create", cmdAt: 6, log: dockerBundle + "/log.json", format: "json", root: "/var/run/docker/runtime-runc/moby",
			bundle: dockerBundle, id: dockerID,
		},
		{
			name:    "docker start",
			args:    dockerGlobal + " start " + dockerID,
			command: "start", cmdAt: 6, log: dockerBundle + "/log.json", format: "json", root: "/var/run/docker/runtime-runc/moby",
			id: dockerID,
		},
		{
			name:    "docker delete",
			args:    dockerGlobal + " delete " + dockerID,
			command: "delete", cmdAt: 6, log: dockerBundle + "/log.json", format: "json", root: "/var/run/docker/runtime-runc/moby",
			id: dockerID,
		},
		{
			name:    "docker delete --force",
			args:    dockerGlobal + " delete --force " + dockerID,
			command: "delete", cmdAt: 6, log: dockerBundle + "/log.json", format: "json", root: "/var/run/docker/runtime-runc/moby",
			id: dockerID,
		},
		{
			name:    "docker kill",
			args:    dockerGlobal + " kill " + dockerID + " 9",
			command: "kill", cmdAt: 6, log: dockerBundle + "/log.json", format: "json", root: "/var/run/docker/runtime-runc/moby",
		},
		{
			name:    "docker exec",
			args:    dockerGlobal + " exec --process /tmp/runc-process3636108912 --detach --pid-file " + dockerBundle + "/cc95a3bcc6f7.pid " + dockerID,
			command: "exec", cmdAt: 6, log: dockerBundle + "/log.json", format: "json", root: "/var/run/docker/runtime-runc/moby",
			process: "/tmp/runc-process3636108912", id: dockerID,
		},
		// containerd 1.6 (CRI and ctr).
		{
			name:    "containerd create",
			args:    criGlobal + " create --bundle " + criBundle + " --pid-file " + criBundle + "/init.pid " + criID,
			command: "create", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
			bundle: criBundle, id: criID,
		},
		{
			name:    "containerd ctr run create",
			args:    ctrGlobal + " create --bundle " + ctrBundle + " --pid-file " + ctrBundle + "/init.pid ctr-run-1",
			command: "create", cmdAt: 6, log: ctrBundle + "/log.json", format: "json", root: "/run/containerd/runc/cri-study-ctr",
			bundle: ctrBundle, id: "ctr-run-1",
		},
		{
			name:    "containerd start",
			args:    criGlobal + " start " + criID,
			command: "start", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
			id: criID,
		},
		{
			name:    "containerd delete --force",
			args:    criGlobal + " delete --force " + criID,
			command: "delete", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
			id: criID,
		},
		{
			name:    "containerd kill --all",
			args:    criGlobal + " kill --all " + criID + " 9",
			command: "kill", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
		},
		{
			name:    "containerd kill 15",
			args:    criGlobal + " kill " + criID + " 15",
			command: "kill", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
		},
		{
			name:    "containerd exec",
			args:    criGlobal + " exec --process /tmp/runc-process123 --detach --pid-file " + criBundle + "/abc.pid " + criID,
			command: "exec", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
			process: "/tmp/runc-process123", id: criID,
		},
		{
			name:    "containerd exec with a tty",
			args:    criGlobal + " exec --process /tmp/p.json --console-socket /tmp/pty.sock --detach --pid-file /tmp/x.pid " + criID,
			command: "exec", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
			process: "/tmp/p.json", id: criID,
		},
		{
			name:    "containerd ps",
			args:    criGlobal + " ps --format json " + criID,
			command: "ps", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
		},
		{
			name:    "containerd pause",
			args:    criGlobal + " pause " + criID,
			command: "pause", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
		},
		{
			name:    "containerd resume",
			args:    criGlobal + " resume " + criID,
			command: "resume", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
		},
		{
			name:    "containerd update reads stdin",
			args:    criGlobal + " update --resources - " + criID,
			command: "update", cmdAt: 6, log: criBundle + "/log.json", format: "json", root: "/run/containerd/runc/k8s.io",
		},
		// Podman / conmon.
		{
			name:    "podman conmon create",
			args:    "--root /run/runc --log /var/lib/containers/b/userdata/oci-log --log-format json --systemd-cgroup create --bundle /var/lib/containers/b/userdata --pid-file /run/b/pidfile --console-socket /tmp/conmon.sock pod1",
			command: "create", cmdAt: 7, log: "/var/lib/containers/b/userdata/oci-log", format: "json", root: "/run/runc",
			bundle: "/var/lib/containers/b/userdata", id: "pod1",
		},
		// Bundle forms.
		{name: "bundle long", args: "create --bundle /b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle long equals", args: "create --bundle=/b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle short", args: "create -b /b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle short equals", args: "create -b=/b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle single-dash long", args: "create -bundle /b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle single-dash long equals", args: "create -bundle=/b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle double-dash short", args: "create --b /b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle relative", args: "create -b bundles/x id", command: "create", bundle: "bundles/x", id: "id"},
		{name: "bundle with equals in value", args: "create --bundle=/b=c id", command: "create", bundle: "/b=c", id: "id"},
		{name: "bundle empty value", args: "create --bundle= id", command: "create", bundle: "", id: "id"},
		{name: "no bundle: cwd", args: "create id", command: "create", id: "id"},
		{name: "last bundle wins", args: "create --bundle /a -b /b id", command: "create", bundle: "/b", id: "id"},
		{name: "bundle value that looks like a flag", args: "create --bundle --pid-file id", command: "create", bundle: "--pid-file", id: "id"},
		{name: "crun config", args: "create --config other.json --bundle /b id", command: "create", bundle: "/b", configFile: "other.json", id: "id"},
		{name: "crun config short", args: "create -f=/x.json id", command: "create", configFile: "/x.json", id: "id"},
		{
			name: "flags after the id (runc reorders them)", args: "create id --bundle /b --pid-file /p --no-pivot",
			command: "create", bundle: "/b", id: "id",
		},
		{
			name: "flags on both sides of the id", args: "create --pid-file /p id -b /b",
			command: "create", bundle: "/b", id: "id",
		},
		{name: "boolean create flags", args: "create --no-pivot --no-new-keyring=true --preserve-fds 2 -b /b id", command: "create", bundle: "/b", id: "id"},
		{name: "run", args: "run -d --bundle /b --keep id", command: "run", bundle: "/b", id: "id"},
		{name: "restore", args: "restore --image-path /img --work-path /w --tcp-established -b /b id", command: "restore", bundle: "/b", id: "id"},
		// "--".
		{name: "terminator before the id", args: "create --bundle /b -- id", command: "create", bundle: "/b", id: "id"},
		{name: "terminator then a dash id", args: "create -b /b -- -id", command: "create", bundle: "/b", id: "-id"},
		{name: "terminator ends create flags", args: "create -- id --bundle /b", command: "create", wantErr: "expected one container id, got 3 operands (id --bundle /b)"},
		{
			name: "terminator after the global flags", args: "--root /r -- create --bundle /b id",
			root: "/r", command: "create", cmdAt: 3, bundle: "/b", id: "id",
		},
		{name: "terminator as a flag value", args: "create --pid-file -- id", command: "create", id: "id"},
		{name: "exec terminator", args: "exec --process /p -- id", command: "exec", process: "/p", id: "id"},
		// Container ids that are command words.
		{name: "container named create", args: "--root /r create --bundle /b create", root: "/r", command: "create", cmdAt: 2, bundle: "/b", id: "create"},
		{name: "container named rewrite", args: "--root /r create -b /b rewrite", root: "/r", command: "create", cmdAt: 2, bundle: "/b", id: "rewrite"},
		{name: "start a container named rewrite", args: "start rewrite", command: "start", id: "rewrite"},
		{name: "exec in a container named exec", args: "exec -p /p exec", command: "exec", process: "/p", id: "exec"},
		// capshim's own flag.
		{
			name: "capshim-config equals", args: "--capshim-config=/etc/capshim/web.toml --root /r create -b /b id",
			wantArgv: strings.Fields("--root /r create -b /b id"),
			policy:   "/etc/capshim/web.toml", root: "/r", command: "create", cmdAt: 2, bundle: "/b", id: "id",
		},
		{
			name: "capshim-config separate", args: "--root /r --capshim-config /etc/capshim/web.toml --log /l create -b /b id",
			wantArgv: strings.Fields("--root /r --log /l create -b /b id"),
			policy:   "/etc/capshim/web.toml", root: "/r", log: "/l", command: "create", cmdAt: 4, bundle: "/b", id: "id",
		},
		{
			name: "capshim-config single dash", args: "-capshim-config /x.toml start id",
			wantArgv: []string{"start", "id"}, policy: "/x.toml", command: "start", id: "id",
		},
		{
			name: "capshim-config shifts cap positions", args: "--capshim-config /x.toml --root /r exec --cap CAP_CHOWN id sh",
			wantArgv: strings.Fields("--root /r exec --cap CAP_CHOWN id sh"),
			policy:   "/x.toml", root: "/r", command: "exec", cmdAt: 2, id: "id",
			caps: []capArg{{at: 3, n: 2, value: "CAP_CHOWN"}},
		},
		{name: "capshim-config is not a create flag", args: "create --capshim-config /x.toml id", wantErr: `create: unknown flag "--capshim-config"`},
		// Global flags.
		{name: "global equals forms", args: "--root=/r --log=/l --log-format=text state id", root: "/r", log: "/l", format: "text", command: "state", cmdAt: 3},
		{name: "boolean global does not take a value", args: "--debug create -b /b id", command: "create", cmdAt: 1, bundle: "/b", id: "id"},
		{name: "systemd-cgroup and rootless", args: "--systemd-cgroup --rootless auto --criu /usr/sbin/criu list", command: "list", cmdAt: 5},
		{name: "single-dash globals", args: "-root /r -log /l list", root: "/r", log: "/l", command: "list", cmdAt: 4},
		{name: "global value that looks like a flag", args: "--root --debug list", root: "--debug", command: "list", cmdAt: 2},
		{name: "crun globals", args: "--cgroup-manager systemd --log-level debug list", command: "list", cmdAt: 4},
		{name: "no command", args: "--root /r", root: "/r", cmdAt: -1},
		{name: "empty", list: []string{}, cmdAt: -1},
		// Version.
		{name: "version long", args: "--version", version: true, cmdAt: -1},
		{name: "version short", args: "-v", version: true, cmdAt: -1},
		{name: "version true", args: "--version=true", version: true, cmdAt: -1},
		{name: "version false", args: "--version=false", cmdAt: -1},
		{name: "version T (Go flag syntax)", args: "--version=T", version: true, cmdAt: -1},
		{name: "version 0", args: "-v=0", cmdAt: -1},
		{name: "version bad value", args: "--version=yes", cmdAt: -1},
		{name: "version with other globals", args: "--root /r --version", root: "/r", version: true, cmdAt: -1},
		{name: "version is not a create flag", args: "create --version -b /b id", wantErr: `create: unknown flag "--version"`},
		// exec.
		{name: "exec process long", args: "exec --process /p.json id", command: "exec", process: "/p.json", id: "id"},
		{name: "exec process equals", args: "exec --process=/p.json id", command: "exec", process: "/p.json", id: "id"},
		{name: "exec process short", args: "exec -p /p.json id", command: "exec", process: "/p.json", id: "id"},
		{name: "exec process short equals", args: "exec -p=/p.json id", command: "exec", process: "/p.json", id: "id"},
		{
			name: "exec caps in every form", args: "exec --cap CAP_CHOWN -c CAP_KILL --cap=CAP_SETUID -c=CAP_NET_RAW -t id sh",
			command: "exec", id: "id",
			caps: []capArg{{at: 1, n: 2, value: "CAP_CHOWN"}, {at: 3, n: 2, value: "CAP_KILL"}, {at: 5, n: 1, value: "CAP_SETUID"}, {at: 6, n: 1, value: "CAP_NET_RAW"}},
		},
		{
			name: "exec stops at its first operand", args: "exec --tty id sh -c x --cap CAP_SYS_ADMIN",
			command: "exec", id: "id",
		},
		{
			name: "exec -c after the id is the command's", args: "exec -c CAP_KILL id sh -c 'x'",
			command: "exec", id: "id", caps: []capArg{{at: 1, n: 2, value: "CAP_KILL"}},
		},
		{
			name: "exec with globals: cap positions in argv", args: "--root /r --log /l exec -e A=1 --cap CAP_CHOWN -u 0:0 id true",
			root: "/r", log: "/l", command: "exec", cmdAt: 4, id: "id", caps: []capArg{{at: 7, n: 2, value: "CAP_CHOWN"}},
		},
		{name: "exec cap value that looks like a flag", args: "exec --cap --tty id", command: "exec", id: "id", caps: []capArg{{at: 1, n: 2, value: "--tty"}}},
		{name: "exec process and cap", args: "exec -p /p --cap CAP_BPF id", command: "exec", process: "/p", id: "id", caps: []capArg{{at: 3, n: 2, value: "CAP_BPF"}}},
		// Refusals.
		{name: "unknown global flag", args: "--bogus create -b /b id", wantErr: `unknown global flag "--bogus"`},
		{name: "unknown global flag with value", args: "--bogus=1 list", wantErr: `unknown global flag "--bogus=1"`},
		{name: "unknown create flag", args: "create --no-such -b /b id", wantErr: `create: unknown flag "--no-such"`},
		{name: "unknown create flag after the id", args: "create id --privileged", wantErr: `create: unknown flag "--privileged"`},
		{name: "unknown exec flag", args: "exec --privileged id sh", wantErr: `exec: unknown flag "--privileged"`},
		{name: "exec flag in create", args: "create --process /p id", wantErr: `create: unknown flag "--process"`},
		{name: "create flag in exec", args: "exec --bundle /b id", wantErr: `exec: unknown flag "--bundle"`},
		{name: "unknown flags of other commands pass", args: "delete --whatever id", command: "delete", id: "id"},
		// Missing values.
		{name: "global value missing", args: "--root", wantErr: `global flag "--root" needs a value`},
		{name: "log value missing", args: "--root /r --log", wantErr: `global flag "--log" needs a value`},
		{name: "bundle value missing", args: "create id --bundle", wantErr: `create: flag "--bundle" needs a value`},
		{name: "process value missing", args: "exec --process", wantErr: `exec: flag "--process" needs a value`},
		{name: "cap value missing", args: "exec id --cap", command: "exec", id: "id"}, // after the id: the command's
		{name: "cap value missing before the id", args: "exec -c", wantErr: `exec: flag "-c" needs a value`},
		{name: "capshim-config value missing", args: "--capshim-config", wantErr: `global flag "--capshim-config" needs a value`},
		{name: "create without id", args: "create --bundle /b", wantErr: "create: no container id given"},
		{name: "create with two ids", args: "create a b", wantErr: "create: expected one container id, got 2 operands (a b)"},
		{name: "exec without id", args: "exec -p /p", wantErr: "exec: no container id given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.list
			if args == nil {
				args = strings.Fields(tt.args)
			}
			in := slices.Clone(args)
			ra, err := parseRuntimeArgs(args)
			if !slices.Equal(args, in) {
				t.Errorf("parseRuntimeArgs changed its input: %q", args)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("parseRuntimeArgs(%q) succeeded: %+v, want error %q", args, ra, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRuntimeArgs(%q): %v", args, err)
			}
			wantArgv := tt.wantArgv
			if wantArgv == nil {
				wantArgv = in
			}
			if !slices.Equal(ra.argv, wantArgv) {
				t.Errorf("argv = %q\nwant   %q", ra.argv, wantArgv)
			}
			got := *ra
			got.argv = nil
			want := runtimeArgs{
				command: tt.command, cmdAt: tt.cmdAt, log: tt.log, logFormat: tt.format, root: tt.root,
				version: tt.version, policy: tt.policy, bundle: tt.bundle, configFile: tt.configFile,
				process: tt.process, caps: tt.caps, id: tt.id,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseRuntimeArgs(%q)\n got %+v\nwant %+v", args, got, want)
			}
			if ra.cmdAt >= 0 && ra.argv[ra.cmdAt] != ra.command {
				t.Errorf("argv[cmdAt=%d] = %q, want the command %q", ra.cmdAt, ra.argv[ra.cmdAt], ra.command)
			}
			for _, c := range ra.caps {
				flag := ra.argv[c.at]
				if !strings.HasPrefix(flag, "-c") && !strings.HasPrefix(flag, "--c") {
					t.Errorf("cap %+v: argv[%d] = %q is not a --cap flag", c, c.at, flag)
				}
				if last := ra.argv[c.at+c.n-1]; !strings.HasSuffix(last, c.value) {
					t.Errorf("cap %+v: argv[%d:%d] = %q does not end with its value", c, c.at, c.at+c.n, ra.argv[c.at:c.at+c.n])
				}
			}
		})
	}
}

func TestDispatchIsCLI(t *testing.T) {
	tests := []struct {
		name string
		args []string // os.Args, argv[0] included
		cli  bool
	}{
		{name: "no arguments", args: []string{"capshim"}, cli: true},
		{name: "empty argv", args: []string{}, cli: true},
		{name: "rewrite", args: []string{"capshim", "rewrite", "x"}, cli: true},
		{name: "check", args: []string{"capshim", "check", "config.json"}, cli: true},
		{name: "caps", args: []string{"capshim", "caps"}, cli: true},
		{name: "help", args: []string{"capshim", "help"}, cli: true},
		{name: "h", args: []string{"capshim", "h"}, cli: true},
		{name: "--help", args: []string{"capshim", "--help"}, cli: true},
		{name: "globals without a command", args: []string{"capshim", "--root", "/r"}, cli: true},
		{name: "container named rewrite", args: []string{"capshim", "--root", "r", "create", "rewrite"}, cli: false},
		{name: "create", args: []string{"capshim", "create", "--bundle", "/b", "id"}, cli: false},
		{name: "runtime command after globals", args: strings.Fields("capshim " + dockerGlobal + " start " + dockerID), cli: false},
		{name: "state", args: []string{"capshim", "state", "id"}, cli: false},
		{name: "version goes to the runtime", args: []string{"capshim", "--version"}, cli: false},
		{name: "-v goes to the runtime", args: []string{"capshim", "-v"}, cli: false},
		{name: "unknown global goes to the runtime", args: []string{"capshim", "--bogus", "create", "x"}, cli: false},
		{name: "global value named like a command", args: []string{"capshim", "--root", "rewrite", "create", "x"}, cli: false},
		{name: "capshim command after a global", args: []string{"capshim", "--debug", "caps"}, cli: true},
		{name: "called as runc", args: []string{"/usr/local/bin/runc", "rewrite", "x"}, cli: true},
		{name: "uninstall", args: []string{"capshim", "uninstall", "docker"}, cli: true},
		{name: "policy", args: []string{"capshim", "policy", "check"}, cli: true},
		{name: "help of a command after its operand", args: []string{"capshim", "install", "docker", "--help"}, cli: true},
		{name: "typo of a capshim command", args: []string{"capshim", "uninstal"}, cli: true},
		{name: "another typo", args: []string{"capshim", "versoin"}, cli: true},
		{name: "unknown word after a runtime flag goes to the runtime", args: []string{"capshim", "--root", "/r", "frobnicate", "id"}, cli: false},
		{name: "unknown word after --log goes to the runtime", args: strings.Fields("capshim " + dockerGlobal + " newcommand " + dockerID), cli: false},
		{name: "crun's mounts", args: []string{"capshim", "mounts", "add", "id", "m.json"}, cli: false},
		{name: "runc's help", args: []string{"capshim", "help", "create"}, cli: true},
	}
	for _, word := range clinames.Runtime {
		tests = append(tests, struct {
			name string
			args []string
			cli  bool
		}{name: "runtime command " + word, args: []string{"capshim", word, "id"}, cli: false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isCLI(tt.args); got != tt.cli {
				t.Errorf("isCLI(%q) = %v, want %v", tt.args, got, tt.cli)
			}
		})
	}
}

func TestLifecycleID(t *testing.T) {
	tests := []struct {
		name, args, want string
	}{
		{name: "start", args: "--root /r start c1", want: "c1"},
		{name: "delete", args: "--root /r --log l delete c1", want: "c1"},
		{name: "delete force", args: "delete --force c1", want: "c1"},
		{name: "delete -f after", args: "delete c1 -f", want: "c1"},
		{name: "dashes", args: "delete -f -- -c1", want: "-c1"},
		{name: "none", args: "start", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra, err := parseRuntimeArgs(strings.Fields(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			if ra.id != tt.want {
				t.Fatalf("id %q, want %q", ra.id, tt.want)
			}
		})
	}
}
