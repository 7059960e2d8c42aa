package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_verify's baseline: the comparison of a database being replicated,
// split so that the downtime reads only what changed.
//
// action: baseline runs while the application still writes. It creates a
// logical replication slot on the source (test_decoding) and only then
// takes a snapshot there, so every change the snapshot does not see is
// decoded by the slot. In that snapshot it checksums each table chunk by
// chunk: a chunk is a range of the table's key (the leading column of the
// index that identifies its rows in the WAL), the ranges' bounds sampled
// from the table. It waits until the target's subscription has applied
// everything up to the snapshot's WAL position, checksums the same chunks
// there, and records both sides' sums in a marker on the source host.
// Last it drains the slot of what changed meanwhile (pg_verify_drain.go),
// sums again, cut finer, the chunks that changed or differed, and drains
// again (pg_verify_refresh.go).
//
// action: compare, in the downtime, decodes what the slot collected (the
// key values every change touched), and reads again, on both sides in one
// snapshot each, only the chunks those values fall in, those the drain
// recorded and those that differed at the baseline. A chunk neither side changed since matched at
// the baseline and matches still: the target changes only by applying the
// source's changes, which the slot saw. Sequences and extensions are
// compared whole (they are few), and each table's columns on both sides,
// so DDL since the baseline reads the table again.

func (v *PgVerify) checkBaseline(ctx context.Context, rt *Runtime) (Check, error) {
	st, err := v.readBaseline(ctx, rt, readAll)
	switch {
	case pg.NotReady(err):
		return Check{Unknown: true, Reason: "a database is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	case err != nil:
		return Check{}, err
	case st.marker != nil && st.marker.State == verifyVerified:
		return Check{Done: true, Reason: fmt.Sprintf("baseline taken (WAL %s) and compared at %s",
			st.marker.LSN, st.marker.Time.Format(time.RFC3339))}, nil
	case st.marker != nil && st.marker.State == verifyBaselined && st.slot:
		return Check{Done: true, Reason: fmt.Sprintf("baseline of %d tables taken at %s (WAL %s)", len(st.marker.Tables),
			st.marker.Time.Format(time.RFC3339), st.marker.LSN)}, nil
	case st.walLevel != "logical":
		return Check{Reason: "take no baseline: the source runs with wal_level = " + st.walLevel +
			" (logical is needed); the comparison in the downtime will read every row"}, nil
	}
	return Check{Reason: "checksum every table chunk by chunk on both databases and follow the source's changes with slot " + v.slotName(rt.RunID)}, nil
}

func (v *PgVerify) describeBaseline(rt *Runtime) []Action {
	slot := v.slotName(rt.RunID)
	src, dst := v.Source.target(v.Source.Database), v.Target.target(v.Target.Database)
	return []Action{
		{Host: v.Source.Host, Summary: pg.Action(v.Source.Host, src, "SELECT pg_create_logical_replication_slot("+pg.Literal(slot)+", 'test_decoding');")},
		{Host: v.Source.Host, Summary: "run on " + v.Source.Host + " as " + src.RunAs() + ": " + executors.QuoteArgv(src.PsqlArgv()) +
			" (read-only snapshot: WAL position, each table's rows' checksums by key range)"},
		{Summary: "wait until the target's subscription has applied the source up to that WAL position"},
		{Host: v.Target.Host, Summary: "run on " + v.Target.Host + " as " + dst.RunAs() + ": " + executors.QuoteArgv(dst.PsqlArgv()) +
			" (read-only snapshot: the same checksums)"},
		{Host: v.Source.Host, Summary: "record the baseline in " + v.Source.Host + ":" + v.markerPath()},
		{Host: v.Source.Host, Summary: "run on " + v.Source.Host + " as " + src.RunAs() + ": " + executors.QuoteArgv(src.PsqlArgv()) +
			" (the changes made while the baseline was taken: the chunks they touched recorded in the marker, slot " + slot + " advanced past them)"},
		{Host: v.Source.Host, Summary: "run on " + v.Source.Host + " as " + src.RunAs() + ": " + executors.QuoteArgv(src.PsqlArgv()) +
			" (read-only snapshot: those chunks and the ones that differ cut into sub-chunks of about " + strconv.Itoa(subChunkRows) + " rows and summed again)"},
		{Summary: "wait until the target's subscription has applied the source up to that snapshot's WAL position"},
		{Host: v.Target.Host, Summary: "run on " + v.Target.Host + " as " + dst.RunAs() + ": " + executors.QuoteArgv(dst.PsqlArgv()) +
			" (read-only snapshot: the same sums)"},
		{Host: v.Source.Host, Summary: "run on " + v.Source.Host + " as " + src.RunAs() + ": " + executors.QuoteArgv(src.PsqlArgv()) +
			" (the changes made since, in the chunks the new sums do not hold, recorded in the marker, slot " + slot + " advanced past them)"},
	}
}

// applyBaseline takes the baseline. Without wal_level = logical on the
// source it takes none and says so: the comparison in the downtime then
// reads every row, as without a baseline.
func (v *PgVerify) applyBaseline(ctx context.Context, rt *Runtime) (Outcome, error) {
	st, err := v.readBaseline(ctx, rt, readAll)
	if err != nil {
		return Outcome{}, err
	}
	if st.walLevel != "logical" {
		return Outcome{Output: "no baseline: the source runs with wal_level = " + st.walLevel +
			"; the comparison in the downtime reads every row"}, nil
	}
	if st.ids.source.OID == 0 || st.ids.target.OID == 0 {
		return Outcome{}, fmt.Errorf("database %s on %s or %s on %s does not exist", v.Source.Database, v.Source.Host, v.Target.Database, v.Target.Host)
	}
	slot := v.slotName(rt.RunID)
	srcT := v.Source.target(v.Source.Database)
	// A slot this run left in an interrupted baseline is dropped: the new
	// snapshot must come after the slot's start.
	if _, err := pg.Exec(ctx, st.src, srcT, v.dropSlotSQL(rt.RunID)+
		"SELECT 1 FROM pg_create_logical_replication_slot("+pg.Literal(slot)+", 'test_decoding');\n"); err != nil {
		return Outcome{}, fmt.Errorf("source %s: create slot %s: %w", v.Source.Database, slot, err)
	}
	m := &verifyMarker{State: verifyBaselined, RunID: rt.RunID, Source: pgSourceID(v.Source), Target: pgSourceID(v.Target),
		SourceSystemID: st.ids.source.SystemID, SourceOID: st.ids.source.OID,
		TargetSystemID: st.ids.target.SystemID, TargetOID: st.ids.target.OID, Slot: slot}
	out, err := v.takeBaseline(ctx, rt, st, m)
	if err != nil {
		// The slot would keep the source's WAL: gone with the failure.
		if _, derr := pg.Exec(context.WithoutCancel(ctx), st.src, srcT, v.dropSlotSQL(rt.RunID)); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop slot %s: %w", slot, derr))
		}
		return Outcome{}, err
	}
	return Outcome{Changed: true, Output: out}, nil
}

