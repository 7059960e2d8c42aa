package textedit

import (
	"strings"

	"github.com/migrun/migrun/internal/ovirtconf"
)

// The lines of a file being edited: their bodies and line endings, kept
// as they were (CRLF or LF, a missing last newline) for what is not changed.

// Line is one physical line of a file being edited: its bytes, with
// the line terminator, and what a diff shows in its place.
type Line struct {
	Text string
	Show string
}

// RawLines splits s into physical lines that keep their terminators; a
// last line without one stays without. "" has no lines.
func RawLines(s string) []string { return ovirtconf.Lines(s) }

// LineBody splits a physical line into its content and its terminator
// ("\n", "\r\n" or "" for a last line without one).
func LineBody(l string) (body, eol string) {
	if b, ok := strings.CutSuffix(l, "\r\n"); ok {
		return b, "\r\n"
	}
	if b, ok := strings.CutSuffix(l, "\n"); ok {
		return b, "\n"
	}
	return l, ""
}

// FileEOL is the terminator new lines get: the file's own, so that a file
// with CRLF lines does not end up with both.
func FileEOL(lines []string) string {
	for _, l := range lines {
		if _, eol := LineBody(l); eol != "" {
			return eol
		}
	}
	return "\n"
}

// PlainLines are the lines of s shown as they are.
func PlainLines(s string) []Line {
	raw := RawLines(s)
	out := make([]Line, len(raw))
	for i, l := range raw {
		out[i] = Line{l, l}
	}
	return out
}

// AppendLines adds lines at the end of out, first ending a last line that
// has no terminator (the only change an append makes to an existing line).
func AppendLines(out []Line, eol string, add ...Line) []Line {
	if len(add) == 0 {
		return out
	}
	if n := len(out); n > 0 && !strings.HasSuffix(out[n-1].Text, "\n") {
		out[n-1].Text += eol
		out[n-1].Show += eol
	}
	return append(out, add...)
}

func JoinText(ls []Line) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Text)
	}
	return b.String()
}

func JoinShow(ls []Line) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Show)
	}
	return b.String()
}
