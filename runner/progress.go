package runner

import (
	"context"
	"sync"
	"time"

	"github.com/migrun/migrun/steps"
)

const (
	// progressEvery spaces a bar's progress events: enough for a
	// dashboard, few enough that a fast copy does not flood the output.
	progressEvery = time.Second
	// runningAfter is how long a step runs before step_running events
	// say it still does, and runningEvery how often they repeat.
	runningAfter = 2 * time.Second
	runningEvery = 5 * time.Second
)

// stepProgress hands a step's progress to the CLI's reporter (the bar on
// a terminal) and, as progress events, to Events.
type stepProgress struct {
	inner steps.Progress
	emit  func(Event)
	ev    Event // the step's identity: Step, Kind, Host, Rollback
}

func (p stepProgress) Start(t steps.Task) steps.Bar {
	b := &eventBar{inner: p.inner.Start(t), p: p, task: t, done: t.Done, start: time.Now()}
	b.send(false)
	return b
}

// eventBar emits a progress event at most every progressEvery, and one at
// the end.
type eventBar struct {
	inner steps.Bar
	p     stepProgress
	task  steps.Task
	mu    sync.Mutex
	done  int64
	start time.Time
	last  time.Time
}

func (b *eventBar) Add(n int64) {
	b.inner.Add(n)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if time.Since(b.last) >= progressEvery {
		b.send(false)
	}
}

func (b *eventBar) Done(err error) {
	b.inner.Done(err)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.send(true)
}

// send emits the bar's state; the caller holds mu (or owns b).
func (b *eventBar) send(final bool) {
	b.last = time.Now()
	e := b.p.ev
	e.Type = EventProgress
	e.Duration = b.last.Sub(b.start)
	e.Progress = &ProgressInfo{Label: b.task.Label, Unit: string(b.task.Unit), Done: b.done, Total: b.task.Total, Final: final}
	b.p.emit(e)
}

// whileRunning emits step_running events for ev's step from runningAfter
// until the returned stop is called: a step that prints nothing for
// minutes (a restore, a wait) is visibly alive.
func (r *Runner) whileRunning(ctx context.Context, ev Event) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTimer(runningAfter)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			e := ev
			e.Type, e.Duration = EventStepRunning, time.Since(start)
			r.emit(e)
			t.Reset(runningEvery)
		}
	}()
	return func() { cancel(); <-done }
}
