package steps

import (
	"context"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

// Preparer is a kind that gets ready while the step before it runs,
// changing nothing: in a downtime, the psql sessions it will talk
// through are opened while the engine stops (each costs 100 ms and more
// to start). The runner calls Prepare for the next step it will run,
// outside any dry run, with a Runtime whose Prepared keeps what it
// opens; Prepare returns at once, and what the step does not take is
// closed when it ends.
type Preparer interface {
	Prepare(ctx context.Context, rt *Runtime)
}

// Prepared is what Preparers opened ahead of their steps, for one apply.
type Prepared struct {
	pool *pg.Pool
}

// NewPrepared returns an empty Prepared; Close ends what it holds.
func NewPrepared() *Prepared { return &Prepared{pool: pg.NewPool()} }

// Done closes what was prepared for step and not taken.
func (p *Prepared) Done(step string) { p.pool.Drop(step) }

// Close closes everything not taken.
func (p *Prepared) Close() { p.pool.Close() }

// warmSession opens ahead, for rt's step, a session to ep's server on
// its host (see pg.Pool); an executor that cannot be had leaves it to
// the step.
func (rt *Runtime) warmSession(ctx context.Context, ep PgEndpoint, readOnly bool) {
	if rt.Prepared == nil {
		return
	}
	go func() {
		ex, err := rt.Executor(ctx, ep.Host)
		if err == nil {
			rt.Prepared.pool.Warm(ctx, rt.StepID, ex, ep.target(ep.Database), readOnly)
		}
	}()
}

// session is a psql session for t on ex: the one prepared for this step
// if there is one, else a new one.
func (rt *Runtime) session(ctx context.Context, ex executors.Executor, t pg.Target, readOnly bool) *pg.Session {
	if rt.Prepared == nil {
		return pg.OpenSession(ctx, ex, t, readOnly)
	}
	return rt.Prepared.pool.Take(ctx, rt.StepID, ex, t, readOnly)
}
