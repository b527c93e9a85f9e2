package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
)

// containerAnnotations returns the annotations of a running container,
// which `exec` needs to decide like `create` did. runc keeps them as
// "key=value" labels in ROOT/ID/state.json; crun keeps the bundle path in
// ROOT/ID/status, whose config.json has them. It returns nil when neither
// is found: the decision then has no annotations, which can only grant
// less.
func containerAnnotations(root, id string) map[string]string {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return nil
	}
	roots := []string{root}
	if root == "" {
		roots = []string{"/run/runc", "/run/crun"}
	}
	for _, r := range roots {
		if a, ok := runcAnnotations(filepath.Join(r, id, "state.json")); ok {
			return a
		}
		if a, ok := crunAnnotations(filepath.Join(r, id, "status")); ok {
			return a
		}
	}
	return nil
}

func runcAnnotations(path string) (map[string]string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var st struct {
		Config struct {
			Labels []string `json:"labels"`
		} `json:"config"`
	}
	if json.Unmarshal(data, &st) != nil {
		return nil, false
	}
	out := map[string]string{}
	for _, l := range st.Config.Labels {
		if k, v, ok := strings.Cut(l, "="); ok && k != "bundle" {
			out[k] = v
		}
	}
	return out, true
}

func crunAnnotations(path string) (map[string]string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var st struct {
		Bundle string `json:"bundle"`
	}
	if json.Unmarshal(data, &st) != nil || st.Bundle == "" {
		return nil, false
	}
	cfg, err := os.ReadFile(filepath.Join(st.Bundle, "config.json"))
	if err != nil {
		return nil, false
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(cfg, &spec) != nil {
		return nil, false
	}
	return spec.Annotations, true
}
