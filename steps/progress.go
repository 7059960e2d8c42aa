package steps

import (
	"io"
	"strings"
	"sync"

	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// NopProgress is a Progress that reports nothing: the runner's default
// when no one watches, and what tests use.
type NopProgress struct{}

// Start returns a Bar that ignores everything.
func (NopProgress) Start(Task) Bar { return nopBar{} }

type nopBar struct{}

func (nopBar) Add(int64)  {}
func (nopBar) Done(error) {}

// progressOf returns rt.Progress, or NopProgress for a Runtime built by
// hand (tests, tools) that left it nil.
func progressOf(rt *Runtime) Progress {
	if rt.Progress == nil {
		return NopProgress{}
	}
	return rt.Progress
}

// lineProgress is a writer for a command's output that turns the lines
// reporting progress into bar steps. For each whole line, classify says
// whether it counts one unit of work and whether it is narration to drop
// (pg_dump -v and pg_restore -v narrate every object: that is progress,
// not output). Other lines go to w whole. Close passes on a last
// unterminated line.
type lineProgress struct {
	w        io.Writer
	bar      Bar
	classify func(line string) (count, drop bool)
	limit    int64 // the bar's total: counting stops there (0: no limit)
	mu       sync.Mutex
	counted  int64
	lines    hostcmd.LineSplitter
}

func (l *lineProgress) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines.Feed(b, l.line)
	return len(b), nil
}

func (l *lineProgress) line(b []byte) {
	count, drop := l.classify(strings.TrimRight(string(b), "\r\n"))
	if count && (l.limit <= 0 || l.counted < l.limit) {
		l.counted++
		l.bar.Add(1)
	}
	if !drop {
		l.w.Write(b)
	}
}

func (l *lineProgress) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines.Flush(l.line)
	return nil
}

// barWriter shows the bytes written to it as progress.
type barWriter struct{ bar Bar }

func (w barWriter) Write(p []byte) (int, error) {
	w.bar.Add(int64(len(p)))
	return len(p), nil
}
