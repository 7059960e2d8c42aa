package runner

import (
	"context"
	"errors"
	"fmt"
)

// ErrOtherJournal: the destination of a journal copy holds another run's
// journal of the same plan.
var ErrOtherJournal = errors.New("the destination holds another journal of this plan")

// CopyJournal copies the journal of the plan called name from one store to
// another (`migrun state migrate`), holding both locks so that no run
// writes either meanwhile. A destination that already holds the same
// journal is left as it is (copied false); one that holds another is
// refused. The source keeps its journal.
func CopyJournal(ctx context.Context, from, to Store, name string, h Holder) (copied bool, err error) {
	src, err := from.Lock(ctx, name, h)
	if err != nil {
		return false, fmt.Errorf("%s: %w", from, err)
	}
	// Not final: the source's log (if any) is not folded into a snapshot.
	defer src.Release(false)
	j, err := src.Read(ctx)
	if err != nil {
		return false, err
	}
	if j == nil {
		return false, fmt.Errorf("%s has no journal of %s", from, name)
	}
	dst, err := to.Lock(ctx, name, h)
	if err != nil {
		return false, fmt.Errorf("%s: %w", to, err)
	}
	final := false
	defer func() { dst.Release(final) }()
	old, err := dst.Read(ctx)
	if err != nil {
		return false, err
	}
	if old != nil {
		if old.RunID == j.RunID && old.Status == j.Status && old.Updated.Equal(j.Updated) && len(old.History) == len(j.History) {
			return false, nil
		}
		return false, fmt.Errorf("%s: %w: %s (run %s, %s), not %s (run %s, %s)", to, ErrOtherJournal, name, old.RunID, old.Status, from, j.RunID, j.Status)
	}
	if err := dst.Save(ctx, j); err != nil {
		return false, err
	}
	final = true
	return true, nil
}
