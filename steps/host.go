package steps

import (
	"context"
	"io"
	"sync"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/svcctl"
)

// hostSession is a host kind's session (steps/internal/hostcmd) tied to
// the step's Runtime: its errors are WhereErrors, its dry-run lines
// Actions, its output an Outcome.
type hostSession struct {
	*hostcmd.Session
	rt *Runtime
}

// openHost connects to the step's host for one Check, Describe or Apply;
// what names the work in errors ("service nginx").
func openHost(ctx context.Context, rt *Runtime, what string) (*hostSession, error) {
	h := &hostSession{rt: rt, Session: hostcmd.New(nil, rt.Host, rt.Become, what, rt.Secrets, rt.Output, 2*outputTail)}
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return h, h.wrap(err)
	}
	h.Ex = ex
	return h, nil
}

// wrap names the work and the host. An *executors.ExitError stays
// reachable with errors.As.
func (h *hostSession) wrap(err error) error {
	return &WhereError{Where: h.What + " on " + h.Where(), Err: err}
}

// outcome reports the commands' output; changed is false when nothing ran.
func (h *hostSession) outcome(changed bool) Outcome {
	return Outcome{Changed: changed, Output: h.Output(outputTail)}
}

// action is the dry-run line for c, in the words of the command kind.
func (h *hostSession) action(c hostcmd.Cmd) Action {
	return Action{Host: h.rt.Host, Summary: h.Line(c)}
}

// streamOutput returns where a stream's two commands write: a tail kept
// for the step's outcome and error, and rt.Output when there is one,
// locked since the two write at once and rt.Output need not be safe for
// that.
func streamOutput(rt *Runtime) (*executors.Tail, io.Writer) {
	out := executors.NewTail(outputTail)
	if rt.Output == nil {
		return out, out
	}
	return out, io.MultiWriter(&lockedWriter{w: rt.Output}, out)
}

// lockedWriter serialises writes from several commands to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// describeService and applyService put a service on the step's host in
// the state w wants (svcctl), as the service kind does; pg_conf restarts
// its server with them.
func describeService(ctx context.Context, rt *Runtime, w svcctl.Want) ([]Action, error) {
	h, err := openHost(ctx, rt, "service "+w.Name)
	if err != nil {
		// Offline or unreachable: still say what the step is for.
		return []Action{{Host: rt.Host, Summary: w.Intent()}}, err
	}
	p, err := w.Plan(ctx, h.Session)
	if err != nil {
		return []Action{{Host: rt.Host, Summary: w.Intent()}}, h.wrap(err)
	}
	var acts []Action
	for _, line := range w.Describe(h.Session, p) {
		acts = append(acts, Action{Host: rt.Host, Summary: line})
	}
	return acts, nil
}

// applyService runs planned, what the step's check decided for w, or
// plans again when it is nil: in the downtime, the start of the engine
// probed systemd twice (45-100 ms on the stand-in hosts).
func applyService(ctx context.Context, rt *Runtime, w svcctl.Want, planned *svcctl.Plan) (Outcome, error) {
	h, err := openHost(ctx, rt, "service "+w.Name)
	if err != nil {
		return Outcome{}, err
	}
	p := planned
	if p == nil {
		if p, err = w.Plan(ctx, h.Session); err != nil {
			return Outcome{}, h.wrap(err)
		}
	}
	if err := w.Apply(ctx, h.Session, p); err != nil {
		return h.outcome(true), h.wrap(err)
	}
	return h.outcome(!p.Done()), nil
}
