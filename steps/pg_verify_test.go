package steps

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

func TestPgVerifyValidate(t *testing.T) {
	ep := PgEndpoint{Host: "db", Database: "engine"}
	v := PgVerify{Source: ep, Target: ep}
	got := problemFields(v.Validate())
	if !reflect.DeepEqual(got, []string{"target"}) {
		t.Fatalf("same database: problems on %v", got)
	}
	v = PgVerify{Source: ep, Target: PgEndpoint{Host: "new", Database: "engine", PgConnection: PgConnection{Port: -1}},
		Tables: "false", Sequences: "false", Extensions: "false"}
	got = problemFields(v.Validate())
	if !reflect.DeepEqual(got, []string{"target.port", ""}) {
		t.Fatalf("problems on %v", got)
	}
	if h := v.Hosts(""); !reflect.DeepEqual(h, []string{"db", "new"}) {
		t.Fatalf("hosts %v", h)
	}
}

func TestPgVerifyDiff(t *testing.T) {
	var n int
	diffs := diffSide("table", map[string]string{"public.a": "3", "public.b": "1", "public.c": "0"},
		map[string]string{"public.a": "2", "public.c": "0", "public.z": "5"}, "rows", func(c int) { n = c })
	want := []string{
		"table public.a: rows 3 on the source, 2 on the target",
		"table public.b: missing on the target (source: rows 1)",
		"table public.z: only on the target (rows 5)",
	}
	if !reflect.DeepEqual(diffs, want) || n != 3 {
		t.Fatalf("diffs %q (count %d)", diffs, n)
	}
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := groupDigits(in); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", in, got, want)
		}
	}
}

// A server that earlier steps have yet to start makes the check unknown,
// not an error, so a dry run of a whole migration plan goes through.
func TestPgVerifyCheckNoServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs psql as the postgres user")
	}
	none := PgConnection{SocketDir: pgDir(t), Port: 5999}
	v := &PgVerify{
		Source: PgEndpoint{Host: "db", Database: "engine", PgConnection: none},
		Target: PgEndpoint{Host: "db", Database: "copy", PgConnection: none},
	}
	rt := pgRuntime(hosts{"db": executors.ReadOnly(executors.NewLocal("db"))})
	c, err := v.Check(context.Background(), rt)
	if err != nil || !c.Unknown || !strings.Contains(c.Reason, "not reachable yet") {
		t.Fatalf("check: %+v %v", c, err)
	}
	if _, err := v.Apply(context.Background(), rt); err == nil || !strings.Contains(err.Error(), "source engine on db") {
		t.Fatalf("apply: %v", err)
	}
}

// pgDir makes a directory the postgres OS user can write dumps into and
// root (the executors' login user here) can read.
func pgDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "migrun-pgdump-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pgRuntime is a Runtime for step host "db" with both clusters' hosts.
func pgRuntime(h hosts) *Runtime {
	rt := testRuntime(h, nil, nil)
	rt.StepID = "srv"
	rt.RunID = "run-1"
	return rt
}

func conn(srv *testPG) PgConnection { return PgConnection{SocketDir: srv.SocketDir, Port: srv.Port} }

// engineFixture is a small engine-like database: an extension, a table
// owned by role engine with uuid keys, a serial table, a used and an
// unused sequence, and awkward names.
const engineFixture = `
CREATE EXTENSION "uuid-ossp";
CREATE TABLE vds (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), name text NOT NULL);
ALTER TABLE vds OWNER TO engine;
INSERT INTO vds (name) SELECT 'host' || g FROM generate_series(1, 50) g;
CREATE TABLE audit_log (audit_log_id serial PRIMARY KEY, message text);
INSERT INTO audit_log (message) SELECT 'event ' || g FROM generate_series(1, 1000) g;
CREATE INDEX audit_log_message ON audit_log (message);
CREATE SEQUENCE unused_seq;
CREATE SCHEMA "We ird";
CREATE TABLE "We ird"."Odd ""name""" (a int);
INSERT INTO "We ird"."Odd ""name""" VALUES (1), (2);
`

