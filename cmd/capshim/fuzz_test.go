package main

import (
	"strings"
	"testing"
)

// FuzzParseRuntimeArgs feeds arbitrary command lines (NUL-separated) to
// the runc argv parser: it must not panic, must pass every argument on
// except its own --capshim-config, and must read its own output the same
// way again.
func FuzzParseRuntimeArgs(f *testing.F) {
	for _, line := range []string{
		"--root\x00/run/runc/k8s.io\x00--log\x00/b/log.json\x00--log-format\x00json\x00create\x00--bundle\x00/b\x00--pid-file\x00/b/init.pid\x00id",
		"--root\x00/r\x00--log\x00/b/log.json\x00--log-format\x00json\x00exec\x00--process\x00/tmp/runc-process1\x00--detach\x00--pid-file\x00/b/x.pid\x00id",
		"--capshim-config=/etc/capshim/web.toml\x00run\x00-b\x00/b\x00id",
		"exec\x00--cap\x00CAP_SYS_ADMIN\x00-c=CAP_CHOWN\x00id\x00sh\x00-c\x00x",
		"--version",
		"create\x00id\x00--bundle=/b\x00--\x00x",
	} {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		ra, err := parseRuntimeArgs(args)
		if err != nil {
			return
		}
		// ra.argv is args with only capshim's own global flag taken out.
		j := 0
		for i := 0; i < len(args); i++ {
			if j < len(ra.argv) && args[i] == ra.argv[j] {
				j++
				continue
			}
			name, _, has, ok := splitFlag(args[i])
			if !ok || name != "capshim-config" {
				t.Fatalf("argument %d %q was dropped: argv %q", i, args[i], ra.argv)
			}
			if !has {
				i++
			}
		}
		if j != len(ra.argv) {
			t.Fatalf("argv %q is not taken from %q", ra.argv, args)
		}
		again, err := parseRuntimeArgs(ra.argv)
		if err != nil {
			t.Fatalf("own output refused: %v", err)
		}
		if again.command != ra.command || again.bundle != ra.bundle || again.process != ra.process || again.id != ra.id || len(again.caps) != len(ra.caps) {
			t.Fatalf("second parse differs: %+v vs %+v", again, ra)
		}
		for _, c := range ra.caps {
			if c.at <= ra.cmdAt || c.at+c.n > len(ra.argv) {
				t.Fatalf("cap flag position %d+%d outside the command", c.at, c.n)
			}
		}
		if reduces(ra.command) && ra.id == "" {
			t.Fatal("reducing command without a container id")
		}
	})
}
