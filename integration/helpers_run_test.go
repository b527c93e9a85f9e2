//go:build integration

package integration

// The one way the tests run a command to its end: runCmd. It reports how
// the command ended and leaves the verdict to the caller, because the
// same exit status is a failure in one test and the expected refusal in
// the next.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// defaultCmdTimeout bounds a command whose cmdOpts give no timeout.
const defaultCmdTimeout = time.Minute

// cmdOpts are the settings of one runCmd call. The zero value runs the
// command for at most defaultCmdTimeout with this process's environment
// in this process's directory.
type cmdOpts struct {
	timeout time.Duration // 0: defaultCmdTimeout
	env     []string      // the whole environment; nil: this process's
	dir     string        // working directory; "": this process's
	// outDir keeps the stdout and stderr files, for a process that
	// outlives the command (a detached exec, a created container) and
	// writes to them later; "": they are removed once read.
	outDir string
}

// cmdResult is what a finished command left behind.
type cmdResult struct {
	cmdline        string
	stdout, stderr string
	// stdoutPath and stderrPath are the files that got the output, when
	// cmdOpts.outDir kept them.
	stdoutPath, stderrPath string
	logPath                string // the --log file named on the command line, if any
	// exited is true when the command ended by itself, whatever its exit
	// code; false when it could not start or was killed at the timeout.
	exited bool
	code   int   // exit code; -1 when it did not exit by itself or a signal ended it
	err    error // nil for exit 0; else the exit status, the timeout, or why it did not start
	took   time.Duration
}

// String renders the result for failure messages: command, how it ended,
// output, and the --log file.
func (r cmdResult) String() string {
	status := "exit status 0"
	if r.err != nil {
		status = r.err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "$ %s\n(%s, after %v)\n--- stdout ---\n%s\n--- stderr ---\n%s\n", r.cmdline, status, r.took.Round(time.Millisecond), r.stdout, r.stderr)
	if r.logPath != "" {
		data, err := os.ReadFile(r.logPath)
		if err != nil {
			fmt.Fprintf(&b, "--- log %s: %v\n", r.logPath, err)
		} else {
			fmt.Fprintf(&b, "--- log %s ---\n%s\n", r.logPath, data)
		}
	}
	return b.String()
}

// runCmd runs name with args and returns what it printed and how it
// ended. It never fails the test: whether a non-zero exit, a timeout or a
// missing binary is an error is for the caller to say (requireExited
// covers the common case). stdin is /dev/null; stdout and stderr go to
// files rather than pipes, so that a container which inherits them and
// outlives the command cannot keep runCmd waiting for them to close.
// runCmd calls no testing method and may run in any goroutine.
func runCmd(o cmdOpts, name string, args ...string) cmdResult {
	r := cmdResult{cmdline: strings.Join(append([]string{name}, args...), " "), code: -1}
	for i, a := range args {
		if a == "--log" && i+1 < len(args) {
			r.logPath = args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--log="); ok {
			r.logPath = v
		}
	}
	dir := o.outDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "capshim-it-out-")
		if err != nil {
			r.err = err
			return r
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	outF, err := os.CreateTemp(dir, "stdout-")
	if err != nil {
		r.err = err
		return r
	}
	defer outF.Close()
	errF, err := os.CreateTemp(dir, "stderr-")
	if err != nil {
		r.err = err
		return r
	}
	defer errF.Close()

	timeout := o.timeout
	if timeout == 0 {
		timeout = defaultCmdTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = o.dir, o.env
	cmd.Stdout, cmd.Stderr = outF, errF
	// A process that survives the kill at the timeout is given this long
	// before Wait stops waiting for it.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	r.took = time.Since(start)
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	r.stdout, r.stderr = string(stdout), string(stderr)
	if o.outDir != "" {
		r.stdoutPath, r.stderrPath = outF.Name(), errF.Name()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.exited, r.code = true, 0
	case ctx.Err() != nil:
		r.err = fmt.Errorf("timed out after %v: %w", timeout, err)
	case errors.As(err, &ee):
		r.exited, r.code, r.err = true, ee.ExitCode(), err
	default:
		r.err = err
	}
	return r
}

// requireExited ends the test when r's command did not end by itself (it
// timed out or could not start), and returns r. A test that expects a
// non-zero exit calls it, so that a kill is not taken for a refusal.
func requireExited(t *testing.T, r cmdResult) cmdResult {
	t.Helper()
	if !r.exited {
		t.Fatalf("the command did not run to its end: %v\n%s", r.err, r)
	}
	return r
}
