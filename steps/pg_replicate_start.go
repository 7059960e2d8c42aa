package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_replicate's start action: the refusals checked before anything
// changes, the schema copy, the publication and subscription, the wait for
// the initial copy and the target settled after it.

func (r *PgReplicate) checkStart(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (Check, error) {
	switch {
	case st.finished() || st.is(replFinishing):
		return Check{Done: true, Reason: fmt.Sprintf("the replication into %s finished at %s", r.where(r.Target), st.marker.Time.Format(time.RFC3339))}, nil
	case st.subscription && st.ready == st.tables:
		return Check{Done: true, Reason: fmt.Sprintf("subscription %s follows %s: initial copy of %s done", r.name(), r.where(r.Source), hostcmd.Plural(st.tables, "table", "tables"))}, nil
	case st.subscription:
		return Check{Reason: fmt.Sprintf("subscription %s exists; initial copy of %d of %s done: waiting for the rest", r.name(), st.ready, hostcmd.Plural(st.tables, "table", "tables"))}, nil
	case st.is(replSchema):
		// A run stopped between copying the schema (one transaction: all
		// of it or nothing) and subscribing: Apply goes on from there.
	default:
		objs, err := pg.ReadObjects(ctx, dst, r.target())
		if err != nil {
			return Check{}, r.wrap(err)
		}
		if objs.Total > 0 {
			return Check{}, r.wrap(r.notEmpty(ctx, dst, st, objs))
		}
	}
	blockers, err := r.sourceBlockers(ctx, src)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	if len(blockers.fatal) > 0 {
		return Check{}, r.wrap(errors.New(strings.Join(blockers.fatal, "; ")))
	}
	reason, err := r.withIdentities(ctx, rt, src, "target "+r.where(r.Target)+" is empty: copy the schema, publish and subscribe; the initial copy runs while the source stays in use")
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	if len(blockers.later) > 0 {
		// An earlier step of the plan (pg_conf, pg_role) may well see to
		// these; Apply refuses if it did not.
		reason += " (needs, at apply: " + strings.Join(blockers.later, "; ") + ")"
	}
	return Check{Reason: reason}, nil
}

// checkSourceEarly is start's check while the target database does not
// exist yet: unknown, unless the source has what no later step fixes
// (unlogged tables, large objects, another run's replica identities).
func (r *PgReplicate) checkSourceEarly(ctx context.Context, rt *Runtime, src executors.Executor, reason string) (Check, error) {
	b, err := r.sourceBlockers(ctx, src)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: reason}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	if len(b.fatal) > 0 {
		return Check{}, r.wrap(errors.New(strings.Join(b.fatal, "; ")))
	}
	withIDs, err := r.withIdentities(ctx, rt, src, reason)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: reason}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	return Check{Unknown: true, Reason: withIDs}, nil
}

// withIdentities adds to reason what start will do about replica
// identities; it fails when another run's record refuses the start.
func (r *PgReplicate) withIdentities(ctx context.Context, rt *Runtime, src executors.Executor, reason string) (string, error) {
	ip, err := r.planIdentities(ctx, rt, src)
	if err != nil {
		return reason, err
	}
	if d := ip.describe(); d != "" {
		reason += "; " + d
	}
	return reason, nil
}

// notEmpty explains why the target will not be subscribed.
func (r *PgReplicate) notEmpty(ctx context.Context, dst executors.Executor, st replState, objs pg.Objects) error {
	recreate := pg.RecreateHint(ctx, dst, r.Target.Host, r.target())
	if st.marker != nil {
		return fmt.Errorf("an earlier replication from %s into it (%s since %s) left %s and no subscription; drop and re-create the database, then apply again%s",
			r.where(r.Source), st.marker.State, st.marker.Time.Format(time.RFC3339), objs, recreate)
	}
	return fmt.Errorf("the target database is not empty (%s): pg_replicate only copies into an empty database, so that two databases are never mixed", objs)
}

// blockers are what stands in the way of publishing the source: fatal
// ones no step of a plan would fix (large objects, unlogged tables),
// later ones an earlier step may (wal_level, the role). Tables without a
// replica identity are not among them: start gives them one.
type blockers struct{ fatal, later []string }

