package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_replicate's finish action, in the downtime: the source's final state
// read once no client is left (wal position, sequences, materialized
// views), the target caught up to it, then the cut-over.

// finishStateSQL reads, in the target database itself, its identity and
// the subscription (subscriptionSQL's row after "sub").
func (r *PgReplicate) finishStateSQL() string {
	return "SELECT 'id', (SELECT oid FROM pg_database WHERE datname = current_database()), system_identifier FROM pg_control_system();\n" +
		"SELECT 'sub', q.* FROM (" + strings.TrimSuffix(r.subscriptionSQL(), ";\n") + ") q;\n"
}

// finishState is state for finish, which runs in the downtime: the marker
// and one psql on the target database, where state takes three psql on
// both servers. The source's slot and publication are not read: finish's
// own reading of the source refuses without the slot. Anything unexpected
// (no such database, a server not answering) goes the long way, whose
// errors say what is wrong.
func (r *PgReplicate) finishState(ctx context.Context, runID string, on finishHosts) (replState, error) {
	src, dst := on.src, on.dst
	st := replState{runID: runID}
	m, err := pg.ReadMarker(ctx, dst, r.markerPath())
	if err != nil {
		return r.state(ctx, runID, src, dst)
	}
	rows, err := on.dstSQL.Run(ctx, r.finishStateSQL())
	if err != nil || len(rows) == 0 || len(rows[0]) != 3 || rows[0][0] != "id" {
		return r.state(ctx, runID, src, dst)
	}
	if st.oid, err = strconv.ParseInt(rows[0][1], 10, 64); err != nil || rows[0][2] == "" {
		return r.state(ctx, runID, src, dst)
	}
	st.systemID = rows[0][2]
	if r.ours(m, pg.DatabaseID{OID: st.oid, SystemID: st.systemID}, runID) {
		st.marker, st.subOID = m, m.SubscriptionOID
	}
	for _, row := range rows[1:] {
		if len(row) == 5 && row[0] == "sub" {
			st.subscription = true
			st.subOID, _ = strconv.ParseInt(row[1], 10, 64)
			st.tables, _ = strconv.Atoi(row[2])
			st.ready, _ = strconv.Atoi(row[3])
			st.syncErrors, _ = strconv.ParseInt(row[4], 10, 64)
		}
	}
	return st, nil
}

// checkFinishQuick answers finish's check, inside the downtime, from the
// marker alone when this run's start subscribed: there is work left, and
// Apply reads both servers anyway. ok is false in every other case, which
// the full reading answers (it tells "finished" from a marker that only
// looks like this run's).
func (r *PgReplicate) checkFinishQuick(ctx context.Context, runID string, dst executors.Executor) (Check, bool) {
	m, err := pg.ReadMarker(ctx, dst, r.markerPath())
	if err != nil || m == nil || runID == "" || m.RunID != runID || m.State != replSubscribed ||
		m.Source != r.sourceID() || m.Database != r.Target.Database || m.SocketDir != r.Target.SocketDir || m.Port != r.Target.Port {
		return Check{}, false
	}
	return Check{Reason: fmt.Sprintf("this run's subscription %s follows %s: wait until the target applied the source's last change, copy the sequences, drop the replication", r.name(), r.where(r.Source))}, true
}

func (r *PgReplicate) checkFinish(st replState) (Check, error) {
	switch {
	case st.finished():
		return Check{Done: true, Reason: fmt.Sprintf("the replication into %s finished at %s", r.where(r.Target), st.marker.Time.Format(time.RFC3339))}, nil
	case st.is(replFinishing):
		return Check{Reason: "an earlier run caught up and stopped before the end: set the sequences again and drop what is left of the replication"}, nil
	case st.subscription:
		return Check{Reason: fmt.Sprintf("subscription %s follows %s: wait until the target applied the source's last change, copy the sequences, drop the replication", r.name(), r.where(r.Source))}, nil
	case st.is(replCancelled):
		return Check{}, r.wrap(fmt.Errorf("the replication was cancelled (%s): the target holds a partial copy; drop and re-create it, then start again",
			st.marker.Time.Format(time.RFC3339)))
	}
	return Check{Unknown: true, Reason: "no subscription " + r.name() + " yet: the start step makes it"}, nil
}

