package steps

import (
	"strings"

	"github.com/migrun/migrun/internal/ovirtconf"
)

// The lines of a file being edited: their bodies and line endings, kept
// as they were (CRLF or LF, a missing last newline) for what is not changed.

// textLine is one physical line of a file being edited: its bytes, with
// the line terminator, and what a diff shows in its place.
type textLine struct {
	text string
	show string
}

// rawLines splits s into physical lines that keep their terminators; a
// last line without one stays without. "" has no lines.
func rawLines(s string) []string { return ovirtconf.Lines(s) }

// lineBody splits a physical line into its content and its terminator
// ("\n", "\r\n" or "" for a last line without one).
func lineBody(l string) (body, eol string) {
	if b, ok := strings.CutSuffix(l, "\r\n"); ok {
		return b, "\r\n"
	}
	if b, ok := strings.CutSuffix(l, "\n"); ok {
		return b, "\n"
	}
	return l, ""
}

// fileEOL is the terminator new lines get: the file's own, so that a file
// with CRLF lines does not end up with both.
func fileEOL(lines []string) string {
	for _, l := range lines {
		if _, eol := lineBody(l); eol != "" {
			return eol
		}
	}
	return "\n"
}

// plainLines are the lines of s shown as they are.
func plainLines(s string) []textLine {
	raw := rawLines(s)
	out := make([]textLine, len(raw))
	for i, l := range raw {
		out[i] = textLine{l, l}
	}
	return out
}

// appendLines adds lines at the end of out, first ending a last line that
// has no terminator (the only change an append makes to an existing line).
func appendLines(out []textLine, eol string, add ...textLine) []textLine {
	if len(add) == 0 {
		return out
	}
	if n := len(out); n > 0 && !strings.HasSuffix(out[n-1].text, "\n") {
		out[n-1].text += eol
		out[n-1].show += eol
	}
	return append(out, add...)
}

func joinText(ls []textLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.text)
	}
	return b.String()
}

func joinShow(ls []textLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.show)
	}
	return b.String()
}
