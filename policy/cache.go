package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/capshim/capshim/internal/trustfs"
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
func fileKey(st *unix.Stat_t, build string) string {
	b := make([]byte, 0, 128)
	b = strconv.AppendQuote(b, build)
	for _, n := range []int64{int64(st.Dev), int64(st.Ino), st.Size} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, n, 10)
	}
	for _, ts := range []unix.Timespec{st.Mtim, st.Ctim} {
		b = append(b, ' ')
		b = strconv.AppendInt(b, ts.Sec, 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, ts.Nsec, 10)
	}
	return string(b)
}

// LoadTrusted loads the policy file at path for a runtime call, refusing
// one that anyone but root could change or could have chosen (see
// CheckTrusted). The file is opened once (trustfs.Open), checked through
// the descriptor, and read from that same descriptor, so the policy used
// is the file that was checked, whatever happens to the path meanwhile.
//
// As root it goes through a compiled copy in cacheDir: the copy is used
// only when it belongs to exactly the file that was opened (same
// identity, see fileKey) and to the same capshim build, and only when
// cacheDir and the copy are root's alone (0700 and 0600, owned by root, no
// links anywhere on the way); otherwise the file is parsed and the copy is
// rewritten. Cache failures never fail a load.
//
// A path that cannot be trusted or opened is a *trustfs.Error
// (errors.Is finds fs.ErrNotExist for a missing file, trustfs.ErrUntrusted
// for one others could have chosen); a policy that does not parse is a
// *LoadError.
func LoadTrusted(path, cacheDir, build string) (*Policy, error) {
	f, err := trustfs.Open(path, trustfs.Read)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	useCache := cacheDir != "" && os.Geteuid() == 0
	var key, name string
	dirfd := -1
	if useCache {
		key, name = fileKey(&f.Stat, build), cacheName(path)
		if dirfd = openCacheDir(cacheDir, false); dirfd >= 0 {
			defer unix.Close(dirfd)
			if p, ok := readCache(dirfd, name, key, path); ok {
				return p, nil
			}
		}
	}
	data, err := readFD(f.Fd, 1<<20)
	if err != nil {
		return nil, &LoadError{Path: path, Msg: fmt.Sprintf("cannot read the policy: %v", err)}
	}
	p, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if useCache {
		if dirfd < 0 {
			if dirfd = openCacheDir(cacheDir, true); dirfd < 0 {
				return p, nil
			}
			defer unix.Close(dirfd)
		}
		writeCache(dirfd, name, encodeCache(p, key))
	}
	return p, nil
}

// readFD reads an open file to its end, refusing more than max bytes.
// Plain system calls, not os.File: on the hot path this keeps Go's poller
// (epoll set-up) out of the call.
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

// openCacheDir opens the cache directory as a directory descriptor, or
// returns -1. It must be a real directory owned by root with mode 0700,
// reached without any link, through directories only root can change.
// With create, a missing cache directory is made (0700) in its parent,
// which must pass the same rule.
func openCacheDir(dir string, create bool) int {
	f, err := trustfs.Open(dir, trustfs.Dir|trustfs.NoLinks)
	if err != nil && create && errors.Is(err, fs.ErrNotExist) {
		parent, perr := trustfs.Open(filepath.Dir(dir), trustfs.Dir|trustfs.NoLinks)
		if perr != nil {
			return -1
		}
		defer parent.Close()
		base := filepath.Base(dir)
		if err := unix.Mkdirat(parent.Fd, base, 0o700); err != nil && err != unix.EEXIST {
			return -1
		}
		f.Fd, err = unix.Openat(parent.Fd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Fstat(f.Fd, &f.Stat)
		}
	}
	if err != nil || f.Stat.Mode&unix.S_IFMT != unix.S_IFDIR || f.Stat.Uid != 0 || f.Stat.Mode&0o7777 != 0o700 {
		f.Close()
		return -1
	}
	return f.Fd
}

// readCache reads the compiled policy name in the cache directory dirfd;
// ok is false on any doubt.
func readCache(dirfd int, name, key, source string) (*Policy, bool) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != 0o600 || st.Uid != 0 {
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

// writeCache replaces the cache file name in the cache directory dirfd
// atomically: a new file created exclusively next to it, renamed over it.
// Failures are ignored (the next call parses again).
func writeCache(dirfd int, name string, data []byte) {
	tmp := ".policy-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	ok := true
	for rest := data; len(rest) > 0 && ok; {
		n, err := unix.Write(fd, rest)
		switch {
		case err == unix.EINTR:
		case err != nil || n <= 0:
			ok = false
		default:
			rest = rest[n:]
		}
	}
	// The umask may have taken bits away; readCache wants 0600 exactly.
	ok = ok && unix.Fchmod(fd, 0o600) == nil
	ok = unix.Close(fd) == nil && ok
	if !ok || unix.Renameat(dirfd, tmp, dirfd, name) != nil {
		unix.Unlinkat(dirfd, tmp, 0)
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
