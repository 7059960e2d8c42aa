package runner

// Longer than 400 lines on purpose: it is one run from journal preparation
// to rollback; the order of journal writes and events is the durability
// promise the README makes, and it is checked by reading it in one place.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// Apply runs the plan. A migration is one-shot: a plan whose journal says
// completed is refused (ErrCompleted) unless Restart, and an unfinished one
// needs Resume or Restart (ErrUnfinished). On a step failure the on_failure
// steps run and a *RunError is returned; on cancel the journal is left
// resumable and ctx.Err() is returned.
func (r *Runner) Apply(ctx context.Context) (j *Journal, err error) {
	if err := r.checkSelection(); err != nil {
		return nil, err
	}
	trace := newTracer(r.opts.Trace, r.clean)
	begin := time.Now()
	lk, err := r.opts.State.Lock(ctx, r.journalName(), ThisProcess(r.opts.Now))
	trace.since("", "", "lock", begin, err)
	if err != nil {
		return nil, err
	}
	// Released at the end once the final snapshot is saved; this one is
	// for the returns before that, and then does nothing.
	defer lk.Release(false)
	// A lock the store can lose (its database session ended) stops the
	// run: another workstation may take the plan over from then on.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if lost := lk.Lost(); lost != nil {
		go func() {
			select {
			case <-lost:
				stop(ErrLockLost)
			case <-ctx.Done():
			}
		}()
	}

	begin = time.Now()
	old, err := lk.Read(ctx)
	trace.since("", "", "journal read", begin, err)
	if err != nil {
		return nil, err
	}
	j, mode, err := r.prepareJournal(old)
	if err != nil {
		return old, err
	}

	hosts := newPool(r.plan.Hosts, r.connect, false, false)
	hosts.trace = trace
	defer hosts.close()
	r.emit(Event{Type: EventRunStart, Mode: mode})
	if err := r.learnHosts(ctx, hosts, j.Detected); err != nil {
		// Nothing ran: leave an existing journal as it was.
		err = fmt.Errorf("%w; nothing was changed", err)
		r.emit(Event{Type: EventRunEnd, Mode: mode, Status: StatusFailed, Error: err.Error()})
		return old, err
	}
	j.Detected = r.detected
	if err := r.preflight(ctx, hosts, j); err != nil {
		// Nothing ran: leave an existing journal as it was.
		r.emit(Event{Type: EventRunEnd, Mode: mode, Status: StatusFailed, Error: err.Error()})
		return old, err
	}
	begin = time.Now()
	j.Updated = r.opts.Now()
	err = lk.Save(ctx, j)
	trace.since("", "", "journal save", begin, err)
	if err != nil {
		return j, err
	}

	a := &applier{Runner: r, j: j, hosts: hosts, lock: lk, trace: trace, invocation: j.History[len(j.History)-1].RunID,
		prepared: steps.NewPrepared()}
	runErr := a.run(ctx)
	a.prepared.Close()

	hist := &j.History[len(j.History)-1]
	now := r.opts.Now()
	switch {
	case runErr == nil:
		j.Status = StatusCompleted
		j.Ended = now
	case errors.Is(context.Cause(ctx), ErrLockLost):
		j.Status = StatusInterrupted
		runErr = fmt.Errorf("interrupted: %w (resume with --resume once the state store is reachable)", ErrLockLost)
	case ctx.Err() != nil:
		j.Status = StatusInterrupted
		runErr = fmt.Errorf("interrupted: %w (resume with --resume)", ctx.Err())
	default:
		j.Status = StatusFailed
		j.Ended = now
	}
	hist.Status, hist.Ended = j.Status, now
	begin = time.Now()
	j.Updated = now
	// The final save is made even when ctx is done: it records how the
	// run ended.
	saveErr := lk.Save(context.WithoutCancel(ctx), j)
	trace.since("", "", "journal save", begin, saveErr)
	if err := lk.Release(saveErr == nil); err != nil && saveErr == nil {
		saveErr = err
	}
	if saveErr != nil && runErr == nil {
		runErr = saveErr
	}
	end := Event{Type: EventRunEnd, Mode: mode, Status: j.Status}
	if runErr != nil {
		end.Error = runErr.Error()
	}
	r.emit(end)
	return j, runErr
}

