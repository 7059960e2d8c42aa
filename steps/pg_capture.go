package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgCaptureKind = Kind{
	Name:    "pg_capture",
	Summary: "record which rows of a PostgreSQL database change while a copy of it is made (start), then bring the copy up to date with only those rows (apply)",
	// The two databases name their hosts; the step's host: is not used.
	NeedsHost: false,
	New:       func() Spec { return new(PgCapture) },
}

var _ Spec = (*PgCapture)(nil)

// PgCapture moves a database without logical replication (a server that
// may not be restarted for wal_level = logical, or that gives no
// replication connection) while keeping the application's downtime to the
// rows it changed, not the size of the database. A plan uses it around a
// copy made while the application runs:
//
//   - action: start, application running: a schema of this run's own on
//     the source (migrun_capture_ and a hash of the run and both
//     databases) gets a log table and a trigger function, and every table
//     a trigger: per row for a table with a primary key (the key of each
//     row inserted, updated or deleted is logged), per statement for one
//     without (the table is logged), and for TRUNCATE. Each table's
//     trigger is created in a transaction of its own that waits at most
//     0.2 s for its lock and tries again, so the application's
//     transactions never wait long or fail.
//   - then the copy: pg_dump (any format, or pg_stream) and pg_restore,
//     application running. The dump's snapshot is taken after every
//     trigger exists, so whatever it misses is in the log.
//   - action: apply, application stopped: refused while another client is
//     connected to the source; one psql on the source, in one snapshot,
//     writes the target's catch-up script, which a psql on the target runs
//     as one transaction, as it arrives: for each logged table, the
//     logged keys' rows deleted and copied again (COPY), a table without
//     a key emptied and copied whole, with session_replication_role =
//     replica so that foreign keys do not depend on the order; then every
//     sequence set and the populated materialized views refreshed. The
//     capture is then dropped from the source.
//
// action: cancel drops the capture from the source (on_failure): a log
// left behind grows with every write the application makes.
//
// Progress is kept in a marker on the target host, as pg_replicate's
// (migrun-pg_capture.PORT.DATABASE): "applied" once the target committed,
// tied to the run and to the target database's identity, so that a run
// stopped after the target's commit only drops the capture when resumed.
// Schema changes on the source while the capture runs are not carried;
// pg_verify finds them.
type PgCapture struct {
	Action string     `yaml:"action" required:"true" enum:"start|apply|cancel" doc:"start: log which rows change from now on (application running, before the copy); apply: copy the logged rows into the target and drop the log (application stopped, after the copy); cancel: drop the log (on_failure)"`
	Source PgEndpoint `yaml:"source" required:"true" doc:"the database being moved, whose changes are logged; psql runs on its host"`
	Target PgEndpoint `yaml:"target" required:"true" doc:"the copy to bring up to date (action apply); the database must exist and hold the copy"`

	// markerDir holds the marker on the target host; "" is /var/tmp.
	markerDir string
}

// Marker state.
const captureApplied = "applied"

func (c *PgCapture) Validate() []Problem {
	ps := c.Source.PgConnection.validate("source.")
	ps = append(ps, c.Target.PgConnection.validate("target.")...)
	if c.Source == c.Target {
		ps = append(ps, Problem{"target", "source and target are the same database"})
	}
	return ps
}

func (c *PgCapture) Hosts(string) []string { return []string{c.Source.Host, c.Target.Host} }

func (c *PgCapture) source() pg.Target { return c.Source.target(c.Source.Database) }
func (c *PgCapture) target() pg.Target { return c.Target.target(c.Target.Database) }

func (c *PgCapture) wrap(err error) error {
	return fmt.Errorf("capture %s on %s -> %s on %s: %w", c.Source.Database, c.Source.Host, c.Target.Database, c.Target.Host, err)
}

// schema is this run's capture schema for this pair of databases: another
// run's (or another pair's) is never taken for ours.
func (c *PgCapture) schema(runID string) string {
	h := sha256.Sum256([]byte(runID + "\x00" + pgSourceID(c.Source) + "\x00" + pgSourceID(c.Target)))
	return "migrun_capture_" + hex.EncodeToString(h[:6])
}

