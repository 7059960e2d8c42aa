package runner

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/executors"
)

// A trace (Options.Trace, `migrun apply --trace FILE`) has one line for
// each thing an apply waits on: the lock, the journal's writes, each
// host's connection and every operation on a host, with when it began,
// how long it took and for which step. It answers "where does the time
// go" (the engine's downtime, a plan of small steps) without a profiler.
// Lines go through the same redaction as the journal: a trace holds no
// secret.

// traceHeader names the columns, tab-separated as the lines are.
const traceHeader = "# start_s\ttook_ms\tstep\thost\twhat\terror\n"

// tracer writes trace lines; a nil tracer writes nothing.
type tracer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	clean func(string) string
}

// newTracer returns a tracer writing to w, nil when w is nil. Times are
// from now.
func newTracer(w io.Writer, clean func(string) string) *tracer {
	if w == nil {
		return nil
	}
	t := &tracer{w: w, start: time.Now(), clean: clean}
	io.WriteString(w, traceHeader)
	return t
}

// line records one operation. Write errors are dropped: a trace is an
// aid, never a reason to stop a migration half way.
func (t *tracer) line(step, host, what string, start time.Time, took time.Duration, err error) {
	if t == nil {
		return
	}
	field := func(s string) string {
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, t.clean(s))
		if s == "" {
			return "-"
		}
		return s
	}
	e := ""
	if err != nil {
		e = err.Error()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%.6f\t%.3f\t%s\t%s\t%s\t%s\n", start.Sub(t.start).Seconds(), float64(took.Microseconds())/1000,
		field(step), field(host), field(what), field(e))
}

// since records an operation that began at start and ends now.
func (t *tracer) since(step, host, what string, start time.Time, err error) {
	if t != nil {
		t.line(step, host, what, start, time.Since(start), err)
	}
}

// op records an operation on a host, for the step its context names.
func (t *tracer) op(ctx context.Context, op executors.Op) {
	t.line(traceStep(ctx), op.Host, op.What, op.Start, op.Took, op.Err)
}

type traceStepKey struct{}

// withTraceStep tags what runs under ctx as done for step id: the hosts'
// executors are shared by every step, the context says whose turn it is.
func withTraceStep(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, traceStepKey{}, id)
}

func traceStep(ctx context.Context) string {
	id, _ := ctx.Value(traceStepKey{}).(string)
	return id
}
