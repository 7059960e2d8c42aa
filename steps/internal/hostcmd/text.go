package hostcmd

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/executors"
)

// OneLine shortens a command to its first line, for reasons and messages.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// Plural renders "1 line", "3 lines".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// SortedKeys is m's keys in order, for output that does not change
// between runs.
func SortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// FirstNonBlankLine is the first non-blank line of s, trimmed.
func FirstNonBlankLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// Sleep waits d, or less when ctx ends first (then its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FirstLine is the first line of err's message, for one-line reasons.
func FirstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// LineSplitter cuts a command's output, as it streams, into lines for a
// writer that reads it line by line.
type LineSplitter struct{ partial []byte }

// maxLine bounds a line: a pathological one without newlines is passed
// on in pieces rather than held without bound.
const maxLine = 64 << 10

// Feed passes each whole line of what came so far, newline included, to
// line, and keeps the rest for later.
func (s *LineSplitter) Feed(b []byte, line func([]byte)) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line(s.partial[:i+1])
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) > maxLine {
		line(s.partial)
		s.partial = nil
	}
}

// Flush passes on a last line that had no newline.
func (s *LineSplitter) Flush(line func([]byte)) {
	if len(s.partial) > 0 {
		line(s.partial)
		s.partial = nil
	}
}

// ShortSum shortens a sha256 for messages.
func ShortSum(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// AtOnce runs a and b concurrently, the two hosts of a copy or a comparison answering at
// the same time, and returns both answers.
func AtOnce[A, B any](a func() (A, error), b func() (B, error)) (ra A, rb B, errA, errB error) {
	var wg sync.WaitGroup
	wg.Go(func() { ra, errA = a() })
	rb, errB = b()
	wg.Wait()
	return ra, rb, errA, errB
}

// EnvPrefix renders env as the assignments a shell line starts with.
func EnvPrefix(env map[string]string) string {
	var b strings.Builder
	for _, k := range SortedKeys(env) {
		b.WriteString(k + "=" + executors.Quote(env[k]) + " ")
	}
	return b.String()
}

// ServiceNameRE accepts systemd unit names (with their \x2d escapes and
// template @) and init script names. A leading '-' would read as an option.
var ServiceNameRE = regexp.MustCompile(`^[A-Za-z0-9_@\\][A-Za-z0-9_@.:\\-]*$`)

// PositiveDuration reads a plan's duration attribute: a Go duration such
// as 90s or 5m, greater than zero; def when s is empty.
func PositiveDuration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive Go duration such as 90s or 5m", s)
	}
	return d, nil
}
