package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// What finish and cancel both take down: the subscription on the target,
// the slots and the publication on the source.

// teardownSourceSQL waits, on the server, up to slotWait for the slots'
// walsenders to notice that the subscription is gone (moments, normally:
// a poll from here would cost a psql each time), drops the slots that are
// inactive and the publication, runs then (statements that need the
// publication gone), and counts the slots left, still active.
// (pg_replication_slots reads shared memory: each loop sees it anew.)
func (r *PgReplicate) teardownSourceSQL(subOID int64, then string) string {
	w := r.slotsWhere(subOID)
	return fmt.Sprintf(`DO $migrun$DECLARE deadline timestamptz := clock_timestamp() + interval '%d milliseconds'; BEGIN
  WHILE EXISTS (SELECT 1 FROM pg_replication_slots WHERE %s AND active) AND clock_timestamp() < deadline LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
END$migrun$;
`, slotWait.Milliseconds(), w) +
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE " + w + " AND NOT active;\n" +
		"DROP PUBLICATION IF EXISTS " + pg.Ident(r.name()) + ";\n" + then +
		"SELECT count(*) FROM pg_replication_slots WHERE " + w + ";\n"
}

// slotWait is how long one teardown waits on the server for walsenders.
const slotWait = 2 * time.Second

// dropSubscriptionSQL drops the subscription if it is there, without
// reaching the source.
func (r *PgReplicate) dropSubscriptionSQL() string {
	n := pg.Ident(r.name())
	return `DO $migrun$BEGIN
  IF EXISTS (SELECT 1 FROM pg_subscription WHERE subname = ` + pg.Literal(r.name()) + ` AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
    EXECUTE ` + pg.Literal("ALTER SUBSCRIPTION "+n+" DISABLE") + `;
    EXECUTE ` + pg.Literal("ALTER SUBSCRIPTION "+n+" SET (slot_name = NONE)") + `;
    EXECUTE ` + pg.Literal("DROP SUBSCRIPTION "+n) + `;
  END IF;
END$migrun$;
`
}

// teardown drops the subscription (on the target, without reaching the
// source), then the slots on the source once their walsenders have gone,
// then the publication. A walsender normally notices within moments that
// its subscriber left; one that lingers (a lost network: it waits for
// wal_sender_timeout) is ended after a few seconds, since its subscription
// is gone and nothing will use the slot again. subOID names the table-sync
// slots to drop too (0: unknown, only the main slot).
func (r *PgReplicate) teardown(ctx context.Context, src, dst executors.Executor, subOID int64) error {
	if dst != nil {
		if _, err := pg.Exec(ctx, dst, r.target(), r.dropSubscriptionSQL()); err != nil {
			return fmt.Errorf("drop subscription %s: %w", r.name(), err)
		}
	}
	return r.dropSourceSlots(ctx, pg.Once{Ex: src, Target: r.source()}, subOID, "")
}

// dropSourceSlots drops the replication's slots and publication on the
// source, ending walsenders that still hold a slot after a grace period.
// then runs once, in the first session, after the publication is dropped.
func (r *PgReplicate) dropSourceSlots(ctx context.Context, src pg.Script, subOID int64, then string) error {
	begin := time.Now()
	terminated := false
	for {
		left, err := src.Run(ctx, r.teardownSourceSQL(subOID, then))
		if err != nil {
			what := "drop the slots and publication " + r.name()
			if then != "" {
				what += " and put back the replica identities"
			}
			return fmt.Errorf("%s on %s: %w", what, r.Source.Host, err)
		}
		then = ""
		if len(left) > 0 && len(left[len(left)-1]) == 1 && left[len(left)-1][0] == "0" {
			return nil
		}
		switch waited := time.Since(begin); {
		case waited > 30*time.Second:
			return fmt.Errorf("replication slots of %s on %s stay active 30 s after the subscription was dropped: end their walsenders (pg_terminate_backend) and drop them (pg_drop_replication_slot), or the source keeps its WAL for them", r.name(), r.Source.Host)
		case waited > 3*time.Second && !terminated:
			if _, err := src.Run(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE "+r.slotsWhere(subOID)+" AND active;\n"); err != nil {
				return fmt.Errorf("end the walsenders of %s: %w", r.name(), err)
			}
			terminated = true
		}
		if err := hostcmd.Sleep(ctx, r.pollEvery()); err != nil {
			return err
		}
	}
}
