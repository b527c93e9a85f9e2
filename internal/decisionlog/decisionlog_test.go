package decisionlog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// readAll returns the lines of every file of the log, oldest first.
func readAll(t *testing.T, l *Log) []string {
	t.Helper()
	files, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range files {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
	}
	return lines
}

// TestAppendConcurrent: many appenders at once (each with its own open
// file, as separate capshim processes have), with rotations under way,
// lose no line and never interleave two.
func TestAppendConcurrent(t *testing.T) {
	dir := t.TempDir()
	// 64 writers × 50 lines of 100 bytes = 320 KB, rotated at 16 KB into
	// enough files to hold all of it.
	l := &Log{Path: filepath.Join(dir, "decisions.log"), MaxSize: 16 << 10, Keep: 40}
	const writers, each = 64, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				line := fmt.Sprintf("w%02d i%02d %s\n", w, i, strings.Repeat("x", 90))
				if err := l.Append([]byte(line)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	lines := readAll(t, l)
	seen := map[string]bool{}
	for _, s := range lines {
		var w, i int
		var pad string
		if n, err := fmt.Sscanf(s, "w%d i%d %s", &w, &i, &pad); n != 3 || err != nil || len(pad) != 90 || len(s) != 98 {
			t.Fatalf("a torn or interleaved line: %q", s)
		}
		if seen[s[:7]] {
			t.Fatalf("line %q twice", s[:7])
		}
		seen[s[:7]] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d lines, want %d", len(seen), writers*each)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) < 10 {
		t.Errorf("only %d files: the log was not rotated", len(entries))
	}
	for _, e := range entries {
		info, _ := e.Info()
		if info.Size() > l.MaxSize {
			t.Errorf("%s has %d bytes, over the bound of %d", e.Name(), info.Size(), l.MaxSize)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", e.Name(), info.Mode().Perm())
		}
	}
}

// TestRotateBounded: the log never holds more than Keep+1 files, and the
// newest lines are in FILE.
func TestRotateBounded(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Path: filepath.Join(dir, "d.log"), MaxSize: 1000, Keep: 3}
	for i := 0; i < 200; i++ {
		if err := l.Append([]byte(fmt.Sprintf("%03d %s\n", i, strings.Repeat("y", 95)))); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := "d.log d.log.1 d.log.2 d.log.3"; strings.Join(names, " ") != want {
		t.Errorf("files %v, want %s", names, want)
	}
	lines := readAll(t, l)
	if len(lines) != 40 || !strings.HasPrefix(lines[0], "160 ") || !strings.HasPrefix(lines[39], "199 ") {
		t.Errorf("%d lines from %.4q to %.4q, want the last 40 (160 to 199)", len(lines), lines[0], lines[len(lines)-1])
	}
}

// TestAppendRefuses: a log that others could change or that leads
// elsewhere is not written, and the error says what to do.
func TestAppendRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the log path
		want  string
	}{
		{
			name: "directory is a symbolic link",
			setup: func(t *testing.T, dir string) string {
				must(t, os.Mkdir(filepath.Join(dir, "real"), 0o700))
				must(t, os.Symlink("real", filepath.Join(dir, "link")))
				return filepath.Join(dir, "link", "d.log")
			},
			want: "is a symbolic link; make it a directory owned by root with mode 0700",
		},
		{
			name: "directory writable by others",
			setup: func(t *testing.T, dir string) string {
				must(t, os.Mkdir(filepath.Join(dir, "open"), 0o700))
				must(t, os.Chmod(filepath.Join(dir, "open"), 0o777))
				return filepath.Join(dir, "open", "d.log")
			},
			want: "must be owned by root and writable by nobody else (it is uid",
		},
		{
			name: "directory is a file",
			setup: func(t *testing.T, dir string) string {
				must(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o600))
				return filepath.Join(dir, "f", "d.log")
			},
			want: "is not a directory",
		},
		{
			name: "log is a symbolic link",
			setup: func(t *testing.T, dir string) string {
				must(t, os.WriteFile(filepath.Join(dir, "target"), nil, 0o600))
				must(t, os.Symlink("target", filepath.Join(dir, "d.log")))
				return filepath.Join(dir, "d.log")
			},
			want: "is a symbolic link; remove it",
		},
		{
			name: "log has a second hard link",
			setup: func(t *testing.T, dir string) string {
				must(t, os.WriteFile(filepath.Join(dir, "other"), nil, 0o600))
				must(t, os.Link(filepath.Join(dir, "other"), filepath.Join(dir, "d.log")))
				return filepath.Join(dir, "d.log")
			},
			want: "has 2 hard links",
		},
		{
			name: "log is a directory",
			setup: func(t *testing.T, dir string) string {
				must(t, os.Mkdir(filepath.Join(dir, "d.log"), 0o700))
				return filepath.Join(dir, "d.log")
			},
			want: "opening the decision log",
		},
		{
			name: "parent of the directory missing",
			setup: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "no", "such", "d.log")
			},
			want: "creating the decision log's directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			l := &Log{Path: path}
			err := l.Append([]byte("line\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Append = %v, want an error with %q", err, tt.want)
			}
			// Nothing was written anywhere.
			for _, p := range []string{filepath.Join(dir, "real", "d.log"), filepath.Join(dir, "target"), filepath.Join(dir, "other")} {
				if data, err := os.ReadFile(p); err == nil && len(data) > 0 {
					t.Errorf("%s was written: %q", p, data)
				}
			}
		})
	}
}

// TestAppendCreates: a missing directory is made root-only, and an old
// log that others could read is made 0600.
func TestAppendCreates(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Path: filepath.Join(dir, "capshim", "d.log")}
	must(t, l.Append([]byte("a\n")))
	st, err := os.Stat(filepath.Join(dir, "capshim"))
	must(t, err)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %04o, want 0700", st.Mode().Perm())
	}
	must(t, os.Chmod(l.Path, 0o644))
	must(t, l.Append([]byte("b\n")))
	st, err = os.Stat(l.Path)
	must(t, err)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("log mode %04o, want 0600", st.Mode().Perm())
	}
	if got := readAll(t, l); strings.Join(got, ",") != "a,b" {
		t.Errorf("lines %v, want a, b", got)
	}
}

// TestAppendWaitsForLock: an append waits for a reader's or another
// writer's lock and then writes; one held too long does not stop it.
func TestAppendWaitsForLock(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Path: filepath.Join(dir, "d.log")}
	must(t, l.Append([]byte("first\n")))
	f, err := os.Open(l.Path)
	must(t, err)
	defer f.Close()
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	// Held beyond lockWait: the append goes ahead unlocked.
	must(t, l.Append([]byte("second\n")))
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_UN))
	data, err := io.ReadAll(f)
	must(t, err)
	if string(data) != "first\nsecond\n" {
		t.Errorf("log %q", data)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAppend is what one decision costs the runtime path: checks,
// open, lock, write and close of a 1 KB line.
func BenchmarkAppend(b *testing.B) {
	l := &Log{Path: filepath.Join(b.TempDir(), "capshim", "d.log")}
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for b.Loop() {
		if err := l.Append(line); err != nil {
			b.Fatal(err)
		}
	}
}
