package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/capshim/capshim/spec"
)

// CacheDir keeps compiled policies for runtime calls, so that the TOML
// parse (reflection-heavy, and the largest cost of a runtime call after Go
// itself starts) runs once per change of the policy file, not on every
// container start. It is on tmpfs: a reboot clears it.
const CacheDir = "/run/capshim"

// cacheMagic starts every cache file; a new format gets a new magic.
const cacheMagic = "capshim-policy-cache v1"

// fileKey identifies one version of a policy file: any write, chmod,
// chown or replacement changes the inode, size, mtime or ctime (and ctime
// cannot be set back from user space).
func fileKey(st *syscall.Stat_t, build string) string {
	b := make([]byte, 0, 128)
	b = strconv.AppendQuote(b, build)
	for _, n := range []int64{int64(st.Dev), int64(st.Ino), st.Size} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, n, 10)
	}
	for _, ts := range []syscall.Timespec{st.Mtim, st.Ctim} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, ts.Sec, 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, ts.Nsec, 10)
	}
	return string(b)
}

// LoadFileCached loads a policy file like LoadFile, through a compiled copy
// in dir. The copy is used only when it belongs to exactly the file that
// was opened (same identity, see fileKey) and to the same capshim build,
// and only when dir and the copy are root's alone (0700 and 0600, owned by
// root, no links); otherwise the file is parsed and the copy is rewritten.
// Without root, the cache is not used. Cache failures never fail a load.
func LoadFileCached(path, dir, build string) (*Policy, error) {
	// Plain system calls, not os.File: on the hot path this keeps Go's
	// poller (epoll set-up) out of the call.
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return LoadFile(path) // the same error, worded as LoadFile does
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || os.Geteuid() != 0 || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return LoadFile(path)
	}
	key := fileKey(&st, build)
	cache := filepath.Join(dir, cacheName(path))
	if trustedCacheDir(dir) {
		if p, ok := readCache(cache, key, path); ok {
			return p, nil
		}
	}
	data, err := readFD(fd, 1<<20)
	if err != nil {
		return nil, &LoadError{Path: path, Msg: fmt.Sprintf("cannot read the policy: %v", err)}
	}
	p, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	writeCache(dir, cache, encodeCache(p, key))
	return p, nil
}

// readFD reads an open file to its end, refusing more than max bytes.
func readFD(fd, max int) ([]byte, error) {
	var data []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return data, nil
		}
		data = append(data, buf[:n]...)
		if len(data) > max {
			return nil, fmt.Errorf("larger than %d bytes; that is not a policy file", max)
		}
	}
}

// cacheName is the cache file of one policy path.
func cacheName(path string) string {
	h := fnv.New64a()
	h.Write([]byte(path))
	return fmt.Sprintf("policy-%016x.cache", h.Sum64())
}

// trustedCacheDir reports whether dir is a real directory owned by root
// with mode 0700.
func trustedCacheDir(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && fi.Mode().Perm() == 0o700
}

// readCache reads a compiled policy; ok is false on any doubt.
func readCache(cache, key, source string) (*Policy, bool) {
	fd, err := syscall.Open(cache, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Mode&0o777 != 0o600 || st.Uid != 0 {
		return nil, false
	}
	data, err := readFD(fd, 1<<20)
	if err != nil {
		return nil, false
	}
	p, err := decodeCache(data, key)
	if err != nil || p.Source != source {
		return nil, false
	}
	return p, true
}

// writeCache replaces the cache file atomically; failures are ignored
// (the next call parses again).
func writeCache(dir, cache string, data []byte) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return
	}
	if !trustedCacheDir(dir) {
		return
	}
	tmp, err := os.CreateTemp(dir, ".policy-*")
	if err != nil {
		return
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Chmod(name, 0o600) != nil || os.Rename(name, cache) != nil {
		os.Remove(name)
	}
}

