package steps

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_capture's SQL and state: the capture schema, its log and triggers,
// and the reading of the source that tells what a run left there.

// captureTablesSQL lists the source's tables outside the catalogs and the
// capture schemas (partitions each on their own: a partitioned table holds
// no rows), each with its primary key's columns as the trigger's
// arguments (string literals; none: empty) and whether it already has this
// run's trigger: "t", name, arguments, "t"/"f".
func captureTablesSQL(schema string) string {
	return `SELECT 't', format('%I.%I', n.nspname, c.relname),
  coalesce((SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY k.i) FROM pg_index x
    CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY k(attnum, i)
    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
    WHERE x.indrelid = c.oid AND x.indisprimary), ''),
  EXISTS (SELECT 1 FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
    WHERE g.tgrelid = c.oid AND g.tgname = 'migrun_capture_row' AND pn.nspname = ` + pg.Literal(schema) + `)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND ` + pg.UserSchemasSQL + ` AND n.nspname NOT LIKE 'migrun\_capture\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 2;
`
}

// captureState is what the source holds of this run's capture.
type captureState struct {
	schema  bool       // this run's schema exists
	changes int64      // entries in its log
	others  []string   // other runs' capture schemas
	tables  [][]string // captureTablesSQL's rows, when asked for
	// largeObjects counts the source's large objects (with tables): their
	// writes fire no trigger.
	largeObjects int64
}

// refusal is why the source cannot be captured, nil if it can.
func (st captureState) refusal(c *PgCapture) error {
	switch {
	case len(st.others) > 0:
		return c.othersErr(st.others)
	case st.largeObjects > 0:
		return fmt.Errorf("%s holds %s: their changes fire no trigger, so a capture cannot follow them (move it with the application stopped: capture=false)",
			c.Source.Database, hostcmd.Plural(int(st.largeObjects), "large object", "large objects"))
	}
	return nil
}

// readSource reads the source's capture schemas and, with tables, its
// tables, in one psql.
func (c *PgCapture) readSource(ctx context.Context, src executors.Executor, runID string, tables bool) (captureState, error) {
	s := c.schema(runID)
	sql := "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = " + pg.Literal(s) + ") AS migrun_has \\gset\n" +
		"\\if :migrun_has\nSELECT 's', count(*) FROM " + s + ".changes;\n\\endif\n" +
		"SELECT 'o', nspname FROM pg_namespace WHERE nspname LIKE 'migrun\\_capture\\_%' AND nspname <> " + pg.Literal(s) + " ORDER BY 2;\n"
	if tables {
		sql += "SELECT 'lo', count(*) FROM pg_largeobject_metadata;\n" + captureTablesSQL(s)
	}
	rows, err := pg.Probe(ctx, src, c.source(), sql, "the application writes all the time")
	if err != nil {
		return captureState{}, err
	}
	var st captureState
	for _, row := range rows {
		switch {
		case len(row) == 2 && row[0] == "s":
			st.schema = true
			st.changes, _ = strconv.ParseInt(row[1], 10, 64)
		case len(row) == 2 && row[0] == "o":
			st.others = append(st.others, row[1])
		case len(row) == 4 && row[0] == "t":
			st.tables = append(st.tables, row[1:])
		case len(row) == 2 && row[0] == "lo":
			st.largeObjects, _ = strconv.ParseInt(row[1], 10, 64)
		}
	}
	return st, nil
}

// othersErr refuses a start while other runs' captures are on the source:
// their triggers have the same names, and a table logged twice for two
// copies is one copy too many.
func (c *PgCapture) othersErr(others []string) error {
	return fmt.Errorf("another run's capture is on %s (%s): cancel it with that run, or drop it (DROP SCHEMA ... CASCADE) if that run is abandoned",
		c.Source.Host, strings.Join(others, ", "))
}

// untriggered lists the tables without this run's trigger.
func (st captureState) untriggered() []string {
	var names []string
	for _, t := range st.tables {
		if t[2] != "t" {
			names = append(names, t[0])
		}
	}
	return names
}

// applied reports whether the target has this run's "applied" marker and
// is the database it was written for.
func (c *PgCapture) applied(ctx context.Context, runID string, dst executors.Executor) (bool, error) {
	m, err := pg.ReadMarker(ctx, dst, c.markerPath())
	if err != nil || m == nil || m.State != captureApplied || m.RunID != runID || runID == "" {
		return false, err
	}
	id, err := pg.DatabaseIdentity(ctx, dst, c.Target.PgConnection.target("postgres"), c.Target.Database)
	if err != nil {
		return false, err
	}
	return markerIsOurs(m, c.Source, c.Target, id, runID), nil
}

// setupSQL makes the schema, the log and the trigger function. The
// function logs, per row, the primary key's columns it is given (as
// jsonb, old and new where they differ), and per statement the table. It
// runs as its owner (SECURITY DEFINER, with a search_path of the catalog
// only): a trigger runs as the user whose statement fires it, and the
// application's role may neither use the schema nor write the log.
func setupSQL(schema string) string {
	return `BEGIN;
CREATE SCHEMA IF NOT EXISTS ` + schema + `;
CREATE TABLE IF NOT EXISTS ` + schema + `.changes (relid oid NOT NULL, key jsonb);
CREATE OR REPLACE FUNCTION ` + schema + `.log() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $migrun$
DECLARE o jsonb; n jsonb;
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    INSERT INTO ` + schema + `.changes VALUES (TG_RELID, NULL);
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    SELECT jsonb_object_agg(k, to_jsonb(OLD) -> k) INTO o FROM unnest(TG_ARGV) k;
    INSERT INTO ` + schema + `.changes VALUES (TG_RELID, o);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    SELECT jsonb_object_agg(k, to_jsonb(NEW) -> k) INTO n FROM unnest(TG_ARGV) k;
    IF o IS DISTINCT FROM n THEN
      INSERT INTO ` + schema + `.changes VALUES (TG_RELID, n);
    END IF;
  END IF;
  RETURN NULL;
END$migrun$;
COMMIT;
`
}

// triggerSQL is the statements that give table (quoted) its triggers;
// keys are its primary key's columns as string literals, comma-separated
// ("" for none), which the function gets as its arguments.
func triggerSQL(schema, table, keys string) []string {
	if keys == "" {
		return []string{"CREATE TRIGGER migrun_capture_row AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON " + table +
			" FOR EACH STATEMENT EXECUTE FUNCTION " + schema + ".log()"}
	}
	return []string{
		"CREATE TRIGGER migrun_capture_row AFTER INSERT OR UPDATE OR DELETE ON " + table +
			" FOR EACH ROW EXECUTE FUNCTION " + schema + ".log(" + keys + ")",
		"CREATE TRIGGER migrun_capture_truncate AFTER TRUNCATE ON " + table + " FOR EACH STATEMENT EXECUTE FUNCTION " + schema + ".log()",
	}
}

// dropCaptureSQL drops the schema with the function, and so every
// trigger that calls it.
func dropCaptureSQL(schema string) string {
	return "DROP SCHEMA IF EXISTS " + schema + " CASCADE;\n"
}
