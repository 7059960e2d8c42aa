package textedit

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// UnifiedDiff renders the change from old to new as a unified diff with
// three lines of context, or "" when they are equal. An empty old is a new
// file and is labelled /dev/null, as diff -N does.
func UnifiedDiff(name, old, new string) string {
	if old == new {
		return ""
	}
	from := name
	if old == "" {
		from = "/dev/null"
	}
	d := difflib.UnifiedDiff{
		A:        splitLines(old),
		B:        splitLines(new),
		FromFile: from,
		ToFile:   name,
		Context:  3,
	}
	s, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		// GetUnifiedDiffString fails only when writing to its own buffer
		// fails, which a bytes.Buffer never does.
		panic("steps: unified diff: " + err.Error())
	}
	return s
}

// splitLines splits s into lines that each end in "\n" (a last line
// without one gets it, so lines never run together in the diff text).
// Unlike difflib.SplitLines it turns "" into no lines, not one empty line
// that a new file's diff would show as a removed blank line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if last := len(lines) - 1; lines[last] == "" {
		lines = lines[:last]
	} else {
		lines[last] += "\n"
	}
	return lines
}
