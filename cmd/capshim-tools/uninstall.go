package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/install"
)

// uninstallCommand takes capshim out of an engine's config; package
// install does the editing (see install.PrepareUninstall).
var uninstallCommand = &cli.Command{
	Name:      "uninstall",
	Usage:     "take capshim out of the config of docker, containerd or podman",
	ArgsUsage: "docker|containerd|podman",
	Description: `Takes out of the engine's config file what "capshim install" put in: the
runtime "capshim" and, when capshim is the engine's default runtime, that
default (it gets the value of FILE.capshim-backup back, or goes when the
backup has none). For containerd, the runc that install wrote out goes too
when nothing else needs it. Everything else stays as it is.

When the file is exactly what install made of FILE.capshim-backup, the backup
is put back byte for byte. When the file was changed after install, those
changes stay: capshim's entries are taken out of the file as it is (TOML files
as text, so comments and layout stay). The content it replaces is kept as
FILE.capshim-previous; FILE.capshim-backup is left as it is. --dry-run shows
the change as a diff and writes nothing.

The policy (--policy, else --config, else /etc/capshim/shim.toml) and the
binaries are kept: containers created with capshim may still need them.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "the policy `FILE` given to install (only to say it is kept)"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show the change as a diff; write nothing"},
		&cli.StringFlag{Name: "file", Usage: "the engine's config `PATH` (default: the engine's standard path)"},
		&cli.StringFlag{Name: "policy", Usage: "the policy `PATH` install wrote (only to say it is kept)"},
	},
	Action: func(c *cli.Context) error {
		var name string
		switch c.NArg() {
		case 0:
			return cli.Exit(errors.New("uninstall takes one engine: docker, containerd or podman; see capshim uninstall --help"), 2)
		case 1:
			name = c.Args().First()
		default:
			return cli.Exit(fmt.Errorf("uninstall takes one engine, not also %q; see capshim uninstall --help", c.Args().Tail()), 2)
		}
		engine, err := install.ParseEngine(name)
		if err != nil {
			return cli.Exit(err, 2)
		}
		path := c.String("file")
		if path == "" {
			path = engine.ConfigPath()
		}
		policyPath := c.String("policy")
		if policyPath == "" {
			policyPath = c.String("config")
		}
		if policyPath == "" {
			policyPath = install.DefaultPolicyPath
		}
		plan, err := install.PrepareUninstall(engine, path)
		if err != nil {
			return cli.Exit(err, 2)
		}
		w := c.App.Writer
		dry := c.Bool("dry-run")
		if dry {
			fmt.Fprintln(w, "dry run: nothing is written")
		}
		switch {
		case !plan.Exists:
			fmt.Fprintf(w, "%s: %s does not exist: nothing to change\n", engine, path)
			return nil
		case !plan.Changed():
			fmt.Fprintf(w, "%s: %s does not register capshim: nothing to change\n", engine, path)
			return nil
		case dry:
			fmt.Fprintf(w, "%s: would change %s:\n%s", engine, path, plan.Diff())
		default:
			if err := plan.Apply(); err != nil {
				return cli.Exit(err, 2)
			}
			fmt.Fprintf(w, "%s: took capshim out of %s (the content it replaced is kept as %s)\n", engine, path, plan.Previous())
		}
		for _, n := range plan.Notes {
			fmt.Fprintln(w, "note: "+n)
		}
		if plan.HasBackup && !plan.FromBackup {
			fmt.Fprintf(w, "note: %s, the file before capshim install, is kept\n", plan.Backup())
		}
		fmt.Fprintf(w, "policy: %s is kept, as are the capshim binaries\n", policyPath)
		writeAfterUninstall(w, engine, dry)
		return nil
	},
}

// writeAfterUninstall says which daemon to restart and what still names
// capshim.
func writeAfterUninstall(w io.Writer, engine install.Engine, dry bool) {
	restart := engine.Restart()
	switch {
	case restart == "":
		fmt.Fprintf(w, "restart: nothing to restart: %s reads its config on every command\n", engine)
	case dry:
		fmt.Fprintf(w, "restart: after the real run: %s\n", restart)
	default:
		fmt.Fprintf(w, "restart: %s\n", restart)
	}
	switch engine {
	case install.Docker:
		fmt.Fprintln(w, "then: containers created with the runtime capshim still name it and will not start again; docker inspect -f '{{.Name}} {{.HostConfig.Runtime}}' $(docker ps -aq) shows which to recreate")
	case install.Containerd:
		fmt.Fprintln(w, "then: kubectl delete runtimeclass capshim; pods that use it must move to another RuntimeClass")
	case install.Podman:
		fmt.Fprintln(w, "then: containers created with the runtime capshim still name it; podman inspect -f '{{.Name}} {{.OCIRuntime}}' $(podman ps -aq) shows which to recreate")
	}
}
