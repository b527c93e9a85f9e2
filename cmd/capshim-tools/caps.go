package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	mobycap "github.com/moby/sys/capability"
	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/capability"
)

// Output formats of `capshim caps`.
const (
	// capsFormatText is the human-readable table or description.
	capsFormatText = "text"
	// capsFormatJSON is a JSON list of capabilities (one object for NAME).
	capsFormatJSON = "json"
)

// capsDetailWidth is the column at which the Detail text of a single
// capability is wrapped.
const capsDetailWidth = 72

// capsCommand is `capshim caps [NAME]`: it lists every capability with its
// membership in the common default sets and its risk, or describes one.
var capsCommand = &cli.Command{
	Name:      "caps",
	Usage:     "list Linux capabilities with their risk and default sets, or describe one",
	ArgsUsage: "[NAME]",
	Description: `Without NAME, prints a table of every capability: its number and name,
whether the OCI (runc spec), Docker/containerd and Podman default sets
grant it, its risk (root-equivalent, high or low, after grsecurity's
analysis) and what it allows. It also tells how many capabilities the
running kernel knows. With NAME (any case, with or without CAP_), describes
that capability in detail.`,
	Flags: []cli.Flag{
		&cli.StringFlag{
			Name:  "format",
			Value: capsFormatText,
			Usage: "output format: text or json",
		},
	},
	Action: capsAction,
}

// capsAction runs `capshim caps`: it checks the arguments, asks the kernel
// for its last capability and writes the rendered output to the app's
// writer. Usage errors exit with code 2.
func capsAction(c *cli.Context) error {
	if c.NArg() > 1 {
		return cli.Exit(fmt.Sprintf("caps takes at most one capability name, got %d arguments %q",
			c.NArg(), c.Args().Slice()), 2)
	}
	out, err := renderCaps(c.String("format"), c.Args().First(), capsKernelLastCap())
	if err != nil {
		return cli.Exit(err, 2)
	}
	if _, err := c.App.Writer.Write(out); err != nil {
		return fmt.Errorf("write caps output: %w", err)
	}
	return nil
}

// capsKernelLastCap returns the highest capability number the running kernel
// knows, or -1 if it cannot be read (for example on a system other than
// Linux). It is a variable so that the tests can stand in for kernels that
// know more or fewer capabilities than the one they run on, and so compare
// the output byte for byte on any machine.
var capsKernelLastCap = func() int {
	last, err := mobycap.LastCap()
	if err != nil {
		return -1
	}
	return int(last)
}

// renderCaps renders the output of `capshim caps [name]` in format. An
// empty name means every capability. lastCap is the kernel's highest
// capability number, or negative if unknown; it is a parameter so that tests
// do not depend on the machine. The JSON format does not use it.
func renderCaps(format, name string, lastCap int) ([]byte, error) {
	if format != capsFormatText && format != capsFormatJSON {
		return nil, fmt.Errorf("unknown format %q: want %s or %s", format, capsFormatText, capsFormatJSON)
	}
	if name == "" {
		if format == capsFormatJSON {
			return renderCapsJSON(capability.All.Caps())
		}
		return renderCapsTable(lastCap), nil
	}
	c, ok := capability.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown capability %q: run \"capshim caps\" for the list", name)
	}
	if format == capsFormatJSON {
		return renderCapJSON(c)
	}
	return renderCapDetail(c, lastCap), nil
}

// capJSON is the JSON form of one capability.
type capJSON struct {
	// Number is the capability number (0 is CAP_CHOWN).
	Number int `json:"number"`
	// Name is the canonical CAP_ name.
	Name string `json:"name"`
	// Risk is "root-equivalent", "high" or "low".
	Risk string `json:"risk"`
	// Allows is the one-line summary.
	Allows string `json:"allows"`
	// Detail is the longer explanation.
	Detail string `json:"detail"`
	// OCIDefault tells whether `runc spec` grants it.
	OCIDefault bool `json:"oci_default"`
	// DockerDefault tells whether Docker and containerd grant it by default.
	DockerDefault bool `json:"docker_default"`
	// PodmanDefault tells whether Podman grants it by default.
	PodmanDefault bool `json:"podman_default"`
}

// newCapJSON fills a capJSON for c.
func newCapJSON(c capability.Cap) capJSON {
	info := capInfos[c]
	return capJSON{
		Number:        int(c),
		Name:          c.String(),
		Risk:          info.Risk,
		Allows:        info.Allows,
		Detail:        info.Detail,
		OCIDefault:    capability.OCIDefault.Has(c),
		DockerDefault: capability.DockerDefault.Has(c),
		PodmanDefault: capability.PodmanDefault.Has(c),
	}
}

// renderCapsJSON renders caps as an indented JSON list.
func renderCapsJSON(caps []capability.Cap) ([]byte, error) {
	list := make([]capJSON, 0, len(caps))
	for _, c := range caps {
		list = append(list, newCapJSON(c))
	}
	return marshalCaps(list)
}

// renderCapJSON renders one capability as an indented JSON object.
func renderCapJSON(c capability.Cap) ([]byte, error) {
	return marshalCaps(newCapJSON(c))
}