func (c *PgCapture) markerPath() string { return targetMarkerPath(c.markerDir, "pg_capture", c.Target) }

// Check tells, per action, whether there is anything left to do.
func (c *PgCapture) Check(ctx context.Context, rt *Runtime) (Check, error) {
	src, err := rt.Executor(ctx, c.Source.Host)
	if err != nil {
		return Check{}, err
	}
	switch c.Action {
	case "start":
		st, err := c.readSource(ctx, src, rt.RunID, true)
		if pg.NotReady(err) {
			return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
		} else if err != nil {
			return Check{}, c.wrap(err)
		}
		if err := st.refusal(c); err != nil {
			return Check{}, c.wrap(err)
		}
		if left := st.untriggered(); !st.schema || len(left) > 0 {
			return Check{Reason: fmt.Sprintf("log the changes to %s of %s in schema %s (the triggers wait at most 0.2 s at a time for their locks)",
				hostcmd.Plural(len(left), "table", "tables"), c.Source.Database, c.schema(rt.RunID))}, nil
		}
		return Check{Done: true, Reason: fmt.Sprintf("the changes to %s are logged in %s (%s so far)",
			hostcmd.Plural(len(st.tables), "table", "tables"), c.schema(rt.RunID), hostcmd.Plural(int(st.changes), "entry", "entries"))}, nil
	case "apply":
		dst, err := rt.Executor(ctx, c.Target.Host)
		if err != nil {
			return Check{}, err
		}
		applied, err := c.applied(ctx, rt.RunID, dst)
		if err != nil {
			return Check{}, c.wrap(err)
		}
		st, err := c.readSource(ctx, src, rt.RunID, false)
		if pg.NotReady(err) {
			return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
		} else if err != nil {
			return Check{}, c.wrap(err)
		}
		switch {
		case applied && !st.schema:
			return Check{Done: true, Reason: "the logged changes were applied to " + c.Target.Database + " on " + c.Target.Host + " and the capture dropped"}, nil
		case applied:
			return Check{Reason: "the logged changes were applied; drop the capture " + c.schema(rt.RunID) + " from the source"}, nil
		case st.schema:
			return Check{Reason: fmt.Sprintf("apply %s logged since the start to %s on %s, then drop the capture",
				hostcmd.Plural(int(st.changes), "change", "changes"), c.Target.Database, c.Target.Host)}, nil
		}
		return Check{Unknown: true, Reason: "no capture " + c.schema(rt.RunID) + " on the source yet: the start step makes it"}, nil
	default:
		st, err := c.readSource(ctx, src, rt.RunID, false)
		if pg.NotReady(err) {
			return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
		} else if err != nil {
			return Check{}, c.wrap(err)
		}
		if !st.schema {
			return Check{Done: true, Reason: "no capture of this run on " + c.Source.Host}, nil
		}
		return Check{Reason: "drop the capture " + c.schema(rt.RunID) + " (" + hostcmd.Plural(int(st.changes), "change", "changes") + " logged) from " + c.Source.Host}, nil
	}
}

func (c *PgCapture) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	s := c.schema(rt.RunID)
	src := c.source()
	switch c.Action {
	case "start":
		return []Action{
			{Host: c.Source.Host, Summary: pg.Action(c.Source.Host, src, setupSQL(s))},
			{Host: c.Source.Host, Summary: "for every table of " + c.Source.Database + ", in a transaction of its own waiting at most 0.2 s at a time for its lock: " +
				strings.Join(triggerSQL(s, "TABLE", "KEY"), "; ") + " (with a primary key), or " + triggerSQL(s, "TABLE", "")[0] + " (without)"},
		}, nil
	case "apply":
		dst := c.target()
		return []Action{
			{Host: c.Source.Host, Summary: "run on " + c.Source.Host + " as " + src.RunAs() + ": " + executors.QuoteArgv(src.PsqlArgv()) +
				", which refuses while another client is connected to " + c.Source.Database + " and otherwise writes to its stdout, in one snapshot, for each table in " + s +
				".changes: its logged keys' rows deleted, then copied again (COPY), a table without a key emptied and copied whole; then every sequence's setval and the populated materialized views' refresh"},
			{Host: c.Target.Host, Summary: "run on " + c.Target.Host + " as " + dst.RunAs() + ": " + executors.QuoteArgv(dst.PsqlArgv()) +
				" (reads that on stdin as it arrives: one transaction with session_replication_role = replica); record it in " + c.markerPath()},
			{Host: c.Source.Host, Summary: pg.Action(c.Source.Host, src, dropCaptureSQL(s))},
		}, nil
	}
	return []Action{{Host: c.Source.Host, Summary: "for every table of " + c.Source.Database + ", waiting at most 0.2 s at a time for its lock: DROP TRIGGER migrun_capture_row, migrun_capture_truncate; then " +
		strings.ReplaceAll(strings.TrimSpace(dropCaptureSQL(s)), "\n", " ")}}, nil
}