// takeBaseline sums the chunks on both sides and writes the marker.
func (v *PgVerify) takeBaseline(ctx context.Context, rt *Runtime, st baselineState, m *verifyMarker) (string, error) {
	srcT := v.Source.target(v.Source.Database)
	rows, err := pg.Probe(ctx, st.src, srcT, catalogSQL(), "the tables' sizes change while the database is in use")
	if err != nil {
		return "", fmt.Errorf("source %s: %w", v.Source.Database, err)
	}
	tables, err := parseCatalog(rows)
	if err != nil {
		return "", fmt.Errorf("source %s: %w", v.Source.Database, err)
	}
	if len(tables) > 0 {
		if rows, err = pg.Probe(ctx, st.src, srcT, boundsSQL(tables), "sampled"); err != nil {
			return "", fmt.Errorf("source %s: chunk bounds: %w", v.Source.Database, err)
		}
		if err := setBounds(tables, rows); err != nil {
			return "", fmt.Errorf("source %s: %w", v.Source.Database, err)
		}
	}
	sums, err := v.sumChunks(ctx, rt, st.src, v.Source, baselineSQL(tables, true), len(tables))
	if err != nil {
		return "", err
	}
	m.LSN, m.Snapshot = sums.lsn, sums.snap
	if err := v.waitApplied(ctx, st, m.LSN); err != nil {
		return "", err
	}
	dsums, err := v.sumChunks(ctx, rt, st.dst, v.Target, baselineSQL(tables, false), len(tables))
	if err != nil {
		return "", err
	}
	dirty := 0
	for i := range tables {
		t := &tables[i]
		t.Source, t.Target = sums.chunks[t.Name], dsums.chunks[t.Name]
		dirty += len(t.differing())
	}
	m.Tables = tables
	if err := v.writeMarker(ctx, st.src, m); err != nil {
		return "", fmt.Errorf("%s: %w", st.src.Name(), err)
	}
	out := fmt.Sprintf("baseline of %s at WAL %s: %d chunks differ now (read again in the downtime, with every chunk changed since)",
		hostcmd.Plural(len(tables), "table", "tables"), m.LSN, dirty)
	// Neither a drain nor a refresh that fails costs correctness, only
	// the downtime's time: the comparison then decodes those changes
	// itself, or reads those chunks whole.
	if err := v.drainChanges(ctx, rt, st.src, m, nil); err != nil {
		return out + "; the changes made meanwhile are left for the comparison to decode (" + err.Error() + ")", nil
	}
	out += "; changed while it was taken: " + drainedSummary(m.Drained)
	fresh, refreshOut, err := v.refreshHot(ctx, st, m)
	switch {
	case err != nil:
		return out + "; not refreshed (" + err.Error() + ")", nil
	case fresh == nil:
		return out, nil
	}
	out += "; " + refreshOut
	if err := v.drainChanges(ctx, rt, st.src, m, fresh); err != nil {
		return out + "; the changes made since are left for the comparison to decode (" + err.Error() + ")", nil
	}
	return out + "; changed since: " + drainedSummary(m.Drained), nil
}

