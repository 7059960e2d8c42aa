package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// Preview statuses: what the dry run says of a step.
const (
	PreviewChange   = "would change"
	PreviewDone     = "already done"
	PreviewLater    = "known after earlier steps"
	PreviewSkipped  = StatusSkipped
	PreviewError    = "error"
	PreviewRollback = "on failure"
	PreviewOffline  = "not checked (offline)"
)

// StepPreview is what the dry run found for one step.
type StepPreview struct {
	ID          string
	Kind        string
	Host        string
	Description string
	Digest      string
	Rollback    bool
	// PointOfNoReturn: once done, a later failure does not run on_failure.
	PointOfNoReturn bool
	Skipped         string // non-empty: why the step would not run
	Check           steps.Check
	CheckErr        error
	Actions         []steps.Action
	// DescribeErr: the step could not say what it would do (offline, or
	// a host it needs is unreachable).
	DescribeErr error
	// Facts is the host state the step's check and description read: what
	// a reviewer saw, re-read before a reviewed plan is applied.
	Facts []executors.Fact
	// KnownAfter names the earlier step that changes a host this step
	// touches before it runs (a file edited twice, a database the restore
	// fills, a service stopped then started): the check and actions shown
	// are as of now, the real ones are known only after that step.
	KnownAfter string
	offline    bool
}

// Status is the dry run's verdict on the step (Preview* constants).
func (sp *StepPreview) Status() string {
	switch {
	case sp.Skipped != "":
		return PreviewSkipped
	case sp.CheckErr != nil:
		return PreviewError
	case sp.Rollback:
		return PreviewRollback
	case sp.offline:
		return PreviewOffline
	case sp.Check.Unknown, sp.Check.Done && sp.KnownAfter != "":
		return PreviewLater
	case sp.Check.Done:
		return PreviewDone
	}
	return PreviewChange
}

// pending reports whether the step may change its hosts when applied.
func (sp *StepPreview) pending() bool {
	switch sp.Status() {
	case PreviewSkipped, PreviewDone, PreviewRollback:
		return false
	}
	return true
}

// Preview is the whole dry run.
type Preview struct {
	// Detected are the answers to the plan's detections the steps were
	// previewed with (none offline).
	Detected map[string]bool
	Steps    []StepPreview
}

// Pending counts steps that would change something.
func (p *Preview) Pending() int {
	n := 0
	for i := range p.Steps {
		if p.Steps[i].pending() {
			n++
		}
	}
	return n
}

// Plan is the dry run: for every step, its check and the exact actions it
// would take. It goes through read-only executors (any write is refused by
// construction), takes no lock and writes no journal: nothing anywhere.
// It returns an error when a host cannot be reached or a check fails, after
// previewing every step it could.
func (r *Runner) Plan(ctx context.Context) (*Preview, error) {
	if err := r.checkSelection(); err != nil {
		return nil, err
	}
	hosts := newPool(r.plan.Hosts, r.connect, true, r.opts.Offline)
	defer hosts.close()
	r.emit(Event{Type: EventRunStart, Mode: "plan"})

	var errs []error
	pv := &Preview{}
	runID, recorded := r.dryRunID(ctx)
	if r.opts.Offline {
		for _, d := range r.plan.Detect {
			r.emit(Event{Type: EventDetect, Step: d.Name, Host: d.Host, Status: "unknown",
				Reason: d.Probe() + ": not probed offline; the steps it selects are shown"})
		}
	} else {
		if err := r.learnHosts(ctx, hosts, recorded); err != nil {
			return nil, err
		}
		pv.Detected = r.detected
	}
	// changedBy: host -> the first step that may change it. Later steps on
	// that host see the state as of now, not as it will be when they run.
	changedBy := map[string]string{}
	preview := func(st plan.Step, i int, rollback bool) {
		sp := StepPreview{ID: st.ID, Kind: st.Kind, Host: stepHost(st), Description: st.Description,
			Digest: st.Digest, Rollback: rollback, PointOfNoReturn: st.PointOfNoReturn, offline: r.opts.Offline}
		if ok, why := r.whenTrue(st); !ok {
			sp.Skipped = why
		} else if !rollback && !r.selected(i, st.ID) {
			sp.Skipped = "not selected (--from/--only)"
		}
		touched := stepHosts(st)
		if !rollback {
			for _, h := range touched {
				if by := changedBy[h]; by != "" && sp.KnownAfter == "" {
					sp.KnownAfter = by
				}
			}
		}
		rec := &executors.Recording{Scrub: r.secrets.Redact}
		rt := r.runtime(st, hosts, true)
		rt.RunID = runID
		rt.Executor = recordingExecutor(hosts, rec)
		if sp.Skipped == "" && !r.opts.Offline && !rollback {
			sp.Check, sp.CheckErr = st.Spec.Check(ctx, rt)
			if sp.CheckErr != nil {
				errs = append(errs, &StepError{Step: st.ID, Host: sp.Host, Err: fmt.Errorf("check: %w", sp.CheckErr)})
			}
		}
		if sp.Skipped == "" && !sp.Check.Done || sp.KnownAfter != "" && sp.Skipped == "" {
			sp.Actions, sp.DescribeErr = st.Spec.Describe(ctx, rt)
			if sp.DescribeErr != nil && !errors.Is(sp.DescribeErr, ErrOffline) && !r.opts.Offline {
				errs = append(errs, &StepError{Step: st.ID, Host: sp.Host, Err: fmt.Errorf("describe: %w", sp.DescribeErr)})
			}
		}
		sp.Facts = rec.Facts()
		for i := range sp.Actions {
			sp.Actions[i].Summary = r.clean(sp.Actions[i].Summary)
			sp.Actions[i].Diff = r.clean(sp.Actions[i].Diff)
		}
		if _, verifies := st.Spec.(steps.Verifier); sp.pending() && !verifies {
			for _, h := range touched {
				if changedBy[h] == "" {
					changedBy[h] = st.ID
				}
			}
		}
		pv.Steps = append(pv.Steps, sp)
		r.emit(r.planEvent(st, &sp))
	}
	for i, st := range r.plan.Steps {
		preview(st, i, false)
	}
	for i, st := range r.plan.OnFailure {
		preview(st, i, true)
	}
	err := errors.Join(errs...)
	end := Event{Type: EventRunEnd, Mode: "plan", Status: "planned",
		Reason: fmt.Sprintf("%d step(s) would change", pv.Pending())}
	if r.opts.Offline {
		end.Reason = fmt.Sprintf("%d step(s) shown; nothing checked (--offline)", len(r.plan.Steps))
	}
	if err != nil {
		end.Status, end.Error = "error", err.Error()
	}
	r.emit(end)
	return pv, err
}

