package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/migrun/migrun/executors"
)

// ErrRefused marks an apply refused by a step's check before anything
// changed.
var ErrRefused = errors.New("refused before any change")

// preflight runs, before the first change, the read-only check of every
// step this apply would run, through read-only executors, as the dry run
// does. A check that refuses (an error; "unknown until earlier steps run"
// is not one) refuses the whole apply here. Without it the refusal would
// come only when its step is reached, after earlier steps changed hosts:
// a database server restarted, a service stopped, for nothing.
func (r *Runner) preflight(ctx context.Context, hosts *pool, j *Journal) error {
	readOnly := func(ctx context.Context, name string) (executors.Executor, error) {
		ex, err := hosts.get(ctx, name)
		if err != nil {
			return nil, err
		}
		return executors.ReadOnly(ex), nil
	}
	var errs []error
	for i, st := range r.plan.Steps {
		rec := j.Steps[i]
		if rec.Status == StatusDone || (rec.Status == StatusSkipped && r.opts.Resume) || !r.selected(i, st.ID) {
			continue
		}
		if ok, _ := r.whenTrue(st); !ok {
			continue
		}
		rt := r.runtime(st, hosts, true)
		rt.RunID = j.RunID
		rt.Executor = readOnly
		if _, err := st.Spec.Check(ctx, rt); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, &StepError{Step: st.ID, Host: stepHost(st), Err: fmt.Errorf("check: %w", err)})
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrRefused, errors.Join(errs...))
	}
	return nil
}