// prepareJournal decides how this apply relates to the last one and
// returns the journal to run with and the mode: fresh, resume or restart.
func (r *Runner) prepareJournal(old *Journal) (*Journal, string, error) {
	mode := "fresh"
	switch {
	case r.opts.Restart:
		mode = "restart"
	case r.opts.Resume:
		if err := resumeRefusal(old); err != nil {
			return nil, "", err
		}
		if a, b := reviewedSHA(old.Reviewed), reviewedSHA(r.opts.Reviewed); a != b {
			return nil, "", fmt.Errorf("%w: the journal's run applies %s, this one %s", ErrOtherReview, orNone(a), orNone(b))
		}
		mode = "resume"
	default:
		if err := freshRefusal(old); err != nil {
			return nil, "", err
		}
	}

	who, ws := whoAmI()
	now := r.opts.Now()
	runID := newRunID(now)
	var j *Journal
	if mode == "resume" {
		var err error
		if j, err = r.reconcile(old); err != nil {
			return nil, "", err
		}
	} else {
		j = &Journal{Version: journalVersion, Started: now}
		if old != nil {
			j.History = old.History
		}
		for _, st := range r.plan.Steps {
			j.Steps = append(j.Steps, newRecord(st))
		}
	}
	j.Plan, j.PlanFile, j.PlanDigest = r.plan.Name, r.plan.File, r.plan.Digest
	if mode != "resume" {
		// A resume continues the same run; only fresh runs get a new id.
		j.RunID = runID
	}
	j.Status, j.User, j.Workstation = StatusRunning, who, ws
	j.FailedStep, j.Error, j.PointOfNoReturn, j.Ended = "", "", "", time.Time{}
	j.OnFailure = nil
	j.Reviewed = r.opts.Reviewed
	j.History = append(j.History, RunRecord{RunID: runID, Mode: mode, Started: now, Status: StatusRunning,
		User: who, From: ws, Reviewed: r.opts.Reviewed})
	return j, mode, nil
}

func reviewedSHA(ref *ReviewRef) string {
	if ref == nil {
		return ""
	}
	return "reviewed plan sha256 " + ref.SHA256
}

// reconcile lines the old journal up with the plan as it is now. A step
// recorded done whose definition changed refuses the resume: the work done
// is not the work the plan now asks for.
func (r *Runner) reconcile(old *Journal) (*Journal, error) {
	j := *old
	j.Steps = nil
	var changed []string
	for _, st := range r.plan.Steps {
		rec := old.step(st.ID)
		if rec == nil {
			rec = newRecord(st)
		} else if rec.Digest != st.Digest {
			if rec.Status == StatusDone {
				changed = append(changed, st.ID)
			}
			rec.Digest, rec.Kind, rec.Host = st.Digest, st.Kind, stepHost(st)
		}
		j.Steps = append(j.Steps, rec)
	}
	if len(changed) > 0 {
		return nil, fmt.Errorf("cannot resume: %w: %s (use --restart to run the plan from the start)", ErrPlanChanged, strings.Join(changed, ", "))
	}
	return &j, nil
}

// RolledBack lists the on_failure steps of j that did something: such a
// run cannot be resumed, only restarted.
func (j *Journal) RolledBack() []string {
	var ran []string
	for _, rec := range j.OnFailure {
		if rec.Changed || rec.Status == StatusFailed || rec.Status == StatusUnknown {
			ran = append(ran, rec.ID)
		}
	}
	return ran
}

func newRecord(st plan.Step) *StepRecord {
	return &StepRecord{ID: st.ID, Kind: st.Kind, Host: stepHost(st), Digest: st.Digest, Status: StatusPending}
}

