package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

// captureFixture adds what a capture must carry besides streamFixture and
// identityFixture: a composite key, a key that changes, a generated
// column, a foreign key (rows re-copied in any order) and a materialized
// view.
const captureFixture = `
CREATE TABLE vm_nics (vm_id int, idx int, mac text, PRIMARY KEY (vm_id, idx));
INSERT INTO vm_nics SELECT g, 0, 'mac' || g FROM generate_series(1, 30) g;
CREATE TABLE disks (id int PRIMARY KEY, size_gb int, size_mb int GENERATED ALWAYS AS (size_gb * 1024) STORED);
INSERT INTO disks (id, size_gb) SELECT g, g FROM generate_series(1, 30) g;
CREATE TABLE snapshots (id int PRIMARY KEY, disk_id int NOT NULL REFERENCES disks (id));
INSERT INTO snapshots SELECT g, g FROM generate_series(1, 10) g;
CREATE MATERIALIZED VIEW disk_total AS SELECT sum(size_gb) AS gb FROM disks;
`

// captureWrites are the application's writes between the copy's snapshot
// and the downtime: every kind of change on every kind of table, some by
// the application's own role, which may not touch the capture's schema.
const captureWrites = identityWrites + `
GRANT ALL ON ALL TABLES IN SCHEMA public TO engine;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO engine;
SET ROLE engine;
INSERT INTO audit_log (message) SELECT 'by the application ' || g FROM generate_series(1, 3) g;
DELETE FROM vm_nics WHERE vm_id = 3;
RESET ROLE;
INSERT INTO audit_log (message) SELECT 'later ' || g FROM generate_series(1, 20) g;
DELETE FROM audit_log WHERE audit_log_id BETWEEN 10 AND 19;
UPDATE audit_log SET message = 'changed' WHERE audit_log_id = 5;
UPDATE vm_nics SET mac = 'new' WHERE vm_id = 1;
UPDATE vm_nics SET idx = 1 WHERE vm_id = 2;
INSERT INTO disks (id, size_gb) VALUES (100, 7);
INSERT INTO snapshots VALUES (100, 100);
DELETE FROM snapshots WHERE id = 1;
UPDATE disks SET size_gb = 99 WHERE id = 3;
TRUNCATE "We ird"."Odd ""name""";
INSERT INTO "We ird"."Odd ""name""" VALUES (7);
SELECT setval('ticket_seq', 5000);
REFRESH MATERIALIZED VIEW disk_total;
`

