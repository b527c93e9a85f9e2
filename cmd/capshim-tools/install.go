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
)

// installCommand registers capshim with an engine; package install does
// the editing.
var installCommand = &cli.Command{
	Name:      "install",
	Usage:     "register capshim as a runtime of docker, containerd or podman",
	ArgsUsage: "docker|containerd|podman",
	Description: `Edits the engine's config file so that it knows the runtime "capshim":
  docker      /etc/docker/daemon.json          runtimes.capshim (runtimeArgs with --config)
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

Also writes capshim's default policy to --policy (default --config, else
/etc/capshim/shim.toml) when no file is there; an existing policy is kept.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "policy `FILE` the engine passes to capshim (docker only: runtimeArgs --capshim-config=FILE; containerd and podman pass no arguments)"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show the change as a diff; write nothing"},
		&cli.BoolFlag{Name: "set-default", Usage: "make capshim the engine's default runtime"},
		&cli.StringFlag{Name: "file", Usage: "the engine's config `PATH` (default: the engine's standard path)"},
		&cli.StringFlag{Name: "binary", Usage: "capshim's absolute `PATH` (default: the capshim next to this program, links resolved)"},
		&cli.StringFlag{Name: "policy", Usage: "where to write the default policy when none is there (`PATH`; default --config, else " + install.DefaultPolicyPath + ")"},
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
		path := f.file
		if path == "" {
			path = engine.ConfigPath()
		}
		policyPath := f.policy
		if policyPath == "" {
			policyPath = f.config
		}
		if policyPath == "" {
			policyPath = install.DefaultPolicyPath
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
		if err := installPolicy(w, policyPath, dry); err != nil {
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
		for _, n := range append(plan.Notes, installNotes(f.config, engine, opts, policyPath)...) {
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
	dryRun, setDefault           bool
}

// parseInstallFlags reads install's engine operand and flags (flags after
// the engine are moved in front of it by flagsFirst).
func parseInstallFlags(c *cli.Context) (*installFlags, error) {
	f := &installFlags{
		config: c.String("config"), file: c.String("file"), binary: c.String("binary"), policy: c.String("policy"),
		dryRun: c.Bool("dry-run"), setDefault: c.Bool("set-default"),
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
	if cfg := f.config; cfg != "" {
		if !filepath.IsAbs(cfg) {
			return opts, fmt.Errorf("--config %q: the runtime needs an absolute path", cfg)
		}
		if engine == install.Docker {
			opts.RuntimeConfig = cfg
		}
	}
	return opts, nil
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

// installNotes says what the user should know about the flags given and
// the binary registered.
func installNotes(cfg string, engine install.Engine, opts install.Options, policyPath string) []string {
	var notes []string
	switch {
	case engine == install.Docker && cfg != "" && cfg != policyPath:
		notes = append(notes, fmt.Sprintf("docker makes capshim read the policy %s (--config), not %s (--policy)", cfg, policyPath))
	case engine != install.Docker && cfg != "" && cfg != install.DefaultPolicyPath:
		notes = append(notes, fmt.Sprintf("%s passes no arguments to a runtime: capshim reads %s (or $CAPSHIM_CONFIG in the engine's environment), not %s", engine, install.DefaultPolicyPath, cfg))
	}
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
