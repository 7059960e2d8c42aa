package steps

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

func TestPgReplicateValidate(t *testing.T) {
	src := PgEndpoint{Host: "old", Database: "engine"}
	dst := PgEndpoint{Host: "new", Database: "engine"}
	pub := PgReplicateConnect{Host: "10.0.0.1", User: "engine"}
	tests := []struct {
		name string
		spec PgReplicate
		want []string // problem fields
	}{
		{"start", PgReplicate{Action: "start", Source: src, Target: dst, Publisher: pub}, nil},
		{"finish needs no publisher", PgReplicate{Action: "finish", Source: src, Target: dst}, nil},
		{"start without publisher", PgReplicate{Action: "start", Source: src, Target: dst}, []string{"publisher.host", "publisher.user"}},
		{"same database", PgReplicate{Action: "cancel", Source: src, Target: src}, []string{"target"}},
		{"bad name", PgReplicate{Action: "cancel", Source: src, Target: dst, Name: "Migrun-1"}, []string{"name"}},
		{"bad publisher", PgReplicate{Action: "start", Source: src, Target: dst,
			Publisher: PgReplicateConnect{Host: "a b", User: "x", Port: 99999}}, []string{"publisher.host", "publisher.port"}},
		{"timeout", PgReplicate{Action: "finish", Source: src, Target: dst, CatchUpTimeout: "soon"}, []string{"catch_up_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problemFields(tt.spec.Validate()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems on %v, want %v (%v)", got, tt.want, tt.spec.Validate())
			}
		})
	}
	r := PgReplicate{Source: src, Target: PgEndpoint{Host: "new", Database: "Engine-DB"}}
	if r.name() != "migrun_engine_db" {
		t.Fatalf("default name %q", r.name())
	}
	if k, ok := Builtin().Lookup("pg_replicate"); !ok || k.NeedsHost {
		t.Fatalf("registry: %+v %v", k, ok)
	}
}

// TestPgReplicateDescribe checks each action's account of what it will do:
// what it runs, and what belongs to another action and must not appear.
func TestPgReplicateDescribe(t *testing.T) {
	tests := []struct {
		action      string
		want, never []string
	}{
		{"start", []string{
			"pg_dump -F c -Z 0 --schema-only --no-publications --no-subscriptions engine",
			"CREATE PUBLICATION \"migrun_engine\" FOR ALL TABLES;",
			`CREATE SUBSCRIPTION "migrun_engine" CONNECTION 'host=''10.0.0.1'' port=5432 dbname=''engine'' user=''o\''neil'' sslmode=prefer application_name=''migrun_engine'' password=''<secret:pw>''' PUBLICATION "migrun_engine" WITH (synchronous_commit = 'local');`,
			"wait until every table's initial copy is done",
			"VACUUM (ANALYZE);",
		}, []string{"DROP SUBSCRIPTION", "setval", "secret:pw\x1e"}},
		{"finish", []string{"confirmed_flush_lsn", "setval", "DROP SUBSCRIPTION", "pg_drop_replication_slot", "DROP PUBLICATION IF EXISTS"},
			[]string{"CREATE PUBLICATION", "CREATE SUBSCRIPTION", "pg_dump"}},
		{"cancel", []string{"DROP SUBSCRIPTION", "DROP PUBLICATION IF EXISTS"},
			[]string{"CREATE PUBLICATION", "CREATE SUBSCRIPTION", "setval", "pg_dump"}},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			r := PgReplicate{Action: tt.action, Source: PgEndpoint{Host: "old", Database: "engine"}, Target: PgEndpoint{Host: "new", Database: "engine"},
				Publisher: PgReplicateConnect{Host: "10.0.0.1", User: "o'neil", Password: "\x1esecret:pw\x1e"}}
			acts, err := r.Describe(context.Background(), testRuntime(hosts{}, nil, nil))
			if err != nil {
				t.Fatal(err)
			}
			text := summaries(acts)
			for _, want := range tt.want {
				if !strings.Contains(text, want) {
					t.Errorf("describe lacks %q:\n%s", want, text)
				}
			}
			for _, never := range tt.never {
				if strings.Contains(text, never) {
					t.Errorf("describe holds %q, which is not this action's:\n%s", never, text)
				}
			}
		})
	}
}