// sourceBlockersSQL reads, in one query: wal_level, free replication
// slots, whether the publisher role may replicate, large objects and
// unlogged tables.
func (r *PgReplicate) sourceBlockersSQL() string {
	user := r.Publisher.User
	return `SELECT current_setting('wal_level'),
  current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots WHERE slot_name <> ` + pg.Literal(r.name()) + `),
  coalesce((SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = ` + pg.Literal(user) + `), 'missing'),
  (SELECT count(*) FROM pg_largeobject_metadata),
  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND c.relpersistence = 'u' AND ` + pg.UserSchemasSQL + `);
`
}

func (r *PgReplicate) sourceBlockers(ctx context.Context, src executors.Executor) (blockers, error) {
	var b blockers
	rows, err := pg.Query(ctx, src, r.source(), r.sourceBlockersSQL())
	if err != nil {
		return b, err
	}
	if len(rows) != 1 || len(rows[0]) != 5 {
		return b, fmt.Errorf("%s: unexpected psql output %q", src.Name(), rows)
	}
	row := rows[0]
	if row[0] != "logical" {
		b.later = append(b.later, fmt.Sprintf("the source server runs with wal_level = %s: logical is needed (set it and restart the server: pg_conf with apply_with: restart)", row[0]))
	}
	if free, _ := strconv.Atoi(row[1]); free < 1 {
		b.later = append(b.later, "the source server has no free replication slot (max_replication_slots; a restart)")
	}
	switch row[2] {
	case "missing":
		b.later = append(b.later, fmt.Sprintf("role %s does not exist on the source server", r.Publisher.User))
	case "false":
		b.later = append(b.later, fmt.Sprintf("role %s may not replicate: grant it REPLICATION (pg_role replication: true)", r.Publisher.User))
	}
	if n, _ := strconv.Atoi(row[3]); n > 0 {
		b.fatal = append(b.fatal, fmt.Sprintf("the source database holds %s, which logical replication does not carry: move it with pg_dump and pg_restore", hostcmd.Plural(n, "large object", "large objects")))
	}
	if n, _ := strconv.Atoi(row[4]); n > 0 {
		b.fatal = append(b.fatal, fmt.Sprintf("the source database has %s, whose rows logical replication does not carry: make them logged (ALTER TABLE ... SET LOGGED) or move the database with pg_dump and pg_restore", hostcmd.Plural(n, "unlogged table", "unlogged tables")))
	}
	return b, nil
}