func (c *PgCapture) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	src, err := rt.Executor(ctx, c.Source.Host)
	if err != nil {
		return Outcome{}, err
	}
	var o Outcome
	switch c.Action {
	case "start":
		o, err = c.start(ctx, rt, src)
	case "apply":
		var dst executors.Executor
		if dst, err = rt.Executor(ctx, c.Target.Host); err == nil {
			o, err = c.apply(ctx, rt, src, dst)
		}
	default:
		o, err = c.cancel(ctx, rt, src)
	}
	if err != nil {
		return o, c.wrap(err)
	}
	return o, nil
}

func (c *PgCapture) start(ctx context.Context, rt *Runtime, src executors.Executor) (Outcome, error) {
	s := c.schema(rt.RunID)
	if st, err := c.readSource(ctx, src, rt.RunID, true); err != nil {
		return Outcome{}, err
	} else if err := st.refusal(c); err != nil {
		return Outcome{}, err
	}
	if _, err := pg.Exec(ctx, src, c.source(), setupSQL(s)); err != nil {
		return Outcome{Changed: true}, fmt.Errorf("create the capture %s: %w", s, err)
	}
	st, err := c.readSource(ctx, src, rt.RunID, true)
	if err != nil {
		return Outcome{Changed: true}, err
	}
	var stmts []string
	keyless := 0
	for _, t := range st.tables {
		if t[2] == "t" {
			continue
		}
		if t[1] == "" {
			keyless++
		}
		stmts = append(stmts, triggerSQL(s, t[0], t[1])...)
	}
	if len(stmts) > 0 {
		if _, err := pg.Exec(ctx, src, c.source(), pg.LockPatientSQL(stmts)); err != nil {
			return Outcome{Changed: true}, fmt.Errorf("create the capture's triggers: %w", err)
		}
	}
	return Outcome{Changed: true, Output: fmt.Sprintf("the changes to %s are logged in %s (%d without a primary key, logged whole)",
		hostcmd.Plural(len(st.tables), "table", "tables"), s, keyless)}, nil
}

func (c *PgCapture) cancel(ctx context.Context, rt *Runtime, src executors.Executor) (Outcome, error) {
	s := c.schema(rt.RunID)
	st, err := c.readSource(ctx, src, rt.RunID, true)
	if err != nil {
		return Outcome{}, err
	}
	if !st.schema {
		return Outcome{Output: "no capture of this run on " + c.Source.Host}, nil
	}
	// The application may be running again: each table's triggers go in a
	// transaction of their own, patient with their locks, before the
	// schema (which would take every table's lock at once).
	var stmts []string
	for _, t := range st.tables {
		stmts = append(stmts, "DROP TRIGGER IF EXISTS migrun_capture_row ON "+t[0], "DROP TRIGGER IF EXISTS migrun_capture_truncate ON "+t[0])
	}
	if _, err := pg.Exec(ctx, src, c.source(), pg.LockPatientSQL(stmts)+dropCaptureSQL(s)); err != nil {
		return Outcome{Changed: true}, fmt.Errorf("drop the capture %s: %w", s, err)
	}
	return Outcome{Changed: true, Output: fmt.Sprintf("capture %s dropped from %s (%s logged)", s, c.Source.Host, hostcmd.Plural(int(st.changes), "change", "changes"))}, nil
}
