package main

import (
	"fmt"
	"strconv"
	"strings"
)

// runtimeArgs is a runc command line as capshim understands it. The parse
// follows runc (urfave/cli v1 over Go's flag package): "-f" and "--f" are
// the same flag, a value flag takes "=v" or the next argument whatever it
// looks like, a boolean flag never takes the next argument, global flags
// stop at the first non-flag word (the command), "--" ends the flags.
type runtimeArgs struct {
	// argv is the command line to hand to the real runtime (without
	// argv[0] and without capshim's own global flags).
	argv []string
	// command is the runtime command word ("create", "state", ...), "" if
	// there is none; cmdAt is its index in argv.
	command string
	cmdAt   int

	log       string // --log
	logFormat string // --log-format
	root      string // --root
	version   bool   // --version / -v given before any command
	policy    string // --capshim-config (capshim's own, removed from argv)

	// Set for create, run and restore.
	bundle     string // --bundle / -b ("" means the current directory)
	configFile string // crun's --config / -f ("" means config.json)
	// Set for exec.
	process string   // --process / -p
	caps    []capArg // --cap / -c
	// id is the container id (the first operand of the command).
	id string
}

// capArg is one --cap flag of exec: argv[at:at+n] holds it.
type capArg struct {
	at, n int
	value string
}

// flagKind says whether a flag takes a value.
type flagKind uint8

const (
	boolFlag flagKind = iota + 1
	valueFlag
)

// globalFlag classifies runc's and crun's global flags.
func globalFlag(name string) flagKind {
	switch name {
	case "debug", "systemd-cgroup", "help", "h", "version", "v":
		return boolFlag
	case "log", "log-format", "root", "criu", "rootless",
		"cgroup-manager", "log-level", // crun
		"capshim-config":
		return valueFlag
	}
	return 0
}

// commandFlag classifies the flags of the commands capshim must read. It
// knows runc's (1.1 to 1.3) and crun's flags; ok is false for a flag it
// does not know.
func commandFlag(cmd, name string) (kind flagKind, ok bool) {
	switch cmd {
	case "create", "run":
		switch name {
		case "bundle", "b", "console-socket", "pid-file", "preserve-fds", "pidfd-socket", "config", "f":
			return valueFlag, true
		case "no-pivot", "no-new-keyring", "detach", "d", "keep", "no-subreaper", "help", "h":
			return boolFlag, true
		}
	case "restore":
		switch name {
		case "bundle", "b", "console-socket", "pid-file", "image-path", "work-path",
			"manage-cgroups-mode", "empty-ns", "lsm-profile", "lsm-mount-context", "parent-path":
			return valueFlag, true
		case "tcp-established", "ext-unix-sk", "shell-job", "file-locks", "detach", "d",
			"no-subreaper", "no-pivot", "auto-dedup", "lazy-pages", "help", "h":
			return boolFlag, true
		}
	case "exec":
		switch name {
		case "console-socket", "pidfd-socket", "cwd", "env", "e", "user", "u", "additional-gids", "g",
			"process", "p", "pid-file", "process-label", "apparmor", "cap", "c", "preserve-fds", "cgroup":
			return valueFlag, true
		case "tty", "t", "detach", "d", "no-new-privs", "ignore-paused", "help", "h":
			return boolFlag, true
		}
	}
	return 0, false
}

// reduces reports whether a command carries capabilities capshim reduces.
func reduces(cmd string) bool {
	switch cmd {
	case "create", "run", "restore", "exec":
		return true
	}
	return false
}

// splitFlag splits "-name", "--name" or "--name=value". ok is false for an
// argument that is not a flag ("x", "-", "--").
func splitFlag(arg string) (name, value string, hasValue, ok bool) {
	if len(arg) < 2 || arg[0] != '-' || arg == "--" {
		return "", "", false, false
	}
	name = arg[1:]
	if name[0] == '-' {
		name = name[1:]
	}
	if name == "" || name[0] == '-' || name[0] == '=' {
		return "", "", false, false
	}
	name, value, hasValue = strings.Cut(name, "=")
	return name, value, hasValue, true
}

