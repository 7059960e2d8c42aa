package steps

import (
	"bytes"
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

// pg_capture's apply, in the downtime: the source's logged changes read
// in one snapshot into a catch-up script that psql on the target runs as
// one transaction as it arrives.

// clientsRefusal turns pg.ClientCheckSQL's refusal into an error people can act on.
func (c *PgCapture) clientsRefusal(err error) error {
	var exit *executors.ExitError
	if errors.As(err, &exit) {
		if m := pg.ClientsRE.FindStringSubmatch(exit.Stderr); m != nil {
			n, _ := strconv.Atoi(m[1])
			return fmt.Errorf("%s still connected to %s on %s (%s): stop the application first (and every other service using the database), or what it writes now is lost",
				hostcmd.Plural(n, "client is", "clients are"), c.Source.Database, c.Source.Host, strings.TrimSpace(m[2]))
		}
	}
	return err
}

// catchUpSQL runs on the source, after the check that nobody else is
// connected, in one read-only snapshot, and prints the target's script;
// the check is made again before the script's COMMIT, so that a client
// come meanwhile fails it with nothing committed on the target.
// The copy carried the capture (its schema and the triggers): the script
// drops it from the target first.
// Each table the log names gives one row of four statements that \gexec
// runs in order: the DELETE and the COPY header printed as text, the COPY
// of the rows, the end of the COPY data.
func catchUpSQL(schema string) string {
	return pg.ClientCheckSQL + `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT 'BEGIN;';
SELECT 'SET session_replication_role = replica;';
SELECT 'DROP SCHEMA IF EXISTS ` + schema + ` CASCADE;';
WITH logged AS (
  SELECT l.relid, jsonb_agg(DISTINCT l.key) FILTER (WHERE l.key IS NOT NULL) AS keys, bool_or(l.key IS NULL) AS whole
  FROM ` + schema + `.changes l GROUP BY l.relid
), t AS (
  SELECT l.*, format('%I.%I', n.nspname, c.relname) AS name,
    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS cols,
    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i) FROM pg_index x
      CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, i)
      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
      WHERE x.indrelid = c.oid AND x.indisprimary) AS pk
  FROM logged l JOIN pg_class c ON c.oid = l.relid JOIN pg_namespace n ON n.oid = c.relnamespace
), w AS (
  SELECT name, cols, CASE WHEN whole OR pk IS NULL THEN '' ELSE
    format('WHERE (%s) IN (SELECT %s FROM jsonb_populate_recordset(NULL::%s, %L))', pk, pk, name, keys) END AS cond
  FROM t
)
SELECT format('SELECT %L', CASE WHEN cond = '' THEN format('DELETE FROM %s;', name) ELSE format('DELETE FROM %s %s;', name, cond) END),
  format('SELECT %L', format('COPY %s (%s) FROM STDIN;', name, cols)),
  format('COPY (SELECT %s FROM %s %s) TO STDOUT', cols, name, cond),
  'SELECT ''\.'''
FROM w ORDER BY name \gexec
SELECT format('SELECT pg_catalog.setval(%L, %s, %s);', quote_ident(schemaname) || '.' || quote_ident(sequencename),
  coalesce(last_value, start_value), (last_value IS NOT NULL)::text) FROM pg_sequences ORDER BY schemaname, sequencename;
SELECT 'DO $migrun$DECLARE v regclass; BEGIN FOR v IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = ''m'' AND format(''%I.%I'', n.nspname, c.relname) = ANY (' ||
  quote_literal(coalesce(array_agg(format('%I.%I', schemaname, matviewname)), '{}')::text) || '::text[]) ORDER BY c.oid LOOP EXECUTE format(''REFRESH MATERIALIZED VIEW %s'', v); END LOOP; END$migrun$;'
  FROM pg_matviews WHERE ispopulated;
SELECT pg_stat_clear_snapshot();
` + pg.ClientCheckSQL + `SELECT 'COMMIT;';
SELECT format('SELECT %L, (SELECT oid FROM pg_database WHERE datname = current_database()), system_identifier FROM pg_control_system();', 'migrun-id');
COMMIT;
`
}

func (c *PgCapture) apply(ctx context.Context, rt *Runtime, src, dst executors.Executor) (Outcome, error) {
	s := c.schema(rt.RunID)
	applied, err := c.applied(ctx, rt.RunID, dst)
	if err != nil {
		return Outcome{}, err
	}
	note := ""
	if !applied {
		st, err := c.readSource(ctx, src, rt.RunID, false)
		if err != nil {
			return Outcome{}, err
		}
		if !st.schema {
			return Outcome{}, fmt.Errorf("no capture %s on %s: run the start step first, before the copy", s, c.Source.Host)
		}
		begin := time.Now()
		id, err := c.catchUp(ctx, src, dst, s)
		if err != nil {
			return Outcome{}, err
		}
		m := pg.Marker{State: captureApplied, Source: pgSourceID(c.Source), Database: c.Target.Database, DatabaseOID: id.OID,
			SocketDir: c.Target.SocketDir, Port: c.Target.Port, SystemID: id.SystemID, RunID: rt.RunID}
		if err := pg.WriteMarker(ctx, dst, c.markerPath(), m); err != nil {
			return Outcome{Changed: true}, err
		}
		note = fmt.Sprintf("%s applied to %s on %s in %s; ", hostcmd.Plural(int(st.changes), "logged change", "logged changes"),
			c.Target.Database, c.Target.Host, time.Since(begin).Round(time.Millisecond))
	}
	if _, err := pg.Exec(ctx, src, c.source(), dropCaptureSQL(s)); err != nil {
		return Outcome{Changed: true}, fmt.Errorf("drop the capture %s: %w", s, err)
	}
	return Outcome{Changed: true, Output: note + "capture " + s + " dropped from " + c.Source.Host}, nil
}

// catchUp pipes the source's catch-up script into psql on the target and
// returns the target database's identity, which the script has it print
// last. A side that fails ends the other: the target's transaction is
// then never committed.
func (c *PgCapture) catchUp(ctx context.Context, src, dst executors.Executor, schema string) (pg.DatabaseID, error) {
	reader := c.source().PsqlCommand(catchUpSQL(schema), false)
	writer := c.target().PsqlCommand("", false)
	var out bytes.Buffer
	writer.Stdout = &out
	p := hostcmd.Pipe(ctx, src, reader, dst, writer, nil)
	// The side that failed first: the other then fails as a consequence.
	switch {
	case ctx.Err() != nil:
		return pg.DatabaseID{}, ctx.Err()
	case p.SendErr != nil && p.First == hostcmd.Sender:
		return pg.DatabaseID{}, fmt.Errorf("read the changes on %s (the target's transaction was not committed): %w", c.Source.Host, c.clientsRefusal(p.SendErr))
	case p.RecvErr != nil:
		return pg.DatabaseID{}, fmt.Errorf("apply the changes on %s (one transaction: none of them kept): %w", c.Target.Host, p.RecvErr)
	case p.SendErr != nil:
		return pg.DatabaseID{}, p.SendErr
	}
	var id pg.DatabaseID
	for _, row := range pg.ParseRows(out.Bytes()) {
		if len(row) == 3 && row[0] == "migrun-id" {
			id.OID, _ = strconv.ParseInt(row[1], 10, 64)
			id.SystemID = row[2]
		}
	}
	if id.SystemID == "" {
		return id, fmt.Errorf("psql on %s did not report the database's identity: %q", c.Target.Host, out.String())
	}
	return id, nil
}