func newRunID(now time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// applier is one apply in progress.
type applier struct {
	*Runner
	j          *Journal
	hosts      *pool
	lock       Lock
	trace      *tracer
	invocation string // this apply's own RunID, tagging its log entries
	// prepared holds what the next step opened ahead (steps.Preparer);
	// preparedStep is the last step prepared, so that none is twice.
	prepared     *steps.Prepared
	preparedStep int
}

// note records a transition of rec (nil: the run's own fields) in the
// journal log. sync makes it durable, with every transition before it:
// callers sync before a step changes its hosts (see journalLog).
func (a *applier) note(rec *StepRecord, sync bool) error {
	now := a.opts.Now()
	a.j.Updated = now
	e := LogEntry{Run: a.invocation, Step: rec, Status: a.j.Status, FailedStep: a.j.FailedStep, Error: a.j.Error,
		PointOfNoReturn: a.j.PointOfNoReturn, Updated: now}
	if rec != nil {
		e.List, e.Index = "steps", slices.Index(a.j.Steps, rec)
		if e.Index < 0 {
			e.List, e.Index = "on_failure", slices.Index(a.j.OnFailure, rec)
		}
	}
	begin := time.Now()
	err := a.lock.Append(context.Background(), e, sync)
	what := "journal append"
	if sync {
		what = "journal append, synced"
	}
	if rec != nil {
		what += " (" + rec.Status + ")"
	}
	step := ""
	if rec != nil {
		step = rec.ID
	}
	a.trace.since(step, "", what, begin, err)
	return err
}

// noteThenEmit records a transition before announcing it, so that whoever
// sees "step done" can rely on the journal saying so too.
func (a *applier) noteThenEmit(rec *StepRecord, e Event) error {
	err := a.note(rec, false)
	a.emit(e)
	return err
}

func (a *applier) run(ctx context.Context) error {
	for i, st := range a.plan.Steps {
		rec := a.j.Steps[i]
		if rec.Status == StatusDone || (rec.Status == StatusSkipped && a.opts.Resume) {
			continue // recorded done by an earlier run
		}
		if !a.selected(i, st.ID) {
			a.finish(rec, StatusSkipped, "not selected (--from/--only)")
			if err := a.note(rec, false); err != nil {
				return err
			}
			a.emit(Event{Type: EventStepEnd, Step: st.ID, Kind: st.Kind, Host: rec.Host, Status: StatusSkipped, Reason: rec.Reason})
			continue
		}
		a.prepareNext(ctx, i)
		err := a.step(ctx, st, rec, false)
		a.prepared.Done(st.ID)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		a.j.FailedStep = st.ID
		a.j.Error = a.clean(err.Error())
		var stepErr *StepError
		isStepErr := errors.As(err, &stepErr)
		if isStepErr {
			a.j.PointOfNoReturn = a.passedPointOfNoReturn(i)
		}
		if serr := a.note(nil, true); serr != nil {
			return errors.Join(err, serr)
		}
		if !isStepErr {
			return err // the journal could not be written: stop here
		}
		if passed := a.j.PointOfNoReturn; passed != "" {
			a.emit(Event{Type: EventRollbackSkipped, Step: st.ID, Reason: fmt.Sprintf("step %s failed after %s, the point of no return", st.ID, passed)})
			return &RunError{Failed: stepErr, PointOfNoReturn: passed}
		}
		return a.rollback(ctx, stepErr)
	}
	return nil
}

// prepareNext lets the next step this apply will run after step i get
// ready while step i runs, if its kind can (steps.Preparer): in the
// downtime, what it opens ahead is time the engine is not down for.
func (a *applier) prepareNext(ctx context.Context, i int) {
	for j := i + 1; j < len(a.plan.Steps); j++ {
		st, rec := a.plan.Steps[j], a.j.Steps[j]
		if rec.Status == StatusDone || rec.Status == StatusSkipped && a.opts.Resume || !a.selected(j, st.ID) {
			continue
		}
		if ok, _ := a.whenTrue(st); !ok {
			continue
		}
		if p, ok := st.Spec.(steps.Preparer); ok && j > a.preparedStep {
			a.preparedStep = j
			rt := a.runtime(st, a.hosts, false)
			rt.RunID, rt.Prepared = a.j.RunID, a.prepared
			p.Prepare(withTraceStep(ctx, st.ID), rt)
		}
		return
	}
}

// passedPointOfNoReturn names the last step before step i that is marked
// point_of_no_return and recorded done, by this apply or an earlier one
// of the same run: past it, on_failure would undo what must stay (the
// engine's writes to the new database). A marked step that failed itself
// has not passed the point: its own failure still rolls back.
func (a *applier) passedPointOfNoReturn(i int) string {
	for k := i - 1; k >= 0; k-- {
		if a.plan.Steps[k].PointOfNoReturn && a.j.Steps[k].Status == StatusDone {
			return a.plan.Steps[k].ID
		}
	}
	return ""
}

// rollback runs every on_failure step in order, even after one of them
// fails: each is an independent attempt to put things back.
func (a *applier) rollback(ctx context.Context, failed *StepError) error {
	runErr := &RunError{Failed: failed}
	if len(a.plan.OnFailure) == 0 {
		return runErr
	}
	a.emit(Event{Type: EventRollbackStart, Step: failed.Step, Reason: "step " + failed.Step + " failed"})
	for _, st := range a.plan.OnFailure {
		rec := newRecord(st)
		a.j.OnFailure = append(a.j.OnFailure, rec)
		if err := a.step(ctx, st, rec, true); err != nil {
			runErr.RollbackErrs = append(runErr.RollbackErrs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return runErr
}

func (a *applier) finish(rec *StepRecord, status, reason string) {
	rec.Status, rec.Reason = status, a.clean(reason)
	rec.Ended = a.opts.Now()
}

// step checks and, unless already done, applies one step, recording every
// transition in the journal before moving on.
func (a *applier) step(ctx context.Context, st plan.Step, rec *StepRecord, rollback bool) error {
	ctx = withTraceStep(ctx, st.ID)
	ev := Event{Step: st.ID, Kind: st.Kind, Host: rec.Host, Rollback: rollback, Description: st.Description}
	var recording *executors.Recording
	ran := func() {
		if recording == nil {
			return
		}
		rec.Ran = rec.Ran[:0]
		for _, s := range recording.Ran() {
			rec.Ran = append(rec.Ran, a.clean(s))
		}
	}
	fail := func(err error) error {
		ran()
		status := StatusFailed
		if errors.Is(err, executors.ErrOutcomeUnknown) || ctx.Err() != nil {
			status = StatusUnknown
		}
		rec.Error = a.clean(err.Error())
		a.finish(rec, status, "")
		serr := a.note(rec, true)
		e := ev
		e.Type, e.Status, e.Error, e.Duration = EventStepEnd, status, rec.Error, rec.Ended.Sub(rec.Started)
		a.emit(e)
		stepErr := &StepError{Step: st.ID, Host: rec.Host, Err: err}
		if serr != nil {
			return errors.Join(stepErr, serr)
		}
		return stepErr
	}
	start := a.opts.Now()
	rec.Started, rec.Error, rec.Reason = start, "", ""
	if ok, why := a.whenTrue(st); !ok {
		a.finish(rec, StatusSkipped, why)
		e := ev
		e.Type, e.Status, e.Reason = EventStepEnd, StatusSkipped, why
		return a.noteThenEmit(rec, e)
	}
	e := ev
	e.Type = EventStepStart
	a.emit(e)

	rt := a.runtime(st, a.hosts, false)
	rt.RunID, rt.Prepared = a.j.RunID, a.prepared
	// Progress and step_running events name the step; the description
	// was in step_start.
	quiet := Event{Step: ev.Step, Kind: ev.Kind, Host: ev.Host, Rollback: ev.Rollback}
	rt.Progress = stepProgress{inner: rt.Progress, emit: a.emit, ev: quiet}
	// Record what the step does for the journal (the facts its check
	// reads are recorded too, and dropped: they matter to reviews only).
	recording = &executors.Recording{Scrub: a.secrets.Redact}
	rt.Executor = recordingExecutor(a.hosts, recording)
	check, err := st.Spec.Check(ctx, rt)
	if err != nil {
		return fail(fmt.Errorf("check: %w", err))
	}
	if check.Done {
		a.finish(rec, StatusDone, "already done: "+check.Reason)
		e := ev
		e.Type, e.Status, e.Reason, e.Duration = EventStepEnd, StatusDone, rec.Reason, rec.Ended.Sub(start)
		return a.noteThenEmit(rec, e)
	}

	// Record "running" durably before touching anything: after a crash
	// the journal then says which step may be half done.
	rec.Status = StatusRunning
	if err := a.note(rec, true); err != nil {
		return err
	}
	stopRunning := a.whileRunning(ctx, quiet)
	rt.Checked = check.Planned
	out, err := a.applyWithRetries(ctx, st, rt, rec)
	stopRunning()
	if err != nil {
		return fail(err)
	}
	rec.Changed, rec.Output = out.Changed, a.clean(executors.LastBytes(out.Output, 4096))
	ran()
	a.finish(rec, StatusDone, "")
	e = ev
	e.Type, e.Status, e.Changed, e.Duration = EventStepEnd, StatusDone, out.Changed, rec.Ended.Sub(start)
	return a.noteThenEmit(rec, e)
}

func (a *applier) applyWithRetries(ctx context.Context, st plan.Step, rt *steps.Runtime, rec *StepRecord) (steps.Outcome, error) {
	for attempt := 1; ; attempt++ {
		rec.Attempts++
		actx, cancel := ctx, context.CancelFunc(func() {})
		if st.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, st.Timeout)
		}
		out, err := st.Spec.Apply(actx, rt)
		rt.Checked = nil // a retry decides again
		timedOut := actx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		if err == nil {
			return out, nil
		}
		if timedOut {
			err = fmt.Errorf("timed out after %s: %w", st.Timeout, err)
		}
		// An unknown outcome is not retried blindly: the step may have
		// taken effect, and a retry of e.g. a restore could do harm.
		if attempt > st.Retries || ctx.Err() != nil || errors.Is(err, executors.ErrOutcomeUnknown) {
			return out, err
		}
		a.emit(Event{Type: EventStepRetry, Step: st.ID, Kind: st.Kind, Host: rec.Host, Attempt: attempt + 1, Error: err.Error()})
		select {
		case <-time.After(time.Duration(attempt) * a.opts.RetryDelay):
		case <-ctx.Done():
			return out, err
		}
	}
}