// finishHosts are the two servers finish talks to, each through its
// host's executor (files) and one psql session (SQL): finish runs in the
// downtime, where every psql started costs 100 ms and more.
type finishHosts struct {
	src, dst       executors.Executor
	srcSQL, dstSQL pg.Script
}

// Prepare opens finish's two sessions while the step before it runs
// (Preparer): in the headline plan, while the engine stops.
func (r *PgReplicate) Prepare(ctx context.Context, rt *Runtime) {
	if r.Action == "finish" {
		rt.warmSession(ctx, r.Source, false)
		rt.warmSession(ctx, r.Target, false)
	}
}

// applyFinish is Apply's finish. The two sessions start at once, before
// anything waits on either.
func (r *PgReplicate) applyFinish(ctx context.Context, rt *Runtime, src, dst executors.Executor) (Outcome, error) {
	srcS, dstS, _, _ := hostcmd.AtOnce(
		func() (*pg.Session, error) { return rt.session(ctx, src, r.source(), false), nil },
		func() (*pg.Session, error) { return rt.session(ctx, dst, r.target(), false), nil })
	defer srcS.Close()
	defer dstS.Close()
	on := finishHosts{src: src, dst: dst, srcSQL: srcS, dstSQL: dstS}
	st, err := r.finishState(ctx, rt.RunID, on)
	if err != nil {
		return Outcome{}, err
	}
	if st.oid == 0 {
		return Outcome{}, errNoTargetDatabase
	}
	return r.finish(ctx, rt, on, st)
}

func (r *PgReplicate) finish(ctx context.Context, rt *Runtime, on finishHosts, st replState) (Outcome, error) {
	src := on.src
	switch {
	case st.finished():
		return Outcome{Output: "the replication already finished"}, nil
	case st.is(replFinishing):
		// Caught up and checked by an earlier run, which stopped before
		// the end: the source has not moved since (its application is
		// stopped), so its sequences are read again and the rest redone.
		final, err := r.readFinal(ctx, on.srcSQL, false)
		if err != nil {
			return Outcome{}, err
		}
		if final.identities, err = r.runIdentityRecord(ctx, rt, src, final.source); err != nil {
			return Outcome{}, err
		}
		return r.cutOver(ctx, on, st, final, "an earlier run caught up; ")
	case !st.subscription:
		return Outcome{}, fmt.Errorf("no subscription %s on %s: run the start step first", r.name(), r.Target.Host)
	case st.ready != st.tables:
		return Outcome{}, fmt.Errorf("the initial copy is not done (%d of %s ready): run the start step first", st.ready, hostcmd.Plural(st.tables, "table", "tables"))
	}
	begin := time.Now()
	final, err := r.readFinal(ctx, on.srcSQL, true)
	if err != nil {
		return Outcome{}, err
	}
	if final.identities, err = r.runIdentityRecord(ctx, rt, src, final.source); err != nil {
		return Outcome{}, err
	}
	caught := fmt.Sprintf("target caught up with %s in %s (%s behind at the start); ", r.where(r.Source),
		time.Since(begin).Round(time.Millisecond), bytesize.Format(final.lag))
	return r.cutOver(ctx, on, st, final, caught)
}

// finalState is what the source says once the target has caught up: the
// statements that give the target its sequences and the materialized
// views to refresh there.
type finalState struct {
	source pg.DatabaseID // the source database's, to hold the identity record to
	lag    int64         // bytes the target was behind when the wait began
	// identities is this run's record of the replica identities start
	// gave, to put back on both servers; nil when it gave none.
	identities *identityRecord
	setvals    []string // SELECT pg_catalog.setval(...);
	views      []string // schema.name, quoted as identifiers
}

