package steps

import (
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

// TestPgReplicateDescribe: the password never shows, only its secret's
// name; libpq quoting of the connection string.
func TestPgReplicateDescribe(t *testing.T) {
	r := PgReplicate{Action: "start", Source: PgEndpoint{Host: "old", Database: "engine"}, Target: PgEndpoint{Host: "new", Database: "engine"},
		Publisher: PgReplicateConnect{Host: "10.0.0.1", User: "o'neil", Password: "\x1esecret:pw\x1e"}}
	acts, err := r.Describe(context.Background(), testRuntime(hosts{}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	text := summaries(acts)
	for _, want := range []string{
		"pg_dump -F c -Z 0 --schema-only --no-publications --no-subscriptions engine",
		"CREATE PUBLICATION \"migrun_engine\" FOR ALL TABLES;",
		`CREATE SUBSCRIPTION "migrun_engine" CONNECTION 'host=''10.0.0.1'' port=5432 dbname=''engine'' user=''o\''neil'' sslmode=prefer application_name=''migrun_engine'' password=''<secret:pw>''' PUBLICATION "migrun_engine";`,
		"wait until every table's initial copy is done",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("describe lacks %q:\n%s", want, text)
		}
	}
	r.Action = "finish"
	acts, _ = r.Describe(context.Background(), testRuntime(hosts{}, nil, nil))
	text = summaries(acts)
	for _, want := range []string{"confirmed_flush_lsn", "setval", "DROP SUBSCRIPTION", "pg_drop_replication_slot", "DROP PUBLICATION IF EXISTS"} {
		if !strings.Contains(text, want) {
			t.Errorf("finish describe lacks %q:\n%s", want, text)
		}
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
	dstPG.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")

	srcEx, dstEx := executors.NewLocal("src"), executors.NewLocal("dst")
	live := testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, nil)
	dry := testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
	dry.DryRun = true
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
		_, err := repl("start", "engine", "postgres").Check(ctx, dry)
		if err == nil || !strings.Contains(err.Error(), `"We ird"."Odd ""name"""`) || !strings.Contains(err.Error(), "no primary key or replica identity") ||
			!strings.Contains(err.Error(), "1 unlogged table") {
			t.Fatalf("check: %v", err)
		}
		srcPG.psql(t, `ALTER TABLE "We ird"."Odd ""name""" REPLICA IDENTITY FULL; ALTER TABLE scratch SET LOGGED`, "engine")
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
		o, err := start.Apply(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("start: %s", o.Output)
		if !o.Changed || !strings.Contains(o.Output, "initial copy of 4 tables done") {
			t.Fatalf("outcome %+v", o)
		}
		if got := dstPG.psql(t, "SELECT count(*) FROM audit_log", "engine"); got != "1000" {
			t.Fatalf("audit_log on the target: %s rows", got)
		}
		if c, err := start.Check(ctx, live); err != nil || !c.Done {
			t.Fatalf("check after start: %+v %v", c, err)
		}
		// The application goes on writing on the source.
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
		cmd := exec.Command("runuser", "-u", "postgres", "--", "psql", "-X", "-h", srcPG.SocketDir, "-p", strconv.Itoa(srcPG.Port), "-d", "engine", "-c", "SELECT pg_sleep(60)")
		cmd.Env = append(os.Environ(), "PGAPPNAME=still-writing")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			srcPG.psql(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'still-writing'")
			_ = cmd.Wait()
		}()
		deadline := time.Now().Add(10 * time.Second)
		for srcPG.psql(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'still-writing'") == "0" {
			if time.Now().After(deadline) {
				t.Fatal("the sleeping client never connected")
			}
			time.Sleep(50 * time.Millisecond)
		}
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
		if err != nil || c.Done || c.Unknown {
			t.Fatalf("check: %+v %v", c, err)
		}
		o, err := finish.Apply(ctx, live)
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
		st, err := finish.state(ctx, srcEx, dstEx)
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
	})
}
