package install

import (
	"fmt"
	"strings"
)

// contextLines is how many unchanged lines a hunk shows around a change.
const contextLines = 3

// Diff returns a unified diff (diff -u style, 3 lines of context) that
// turns a into b, with the file names oldName and newName in its ---/+++
// headers. It returns "" when a and b are equal. A last line without a
// newline is marked "\ No newline at end of file" as diff does.
func Diff(oldName, newName string, a, b []byte) string {
	if string(a) == string(b) {
		return ""
	}
	x, y := splitLines(string(a)), splitLines(string(b))
	ops := lineOps(x, y)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	// Walk the edit script and cut it into hunks: runs of changes with up
	// to contextLines equal lines around them, merged when they are closer
	// than 2*contextLines equal lines.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-contextLines, 0)
		end := i // one past the last change of this hunk
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j + 1
				continue
			}
			if j-end >= 2*contextLines {
				break
			}
		}
		stop := min(end+contextLines, len(ops))
		writeHunk(&sb, ops[start:stop])
		i = stop
	}
	return sb.String()
}

// op is one line of an edit script: ' ' kept, '-' removed, '+' added. ai
// and bi are the line's index in a and b (the index it would have for the
// side it is not in).
type op struct {
	kind   byte
	line   string
	ai, bi int
}

// writeHunk writes one @@ hunk. Line numbers count from 1; an empty side
// names the line before it, as diff -u does.
func writeHunk(sb *strings.Builder, ops []op) {
	var na, nb int
	for _, o := range ops {
		if o.kind != '+' {
			na++
		}
		if o.kind != '-' {
			nb++
		}
	}
	sa, sbn := ops[0].ai+1, ops[0].bi+1
	if na == 0 {
		sa--
	}
	if nb == 0 {
		sbn--
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", hunkRange(sa, na), hunkRange(sbn, nb))
	for _, o := range ops {
		sb.WriteByte(o.kind)
		sb.WriteString(o.line)
		if !strings.HasSuffix(o.line, "\n") {
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

func hunkRange(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

// splitLines splits s after each newline; a last line without one is kept.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// lineOps returns a shortest edit script from x to y, found as a longest
// common subsequence of lines. The common prefix and suffix are taken off
// first, so the quadratic table only covers the changed middle.
func lineOps(x, y []string) []op {
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]
	// lcs[i][j] is the LCS length of mx[i:] and my[j:].
	lcs := make([][]int, len(mx)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(my)+1)
	}
	for i := len(mx) - 1; i >= 0; i-- {
		for j := len(my) - 1; j >= 0; j-- {
			if mx[i] == my[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	ops := make([]op, 0, len(x)+len(y))
	for i := 0; i < pre; i++ {
		ops = append(ops, op{' ', x[i], i, i})
	}
	i, j := 0, 0
	for i < len(mx) || j < len(my) {
		switch {
		case i < len(mx) && j < len(my) && mx[i] == my[j]:
			ops = append(ops, op{' ', mx[i], pre + i, pre + j})
			i++
			j++
		case j < len(my) && (i == len(mx) || lcs[i][j+1] > lcs[i+1][j]):
			ops = append(ops, op{'+', my[j], pre + i, pre + j})
			j++
		default:
			ops = append(ops, op{'-', mx[i], pre + i, pre + j})
			i++
		}
	}
	for k := 0; k < suf; k++ {
		ops = append(ops, op{' ', x[len(x)-suf+k], len(x) - suf + k, len(y) - suf + k})
	}
	return ops
}