// waitApplied waits until every subscription of the target database has
// confirmed the source's WAL up to lsn: from then on the target's snapshot
// holds all the source's snapshot holds. A target without subscriptions
// (a restored copy) has nothing to wait for.
func (v *PgVerify) waitApplied(ctx context.Context, st baselineState, lsn string) error {
	rows, err := pg.Query(ctx, st.dst, v.Target.target(v.Target.Database),
		"SELECT subslotname FROM pg_subscription WHERE subenabled AND subslotname IS NOT NULL AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database());\n")
	if err != nil {
		return fmt.Errorf("target %s: %w", v.Target.Database, err)
	}
	if len(rows) == 0 {
		return nil
	}
	var names []string
	for _, r := range rows {
		names = append(names, pg.Literal(r[0]))
	}
	q := "SELECT count(*) FILTER (WHERE confirmed_flush_lsn IS NULL OR confirmed_flush_lsn < " + pg.Literal(lsn) + "::pg_lsn) FROM pg_replication_slots WHERE slot_name IN (" +
		strings.Join(names, ", ") + ");\n"
	deadline := time.Now().Add(5 * time.Minute)
	for {
		rows, err := pg.Probe(ctx, st.src, v.Source.target(v.Source.Database), q, "replication progress")
		if err != nil {
			return fmt.Errorf("source %s: %w", v.Source.Database, err)
		}
		if len(rows) == 1 && rows[0][0] == "0" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the target's subscription has not applied the source up to WAL %s after 5 minutes", lsn)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// The cancel action drops the slot: a baseline left behind by a failed
// run would keep the source's WAL until its disk fills.

func (v *PgVerify) checkCancel(ctx context.Context, rt *Runtime) (Check, error) {
	st, err := v.readBaseline(ctx, rt, readAll)
	switch {
	case pg.NotReady(err):
		return Check{Unknown: true, Reason: "the source is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	case err != nil:
		return Check{}, err
	case st.slot:
		return Check{Reason: "drop slot " + v.slotName(rt.RunID) + " on the source"}, nil
	}
	return Check{Done: true, Reason: "no baseline slot of this run on the source"}, nil
}

func (v *PgVerify) applyCancel(ctx context.Context, rt *Runtime) (Outcome, error) {
	st, err := v.readBaseline(ctx, rt, readAll)
	if err != nil {
		return Outcome{}, err
	}
	if !st.slot {
		return Outcome{Output: "no baseline slot of this run on the source"}, nil
	}
	if _, err := pg.Exec(ctx, st.src, v.Source.target(v.Source.Database), v.dropSlotSQL(rt.RunID)); err != nil {
		return Outcome{}, fmt.Errorf("source %s: drop slot: %w", v.Source.Database, err)
	}
	if st.marker != nil {
		st.marker.State = verifyCancelled
		if err := v.writeMarker(ctx, st.src, st.marker); err != nil {
			return Outcome{}, fmt.Errorf("%s: %w", st.src.Name(), err)
		}
	}
	return Outcome{Changed: true, Output: "dropped slot " + v.slotName(rt.RunID)}, nil
}
