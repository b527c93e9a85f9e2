package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/install"
	"github.com/capshim/capshim/policy"
)

// installCommand registers capshim with an engine; package install does
// the editing.
var installCommand = &cli.Command{
	Name:      "install",
	Usage:     "register capshim as a runtime of docker, containerd or podman",
	ArgsUsage: "docker|containerd|podman",
	Description: `Edits the engine's config file so that it knows the runtime "capshim":
  docker      /etc/docker/daemon.json          runtimes.capshim (runtimeArgs with --config or --policy)
  containerd  /etc/containerd/config.toml      the CRI runtime handler "capshim" (config version 2 or 3)
  podman      /etc/containers/containers.conf  [engine.runtimes] capshim
--set-default also makes capshim the engine's default runtime. Every other
setting stays as it was (TOML files keep their comments); a file that does
not parse is refused. The old file is saved as FILE.capshim-backup (a
backup already there, from an earlier change, is kept), the new one
replaces it atomically; a second run changes nothing. --dry-run shows the
change as a diff and writes nothing.

containerd: the handlers the node had stay; the built-in runc is written
out when the file lists no other runtime (containerd 1.6/1.7 would lose
it). The result is read as containerd 1.6/1.7 and 2.x would, and refused
when one of them would lose a runtime, its default or the CRI plugin.

Also writes capshim's default policy where the registered runtime will read
it, when no file is there (an existing policy is kept; --no-policy writes
none): docker makes capshim read --config, or --policy, through the runtime
argument --capshim-config=FILE. containerd and podman pass a runtime neither
arguments nor environment, so capshim reads /etc/capshim/shim.toml there
(/etc/capshim/capshim-NAME.toml when --binary is a link named capshim-NAME);
a --config or --policy naming another file is refused, since the runtime
would never read it. Podman users choose another policy at each run with
podman --runtime capshim --runtime-flag capshim-config=FILE.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "policy `FILE` the engine passes to capshim (docker: runtimeArgs --capshim-config=FILE; containerd and podman pass no arguments, so only the file their capshim reads is accepted)"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show the change as a diff; write nothing"},
		&cli.BoolFlag{Name: "set-default", Usage: "make capshim the engine's default runtime"},
		&cli.StringFlag{Name: "file", Usage: "the engine's config `PATH` (default: the engine's standard path)"},
		&cli.StringFlag{Name: "binary", Usage: "capshim's absolute `PATH` (default: the capshim next to this program, links resolved)"},
		&cli.StringFlag{Name: "policy", Usage: "where to write the default policy when none is there (`PATH`; default: the file the registered capshim reads); docker: without --config, the engine passes it to capshim"},
		&cli.BoolFlag{Name: "no-policy", Usage: "write no policy (put one in place with capshim policy install)"},
	},
	Action: func(c *cli.Context) error {
		f, err := parseInstallFlags(c)
		if err != nil {
			return cli.Exit(err, 2)
		}
		engine, err := install.ParseEngine(f.engine)
		if err != nil {
			return cli.Exit(err, 2)
		}
		opts, err := installOptions(f, engine)
		if err != nil {
			return cli.Exit(err, 2)
		}
		policyPath, err := installPolicyPath(f, engine, &opts)
		if err != nil {
			return cli.Exit(err, 2)
		}
		path := f.file
		if path == "" {
			path = engine.ConfigPath()
		}
		plan, err := install.Prepare(engine, path, opts)
		if err != nil {
			return cli.Exit(err, 2)
		}
		w := c.App.Writer
		dry := f.dryRun
		if dry {
			fmt.Fprintln(w, "dry run: nothing is written")
		}

		// The policy first: an engine told to use capshim finds it there.
		if f.noPolicy {
			fmt.Fprintf(w, "policy: none written (--no-policy); the registered capshim reads %s\n", policyPath)
		} else if err := installPolicy(w, policyPath, dry); err != nil {
			return cli.Exit(err, 2)
		}

		switch {
		case !plan.Changed():
			fmt.Fprintf(w, "%s: %s already registers capshim as asked: nothing to change\n", engine, path)
		case dry && !plan.Exists:
			fmt.Fprintf(w, "%s: would create %s:\n%s", engine, path, plan.Diff())
		case dry:
			fmt.Fprintf(w, "%s: would change %s:\n%s", engine, path, plan.Diff())
		default:
			if err := plan.Apply(); err != nil {
				return cli.Exit(err, 2)
			}
			switch {
			case plan.Exists && plan.BackupKept:
				fmt.Fprintf(w, "%s: registered capshim in %s (%s, the content before capshim first changed the file, is kept; the content just replaced is not saved)\n", engine, path, plan.Backup())
			case plan.Exists:
				fmt.Fprintf(w, "%s: registered capshim in %s (old content saved as %s)\n", engine, path, plan.Backup())
			default:
				fmt.Fprintf(w, "%s: created %s registering capshim\n", engine, path)
			}
		}
		for _, n := range append(plan.Notes, installNotes(engine, opts)...) {
			if !strings.HasPrefix(n, "WARNING: ") {
				n = "note: " + n
			}
			fmt.Fprintln(w, n)
		}
		writeNext(w, engine, opts, plan.Changed(), dry)
		return nil
	},
}

// installFlags are install's operand and flags.
type installFlags struct {
	engine                       string
	config, file, binary, policy string
	dryRun, setDefault, noPolicy bool
}

// parseInstallFlags reads install's engine operand and flags (flags after
// the engine are moved in front of it by flagsFirst).
func parseInstallFlags(c *cli.Context) (*installFlags, error) {
	f := &installFlags{
		config: c.String("config"), file: c.String("file"), binary: c.String("binary"), policy: c.String("policy"),
		dryRun: c.Bool("dry-run"), setDefault: c.Bool("set-default"), noPolicy: c.Bool("no-policy"),
	}
	switch c.NArg() {
	case 0:
		return nil, errors.New("install takes one engine: docker, containerd or podman; see capshim install --help")
	case 1:
	default:
		return nil, fmt.Errorf("install takes one engine, not also %q; see capshim install --help", c.Args().Tail())
	}
	f.engine = c.Args().First()
	return f, nil
}

// installOptions checks --binary and --config and makes the options.
func installOptions(f *installFlags, engine install.Engine) (install.Options, error) {
	opts := install.Options{Binary: f.binary, SetDefault: f.setDefault}
	if opts.Binary == "" {
		// This is capshim-tools; the runtime is the capshim binary next to it.
		bin, err := sibling("capshim")
		if err != nil {
			return opts, fmt.Errorf("%w (give capshim's path with --binary)", err)
		}
		opts.Binary = bin
	}
	if !filepath.IsAbs(opts.Binary) {
		return opts, fmt.Errorf("--binary %q: the engine needs an absolute path", opts.Binary)
	}
	if cfg := f.config; cfg != "" && !filepath.IsAbs(cfg) {
		return opts, fmt.Errorf("--config %q: the runtime needs an absolute path", cfg)
	}
	return opts, nil
}

// installPolicyPath returns the policy file the registered capshim will
// read, which is where install writes the default policy, and sets
// opts.RuntimeConfig when docker is to pass it. A --config or --policy
// naming a file that capshim would not read is refused: a policy written
// there would look in force and never be.
func installPolicyPath(f *installFlags, engine install.Engine, opts *install.Options) (string, error) {
	if f.noPolicy && f.policy != "" {
		return "", errors.New("--no-policy writes no policy, --policy says where to write it: give one of them")
	}
	pol := f.policy
	if pol != "" {
		abs, err := filepath.Abs(pol)
		if err != nil {
			return "", fmt.Errorf("--policy %q: %w", pol, err)
		}
		pol = abs
	}
	// With no runtime argument, the registered capshim finds its policy
	// by its own name or at the default path; the engines here hand it no
	// environment to name another.
	reads := policy.Locate("", opts.Binary, false, func(string) string { return "" }).Path
	if engine == install.Docker {
		switch {
		case f.config != "" && pol != "" && pol != f.config:
			return "", fmt.Errorf("--config %s is the policy docker will make capshim read, so --policy %s would never be read: give only --config, or only --policy (docker then passes that file); nothing was changed", f.config, pol)
		case f.config != "":
			opts.RuntimeConfig = f.config
		case pol != "" && pol != reads:
			opts.RuntimeConfig = pol
		}
		if opts.RuntimeConfig != "" {
			return opts.RuntimeConfig, nil
		}
		return reads, nil
	}
	for _, named := range []struct{ flag, path string }{{"--config", f.config}, {"--policy", pol}} {
		if named.path == "" || named.path == reads {
			continue
		}
		return "", fmt.Errorf("%s %s: %s passes no arguments or environment to a runtime registered in its config, so the capshim it runs reads %s, never this file; nothing was changed. Instead: put the policy there (capshim policy install %s --to %s), or register capshim under a name of its own (ln -s capshim capshim-NAME, then --binary /path/to/capshim-NAME: it reads %s/capshim-NAME.toml)%s",
			named.flag, named.path, engine, reads, named.path, reads, policy.Dir, podmanFlagHint(engine, named.path))
	}
	return reads, nil
}

// podmanFlagHint is the way Podman hands capshim a policy per command.
func podmanFlagHint(engine install.Engine, path string) string {
	if engine != install.Podman {
		return ""
	}
	return ", or name it at each run: podman --runtime capshim --runtime-flag capshim-config=" + path
}

// installPolicy writes the default policy to path when nothing is there.
func installPolicy(w io.Writer, path string, dry bool) error {
	exists, err := install.PolicyExists(path)
	if err != nil {
		return err
	}
	switch {
	case exists:
		fmt.Fprintf(w, "policy: %s exists: kept as it is\n", path)
	case dry:
		fmt.Fprintf(w, "policy: would write capshim's default policy to %s\n", path)
	default:
		written, err := install.WritePolicy(path, capshim.DefaultPolicy)
		if err != nil {
			return err
		}
		if written {
			fmt.Fprintf(w, "policy: wrote capshim's default policy to %s (edit it to allow more)\n", path)
		} else {
			fmt.Fprintf(w, "policy: %s exists: kept as it is\n", path)
		}
	}
	return nil
}

// installNotes says what the user should know about the binary
// registered.
func installNotes(engine install.Engine, opts install.Options) []string {
	var notes []string
	st, err := os.Stat(opts.Binary)
	switch {
	case err != nil:
		notes = append(notes, fmt.Sprintf("%s does not exist (yet): install capshim there before restarting the engine", opts.Binary))
	case st.Mode()&0o022 != 0:
		notes = append(notes, fmt.Sprintf("WARNING: %s is writable by group or others (mode %v); the engine runs it as root: chmod go-w it", opts.Binary, st.Mode().Perm()))
	case os.Geteuid() == 0:
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			notes = append(notes, fmt.Sprintf("WARNING: %s is owned by uid %d, not root; the engine runs it as root: chown root it", opts.Binary, sys.Uid))
		}
	}
	if engine == install.Podman {
		notes = append(notes, "rootless podman also reads ~/.config/containers/containers.conf, which overrides this file")
	}
	return notes
}

// writeNext says which daemon to restart and how to check the result.
func writeNext(w io.Writer, engine install.Engine, opts install.Options, changed, dry bool) {
	restart := engine.Restart()
	switch {
	case restart == "":
		fmt.Fprintf(w, "restart: nothing to restart: %s reads its config on every command\n", engine)
	case dry:
		fmt.Fprintf(w, "restart: after the real run: %s\n", restart)
	case changed:
		fmt.Fprintf(w, "restart: %s\n", restart)
	default:
		fmt.Fprintf(w, "restart: %s (if not done since the config last changed)\n", restart)
	}
	if engine == install.Docker {
		fmt.Fprintf(w, "  (or systemctl reload docker: dockerd reloads its runtimes without stopping containers)\n")
	}
	fmt.Fprintf(w, "verify:\n")
	for _, v := range engine.Verify(opts.SetDefault) {
		fmt.Fprintf(w, "  %s\n", v)
	}
	if !opts.SetDefault && engine == install.Containerd {
		fmt.Fprintf(w, "  (pods choose capshim with a RuntimeClass; --set-default makes it containerd's default)\n")
	}
}