// TestPgDumpRestoreVerify runs the three kinds against two real clusters,
// the way a migration does: dump on the old server, restore on the new
// one, verify; then the failure and recovery paths.
func TestPgDumpRestoreVerify(t *testing.T) {
	src, dst := startPostgres(t), startPostgres(t)
	ctx := context.Background()
	src.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")
	src.psql(t, engineFixture, "engine")

	srcEx, dstEx := executors.NewLocal("old"), executors.NewLocal("new")
	live := hosts{"old": srcEx, "new": dstEx}
	dry := hosts{"old": executors.ReadOnly(srcEx), "new": executors.ReadOnly(dstEx)}
	dir := pgDir(t)
	file := filepath.Join(dir, "engine.dump")

	verify := &PgVerify{
		Source: PgEndpoint{Host: "old", Database: "engine", PgConnection: conn(src)},
		Target: PgEndpoint{Host: "new", Database: "engine", PgConnection: conn(dst)},
	}
	dump := &PgDump{Database: "engine", File: file, PgConnection: conn(src)}
	restore := &PgRestore{Database: "engine", File: file, Jobs: 2, PgConnection: conn(dst)}
	onOld := func(h hosts) *Runtime { rt := pgRuntime(h); rt.Host = "old"; return rt }
	onNew := func(h hosts) *Runtime { rt := pgRuntime(h); rt.Host = "new"; return rt }

	// Before anything exists: the dump is not done, the restore and the
	// verification cannot tell yet (dry run).
	if c, err := dump.Check(ctx, onOld(dry)); err != nil || c.Done {
		t.Fatalf("dump check before: %+v %v", c, err)
	}
	if c, err := restore.Check(ctx, onNew(dry)); err != nil || !c.Unknown {
		t.Fatalf("restore check before: %+v %v", c, err)
	}
	if c, err := verify.Check(ctx, pgRuntime(dry)); err != nil || !c.Unknown {
		t.Fatalf("verify check before: %+v %v", c, err)
	}

	t.Run("dry run writes nothing", func(t *testing.T) {
		_, err := dump.Apply(ctx, onOld(dry))
		if !errors.Is(err, executors.ErrDryRun) {
			t.Fatalf("dump apply under dry run: %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("dry run left %v", entries)
		}
	})

	t.Run("dump", func(t *testing.T) {
		rt, pl := onOld(live), &progressLog{}
		rt.Progress = pl
		o, err := applyShown(ctx, t, dump, onOld(dry), rt)
		if err != nil {
			t.Fatal(err)
		}
		// Progress: one per table dumped, of the tables counted first;
		// -v's narration is not in the output.
		if len(pl.starts) != 1 || pl.total != 3 || pl.added != 3 || len(pl.errs) != 1 || pl.errs[0] != nil {
			t.Errorf("dump progress: %+v", pl)
		}
		if strings.Contains(o.Output, "pg_dump: reading") || strings.Contains(o.Output, "dumping contents") {
			t.Errorf("pg_dump -v narration in the output:\n%s", o.Output)
		}
		if !o.Changed || !strings.Contains(o.Output, "dumped engine to "+file) {
			t.Fatalf("outcome %+v", o)
		}
		if _, err := os.Stat(hostcmd.PartPath(file)); !os.IsNotExist(err) {
			t.Fatalf("part file left: %v", err)
		}
		var m dumpMeta
		data, _ := os.ReadFile(metaPath(file))
		if err := json.Unmarshal(data, &m); err != nil || m.Database != "engine" || m.Format != "custom" || len(m.SHA256) != 64 {
			t.Fatalf("meta %s: %v", data, err)
		}
		if c, err := dump.Check(ctx, onOld(dry)); err != nil || !c.Done {
			t.Fatalf("dump check after: %+v %v", c, err)
		}
	})

	dst.psql(t, "CREATE DATABASE engine;")

	t.Run("restore fails on a missing role", func(t *testing.T) {
		_, err := restore.Apply(ctx, onNew(live))
		if err == nil {
			t.Fatal("restore without role engine succeeded")
		}
		t.Logf("error: %v", err)
		for _, want := range []string{`role "engine" does not exist`, "ALTER TABLE public.vds OWNER TO engine", "hint: create the archive's roles", "new: restore into database engine"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
		if c, err := restore.Check(ctx, onNew(dry)); err != nil || c.Done || !strings.Contains(c.Reason, "interrupted") {
			t.Fatalf("check after failure: %+v %v", c, err)
		}
	})

	t.Run("retry redoes the partial restore from scratch", func(t *testing.T) {
		dst.psql(t, "CREATE ROLE engine LOGIN;")
		// The failed attempt left every table filled: a plain restore
		// would now fail on duplicates, a redo must drop them first.
		if n := dst.psql(t, "SELECT count(*) FROM audit_log", "engine"); n != "1000" {
			t.Fatalf("partial restore holds %s audit_log rows", n)
		}
		rt, pl := onNew(live), &progressLog{}
		rt.Progress = pl
		o, err := applyShown(ctx, t, restore, onNew(dry), rt)
		if err != nil {
			t.Fatal(err)
		}
		// Progress in archive items, of the archive's table of contents.
		if len(pl.starts) != 1 || pl.total < 10 || pl.added < pl.total/2 || pl.added > pl.total {
			t.Errorf("restore progress: %d of %d items (%+v)", pl.added, pl.total, pl)
		}
		if !strings.Contains(o.Output, "did not finish: its objects were dropped and restored again") {
			t.Errorf("output does not say it redid the restore:\n%s", o.Output)
		}
		if c, err := restore.Check(ctx, onNew(dry)); err != nil || !c.Done {
			t.Fatalf("restore check after: %+v %v", c, err)
		}
		if owner := dst.psql(t, "SELECT tableowner FROM pg_tables WHERE tablename = 'vds'", "engine"); owner != "engine" {
			t.Fatalf("vds owned by %q", owner)
		}
	})

	t.Run("verify matches", func(t *testing.T) {
		rt, pl := pgRuntime(dry), &progressLog{}
		rt.Progress = pl
		c, err := verify.Check(ctx, rt)
		if err != nil || !c.Done {
			t.Fatalf("verify check: %+v %v", c, err)
		}
		// Tables counted, on both sides, as the counts streamed in.
		if len(pl.starts) != 2 || pl.total != 3 || pl.added != 6 {
			t.Errorf("verify progress: %+v", pl)
		}
		o, err := verify.Apply(ctx, pgRuntime(dry)) // read-only: works under a dry run
		if err != nil {
			t.Fatal(err)
		}
		want := "3 tables, 1,052 rows, 2 sequences, 2 extensions match between engine on old and engine on new"
		if o.Output != want || o.Changed {
			t.Fatalf("output %q, want %q", o.Output, want)
		}
	})

	t.Run("verify finds differences", func(t *testing.T) {
		dst.psql(t, `DELETE FROM audit_log WHERE audit_log_id = 7; SELECT setval('audit_log_audit_log_id_seq', 2000);
CREATE TABLE extra (a int); DROP TABLE "We ird"."Odd ""name""";`, "engine")
		if c, err := verify.Check(ctx, pgRuntime(dry)); err != nil || c.Done || !strings.Contains(c.Reason, "differ") {
			t.Fatalf("check: %+v %v", c, err)
		}
		_, err := verify.Apply(ctx, pgRuntime(dry))
		if err == nil {
			t.Fatal("verify passed on different databases")
		}
		t.Logf("error: %v", err)
		for _, want := range []string{
			"engine on new differs from engine on old (4 differences):",
			"table \"We ird\".\"Odd \"\"name\"\"\": missing on the target (source: rows 2)",
			"table public.audit_log: rows 1000 on the source, 999 on the target",
			"table public.extra: only on the target (rows 0)",
			"sequence public.audit_log_audit_log_id_seq: last_value 1000 on the source, 2000 on the target",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
	})

	t.Run("interrupted restore is redone", func(t *testing.T) {
		// Simulate a crash midway: the marker says started, the database
		// holds a mix (the changes above stand in for partial data).
		m, err := restore.readMarker(ctx, dstEx)
		if err != nil || m == nil {
			t.Fatalf("marker: %v %v", m, err)
		}
		m.State = "started"
		data, _ := json.Marshal(m)
		os.WriteFile(restoreMarkerPath(file, "engine"), data, 0o644)
		if c, err := restore.Check(ctx, onNew(dry)); err != nil || c.Done {
			t.Fatalf("check with a started marker: %+v %v", c, err)
		}
		if _, err := restore.Apply(ctx, onNew(live)); err != nil {
			t.Fatal(err)
		}
		// The objects of the archive are back as dumped. A table that
		// is not in the archive stays: --clean drops only its objects.
		if c, err := verify.Check(ctx, pgRuntime(dry)); err != nil || c.Done || !strings.Contains(c.Reason, "table public.extra: only on the target") || strings.Contains(c.Reason, "and ") {
			t.Fatalf("verify after redo: %+v %v", c, err)
		}
		dst.psql(t, "DROP TABLE extra", "engine")
		if c, err := verify.Check(ctx, pgRuntime(dry)); err != nil || !c.Done {
			t.Fatalf("verify after redo: %+v %v", c, err)
		}
	})

	t.Run("non-empty target refused unless clean", func(t *testing.T) {
		dst.psql(t, "CREATE DATABASE other;")
		dst.psql(t, "CREATE TABLE keep (a int); INSERT INTO keep VALUES (1);", "other")
		other := &PgRestore{Database: "other", File: file, PgConnection: conn(dst)}
		_, err := other.Apply(ctx, onNew(live))
		if err == nil || !strings.Contains(err.Error(), "the database is not empty (1 table: public.keep)") {
			t.Fatalf("restore into a non-empty database: %v", err)
		}
		if _, err := os.Stat(restoreMarkerPath(file, "other")); !os.IsNotExist(err) {
			t.Fatalf("a refused restore left a marker: %v", err)
		}
		other.Clean = true
		if _, err := other.Apply(ctx, onNew(live)); err != nil {
			t.Fatal(err)
		}
		if n := dst.psql(t, "SELECT (SELECT count(*) FROM keep) || ' ' || (SELECT count(*) FROM audit_log)", "other"); n != "1 1000" {
			t.Fatalf("after clean restore: %s", n)
		}
	})

	t.Run("restore under dry run writes nothing", func(t *testing.T) {
		dst.psql(t, "CREATE DATABASE dry;")
		r := &PgRestore{Database: "dry", File: file, PgConnection: conn(dst)}
		if _, err := r.Apply(ctx, onNew(dry)); !errors.Is(err, executors.ErrDryRun) {
			t.Fatalf("apply under dry run: %v", err)
		}
		if n := dst.psql(t, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "dry"); n != "0" {
			t.Fatalf("dry run restored %s tables", n)
		}
		if _, err := os.Stat(restoreMarkerPath(file, "dry")); !os.IsNotExist(err) {
			t.Fatalf("dry run left a marker: %v", err)
		}
	})

	t.Run("modified dump is dumped again", func(t *testing.T) {
		f, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
		f.Write([]byte("x"))
		f.Close()
		if c, err := dump.Check(ctx, onOld(dry)); err != nil || c.Done || !strings.Contains(c.Reason, "changed since it was dumped") {
			t.Fatalf("check of a modified dump: %+v %v", c, err)
		}
		if c, err := restore.Check(ctx, onNew(dry)); err != nil || c.Done {
			t.Fatalf("restore check of a modified dump: %+v %v", c, err)
		}
		if _, err := dump.Apply(ctx, onOld(live)); err != nil {
			t.Fatal(err)
		}
		if c, err := dump.Check(ctx, onOld(dry)); err != nil || !c.Done {
			t.Fatalf("check after dumping again: %+v %v", c, err)
		}
	})

	t.Run("directory format in parallel", func(t *testing.T) {
		ddir := filepath.Join(dir, "engine.d")
		d := &PgDump{Database: "engine", File: ddir, Format: "directory", Jobs: 2, Compress: "1", PgConnection: conn(src)}
		// A leftover part from an interrupted dump is removed first.
		os.MkdirAll(filepath.Join(hostcmd.PartPath(ddir), "junk"), 0o777)
		if _, err := d.Apply(ctx, onOld(live)); err != nil {
			t.Fatal(err)
		}
		if c, err := d.Check(ctx, onOld(dry)); err != nil || !c.Done {
			t.Fatalf("check: %+v %v", c, err)
		}
		// Dumping again replaces the directory (rename cannot).
		if _, err := d.Apply(ctx, onOld(live)); err != nil {
			t.Fatalf("second dump: %v", err)
		}
		dst.psql(t, "CREATE DATABASE engine_d;")
		r := &PgRestore{Database: "engine_d", File: ddir, Jobs: 2, PgConnection: conn(dst)}
		if _, err := r.Apply(ctx, onNew(live)); err != nil {
			t.Fatal(err)
		}
		v := *verify
		v.Target.Database = "engine_d"
		if c, err := v.Check(ctx, pgRuntime(dry)); err != nil || !c.Done {
			t.Fatalf("verify: %+v %v", c, err)
		}
	})
}

// TestPgRestoreHarmlessAsOwner restores as a non-superuser database owner,
// which cannot comment on extensions it does not own: pg_restore exits
// non-zero, and the step accepts it, naming what it accepted.
func TestPgRestoreHarmlessAsOwner(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	srv.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine; CREATE DATABASE copy OWNER engine;")
	srv.psql(t, engineFixture, "engine")
	ex := executors.NewLocal("db")
	h := hosts{"db": ex}
	file := filepath.Join(pgDir(t), "engine.dump")
	if _, err := (&PgDump{Database: "engine", File: file, PgConnection: conn(srv)}).Apply(ctx, pgRuntime(h)); err != nil {
		t.Fatal(err)
	}
	// The extension exists already, created by a superuser, as a DBA
	// would prepare the database before handing it over.
	srv.psql(t, `CREATE EXTENSION "uuid-ossp";`, "copy")
	r := &PgRestore{Database: "copy", File: file, Role: "engine", NoOwner: true, PgConnection: conn(srv)}
	o, err := r.Apply(ctx, pgRuntime(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", o.Output)
	if !strings.Contains(o.Output, "accepted as harmless: ") || !strings.Contains(o.Output, "must be owner of extension") {
		t.Fatalf("output:\n%s", o.Output)
	}
	v := &PgVerify{
		Source: PgEndpoint{Host: "db", Database: "engine", PgConnection: conn(srv)},
		Target: PgEndpoint{Host: "db", Database: "copy", PgConnection: conn(srv)},
	}
	if c, err := v.Check(ctx, pgRuntime(h)); err != nil || !c.Done {
		t.Fatalf("verify: %+v %v", c, err)
	}
}