// marshalCaps encodes v as indented JSON with a final newline, leaving
// characters such as < and & as they are.
func marshalCaps(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode capabilities as json: %w", err)
	}
	return buf.Bytes(), nil
}

// capsMark renders set membership as a table cell.
func capsMark(in bool) string {
	if in {
		return "x"
	}
	return "-"
}

// capsYesNo renders set membership in a description.
func capsYesNo(in bool) string {
	if in {
		return "yes"
	}
	return "no"
}

// capsKernelSupports reports whether a kernel whose last capability is lastCap
// supports c. An unknown lastCap (negative) supports nothing for certain.
func capsKernelSupports(c capability.Cap, lastCap int) bool {
	return int(c) <= lastCap
}

// renderCapsTable renders every capability as a table, followed by a legend
// and a line on what the kernel with last capability lastCap supports.
// Capabilities that kernel does not know are marked with a * after their
// number.
func renderCapsTable(lastCap int) []byte {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NUM\tNAME\tOCI\tDOCKER\tPODMAN\tRISK\tALLOWS")
	for c := capability.Cap(0); c < capability.NumCaps; c++ {
		num := fmt.Sprint(int(c))
		if lastCap >= 0 && !capsKernelSupports(c, lastCap) {
			num += "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", num, c,
			capsMark(capability.OCIDefault.Has(c)), capsMark(capability.DockerDefault.Has(c)),
			capsMark(capability.PodmanDefault.Has(c)), capInfos[c].Risk, capInfos[c].Allows)
	}
	// Writing to a bytes.Buffer cannot fail, so neither can Flush.
	_ = tw.Flush()
	fmt.Fprintf(&buf, "\nOCI: the `runc spec` default, also capshim's (%d). DOCKER: the Docker and containerd default (%d).\n",
		capability.OCIDefault.Len(), capability.DockerDefault.Len())
	fmt.Fprintf(&buf, "PODMAN: the Podman default (%d). RISK: after grsecurity's 2011 \"False Boundaries\" analysis.\n",
		capability.PodmanDefault.Len())
	fmt.Fprintln(&buf, capsKernelLine(lastCap))
	fmt.Fprintln(&buf, `Run "capshim caps NAME" for details on one capability.`)
	return buf.Bytes()
}

// capsKernelLine tells how many capabilities a kernel whose last capability is
// lastCap knows, compared with the capability.NumCaps capshim knows.
func capsKernelLine(lastCap int) string {
	const last = capability.NumCaps - 1
	switch {
	case lastCap < 0:
		return "Could not read which capabilities this kernel knows."
	case lastCap == last:
		return fmt.Sprintf("This kernel knows all %d capabilities (0-%d).", capability.NumCaps, last)
	case lastCap < last:
		return fmt.Sprintf("This kernel knows %d capabilities (0-%d); those marked * are not supported here.",
			lastCap+1, lastCap)
	default:
		return fmt.Sprintf("This kernel knows %d capabilities (0-%d); capshim only knows the first %d.",
			lastCap+1, lastCap, capability.NumCaps)
	}
}

// renderCapDetail describes capability c, including whether a kernel whose
// last capability is lastCap supports it.
func renderCapDetail(c capability.Cap, lastCap int) []byte {
	info := capInfos[c]
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s (capability %d)\n\n", c, int(c))
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Risk:\t%s\n", info.Risk)
	fmt.Fprintf(tw, "Allows:\t%s\n", info.Allows)
	fmt.Fprintf(tw, "OCI default:\t%s\n", capsYesNo(capability.OCIDefault.Has(c)))
	fmt.Fprintf(tw, "Docker/containerd default:\t%s\n", capsYesNo(capability.DockerDefault.Has(c)))
	fmt.Fprintf(tw, "Podman default:\t%s\n", capsYesNo(capability.PodmanDefault.Has(c)))
	fmt.Fprintf(tw, "This kernel:\t%s\n", capsKernelSupport(c, lastCap))
	// Writing to a bytes.Buffer cannot fail, so neither can Flush.
	_ = tw.Flush()
	buf.WriteString("\n")
	buf.WriteString(capsWrapText(info.Detail, capsDetailWidth))
	return buf.Bytes()
}

// capsKernelSupport tells in words whether a kernel whose last capability is
// lastCap supports c.
func capsKernelSupport(c capability.Cap, lastCap int) string {
	switch {
	case lastCap < 0:
		return "unknown (could not read the kernel's last capability)"
	case capsKernelSupports(c, lastCap):
		return fmt.Sprintf("supported (last capability %d)", lastCap)
	default:
		return fmt.Sprintf("not supported (last capability %d)", lastCap)
	}
}

// capsWrapText breaks text into lines of at most width bytes at spaces (a longer
// word gets a line of its own) and ends every line with a newline.
func capsWrapText(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		if n > 0 && n+1+len(word) > width {
			b.WriteString("\n")
			n = 0
		}
		if n > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	if n > 0 {
		b.WriteString("\n")
	}
	return b.String()
}
