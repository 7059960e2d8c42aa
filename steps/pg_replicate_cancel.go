package steps

import (
	"context"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_replicate's cancel action (a plan's on_failure): what is left of the
// replication dropped, the replica identities start gave put back.

// checkCancel lists what is left of the replication: what to drop, and
// the replica identities (this run's record, rec) to put back.
func (r *PgReplicate) checkCancel(st replState, rec *identityRecord) Check {
	var left []string
	if st.subscription {
		left = append(left, "subscription "+r.name()+" on "+r.Target.Host)
	}
	if st.slot {
		left = append(left, "replication slots of "+r.name()+" on "+r.Source.Host)
	}
	if st.publication {
		left = append(left, "publication "+r.name()+" on "+r.Source.Host)
	}
	var reason []string
	if len(left) > 0 {
		reason = append(reason, "drop "+strings.Join(left, ", "))
	}
	if rec != nil {
		reason = append(reason, "put back the replica identity of "+hostcmd.Plural(len(rec.Tables), "table", "tables")+" on "+r.Source.Host)
	}
	if len(reason) == 0 {
		return Check{Done: true, Reason: "no replication " + r.name() + " to cancel"}
	}
	return Check{Reason: strings.Join(reason, "; ")}
}

func (r *PgReplicate) cancel(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (Outcome, error) {
	rec, err := r.ownIdentityRecord(ctx, rt, src)
	if err != nil {
		return Outcome{}, err
	}
	c := r.checkCancel(st, rec)
	if c.Done {
		return Outcome{Output: c.Reason}, nil
	}
	// Marked first: a cancel interrupted midway must not look like a
	// schema still waiting for its subscription.
	if st.marker != nil && !st.finished() {
		if err := r.writeMarker(ctx, dst, replCancelled, st); err != nil {
			return Outcome{Changed: true}, err
		}
	}
	if err := r.teardown(ctx, src, dst, st.subOID); err != nil {
		return Outcome{Changed: true}, err
	}
	// After the publication is gone (see cutOver).
	if err := r.putBackIdentities(ctx, src, dst, rec); err != nil {
		return Outcome{Changed: true}, err
	}
	return Outcome{Changed: true, Output: "done: " + c.Reason + "; " + r.where(r.Target) + " keeps what was copied (drop and re-create it before starting again)"}, nil
}

// cancelSource is cancel when the target cannot be read (why): the slot
// and publication on the source go, and the output says what may be left
// on the target.
func (r *PgReplicate) cancelSource(ctx context.Context, rt *Runtime, src executors.Executor, why error) (Outcome, error) {
	var st replState
	if err := r.readSource(ctx, src, &st); err != nil {
		return Outcome{}, err
	}
	rec, err := r.ownIdentityRecord(ctx, rt, src)
	if err != nil {
		return Outcome{}, err
	}
	if !st.slot && !st.publication && rec == nil {
		return Outcome{Output: "no replication " + r.name() + " on " + r.Source.Host + " to cancel"}, nil
	}
	if err := r.dropSourceSlots(ctx, pg.Once{Ex: src, Target: r.source()}, 0, ""); err != nil {
		return Outcome{Changed: true}, err
	}
	if err := r.putBackIdentities(ctx, src, nil, rec); err != nil {
		return Outcome{Changed: true}, err
	}
	note := "the target database does not exist"
	if why != nil {
		note = "the target could not be read (" + hostcmd.FirstLine(why) + ")"
	}
	return Outcome{Changed: true, Output: "slot and publication " + r.name() + " dropped on " + r.Source.Host + "; " + note +
		": if subscription " + r.name() + " exists there, drop it with ALTER SUBSCRIPTION ... DISABLE, ... SET (slot_name = NONE), DROP SUBSCRIPTION"}, nil
}
