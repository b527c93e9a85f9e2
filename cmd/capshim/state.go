package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/atomicfile"
	"github.com/capshim/capshim/spec"
)

// containerState is what the real runtime recorded when the container was
// created: the capability sets its process got and the annotations its
// spec carried. `exec` is held to the first and decided with the second,
// so a process started later in the container never gets more than the
// container itself, and the rules match as they matched at create.
type containerState struct {
	sets        spec.Sets
	annotations map[string]string
	source      string // the file the sets were read from
}

// maxStateFile bounds what capshim reads of a runtime's state file.
const maxStateFile = 16 << 20

// readContainerState reads the state that the runtime keeps for container
// id under root (the runtime's default root when root is empty). runc
// keeps ROOT/ID/state.json, whose config holds the capabilities it applied
// and the annotations as "key=value" labels; crun keeps a copy of the
// container's config.json in ROOT/ID. Any failure is an error: exec then
// does not run.
func readContainerState(runtime, root, id string) (*containerState, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return nil, fmt.Errorf("container id %q is not a valid name", id)
	}
	root = runtimeRoot(runtime, root)
	dir := filepath.Join(root, id)
	runcState := filepath.Join(dir, "state.json")
	data, err := readStateFile(runcState)
	if err == nil {
		return runcContainerState(runcState, data)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	crunConfig := filepath.Join(dir, "config.json")
	data, err = readStateFile(crunConfig)
	if err == nil {
		doc, err := spec.Parse(data, spec.Config)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", crunConfig, err)
		}
		return &containerState{sets: doc.Sets(), annotations: doc.Annotations, source: crunConfig}, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no state of container %q under %s (neither state.json nor config.json): is it running?", id, root)
	}
	return nil, err
}

// readStateFile reads a small state file without following a link.
func readStateFile(path string) ([]byte, error) { return atomicfile.ReadFile(path, maxStateFile) }

// runcContainerState reads runc's state.json.
func runcContainerState(path string, data []byte) (*containerState, error) {
	var st struct {
		Config struct {
			Labels       []string `json:"labels"`
			Capabilities *struct {
				Bounding, Effective, Inheritable, Permitted, Ambient []string
			} `json:"capabilities"`
		} `json:"config"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cs := &containerState{source: path}
	if c := st.Config.Capabilities; c != nil {
		// runc applies only the names it knows, spelled exactly.
		for s, names := range [spec.NumSets][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			for _, n := range names {
				if cp, ok := capability.Exact(n); ok {
					cs.sets[s] = cs.sets[s].Add(cp)
				}
			}
		}
	}
	a, err := runcAnnotations(path, st.Config.Labels)
	if err != nil {
		return nil, err
	}
	cs.annotations = a
	return cs, nil
}

// runcAnnotations recovers the annotations from runc's labels. runc writes
// each as key+"="+value, so a label with two or more "=" cannot be split
// with certainty (the key or the value may hold one). Then the bundle's
// config.json, whose path runc keeps as the label "bundle=PATH", gives the
// annotations, and they count only if they make exactly runc's labels.
func runcAnnotations(path string, labels []string) (map[string]string, error) {
	out := map[string]string{}
	var rest []string
	bundle, ambiguous := "", false
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		if k == "bundle" && bundle == "" {
			bundle = v
			continue
		}
		rest = append(rest, l)
		if strings.Contains(v, "=") {
			ambiguous = true
		}
		out[k] = v
	}
	if !ambiguous {
		return out, nil
	}
	fail := func(why string) error {
		return fmt.Errorf("%s: the container's annotations cannot be read with certainty (a label holds more than one \"=\") and %s; exec refused", path, why)
	}
	if bundle == "" {
		return nil, fail("runc recorded no bundle")
	}
	cfg := bundle + "/config.json"
	data, err := readStateFile(cfg)
	if err != nil {
		return nil, fail(fmt.Sprintf("the bundle's config.json cannot be read: %v", err))
	}
	doc, err := spec.Parse(data, spec.Config)
	if err != nil {
		return nil, fail(fmt.Sprintf("%s: %v", cfg, err))
	}
	made := make([]string, 0, len(doc.Annotations))
	for k, v := range doc.Annotations {
		made = append(made, k+"="+v)
	}
	slices.Sort(made)
	slices.Sort(rest)
	if !slices.Equal(made, rest) {
		return nil, fail(fmt.Sprintf("the annotations in %s are not those runc recorded", cfg))
	}
	return doc.Annotations, nil
}