func (r *PgReplicate) start(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (Outcome, error) {
	if st.finished() {
		return Outcome{Output: "the replication already finished"}, nil
	}
	begin := time.Now()
	var notes []string
	o := Outcome{}
	if !st.subscription {
		b, err := r.sourceBlockers(ctx, src)
		if err != nil {
			return o, err
		}
		if all := append(b.fatal, b.later...); len(all) > 0 {
			return o, errors.New(strings.Join(all, "; "))
		}
		objs, err := pg.ReadObjects(ctx, dst, r.target())
		if err != nil {
			return o, err
		}
		if objs.Total > 0 && !st.is(replSchema) {
			return o, r.notEmpty(ctx, dst, st, objs)
		}
		// Before the schema copy, so that the target's tables get the same
		// identities (the subscription needs a matching one on its side
		// for USING INDEX).
		ip, err := r.planIdentities(ctx, rt, src)
		if err != nil {
			return o, err
		}
		if err := r.giveIdentities(ctx, rt, src, ip); err != nil {
			o.Changed = true
			return o, err
		}
		if len(ip.changes) > 0 {
			o.Changed = true
			notes = append(notes, hostcmd.Plural(len(ip.changes), "table", "tables")+" without a primary key given a replica identity until finish ("+r.identityRecordPath()+" on "+r.Source.Host+" records what they had)")
		}
		switch {
		case objs.Total == 0:
			out, err := r.copySchema(ctx, rt, src, dst, st)
			o.Changed = true
			if err != nil {
				return o, err
			}
			notes = append(notes, out)
		default:
			// The schema copy is one transaction, so a schema there is
			// complete; the subscription's initial copy needs its tables
			// empty.
			if err := r.checkTablesEmpty(ctx, dst); err != nil {
				return o, err
			}
			notes = append(notes, "the schema copied by an earlier run is there")
		}
		if err := r.subscribe(ctx, rt, src, dst, st); err != nil {
			o.Changed = true
			return o, err
		}
		o.Changed = true
		sub, err := r.readSubscription(ctx, dst)
		if err != nil {
			return o, err
		}
		st.subOID = sub
		if err := r.writeMarker(ctx, dst, replSubscribed, st); err != nil {
			return o, err
		}
		notes = append(notes, "published all tables of "+r.where(r.Source)+" and subscribed "+r.where(r.Target)+" as "+r.name())
	}
	n, err := r.waitInitialCopy(ctx, rt, dst)
	if err != nil {
		return o, err
	}
	notes = append(notes, fmt.Sprintf("initial copy of %s done in %s; the target follows the source until finish",
		hostcmd.Plural(n, "table", "tables"), time.Since(begin).Round(100*time.Millisecond)))
	settled := time.Now()
	if _, err := pg.Exec(ctx, dst, r.target(), settleTargetSQL); err != nil {
		return o, fmt.Errorf("vacuum the copied tables on %s: %w", r.Target.Host, err)
	}
	notes = append(notes, fmt.Sprintf("the copied tables vacuumed and analyzed on %s in %s", r.Target.Host, time.Since(settled).Round(100*time.Millisecond)))
	o.Output = strings.Join(notes, "\n")
	return o, nil
}

// schemaRetryAdvice ends the error of a schema copy whose pg_restore
// failed: it ran as one transaction, so nothing of it was kept.
const schemaRetryAdvice = "the schema copy is one transaction and none of it was kept: mend the cause and apply again (accept a harmless error with allow_errors)"

// copySchema streams pg_dump -s into pg_restore, between two markers:
// a run interrupted midway leaves "schema", which tells the next one.
func (r *PgReplicate) copySchema(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (string, error) {
	harmless, err := pg.HarmlessPatterns(r.AllowErrors)
	if err != nil {
		return "", err
	}
	if err := r.writeMarker(ctx, dst, replSchema, replState{runID: st.runID, oid: st.oid, systemID: st.systemID}); err != nil {
		return "", err
	}
	out, w := streamOutput(rt)
	bar := progressOf(rt).Start(Task{Label: r.Source.Host + ":" + r.Source.Database + " -> " + r.Target.Host + ":" + r.Target.Database, Unit: UnitBytes, Total: -1})
	res, err := pg.Stream{From: src, Dump: r.schemaDump(), To: dst, Restore: r.schemaRestore(),
		Harmless: harmless, Advice: schemaRetryAdvice, Out: w, Progress: barWriter{bar}}.Run(ctx)
	bar.Done(err)
	if err != nil {
		return "", fmt.Errorf("copy the schema: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return "copied the schema (" + bytesize.Format(res.Bytes) + " archive)" + res.Report.AcceptedNote(), nil
}

// checkTablesEmpty makes sure a schema left by an interrupted run holds
// no rows yet: the subscription's initial copy appends to what is there.
func (r *PgReplicate) checkTablesEmpty(ctx context.Context, dst executors.Executor) error {
	// Exact, not the planner's estimates, which read 0 before an ANALYZE.
	rows, err := pg.Query(ctx, dst, r.target(), `DO $migrun$DECLARE t regclass; filled int := 0; found boolean; BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND `+pg.UserSchemasSQL+`
  LOOP EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s)', t) INTO found; IF found THEN filled := filled + 1; END IF; END LOOP;
  PERFORM set_config('migrun.filled', filled::text, false);
END$migrun$;
SELECT current_setting('migrun.filled');
`)
	if err != nil {
		return err
	}
	if len(rows) == 1 && rows[0][0] != "0" {
		return fmt.Errorf("an earlier run copied the schema and stopped before subscribing, and %s tables hold data now; drop and re-create the database, then apply again", rows[0][0])
	}
	return nil
}