// TestPgReplicateServer moves a database between two real clusters while
// it is written to: the refusals first, then start, changes on the source,
// finish, and a cancelled second replication.
func TestPgReplicateServer(t *testing.T) {
	srcPG, dstPG := startPostgres(t), startPostgres(t)
	ctx := context.Background()
	srcPG.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")
	srcPG.psql(t, streamFixture, "engine")
	// audit_total is built on audit_summary: refreshed after it. Its name
	// sorts first, so an alphabetical refresh would fail.
	srcPG.psql(t, `CREATE MATERIALIZED VIEW audit_summary AS SELECT count(*) AS n, max(audit_log_id) AS last FROM audit_log;
CREATE MATERIALIZED VIEW "Audit_total" AS SELECT n * 2 AS twice FROM audit_summary;
CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);`, "engine")
	// Tables without a primary key, as the oVirt engine has them: one
	// unique index that can serve as replica identity, and traps that
	// cannot (a nullable column, a partial index, an expression), and one
	// table set to NOTHING. All of them receive UPDATEs and DELETEs.
	srcPG.psql(t, identityFixture, "engine")
	dstPG.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")

	srcEx, dstEx := executors.NewLocal("src"), executors.NewLocal("dst")
	live := testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, nil)
	dry := testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
	dry.DryRun = true
	// The dry run of a run being resumed has its run id (see runner.Plan).
	live.RunID, dry.RunID = "run-1", "run-1"
	markers := t.TempDir()
	repl := func(action, dstDB, user string) *PgReplicate {
		return &PgReplicate{
			Action:    action,
			Source:    PgEndpoint{Host: "src", Database: "engine", PgConnection: conn(srcPG)},
			Target:    PgEndpoint{Host: "dst", Database: dstDB, PgConnection: conn(dstPG)},
			Publisher: PgReplicateConnect{Host: srcPG.SocketDir, Port: srcPG.Port, User: user},
			Name:      "migrun_" + dstDB,
			poll:      20 * time.Millisecond,
			markerDir: markers,
		}
	}
	dstObjects := func(t *testing.T, db string) string {
		t.Helper()
		return dstPG.psql(t, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace", db)
	}
	leftovers := func(t *testing.T, name string) string {
		t.Helper()
		return srcPG.psql(t, "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = '"+name+"') || '/' || (SELECT count(*) FROM pg_publication WHERE pubname = '"+name+"')", "engine") +
			"/" + dstPG.psql(t, "SELECT count(*) FROM pg_subscription WHERE subname = '"+name+"'")
	}

	t.Run("refused before anything changes", func(t *testing.T) {
		// A table without a key: publishing it would break the
		// application's UPDATEs on the source.
		// An unlogged table: its rows would not be replicated. Tables
		// without a primary key are no reason to refuse (start gives them
		// an identity).
		_, err := repl("start", "engine", "postgres").Check(ctx, dry)
		if err == nil || !strings.Contains(err.Error(), "1 unlogged table") || strings.Contains(err.Error(), "primary key") {
			t.Fatalf("check: %v", err)
		}
		// Also while the target database does not exist yet (an earlier
		// step of the plan creates it): the source alone can refuse.
		if _, err := repl("start", "not_yet", "postgres").Check(ctx, dry); err == nil || !strings.Contains(err.Error(), "1 unlogged table") {
			t.Fatalf("check with no target database yet: %v", err)
		}
		srcPG.psql(t, `ALTER TABLE scratch SET LOGGED`, "engine")
		// wal_level and the role's REPLICATION are an earlier step's to
		// fix: the dry run says so, the apply refuses.
		r := repl("start", "engine", "engine")
		c, err := r.Check(ctx, dry)
		if err != nil || c.Done || !strings.Contains(c.Reason, "wal_level = replica") || !strings.Contains(c.Reason, "role engine may not replicate") {
			t.Fatalf("check: %+v %v", c, err)
		}
		if _, err := r.Apply(ctx, live); err == nil || !strings.Contains(err.Error(), "wal_level = replica: logical is needed") {
			t.Fatalf("apply: %v", err)
		}
		if n := dstObjects(t, "engine"); n != "0" {
			t.Fatalf("a refused start created %s relations", n)
		}
		if l := leftovers(t, "migrun_engine"); l != "0/0/0" {
			t.Fatalf("slot/publication/subscription left: %s", l)
		}
	})

	srcPG.psql(t, "ALTER SYSTEM SET wal_level = logical")
	srcPG.restart(t)
	start, finish := repl("start", "engine", "postgres"), repl("finish", "engine", "postgres")

	t.Run("dry run changes nothing", func(t *testing.T) {
		c, err := start.Check(ctx, dry)
		if err != nil || c.Done || c.Unknown || !strings.Contains(c.Reason, "is empty: copy the schema, publish and subscribe") {
			t.Fatalf("check: %+v %v", c, err)
		}
		for _, want := range []string{"6 tables without a primary key get a replica identity", "public.pinning (USING INDEX pinning_vm_host)",
			`FULL: "We ird"."Odd ""name""", public.by_expr, public.labels, public.nothing_set, public.subscribers`} {
			if !strings.Contains(c.Reason, want) {
				t.Errorf("check reason lacks %q: %s", want, c.Reason)
			}
		}
		acts, err := start.Describe(ctx, dry)
		if err != nil {
			t.Fatal(err)
		}
		if text := summaries(acts); !strings.Contains(text, "ALTER TABLE public.pinning REPLICA IDENTITY USING INDEX pinning_vm_host;") ||
			!strings.Contains(text, "ALTER TABLE public.labels REPLICA IDENTITY FULL;") {
			t.Errorf("describe lacks the identities:\n%s", text)
		}
		if got := identities(t, srcPG, "engine"); got != identitiesBefore {
			t.Errorf("the dry run changed replica identities: %s", got)
		}
		if c, err := finish.Check(ctx, dry); err != nil || !c.Unknown {
			t.Fatalf("finish check before start: %+v %v", c, err)
		}
		if _, err := start.Apply(ctx, dry); !errors.Is(err, executors.ErrDryRun) {
			t.Fatalf("apply under dry run: %v", err)
		}
		if n := dstObjects(t, "engine"); n != "0" {
			t.Fatalf("dry run created %s relations", n)
		}
		if l := leftovers(t, "migrun_engine"); l != "0/0/0" {
			t.Fatalf("dry run left slot/publication/subscription: %s", l)
		}
	})

	t.Run("start copies and follows", func(t *testing.T) {
		o, err := applyShown(ctx, t, start, dry, live)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("start: %s", o.Output)
		if !o.Changed || !strings.Contains(o.Output, "initial copy of 9 tables done") {
			t.Fatalf("outcome %+v", o)
		}
		if got := dstPG.psql(t, "SELECT count(*) FROM audit_log", "engine"); got != "1000" {
			t.Fatalf("audit_log on the target: %s rows", got)
		}
		// Vacuumed and analyzed by start itself (last_vacuum, not
		// last_autovacuum), not left to autovacuum in the downtime.
		if got := dstPG.psql(t, "SELECT string_agg(relname, ', ' ORDER BY relname) FROM pg_stat_user_tables WHERE last_vacuum IS NULL OR last_analyze IS NULL", "engine"); got != "" {
			t.Errorf("tables start left unvacuumed or unanalyzed on the target: %s", got)
		}
		if !strings.Contains(o.Output, "vacuumed and analyzed on dst") {
			t.Errorf("start's output does not say it vacuumed: %s", o.Output)
		}
		if c, err := start.Check(ctx, live); err != nil || !c.Done {
			t.Fatalf("check after start: %+v %v", c, err)
		}
		const given = `"We ird"."Odd ""name""" f; by_expr f; labels f; nothing_set f; pinning i:pinning_vm_host; subscribers f`
		if got := identities(t, srcPG, "engine"); got != given {
			t.Errorf("identities on the source after start: %s, want %s", got, given)
		}
		if got := identities(t, dstPG, "engine"); got != given {
			t.Errorf("identities on the target after start: %s, want %s", got, given)
		}
		// The application's UPDATEs and DELETEs on tables without a key
		// work on the published source, and reach the target.
		srcPG.psql(t, identityWrites, "engine")
		srcPG.psql(t, `INSERT INTO audit_log (message) SELECT 'late ' || g FROM generate_series(1, 500) g;
UPDATE vds SET name = name || '-renamed' WHERE name LIKE 'host1%';
DELETE FROM audit_log WHERE audit_log_id <= 10;
SELECT setval('ticket_seq', 5000);
REFRESH MATERIALIZED VIEW audit_summary; REFRESH MATERIALIZED VIEW "Audit_total";`, "engine")
		// A table-sync slot of the subscription that its initial copy
		// left behind (a lost connection does that): finish drops it too.
		sub := dstPG.psql(t, "SELECT oid FROM pg_subscription WHERE subname = 'migrun_engine'", "engine")
		srcPG.psql(t, "SELECT pg_create_logical_replication_slot('pg_"+sub+"_sync_1_2', 'pgoutput')", "engine")
	})

	t.Run("finish refuses while a client is connected", func(t *testing.T) {
		defer srcPG.hold(t, "engine")()
		_, err := finish.Apply(ctx, live)
		if err == nil || !strings.Contains(err.Error(), "still-writing") || !strings.Contains(err.Error(), "stop the application first") {
			t.Fatalf("finish: %v", err)
		}
		if l := leftovers(t, "migrun_engine"); l != "1/1/1" {
			t.Fatalf("a refused finish changed the replication: %s", l)
		}
		if n := srcPG.psql(t, "SELECT count(*) FROM pg_replication_slots"); n != "2" {
			t.Fatalf("slots on the source: %s, want the subscription's and the stray sync slot", n)
		}
	})

	t.Run("finish cuts over", func(t *testing.T) {
		c, err := finish.Check(ctx, dry)
		if err != nil || c.Done || c.Unknown || !strings.Contains(c.Reason, "this run's subscription") {
			t.Fatalf("check: %+v %v", c, err)
		}
		// Another run's check does not take this run's marker for its own.
		other := testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
		other.RunID = "run-2"
		if c, err := finish.Check(ctx, other); err != nil || c.Done || strings.Contains(c.Reason, "this run's") {
			t.Fatalf("another run's check: %+v %v", c, err)
		}
		o, err := applyShown(ctx, t, finish, dry, live)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("finish: %s", o.Output)
		if l := leftovers(t, "migrun_engine"); l != "0/0/0" {
			t.Fatalf("slot/publication/subscription left: %s", l)
		}
		if n := srcPG.psql(t, "SELECT count(*) FROM pg_replication_slots"); n != "0" {
			t.Fatalf("%s slots left on the source", n)
		}
		for _, q := range []string{
			identityRows,
			"SELECT count(*), max(audit_log_id) FROM audit_log",
			"SELECT count(*) FROM vds WHERE name LIKE '%-renamed'",
			"SELECT last_value, is_called FROM ticket_seq",
			"SELECT last_value FROM audit_log_audit_log_id_seq",
			"SELECT last_value, is_called FROM unused_seq",
			"SELECT n, last FROM audit_summary",
			`SELECT twice FROM "Audit_total"`,
		} {
			if s, d := srcPG.psql(t, q, "engine"), dstPG.psql(t, q, "engine"); s != d {
				t.Errorf("%s: source %q, target %q", q, s, d)
			}
		}
		for _, srv := range []*testPG{srcPG, dstPG} {
			if got := identities(t, srv, "engine"); got != identitiesBefore {
				t.Errorf("identities after finish: %s, want them as before: %s", got, identitiesBefore)
			}
		}
		if _, err := os.Stat(start.identityRecordPath()); !os.IsNotExist(err) {
			t.Errorf("the identity record is still there after finish: %v", err)
		}
		verify := &PgVerify{Source: finish.Source, Target: finish.Target}
		if _, err := verify.Apply(ctx, live); err != nil {
			t.Fatalf("verify after finish: %v", err)
		}
		for _, r := range []*PgReplicate{start, finish, repl("cancel", "engine", "postgres")} {
			if c, err := r.Check(ctx, live); err != nil || !c.Done {
				t.Errorf("%s check after finish: %+v %v", r.Action, c, err)
			}
		}
		// The target is on its own now: it takes writes, the source's
		// later changes no longer reach it.
		srcPG.psql(t, "INSERT INTO audit_log (message) VALUES ('after')", "engine")
		dstPG.psql(t, "INSERT INTO audit_log (message) VALUES ('on the new server')", "engine")
	})

	t.Run("cancel drops a replication that never finished", func(t *testing.T) {
		dstPG.psql(t, "CREATE DATABASE engine2 OWNER engine")
		r := repl("start", "engine2", "postgres")
		if _, err := r.Apply(ctx, live); err != nil {
			t.Fatal(err)
		}
		if l := leftovers(t, "migrun_engine2"); l != "1/1/1" {
			t.Fatalf("after start: %s", l)
		}
		cancel := repl("cancel", "engine2", "postgres")
		o, err := cancel.Apply(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		if l := leftovers(t, "migrun_engine2"); l != "0/0/0" {
			t.Fatalf("after cancel: %s (%s)", l, o.Output)
		}
		if c, err := cancel.Check(ctx, live); err != nil || !c.Done {
			t.Fatalf("cancel check after cancel: %+v %v", c, err)
		}
		if got := identities(t, srcPG, "engine"); got != identitiesBefore {
			t.Errorf("identities on the source after cancel: %s, want %s", got, identitiesBefore)
		}
		if !strings.Contains(o.Output, "put back the replica identity of 6 tables") {
			t.Errorf("cancel output: %s", o.Output)
		}
		// Starting again into the partial copy is refused, with the way out.
		_, err = r.Check(ctx, live)
		if err == nil || !strings.Contains(err.Error(), "cancelled") || !strings.Contains(err.Error(), "dropdb") {
			t.Fatalf("start check after cancel: %v", err)
		}
		if _, err := repl("finish", "engine2", "postgres").Check(ctx, live); err == nil || !strings.Contains(err.Error(), "was cancelled") {
			t.Fatalf("finish check after cancel: %v", err)
		}
	})

	t.Run("finish resumed after the finishing mark", func(t *testing.T) {
		dstPG.psql(t, "CREATE DATABASE engine4 OWNER engine")
		start, finish := repl("start", "engine4", "postgres"), repl("finish", "engine4", "postgres")
		if _, err := start.Apply(ctx, live); err != nil {
			t.Fatal(err)
		}
		// A run that caught up, marked "finishing" and died there.
		st, err := finish.state(ctx, live.RunID, srcEx, dstEx)
		if err != nil {
			t.Fatal(err)
		}
		if err := finish.writeMarker(ctx, dstEx, replFinishing, st); err != nil {
			t.Fatal(err)
		}
		if c, err := finish.Check(ctx, live); err != nil || c.Done || !strings.Contains(c.Reason, "earlier run") {
			t.Fatalf("check: %+v %v", c, err)
		}
		o, err := finish.Apply(ctx, live)
		if err != nil || !strings.Contains(o.Output, "an earlier run caught up") {
			t.Fatalf("finish: %+v %v", o, err)
		}
		if l := leftovers(t, "migrun_engine4"); l != "0/0/0" {
			t.Fatalf("left after the resumed finish: %s", l)
		}
		q := "SELECT last_value, is_called FROM ticket_seq"
		if s, d := srcPG.psql(t, q, "engine"), dstPG.psql(t, q, "engine4"); s != d {
			t.Fatalf("%s: source %q, target %q", q, s, d)
		}
	})

	t.Run("cancel cleans the source when the target database is gone", func(t *testing.T) {
		dstPG.psql(t, "CREATE DATABASE engine3 OWNER engine")
		if _, err := repl("start", "engine3", "postgres").Apply(ctx, live); err != nil {
			t.Fatal(err)
		}
		// The subscription is dropped by hand, detached: its slot stays.
		dstPG.psql(t, "ALTER SUBSCRIPTION migrun_engine3 DISABLE; ALTER SUBSCRIPTION migrun_engine3 SET (slot_name = NONE); DROP SUBSCRIPTION migrun_engine3", "engine3")
		dstPG.psql(t, "DROP DATABASE engine3")
		o, err := repl("cancel", "engine3", "postgres").Apply(ctx, live)
		if err != nil || !strings.Contains(o.Output, "dropped on src") {
			t.Fatalf("cancel: %+v %v", o, err)
		}
		if l := srcPG.psql(t, "SELECT (SELECT count(*) FROM pg_replication_slots) || '/' || (SELECT count(*) FROM pg_publication)", "engine"); l != "0/0" {
			t.Fatalf("slots/publications left on the source: %s", l)
		}
		if got := identities(t, srcPG, "engine"); got != identitiesBefore {
			t.Errorf("identities on the source after cancel: %s, want %s", got, identitiesBefore)
		}
	})

	t.Run("identities another run left refuse the start", func(t *testing.T) {
		dstPG.psql(t, "CREATE DATABASE engine5 OWNER engine")
		r := repl("start", "engine5", "postgres")
		id, err := pg.DatabaseIdentity(ctx, srcEx, r.Source.PgConnection.target("postgres"), "engine")
		if err != nil {
			t.Fatal(err)
		}
		other := identityRecord{RunID: "run-0", SystemID: id.SystemID, Database: "engine", DatabaseOID: id.OID,
			Tables: []replIdentity{{Table: "public.pinning", Was: "d", Set: "f"}}}
		if err := r.writeIdentityRecord(ctx, srcEx, other); err != nil {
			t.Fatal(err)
		}
		_, err = r.Check(ctx, dry)
		if err == nil || !strings.Contains(err.Error(), "an earlier run (run-0") || !strings.Contains(err.Error(), "ALTER TABLE public.pinning REPLICA IDENTITY DEFAULT;") {
			t.Fatalf("check with another run's record: %v", err)
		}
		if _, err := r.Apply(ctx, live); err == nil || !strings.Contains(err.Error(), "an earlier run (run-0") {
			t.Fatalf("apply with another run's record: %v", err)
		}
		if got := identities(t, srcPG, "engine"); got != identitiesBefore {
			t.Errorf("a refused start changed identities: %s", got)
		}
		// A record about another server (a cluster initialised again) is
		// not about this one: ignored, and replaced by this run's.
		other.SystemID = "1"
		if err := r.writeIdentityRecord(ctx, srcEx, other); err != nil {
			t.Fatal(err)
		}
		if c, err := r.Check(ctx, dry); err != nil || !strings.Contains(c.Reason, "6 tables without a primary key") {
			t.Fatalf("check with a record about another server: %+v %v", c, err)
		}
	})
}

// identityFixture: tables without a primary key, each updated and
// deleted from while replicated (identityWrites).
const identityFixture = `
CREATE TABLE pinning (vm_id int NOT NULL, vds_id int NOT NULL);
CREATE UNIQUE INDEX pinning_vm_host ON pinning (vm_id, vds_id);
CREATE INDEX pinning_vds ON pinning (vds_id);
INSERT INTO pinning SELECT g, g % 5 FROM generate_series(1, 20) g;
CREATE TABLE subscribers (id int NOT NULL, method text NOT NULL, address text);
CREATE UNIQUE INDEX subscribers_key ON subscribers (id, method, address);
INSERT INTO subscribers SELECT g, 'smtp', 'u' || g || '@example.com' FROM generate_series(1, 10) g;
CREATE TABLE labels (label_id int NOT NULL, vm_id int NOT NULL);
CREATE UNIQUE INDEX labels_vm ON labels (label_id, vm_id) WHERE label_id > 0;
INSERT INTO labels SELECT g, g * 10 FROM generate_series(1, 10) g;
CREATE TABLE by_expr (name text NOT NULL, domain text NOT NULL);
CREATE UNIQUE INDEX by_expr_lower ON by_expr (lower(name), domain);
INSERT INTO by_expr VALUES ('a', 'internal'), ('b', 'internal'), ('c', 'internal');
CREATE TABLE nothing_set (k int NOT NULL, v text);
ALTER TABLE nothing_set REPLICA IDENTITY NOTHING;
INSERT INTO nothing_set SELECT g, 'v' || g FROM generate_series(1, 5) g;
`

const identityWrites = `
UPDATE pinning SET vds_id = 9 WHERE vm_id = 1; DELETE FROM pinning WHERE vm_id = 2;
UPDATE subscribers SET address = NULL WHERE id = 3; DELETE FROM subscribers WHERE id = 4;
UPDATE labels SET vm_id = vm_id + 100 WHERE label_id = 1; DELETE FROM labels WHERE label_id = 2;
DELETE FROM by_expr WHERE name = 'b'; UPDATE by_expr SET domain = 'other' WHERE name = 'c';
UPDATE nothing_set SET v = 'changed' WHERE k = 1; DELETE FROM nothing_set WHERE k = 2;
UPDATE "We ird"."Odd ""name""" SET a = 10 WHERE a = 1;
`

// identityRows digests the contents of the tables of identityFixture.
const identityRows = `SELECT concat_ws(' ',
  (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM pinning t),
  (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM subscribers t),
  (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM labels t),
  (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM by_expr t),
  (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM nothing_set t),
  (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM "We ird"."Odd ""name""" t))`

// identitiesBefore is what identities reads of identityFixture's tables.
const identitiesBefore = `"We ird"."Odd ""name""" d; by_expr d; labels d; nothing_set n; pinning d; subscribers d`

// identities lists the replica identities of the tables without a
// primary key in db: "table kind[:index]; ...".
func identities(t *testing.T, srv *testPG, db string) string {
	t.Helper()
	return srv.psql(t, `SELECT string_agg(name || ' ' || ident, '; ' ORDER BY name COLLATE "C") FROM (
  SELECT CASE WHEN n.nspname = 'public' THEN quote_ident(c.relname) ELSE format('%I.%I', n.nspname, c.relname) END AS name,
    c.relreplident::text || coalesce(':' || (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND i.indisreplident), '') AS ident
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname IN ('public', 'We ird')
    AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)) x`, db)
}

// TestPgReplicateIdentityWaitsForLocks: the application's transaction
// holds one table without a primary key and, a second later, writes to
// another. Giving both an identity at once would deadlock with it (and the
// deadlock detector might choose the application's transaction); one
// table and one short lock at a time, it commits, and so does the change.
func TestPgReplicateIdentityWaitsForLocks(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	srv.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")
	srv.psql(t, identityFixture, "engine")
	ex := executors.NewLocal("src")
	rt := testRuntime(hosts{"src": ex}, nil, nil)
	rt.RunID = "run-1"
	r := &PgReplicate{Action: "start", Source: PgEndpoint{Host: "src", Database: "engine", PgConnection: conn(srv)},
		Target: PgEndpoint{Host: "dst", Database: "engine"}, markerDir: t.TempDir()}

	app := exec.Command("runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", srv.SocketDir, "-p", strconv.Itoa(srv.Port), "-d", "engine")
	app.Env = append(os.Environ(), "PGAPPNAME=application")
	app.Stdin = strings.NewReader(`BEGIN;
UPDATE pinning SET vds_id = vds_id WHERE vm_id = 5;
SELECT pg_sleep(1.5);
UPDATE labels SET vm_id = vm_id WHERE label_id = 3;
DELETE FROM subscribers WHERE id = 7;
COMMIT;
`)
	var out bytes.Buffer
	app.Stdout, app.Stderr = &out, &out
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.psql(t, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.application_name = 'application' AND l.relation = 'pinning'::regclass", "engine") == "0" {
		if time.Now().After(deadline) {
			t.Fatal("the application's transaction never took its lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ip, err := r.planIdentities(ctx, rt, ex)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := r.giveIdentities(ctx, rt, ex, ip); err != nil {
		t.Fatalf("give identities: %v", err)
	}
	took := time.Since(begin)
	if err := app.Wait(); err != nil {
		t.Fatalf("the application's transaction failed: %v\n%s", err, out.String())
	}
	if took < time.Second {
		t.Errorf("the identities were given in %s, while the application held pinning for 1.5 s", took)
	}
	const given = `by_expr f; labels f; nothing_set f; pinning i:pinning_vm_host; subscribers f`
	if got := identities(t, srv, "engine"); got != given {
		t.Errorf("identities: %s, want %s", got, given)
	}
	rec, err := r.ownIdentityRecord(ctx, rt, ex)
	if err != nil || rec == nil || len(rec.Tables) != 5 {
		t.Fatalf("record: %+v %v", rec, err)
	}
	if err := r.putBackIdentities(ctx, ex, nil, rec); err != nil {
		t.Fatal(err)
	}
	if got := identities(t, srv, "engine"); got != "by_expr d; labels d; nothing_set n; pinning d; subscribers d" {
		t.Errorf("identities put back: %s", got)
	}
}
