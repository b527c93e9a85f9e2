package spec_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/capshim/capshim/engine"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

// rewrite is what a runtime call does with a config.json once it holds the
// bytes: parse, decide on the policy (with the engine's grant, as from
// dockerd), reduce. Reading and writing the file
// are left out (they are the kernel's cost, measured end to end by
// `make bench`).
func rewrite(b *testing.B, pol *policy.Policy, data []byte) []byte {
	doc, err := spec.Parse(data, spec.Config)
	if err != nil {
		b.Fatal(err)
	}
	d := pol.DecideEngine(doc.Annotations, doc.Env, policy.SpecGrant(doc, nil, engine.Identify(doc.Annotations, "/run/docker/runtime-capshim/moby")))
	if err := pol.Check(&d); err != nil {
		b.Fatal(err)
	}
	out, _ := doc.Reduce(d.Target)
	return out
}

// padded returns Docker's default config.json grown to about size bytes
// with bind mounts (what a pod with many volumes looks like), so the
// capability arrays stay where Docker puts them and everything else grows.
func padded(b *testing.B, base []byte, size int) []byte {
	const key = `"mounts":[`
	at := bytes.Index(base, []byte(key))
	if at < 0 {
		b.Fatal("no mounts array in the base spec")
	}
	at += len(key)
	var extra bytes.Buffer
	for i := 0; len(base)+extra.Len() < size; i++ {
		fmt.Fprintf(&extra, `{"destination":"/data/vol-%07d","type":"bind","source":"/var/lib/kubelet/pods/5f3c2a9e-0000-4000-8000-%012d/volumes/kubernetes.io~empty-dir/vol-%07d","options":["rbind","rprivate","ro"]},`, i, i, i)
	}
	out := make([]byte, 0, len(base)+extra.Len())
	out = append(out, base[:at]...)
	out = append(out, extra.Bytes()...)
	return append(out, base[at:]...)
}

func benchRewrite(b *testing.B, data []byte) {
	pol := policy.Builtin()
	if out := rewrite(b, pol, data); bytes.Equal(out, data) {
		b.Fatal("the benchmark spec is not reduced: it would measure nothing")
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rewrite(b, pol, data)
	}
}

func dockerDefault(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/config.default.json")
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkRewriteDockerDefault is the rewrite of Docker 20.10's real
// default config.json (9 KB, 14 capabilities) under the built-in policy.
func BenchmarkRewriteDockerDefault(b *testing.B) { benchRewrite(b, dockerDefault(b)) }

// BenchmarkRewrite100KB and BenchmarkRewrite10MB show that the time grows
// linearly with the size of the spec.
func BenchmarkRewrite100KB(b *testing.B) { benchRewrite(b, padded(b, dockerDefault(b), 100<<10)) }
func BenchmarkRewrite10MB(b *testing.B)  { benchRewrite(b, padded(b, dockerDefault(b), 10<<20)) }