// finalSQL is the source's side of the cut-over in one session, since
// every psql costs a connection (tens of milliseconds, all of them engine
// downtime): no other client, then the wait until the slot's confirmed
// position reaches the WAL insert position (not the write position: a
// transaction committed asynchronously may not be written yet, and the
// slot only gets past it once it is), looping on the server, then no
// other client again (one may have come and written meanwhile), then the
// sequences and the populated materialized views. With wait false only
// the last two.
func (r *PgReplicate) finalSQL(wait bool) string {
	n := pg.Literal(r.name())
	var b strings.Builder
	if wait {
		timeout := r.catchUpTimeout()
		fmt.Fprintf(&b, "SET statement_timeout = %d;\n", (timeout + 30*time.Second).Milliseconds())
		b.WriteString(pg.ClientCheckSQL)
		fmt.Fprintf(&b, `DO $migrun$DECLARE target pg_lsn := pg_current_wal_insert_lsn(); deadline timestamptz := clock_timestamp() + interval '%d milliseconds'; got pg_lsn; BEGIN
  SELECT confirmed_flush_lsn INTO got FROM pg_replication_slots WHERE slot_name = %s;
  IF NOT FOUND THEN RAISE EXCEPTION 'migrun-noslot'; END IF;
  PERFORM set_config('migrun.lag', greatest(pg_wal_lsn_diff(target, got), 0)::bigint::text, false);
  WHILE got IS NULL OR got < target LOOP
    IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'migrun-behind %%', greatest(pg_wal_lsn_diff(target, got), 0)::bigint; END IF;
    PERFORM pg_sleep(0.01);
    SELECT confirmed_flush_lsn INTO got FROM pg_replication_slots WHERE slot_name = %s;
  END LOOP;
END$migrun$;
`, timeout.Milliseconds(), n, n)
		b.WriteString(pg.ClientCheckSQL)
		b.WriteString("SELECT 'lag', current_setting('migrun.lag');\n")
	}
	b.WriteString(`SELECT 'id', (SELECT oid FROM pg_database WHERE datname = current_database()) || ' ' || system_identifier FROM pg_control_system();
SELECT 'seq', format('SELECT pg_catalog.setval(%L, %s, %s);', quote_ident(schemaname) || '.' || quote_ident(sequencename),
  coalesce(last_value, start_value), (last_value IS NOT NULL)::text) FROM pg_sequences ORDER BY schemaname, sequencename;
SELECT 'view', format('%I.%I', schemaname, matviewname) FROM pg_matviews WHERE ispopulated;
`)
	return b.String()
}

// The refusals finalSQL raises.
var (
	replBehindRE = regexp.MustCompile(`migrun-behind (\d+)`)
)

// readFinal runs finalSQL on the source and turns its refusals into
// errors people can act on.
func (r *PgReplicate) readFinal(ctx context.Context, src pg.Script, wait bool) (finalState, error) {
	var f finalState
	rows, err := src.Run(ctx, r.finalSQL(wait))
	if err != nil {
		var exit *executors.ExitError
		if errors.As(err, &exit) {
			if m := pg.ClientsRE.FindStringSubmatch(exit.Stderr); m != nil {
				total, _ := strconv.Atoi(m[1])
				return f, fmt.Errorf("%s still connected to %s (%s): stop the application first (and every other service using the database), or what it writes after the cut-over is lost; the replication goes on",
					hostcmd.Plural(total, "client is", "clients are"), r.where(r.Source), strings.TrimSpace(m[2]))
			}
			if m := replBehindRE.FindStringSubmatch(exit.Stderr); m != nil {
				behind, _ := strconv.ParseInt(m[1], 10, 64)
				return f, fmt.Errorf("the target is still %s behind the source after %s (catch_up_timeout); is its subscription worker running? (pg_stat_subscription on %s)",
					bytesize.Format(behind), r.catchUpTimeout(), r.Target.Host)
			}
			if strings.Contains(exit.Stderr, "migrun-noslot") {
				return f, fmt.Errorf("replication slot %s is gone from %s", r.name(), r.Source.Host)
			}
		}
		return f, err
	}
	for _, row := range rows {
		if len(row) != 2 {
			return f, fmt.Errorf("%s: unexpected psql output %q", r.Source.Host, row)
		}
		switch row[0] {
		case "lag":
			f.lag, _ = strconv.ParseInt(row[1], 10, 64)
		case "id":
			oid, sys, _ := strings.Cut(row[1], " ")
			f.source.OID, _ = strconv.ParseInt(oid, 10, 64)
			f.source.SystemID = sys
		case "seq":
			f.setvals = append(f.setvals, row[1])
		case "view":
			f.views = append(f.views, row[1])
		}
	}
	return f, nil
}

