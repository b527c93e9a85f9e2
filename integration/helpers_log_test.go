//go:build integration

package integration

// capshim's logs, line by line: the runtime log (--log, JSON or logrus
// text, as the engine asked) and the policy's decision log.

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// logLine is one line of a --log or decision log file; obj is nil when
// the line is not JSON.
type logLine struct {
	raw string
	obj map[string]any
}

// logLines returns the non-empty lines of a log file.
func logLines(t *testing.T, path string) []logLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading log %s: %v", path, err)
	}
	var out []logLine
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			m = nil
		}
		out = append(out, logLine{raw: l, obj: m})
	}
	return out
}

// logMsgs returns the msg of every JSON line of the given level in a
// --log file (no file: none).
func logMsgs(t *testing.T, path, level string) []string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	var out []string
	for _, l := range logLines(t, path) {
		if l.obj != nil && l.obj["level"] == level {
			m, _ := l.obj["msg"].(string)
			out = append(out, m)
		}
	}
	return out
}

// checkErrorLog checks the --log file holds an error line written by capshim
// in the given format and returns its message ("" after a failure).
func checkErrorLog(t *testing.T, log, format string) string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Errorf("no --log file: %v", err)
		return ""
	}
	switch format {
	case "json":
		for _, l := range logLines(t, log) {
			if l.obj == nil || l.obj["level"] != "error" {
				continue
			}
			msg, _ := l.obj["msg"].(string)
			if !strings.HasPrefix(msg, "capshim:") {
				continue
			}
			if ts, _ := l.obj["time"].(string); ts == "" {
				t.Errorf("error line has no time: %s", l.raw)
			} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("error line time %q is not RFC3339: %v", ts, err)
			}
			return msg
		}
		t.Errorf(`--log has no JSON line with "level":"error" and a msg starting "capshim:":\n%s`, data)
	case "text":
		// logrus text format: time="..." level=error msg="capshim: ..."
		re := regexp.MustCompile(`level=error msg="(capshim:(?:[^"\\]|\\.)*)"`)
		for _, l := range strings.Split(string(data), "\n") {
			if m := re.FindStringSubmatch(l); m != nil {
				if json.Valid([]byte(l)) {
					t.Errorf("text log line is JSON: %s", l)
				}
				return m[1]
			}
		}
		t.Errorf(`--log has no text line with level=error msg="capshim: ...":\n%s`, data)
	}
	return ""
}