// parseRuntimeArgs classifies args (os.Args[1:]).
func parseRuntimeArgs(args []string) (*runtimeArgs, error) {
	ra, err := parseGlobals(args)
	if err != nil {
		return nil, err
	}
	if reduces(ra.command) {
		if err := ra.parseCommand(); err != nil {
			return nil, fmt.Errorf("%s: %w", ra.command, err)
		}
	}
	if ra.command == "start" || ra.command == "delete" {
		ra.id = lifecycleID(ra.argv[ra.cmdAt+1:])
	}
	return ra, nil
}

// lifecycleID finds the container id of start and delete, whose only
// flags (delete's --force, -f) take no value: the first operand. It is ""
// when there is none; the runtime then reports the mistake itself.
func lifecycleID(args []string) string {
	for i, a := range args {
		if a == "--" {
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a
		}
	}
	return ""
}

// parseGlobals reads the global flags and finds the command word.
func parseGlobals(args []string) (*runtimeArgs, error) {
	ra := &runtimeArgs{cmdAt: -1, argv: make([]string, 0, len(args))}
	i := 0
	for ; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			ra.argv = append(ra.argv, arg)
			i++
			break
		}
		name, value, hasValue, ok := splitFlag(arg)
		if !ok {
			break
		}
		start := i
		switch globalFlag(name) {
		case 0:
			return nil, fmt.Errorf("unknown global flag %q: capshim cannot tell which command follows it, so it refuses the call; if your runtime has this flag, report it to the capshim project", arg)
		case valueFlag:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("global flag %q needs a value", arg)
				}
				i++
				value = args[i]
			}
		case boolFlag:
			if name == "version" || name == "v" {
				// Go's flag package takes any strconv.ParseBool value.
				b, err := strconv.ParseBool(value)
				ra.version = !hasValue || err == nil && b
			}
		}
		switch name {
		case "log":
			ra.log = value
		case "log-format":
			ra.logFormat = value
		case "root":
			ra.root = value
		case "capshim-config":
			ra.policy = value
			continue // capshim's own: not passed on
		}
		ra.argv = append(ra.argv, args[start:i+1]...)
	}
	if i < len(args) {
		ra.command = args[i]
		ra.cmdAt = len(ra.argv)
		ra.argv = append(ra.argv, args[i:]...)
	}
	return ra, nil
}

// parseCommand reads the flags and operands of a reducing command from
// ra.argv[ra.cmdAt+1:]. For create, run and restore runc moves flags given
// after the container id in front of it, so flags are read up to "--"; exec
// (runc's SkipArgReorder) stops at its first operand, since what follows is
// the command to run.
func (ra *runtimeArgs) parseCommand() error {
	argv := ra.argv
	var operands []string
	for i := ra.cmdAt + 1; i < len(argv); i++ {
		arg := argv[i]
		if arg == "--" {
			operands = append(operands, argv[i+1:]...)
			break
		}
		name, value, hasValue, ok := splitFlag(arg)
		if !ok {
			operands = append(operands, arg)
			if ra.command == "exec" {
				operands = append(operands, argv[i+1:]...)
				break
			}
			continue
		}
		kind, known := commandFlag(ra.command, name)
		if !known {
			return fmt.Errorf("unknown flag %q: capshim cannot tell what it means for the container, so it refuses the call; if your runtime has this flag, report it to the capshim project", arg)
		}
		at := i
		if kind == valueFlag && !hasValue {
			if i+1 >= len(argv) {
				return fmt.Errorf("flag %q needs a value", arg)
			}
			i++
			value = argv[i]
		}
		switch name {
		case "bundle", "b":
			ra.bundle = value
		case "config", "f":
			ra.configFile = value
		case "process", "p":
			ra.process = value
		case "cap", "c":
			ra.caps = append(ra.caps, capArg{at: at, n: i - at + 1, value: value})
		}
	}
	if len(operands) == 0 {
		return fmt.Errorf("no container id given")
	}
	if ra.command != "exec" && len(operands) != 1 {
		return fmt.Errorf("expected one container id, got %d operands (%s)", len(operands), strings.Join(operands, " "))
	}
	ra.id = operands[0]
	if ra.id == "" {
		return fmt.Errorf("empty container id")
	}
	return nil
}