// cutOverTargetSQL is the target's side in one session: the sequences,
// the materialized views (in the order the schema copy created them,
// which is pg_restore's dependency order: a view built on another comes
// after it), then the subscription dropped, detached from its slot first
// so that nothing needs to reach the source (the slots go there
// directly). All of it may run in a transaction: DROP SUBSCRIPTION only
// refuses one while the subscription still has a slot.
func (r *PgReplicate) cutOverTargetSQL(f finalState) string {
	var b strings.Builder
	for _, s := range f.setvals {
		b.WriteString(s + "\n")
	}
	if len(f.views) > 0 {
		names := make([]string, len(f.views))
		for i, v := range f.views {
			names[i] = pg.Literal(v)
		}
		b.WriteString(`DO $migrun$DECLARE v regclass; BEGIN
  FOR v IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'm' AND format('%I.%I', n.nspname, c.relname) = ANY (ARRAY[` + strings.Join(names, ", ") + `]::text[]) ORDER BY c.oid
  LOOP EXECUTE format('REFRESH MATERIALIZED VIEW %s', v); END LOOP;
END$migrun$;
`)
	}
	b.WriteString(r.dropSubscriptionSQL())
	if f.identities != nil {
		// Once nothing is replicated any more, in the same session.
		b.WriteString(targetIdentitiesSQL(f.identities))
	}
	return b.String()
}

// cutOver gives the target the final state and ends the replication:
// marked "finishing" first, so that a run stopped anywhere in between
// redoes exactly this part.
func (r *PgReplicate) cutOver(ctx context.Context, on finishHosts, st replState, f finalState, note string) (Outcome, error) {
	src, dst := on.src, on.dst
	if !st.is(replFinishing) {
		if err := r.writeMarker(ctx, dst, replFinishing, st); err != nil {
			return Outcome{Changed: true}, err
		}
	}
	begin := time.Now()
	if _, err := on.dstSQL.Run(ctx, r.cutOverTargetSQL(f)); err != nil {
		return Outcome{Changed: true}, fmt.Errorf("sequences, materialized views and subscription on %s: %w", r.Target.Host, err)
	}
	// The replica identities go back in the same session, once the
	// publication is gone: a table without its identity while still
	// published would refuse UPDATE and DELETE.
	if err := r.dropSourceSlots(ctx, on.srcSQL, st.subOID, restoreIdentitiesSQL(f.identities)); err != nil {
		return Outcome{Changed: true}, err
	}
	if f.identities != nil {
		if err := r.removeIdentityRecord(ctx, src); err != nil {
			return Outcome{Changed: true}, err
		}
	}
	if err := r.writeMarker(ctx, dst, replFinished, st); err != nil {
		return Outcome{Changed: true}, err
	}
	if f.identities != nil {
		note += hostcmd.Plural(len(f.identities.Tables), "replica identity", "replica identities") + " put back, "
	}
	views := ""
	if len(f.views) > 0 {
		views = " and " + hostcmd.Plural(len(f.views), "materialized view", "materialized views") + " refreshed"
	}
	return Outcome{Changed: true, Output: fmt.Sprintf("%s%s copied%s, subscription, slots and publication %s dropped in %s",
		note, hostcmd.Plural(len(f.setvals), "sequence", "sequences"), views, r.name(), time.Since(begin).Round(time.Millisecond))}, nil
}
