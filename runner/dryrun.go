package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// StepPreview is what the dry run found for one step.
type StepPreview struct {
	ID       string
	Kind     string
	Host     string
	Rollback bool
	Skipped  string // non-empty: why the step would not run
	Check    steps.Check
	CheckErr error
	Actions  []steps.Action
	// DescribeErr: the step could not say what it would do (offline, or
	// a host it needs is unreachable).
	DescribeErr error
}

// Preview is the whole dry run.
type Preview struct {
	Steps []StepPreview
}

// Pending counts steps that would change something.
func (p *Preview) Pending() int {
	n := 0
	for _, s := range p.Steps {
		if !s.Rollback && s.Skipped == "" && !s.Check.Done {
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
	if !r.opts.Offline {
		if err := connectAll(ctx, hosts, hostsOf(r.plan.Steps, r.plan.OnFailure)); err != nil {
			return nil, err
		}
	}
	pv := &Preview{}
	preview := func(st plan.Step, i int, rollback bool) {
		sp := StepPreview{ID: st.ID, Kind: st.Kind, Host: stepHost(st), Rollback: rollback}
		if ok, why := r.whenTrue(st); !ok {
			sp.Skipped = why
		} else if !rollback && !r.selected(i, st.ID) {
			sp.Skipped = "not selected (--from/--only)"
		}
		rt := r.runtime(st, hosts, true)
		if sp.Skipped == "" && !r.opts.Offline && !rollback {
			sp.Check, sp.CheckErr = st.Spec.Check(ctx, rt)
			if sp.CheckErr != nil {
				errs = append(errs, &StepError{Step: st.ID, Host: sp.Host, Err: fmt.Errorf("check: %w", sp.CheckErr)})
			}
		}
		if sp.Skipped == "" && !sp.Check.Done {
			sp.Actions, sp.DescribeErr = st.Spec.Describe(ctx, rt)
			if sp.DescribeErr != nil && !errors.Is(sp.DescribeErr, ErrOffline) && !r.opts.Offline {
				errs = append(errs, &StepError{Step: st.ID, Host: sp.Host, Err: fmt.Errorf("describe: %w", sp.DescribeErr)})
			}
		}
		for i := range sp.Actions {
			sp.Actions[i].Summary = r.clean(sp.Actions[i].Summary)
			sp.Actions[i].Diff = r.clean(sp.Actions[i].Diff)
		}
		pv.Steps = append(pv.Steps, sp)
		ev := Event{Type: EventStepPlan, Step: st.ID, Kind: st.Kind, Host: sp.Host, Rollback: rollback,
			Description: st.Description, Actions: sp.Actions, Reason: sp.Check.Reason}
		switch {
		case sp.Skipped != "":
			ev.Status, ev.Reason = StatusSkipped, sp.Skipped
		case sp.CheckErr != nil:
			ev.Status, ev.Error = "error", sp.CheckErr.Error()
		case sp.Check.Done:
			ev.Status = "already done"
		case sp.Check.Unknown:
			ev.Status = "known after earlier steps"
		case rollback:
			ev.Status = "on failure"
		case r.opts.Offline:
			ev.Status = "not checked (offline)"
		default:
			ev.Status = "would change"
		}
		switch {
		case errors.Is(sp.DescribeErr, ErrOffline):
			ev.Reason = "details need a connection to the host"
		case sp.DescribeErr != nil && ev.Error == "":
			ev.Error = sp.DescribeErr.Error()
		}
		r.emit(ev)
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
