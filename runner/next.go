package runner

import (
	"fmt"
	"strings"
	"time"
)

// What apply accepts after a run, in one place: apply enforces it
// (prepareJournal), the dry run shows a resume as one (dryRunID), and
// status tells whoever comes back what to do (NextAction).

// resumeRefusal is why --resume would not continue the run j records;
// nil when it would.
func resumeRefusal(j *Journal) error {
	switch {
	case j == nil:
		return ErrNothingToResume
	case j.Status == StatusCompleted:
		return fmt.Errorf("%w at %s; nothing to resume (--restart runs it again)", ErrCompleted, j.Ended.Format(time.RFC3339))
	}
	if ran := j.RolledBack(); len(ran) > 0 {
		// on_failure undoes earlier steps (the engine restarted on the
		// old database after "stop engine" and "dump" were recorded
		// done): resuming would skip them and restore a stale dump.
		return fmt.Errorf("%w: step %s failed and on_failure ran (%s), which may have undone steps recorded done; start over with --restart",
			ErrRolledBack, j.FailedStep, strings.Join(ran, ", "))
	}
	return nil
}

// freshRefusal is why an apply given neither --resume nor --restart would
// not start the plan over the run j records; nil when it would.
func freshRefusal(j *Journal) error {
	switch {
	case j == nil:
		return nil
	case j.Status == StatusCompleted:
		return fmt.Errorf("%w at %s; running it again could overwrite newer data (use --restart if you mean it)", ErrCompleted, j.Ended.Format(time.RFC3339))
	}
	return fmt.Errorf("%w (status %s, failed step %q); use --resume to continue it or --restart to start over", ErrUnfinished, j.Status, j.FailedStep)
}

// NextAction tells whoever comes back to the run j records what apply
// accepts now, and why; "" when there is no run to go on with.
func NextAction(j *Journal) string {
	switch {
	case j == nil || j.Status == StatusCompleted:
		return ""
	case j.Status == StatusRunning:
		return "An apply is running, or it was killed: once no apply holds the lock, continue with: migrun apply --resume."
	case resumeRefusal(j) != nil:
		return fmt.Sprintf("on_failure ran (%s) and may have undone steps recorded done: start over with: migrun apply --restart.", strings.Join(j.RolledBack(), ", "))
	case j.Status == StatusInterrupted:
		return "Continue with: migrun apply --resume (it re-checks the step that was in progress)."
	case j.PointOfNoReturn != "":
		return fmt.Sprintf("on_failure was not run: the run was past %s, the point of no return. Fix the cause and continue with: migrun apply --resume.", j.PointOfNoReturn)
	}
	return "Fix the cause and continue with: migrun apply --resume."
}