// dryRunID is the run id the dry run gives the steps: that of the run
// `apply --resume` would continue, so that they recognise what it left on
// the hosts (a dump, a restore marker) as an apply of it would; "" when an
// apply would start a fresh run (no journal, a completed or rolled-back
// run, --restart), for which nothing left on a host is its own. The
// detections that run recorded come with it: its steps go on with them.
func (r *Runner) dryRunID(ctx context.Context) (string, map[string]bool) {
	if r.opts.Restart {
		return "", nil
	}
	j, err := r.opts.State.Read(ctx, r.journalName())
	if err != nil || resumeRefusal(j) != nil {
		// An unreadable journal makes apply refuse: show a fresh run.
		return "", nil
	}
	return j.RunID, j.Detected
}

// planEvent announces one step's preview.
func (r *Runner) planEvent(st plan.Step, sp *StepPreview) Event {
	ev := Event{Type: EventStepPlan, Step: st.ID, Kind: st.Kind, Host: sp.Host, Rollback: sp.Rollback,
		Description: st.Description, Actions: sp.Actions, Reason: sp.Check.Reason,
		Status: sp.Status(), KnownAfter: sp.KnownAfter, PointOfNoReturn: sp.PointOfNoReturn}
	switch ev.Status {
	case PreviewSkipped:
		ev.Reason = sp.Skipped
	case PreviewError:
		ev.Error = sp.CheckErr.Error()
	}
	if sp.KnownAfter != "" && sp.Check.Done && ev.Reason != "" {
		ev.Reason = "now: " + ev.Reason
	}
	switch {
	case errors.Is(sp.DescribeErr, ErrOffline):
		ev.Reason = "details need a connection to the host"
	case sp.DescribeErr != nil && ev.Error == "":
		ev.Error = sp.DescribeErr.Error()
	}
	return ev
}

// recordingExecutor hands a step the pool's executors, wrapped so that
// what its check reads is recorded in rec.
func recordingExecutor(hosts *pool, rec *executors.Recording) func(context.Context, string) (executors.Executor, error) {
	return func(ctx context.Context, name string) (executors.Executor, error) {
		e, err := hosts.get(ctx, name)
		if err != nil {
			return nil, err
		}
		return rec.Wrap(e), nil
	}
}

// stepHosts lists the hosts a step touches, the workstation by name.
func stepHosts(st plan.Step) []string {
	hs := st.Spec.Hosts(st.Host)
	for i, h := range hs {
		if h == "" {
			hs[i] = Workstation
		}
	}
	return hs
}