// encodeCache writes a policy as lines of space-separated fields, strings
// quoted with strconv.Quote.
func encodeCache(p *Policy, key string) []byte {
	var b bytes.Buffer
	q := strconv.Quote
	fmt.Fprintf(&b, "%s\nkey %s\nsource %s\nruntime %s\nmode %s\ndefault %x\nnever %x\nfail %t\nlog %s\n",
		cacheMagic, key, q(p.Source), q(p.Runtime), q(string(p.Mode)), uint64(p.Default), uint64(p.Never), p.FailOnDenied, q(p.Log))
	for _, r := range p.Rules {
		fmt.Fprintf(&b, "rule %s %x\n", q(r.Name), uint64(r.Capabilities))
		for _, m := range r.Annotations {
			fmt.Fprintf(&b, "match %s %s\n", q(m.Key), q(m.Glob))
		}
	}
	b.WriteString("end\n")
	return b.Bytes()
}

// decodeCache reads what encodeCache wrote, for exactly this key.
func decodeCache(data []byte, key string) (*Policy, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	next := func(want string) (string, error) {
		if !sc.Scan() {
			return "", fmt.Errorf("cache ends before %q", want)
		}
		line := sc.Text()
		if want == "" {
			return line, nil
		}
		rest, ok := strings.CutPrefix(line, want+" ")
		if !ok {
			return "", fmt.Errorf("cache line %q is not %q", line, want)
		}
		return rest, nil
	}
	unquote := func(want string) (string, error) {
		v, err := next(want)
		if err != nil {
			return "", err
		}
		return strconv.Unquote(v)
	}
	hex := func(want string) (spec.CapSet, error) {
		v, err := next(want)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseUint(v, 16, 64)
		if err != nil || spec.CapSet(n)&^spec.AllCaps != 0 {
			return 0, fmt.Errorf("cache: bad set %q", v)
		}
		return spec.CapSet(n), nil
	}
	if magic, err := next(""); err != nil || magic != cacheMagic {
		return nil, fmt.Errorf("not a policy cache")
	}
	if k, err := next("key"); err != nil || k != key {
		return nil, fmt.Errorf("cache of another file version")
	}
	var p Policy
	var err error
	if p.Source, err = unquote("source"); err != nil {
		return nil, err
	}
	if p.Runtime, err = unquote("runtime"); err != nil {
		return nil, err
	}
	mode, err := unquote("mode")
	if err != nil {
		return nil, err
	}
	if p.Mode = Mode(mode); p.Mode != Enforce && p.Mode != Audit {
		return nil, fmt.Errorf("cache: bad mode")
	}
	if p.Default, err = hex("default"); err != nil {
		return nil, err
	}
	if p.Never, err = hex("never"); err != nil {
		return nil, err
	}
	fail, err := next("fail")
	if err != nil || (fail != "true" && fail != "false") {
		return nil, fmt.Errorf("cache: bad fail line")
	}
	p.FailOnDenied = fail == "true"
	if p.Log, err = unquote("log"); err != nil {
		return nil, err
	}
	for {
		line, err := next("")
		if err != nil {
			return nil, err
		}
		if line == "end" {
			break
		}
		switch {
		case strings.HasPrefix(line, "rule "):
			name, rest, err := unquotePrefix(line[5:])
			if err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(strings.TrimPrefix(rest, " "), 16, 64)
			if err != nil || spec.CapSet(n)&^spec.AllCaps != 0 {
				return nil, fmt.Errorf("cache: bad rule line")
			}
			p.Rules = append(p.Rules, Rule{Name: name, Capabilities: spec.CapSet(n)})
		case strings.HasPrefix(line, "match ") && len(p.Rules) > 0:
			k, rest, err := unquotePrefix(line[6:])
			if err != nil {
				return nil, err
			}
			g, err := strconv.Unquote(strings.TrimPrefix(rest, " "))
			if err != nil {
				return nil, err
			}
			r := &p.Rules[len(p.Rules)-1]
			r.Annotations = append(r.Annotations, Match{Key: k, Glob: g})
		default:
			return nil, fmt.Errorf("cache: bad line %q", line)
		}
	}
	if sc.Scan() {
		return nil, fmt.Errorf("cache: data after end")
	}
	return &p, nil
}

// unquotePrefix unquotes the quoted string at the start of s and returns
// the rest.
func unquotePrefix(s string) (string, string, error) {
	prefix, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(prefix)
	return v, s[len(prefix):], err
}
