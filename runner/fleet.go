package runner

import (
	"context"
	"errors"
	"sync"
	"time"
)

// How a set of a fleet ended, as this migrun saw it.
const (
	SetCompleted   = "completed"   // this migrun ran it to the end
	SetFailed      = "failed"      // it failed here (on_failure ran unless past the point of no return)
	SetInterrupted = "interrupted" // cancelled, or its lock was lost: resumable
	SetTaken       = "taken"       // another migrun holds its lock: it runs there
	SetDoneBefore  = "done before" // its journal says completed: nothing to do
	SetUnfinished  = "unfinished"  // an earlier run of it failed or stopped: a person resumes or restarts it
	SetRefused     = "refused"     // refused before any change (a check, an unreachable host, a bad set)
)

// SetResult is how one set of a fleet ended.
type SetResult struct {
	Set     string
	Outcome string
	Journal *Journal // nil when the run never read it
	Err     error
	Took    time.Duration
}

// RunFleet applies one plan to many sets of vars: apply runs one set (its
// own journal and lock, see Options.Set) and is called for every set, at
// most parallel at once, in the sets' order. A set that fails does not
// stop the others. Sets another migrun holds, or finished before, are
// skipped: several migruns given the same sets and one state database
// split them, each set run once, since the lock and the journal decide,
// under the lock, who runs what. The results are in the sets' order.
func RunFleet(ctx context.Context, sets []string, parallel int, apply func(ctx context.Context, set string) (*Journal, error)) []SetResult {
	if parallel < 1 {
		parallel = 1
	}
	results := make([]SetResult, len(sets))
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, set := range sets {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			results[i] = SetResult{Set: set, Outcome: SetInterrupted, Err: ctx.Err()}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			begin := time.Now()
			j, err := apply(ctx, set)
			results[i] = SetResult{Set: set, Outcome: outcomeOf(ctx, err), Journal: j, Err: err, Took: time.Since(begin)}
		}()
	}
	wg.Wait()
	return results
}

// outcomeOf classifies how an apply of one set ended.
func outcomeOf(ctx context.Context, err error) string {
	var runErr *RunError
	switch {
	case err == nil:
		return SetCompleted
	case errors.Is(err, ErrLocked):
		return SetTaken
	case errors.Is(err, ErrCompleted):
		return SetDoneBefore
	case errors.Is(err, ErrUnfinished), errors.Is(err, ErrRolledBack), errors.Is(err, ErrPlanChanged):
		return SetUnfinished
	case errors.Is(err, ErrLockLost), ctx.Err() != nil:
		return SetInterrupted
	case errors.As(err, &runErr):
		return SetFailed
	}
	return SetRefused
}