// TestPgCaptureServer moves a database between two real clusters the way
// a plan without replication does it with a capture: start, copy with the
// application writing, writes, apply; then a refusal, a resumed apply and
// cancel.
func TestPgCaptureServer(t *testing.T) {
	srcPG, dstPG := startPostgres(t), startPostgres(t)
	ctx := context.Background()
	srcPG.psql(t, "CREATE ROLE engine LOGIN")
	dstPG.psql(t, "CREATE ROLE engine LOGIN")
	for _, db := range []string{"engine", "engine2"} {
		srcPG.psql(t, "CREATE DATABASE "+db+" OWNER engine")
		srcPG.psql(t, streamFixture+identityFixture+captureFixture, db)
		dstPG.psql(t, "CREATE DATABASE "+db+" OWNER engine")
	}
	srcEx, dstEx := executors.NewLocal("src"), executors.NewLocal("dst")
	live := testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, nil)
	dry := testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
	dry.DryRun = true
	live.RunID, dry.RunID = "run-1", "run-1"
	markers := t.TempDir()
	capture := func(action, db string) *PgCapture {
		return &PgCapture{
			Action:    action,
			Source:    PgEndpoint{Host: "src", Database: db, PgConnection: conn(srcPG)},
			Target:    PgEndpoint{Host: "dst", Database: db, PgConnection: conn(dstPG)},
			markerDir: markers,
		}
	}
	copyDB := func(t *testing.T, db string) {
		t.Helper()
		s := &PgStream{Source: capture("start", db).Source, Target: capture("start", db).Target, markerDir: t.TempDir()}
		if _, err := s.Apply(ctx, live); err != nil {
			t.Fatalf("copy: %v", err)
		}
	}
	// Everything the target must hold, table by table, ordered.
	contents := []string{
		"SELECT count(*), string_agg(audit_log_id || message, ',' ORDER BY audit_log_id) FROM audit_log",
		"SELECT string_agg(id::text || name, ',' ORDER BY id) FROM vds",
		"SELECT string_agg(vm_id || '/' || idx || mac, ',' ORDER BY vm_id, idx) FROM vm_nics",
		"SELECT string_agg(id || ':' || size_gb || ':' || size_mb, ',' ORDER BY id) FROM disks",
		"SELECT string_agg(id || ':' || disk_id, ',' ORDER BY id) FROM snapshots",
		"SELECT string_agg(vm_id || '/' || vds_id, ',' ORDER BY vm_id, vds_id) FROM pinning",
		"SELECT string_agg(id || method || coalesce(address, '-'), ',' ORDER BY id) FROM subscribers",
		"SELECT string_agg(label_id || '/' || vm_id, ',' ORDER BY label_id) FROM labels",
		"SELECT string_agg(name || domain, ',' ORDER BY name) FROM by_expr",
		"SELECT string_agg(k || v, ',' ORDER BY k) FROM nothing_set",
		`SELECT string_agg(a::text, ',' ORDER BY a) FROM "We ird"."Odd ""name"""`,
		"SELECT last_value, is_called FROM ticket_seq",
		"SELECT last_value FROM audit_log_audit_log_id_seq",
		"SELECT gb FROM disk_total",
	}
	same := func(t *testing.T, db string) {
		t.Helper()
		for _, q := range contents {
			if s, d := srcPG.psql(t, q, db), dstPG.psql(t, q, db); s != d {
				t.Errorf("%s: source %q, target %q", q, s, d)
			}
		}
	}
	schemas := func(t *testing.T, db string) string {
		return srcPG.psql(t, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'migrun\\_capture\\_%'", db)
	}

	start, apply := capture("start", "engine"), capture("apply", "engine")
	t.Run("dry run changes nothing", func(t *testing.T) {
		c, err := start.Check(ctx, dry)
		if err != nil || c.Done || c.Unknown || !strings.Contains(c.Reason, "log the changes to 11 tables") {
			t.Fatalf("check: %+v %v", c, err)
		}
		if c, err := apply.Check(ctx, dry); err != nil || !c.Unknown {
			t.Fatalf("apply check before start: %+v %v", c, err)
		}
		if _, err := start.Apply(ctx, dry); !errors.Is(err, executors.ErrDryRun) {
			t.Fatalf("apply under dry run: %v", err)
		}
		if n := schemas(t, "engine"); n != "0" {
			t.Fatalf("dry run made %s capture schemas", n)
		}
		// Large objects change without firing a trigger: refused.
		srcPG.psql(t, "CREATE DATABASE withlo")
		dstPG.psql(t, "CREATE DATABASE withlo")
		srcPG.psql(t, "SELECT lo_create(4242)", "withlo")
		if c, err := capture("start", "withlo").Check(ctx, dry); err == nil || !strings.Contains(err.Error(), "1 large object") {
			t.Fatalf("check with a large object: %+v %v", c, err)
		}
	})

	t.Run("start, copy, writes, apply", func(t *testing.T) {
		o, err := applyShown(ctx, t, start, dry, live)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("start: %s", o.Output)
		if c, err := start.Check(ctx, live); err != nil || !c.Done {
			t.Fatalf("start check after start: %+v %v", c, err)
		}
		srcPG.psql(t, "UPDATE vds SET name = name || '-before-copy' WHERE name = 'host1'", "engine")
		copyDB(t, "engine")
		srcPG.psql(t, captureWrites, "engine")
		c, err := apply.Check(ctx, dry)
		if err != nil || c.Done || c.Unknown || !strings.Contains(c.Reason, "changes logged since the start") {
			t.Fatalf("apply check: %+v %v", c, err)
		}
		if o, err = applyShown(ctx, t, apply, dry, live); err != nil {
			t.Fatal(err)
		}
		t.Logf("apply: %s", o.Output)
		same(t, "engine")
		verify := &PgVerify{Source: apply.Source, Target: apply.Target}
		if _, err := verify.Apply(ctx, live); err != nil {
			t.Fatalf("verify after apply: %v", err)
		}
		if n := schemas(t, "engine"); n != "0" {
			t.Errorf("%s capture schemas left on the source", n)
		}
		if n := srcPG.psql(t, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'migrun\\_capture%'", "engine"); n != "0" {
			t.Errorf("%s capture triggers left on the source", n)
		}
		if c, err := apply.Check(ctx, live); err != nil || !c.Done {
			t.Errorf("apply check after apply: %+v %v", c, err)
		}
		if c, err := capture("cancel", "engine").Check(ctx, live); err != nil || !c.Done {
			t.Errorf("cancel check after apply: %+v %v", c, err)
		}
	})

	t.Run("apply refuses while a client is connected, then resumes after the target's commit", func(t *testing.T) {
		start, apply := capture("start", "engine2"), capture("apply", "engine2")
		if _, err := start.Apply(ctx, live); err != nil {
			t.Fatal(err)
		}
		copyDB(t, "engine2")
		srcPG.psql(t, captureWrites, "engine2")
		held := srcPG.hold(t, "engine2")
		if _, err := apply.Apply(ctx, live); err == nil || !strings.Contains(err.Error(), "still connected") {
			t.Fatalf("apply with a client connected: %v", err)
		}
		held()
		if s, d := srcPG.psql(t, contents[0], "engine2"), dstPG.psql(t, contents[0], "engine2"); s == d {
			t.Fatal("the refused apply changed the target")
		}
		// Another run's apply does not take this run's capture.
		other := testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, nil)
		other.RunID = "run-2"
		if c, err := apply.Check(ctx, other); err != nil || !c.Unknown {
			t.Fatalf("another run's apply check: %+v %v", c, err)
		}
		if c, err := capture("start", "engine2").Check(ctx, other); err == nil || !strings.Contains(err.Error(), "another run's capture") {
			t.Fatalf("another run's start check: %+v %v", c, err)
		}
		// A run stopped after the target's commit, before the capture was
		// dropped: the resumed apply only drops it.
		id, err := apply.catchUp(ctx, srcEx, dstEx, apply.schema(live.RunID))
		if err != nil {
			t.Fatal(err)
		}
		m := pg.Marker{State: captureApplied, Source: pgSourceID(apply.Source), Database: "engine2", DatabaseOID: id.OID,
			SocketDir: apply.Target.SocketDir, Port: apply.Target.Port, SystemID: id.SystemID, RunID: live.RunID}
		if err := pg.WriteMarker(ctx, dstEx, apply.markerPath(), m); err != nil {
			t.Fatal(err)
		}
		dstPG.psql(t, "UPDATE vds SET name = 'must stay'", "engine2")
		if c, err := apply.Check(ctx, live); err != nil || c.Done || !strings.Contains(c.Reason, "were applied; drop the capture") {
			t.Fatalf("check of the resumed apply: %+v %v", c, err)
		}
		o, err := apply.Apply(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(o.Output, "applied to") || dstPG.psql(t, "SELECT count(DISTINCT name) FROM vds", "engine2") != "1" {
			t.Errorf("the resumed apply applied again: %s", o.Output)
		}
		if n := schemas(t, "engine2"); n != "0" {
			t.Errorf("%s capture schemas left", n)
		}
	})

	t.Run("cancel drops the capture with the application writing", func(t *testing.T) {
		start := capture("start", "engine2")
		rt := testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, nil)
		rt.RunID = "run-3"
		if _, err := start.Apply(ctx, rt); err != nil {
			t.Fatal(err)
		}
		srcPG.psql(t, "INSERT INTO audit_log (message) VALUES ('logged')", "engine2")
		held := srcPG.hold(t, "engine2")
		defer held()
		cancel := capture("cancel", "engine2")
		c, err := cancel.Check(ctx, rt)
		if err != nil || c.Done || !strings.Contains(c.Reason, "1 change logged") {
			t.Fatalf("cancel check: %+v %v", c, err)
		}
		if _, err := cancel.Apply(ctx, rt); err != nil {
			t.Fatal(err)
		}
		if n := schemas(t, "engine2"); n != "0" {
			t.Errorf("%s capture schemas left after cancel", n)
		}
		if n := srcPG.psql(t, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'migrun\\_capture%'", "engine2"); n != "0" {
			t.Errorf("%s capture triggers left after cancel", n)
		}
		srcPG.psql(t, "INSERT INTO audit_log (message) VALUES ('after cancel')", "engine2")
	})
}
