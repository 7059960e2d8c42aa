package steps

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

func TestPgRestoreValidate(t *testing.T) {
	r := PgRestore{Database: "engine", File: "dump", Jobs: -2, AllowErrors: []string{"ok", "(unclosed"}}
	got := problemFields(r.Validate())
	if want := []string{"file", "jobs", "allow_errors[1]"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("problems on %v, want %v", got, want)
	}
}

func TestPgRestoreArgv(t *testing.T) {
	r := PgRestore{Database: "engine", File: "/var/tmp/engine.dump"}
	if got, want := r.argv(false), []string{"pg_restore", "-v", "-d", "engine", "/var/tmp/engine.dump"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plain: %q, want %q", got, want)
	}
	r = PgRestore{Database: "engine", File: "/var/tmp/engine.dump", Jobs: 4, NoOwner: true, Role: "engine",
		PgConnection: PgConnection{SocketDir: "/run/srv", Port: 5433}}
	want := []string{"pg_restore", "-v", "-d", "engine", "-h", "/run/srv", "-p", "5433", "-j", "4", "--no-owner", "--role=engine", "--clean", "--if-exists", "/var/tmp/engine.dump"}
	if got := r.argv(true); !reflect.DeepEqual(got, want) {
		t.Errorf("full: %q, want %q", got, want)
	}
	cmd := r.command(false)
	if cmd.Become != "postgres" || cmd.Env["PGOPTIONS"] != "-c lc_messages=C -c maintenance_work_mem=512MB -c synchronous_commit=off" {
		t.Errorf("command %+v", cmd)
	}
	if got := restoreMarkerPath("/d/e.dump", "en/gine x"); got != "/d/e.dump.migrun-restore.en%2Fgine%20x" {
		t.Errorf("marker path %q", got)
	}
}

// Real pg_restore 15 output: a non-superuser restoring a dump with
// extensions, then a dump whose owner role is missing on the target.
const harmlessStderr = `pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 3352; 0 0 COMMENT EXTENSION plpgsql
pg_restore: error: could not execute query: ERROR:  must be owner of extension plpgsql
Command was: COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';


pg_restore: from TOC entry 2; 3079 16385 EXTENSION uuid-ossp
pg_restore: error: could not execute query: ERROR:  must be owner of extension uuid-ossp
Command was: CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA public;


pg_restore: from TOC entry 3353; 0 0 COMMENT EXTENSION "uuid-ossp"
pg_restore: error: could not execute query: ERROR:  permission denied
Command was: COMMENT ON EXTENSION "uuid-ossp" IS 'generate universally unique identifiers (UUIDs)';


pg_restore: from TOC entry 5; 2615 2200 SCHEMA public postgres
pg_restore: error: could not execute query: ERROR:  schema "public" already exists
Command was: CREATE SCHEMA public;


pg_restore: warning: errors ignored on restore: 4
`

const failingStderr = `pg_restore: while PROCESSING TOC:
pg_restore: from TOC entry 215; 1259 16386 TABLE vds engine
pg_restore: error: could not execute query: ERROR:  role "engine" does not exist
Command was: ALTER TABLE public.vds OWNER TO engine;

pg_restore: from TOC entry 3350; 0 16386 TABLE DATA vds engine
pg_restore: error: COPY failed for table "vds": ERROR:  invalid input syntax for type uuid: "x"
CONTEXT:  COPY vds, line 1, column id: "x"
pg_restore: from TOC entry 3352; 0 0 COMMENT EXTENSION plpgsql
pg_restore: error: could not execute query: ERROR:  must be owner of extension plpgsql
Command was: COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';


pg_restore: warning: errors ignored on restore: 3
`

// feed writes s to a parser in awkward chunks, as a pipe would.
func feed(s string) *pg.RestoreLog {
	p := &pg.RestoreLog{}
	for len(s) > 0 {
		n := min(7, len(s))
		p.Write([]byte(s[:n]))
		s = s[n:]
	}
	p.Close()
	return p
}

func TestRestoreErrorsHarmless(t *testing.T) {
	harmless, err := (&PgRestore{}).harmless()
	if err != nil {
		t.Fatal(err)
	}
	rep := feed(harmlessStderr).Classify(harmless)
	if len(rep.Failures) != 0 {
		t.Fatalf("failures: %v", rep.Failures)
	}
	if rep.Total() != 4 {
		t.Fatalf("total %d, accepted %v", rep.Total(), rep.Accepted)
	}
	sum := restoreSummary(rep, "/d/e.dump", "engine", pg.ArchiveDigest{Size: 2048, SHA256: "0123456789abcdef"})
	for _, want := range []string{"restored /d/e.dump (2 KiB, sha256 0123456789ab…) into engine", `could not execute query: ERROR:  schema "public" already exists (×1)`} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

func TestRestoreErrorsFailure(t *testing.T) {
	harmless, _ := (&PgRestore{}).harmless()
	p := feed(failingStderr)
	// All three parsed, and none more counted by pg_restore than parsed.
	if all := p.Classify(nil); len(all.Failures) != 3 || all.Unparsed != 0 {
		t.Fatalf("parsed %+v", all)
	}
	rep := p.Classify(harmless)
	if len(rep.Failures) != 2 {
		t.Fatalf("failures %+v", rep.Failures)
	}
	msg := rep.Err(restoreRetryAdvice).Error()
	for _, want := range []string{
		"pg_restore reported 2 errors not known to be harmless (of 3):",
		`- from TOC entry 215; 1259 16386 TABLE vds engine: could not execute query: ERROR:  role "engine" does not exist`,
		"Command was: ALTER TABLE public.vds OWNER TO engine;",
		`COPY failed for table "vds": ERROR:  invalid input syntax for type uuid: "x"`,
		`CONTEXT:  COPY vds, line 1, column id: "x"`,
		"hint: create the archive's roles",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}

	// allow_errors turns a known failure into an accepted one.
	r := &PgRestore{AllowErrors: []string{`role "engine" does not exist`, `COPY failed for table "vds"`}}
	harmless, _ = r.harmless()
	if rep := feed(failingStderr).Classify(harmless); len(rep.Failures) != 0 {
		t.Fatalf("with allow_errors: failures %v", rep.Failures)
	}
}

// An error count above what was parsed is a failure: migrun does not call
// harmless what it did not read.
func TestRestoreErrorsUnparsed(t *testing.T) {
	harmless, _ := (&PgRestore{}).harmless()
	rep := feed("pg_restore: something odd\npg_restore: warning: errors ignored on restore: 2\n").Classify(harmless)
	if len(rep.Failures) != 1 || rep.Unparsed != 2 {
		t.Fatalf("report %+v", rep)
	}
	// Many failures are listed up to a bound (5).
	var b strings.Builder
	for range 8 {
		b.WriteString("pg_restore: error: could not execute query: ERROR:  boom\nCommand was: SELECT 1;\n\n")
	}
	msg := feed(b.String()).Classify(harmless).Err(restoreRetryAdvice).Error()
	if strings.Count(msg, "boom") != 5 || !strings.Contains(msg, "… and 3 more") {
		t.Fatalf("listing:\n%s", msg)
	}
}

func TestPgRestoreDescribe(t *testing.T) {
	r := &PgRestore{Database: "engine", File: "/var/tmp/engine.dump", Jobs: 2}
	acts, err := r.Describe(context.Background(), testRuntime(hosts{}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	text := summaries(acts)
	for _, want := range []string{
		"refuse unless database engine has no tables",
		"run on db as postgres: LC_MESSAGES=C PGOPTIONS='-c lc_messages=C -c maintenance_work_mem=512MB -c synchronous_commit=off' pg_restore -v -d engine -j 2 /var/tmp/engine.dump",
		"/var/tmp/engine.dump.migrun-restore.engine",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("describe lacks %q:\n%s", want, text)
		}
	}
}

// TestPgRestoreMarkerOwner: a restore marker is the run's own only when
// that run wrote it about this very server and database. The same run
// resumes from its marker; another run, another server or an older
// migrun's marker is never taken for a finished (or half-done) restore.
func TestPgRestoreMarkerOwner(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	srv.psql(t, "CREATE DATABASE engine;")
	srv.psql(t, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);", "engine")
	ex := executors.NewLocal("db")
	at := func(runID string, h executors.Executor) *Runtime {
		rt := testRuntime(hosts{"db": h}, nil, nil)
		rt.RunID = runID
		return rt
	}
	file := filepath.Join(pgDir(t), "engine.dump")
	if _, err := (&PgDump{Database: "engine", File: file, PgConnection: conn(srv)}).Apply(ctx, at("run-1", ex)); err != nil {
		t.Fatal(err)
	}
	srv.psql(t, "CREATE DATABASE copy;")
	r := &PgRestore{Database: "copy", File: file, PgConnection: conn(srv)}
	if _, err := r.Apply(ctx, at("run-1", ex)); err != nil {
		t.Fatal(err)
	}
	mp := restoreMarkerPath(file, "copy")
	orig, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	sysid := srv.psql(t, "SELECT system_identifier FROM pg_control_system()")
	if m, _ := r.readMarker(ctx, ex); m == nil || m.RunID != "run-1" || m.SystemID != sysid || m.State != "done" {
		t.Fatalf("marker %+v, want run-1 on server %s", m, sysid)
	}

	tests := []struct {
		name  string
		runID string
		edit  func(m map[string]any)
		done  bool   // check: the restore is this run's and finished
		check string // in the check's reason
		apply string // in apply's error; "" means apply succeeds
	}{
		{name: "same run resumes: done", runID: "run-1", done: true, check: "restored from " + file},
		{name: "same run, interrupted: redone", runID: "run-1", edit: func(m map[string]any) { m["state"] = "started" },
			check: "was interrupted"},
		{name: "another run", runID: "run-2",
			check: "was left by an earlier run, run-1 (done at", apply: "was left by an earlier run, run-1 (done at"},
		{name: "dry run of a fresh run", runID: "",
			check: "was left by an earlier run, run-1"},
		{name: "another server", runID: "run-1", edit: func(m map[string]any) { m["system_identifier"] = "1" },
			check: "this run on another server, system identifier 1", apply: "this run on another server, system identifier 1"},
		{name: "an older migrun", runID: "run-1", edit: func(m map[string]any) { delete(m, "run_id"); delete(m, "system_identifier") },
			check: "an earlier run of an older migrun", apply: "an earlier run of an older migrun"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer os.WriteFile(mp, orig, 0o644)
			if tt.edit != nil {
				editMarker(t, mp, orig, tt.edit)
			}
			before, _ := os.ReadFile(mp)
			c, err := r.Check(ctx, at(tt.runID, executors.ReadOnly(ex)))
			if err != nil || c.Done != tt.done || !strings.Contains(c.Reason, tt.check) {
				t.Fatalf("check: %+v %v, want done=%v, reason ~ %q", c, err, tt.done, tt.check)
			}
			if tt.done || tt.runID == "" {
				return
			}
			_, err = r.Apply(ctx, at(tt.runID, ex))
			switch {
			case tt.apply == "" && err != nil:
				t.Fatalf("apply: %v", err)
			case tt.apply != "" && (err == nil || !strings.Contains(err.Error(), tt.apply) || !strings.Contains(err.Error(), "the database is not empty")):
				t.Fatalf("apply: %v, want a refusal naming %q", err, tt.apply)
			case tt.apply != "":
				t.Logf("refusal: %v", err)
				if after, _ := os.ReadFile(mp); !bytes.Equal(after, before) {
					t.Fatalf("a refused restore rewrote the marker:\n%s", after)
				}
			}
			if n := srv.psql(t, "SELECT count(*) FROM t", "copy"); n != "100" {
				t.Fatalf("rows after apply: %s", n)
			}
		})
	}

	t.Run("a rehearsal's marker on a re-created database: restored afresh", func(t *testing.T) {
		// A cluster initialised again gives the new database the OID the
		// rehearsal's had: only the run id and the system identifier tell.
		srv.psql(t, "DROP DATABASE copy; CREATE DATABASE copy;")
		oid, err := pg.DatabaseOID(ctx, ex, conn(srv).target("postgres"), "copy")
		if err != nil {
			t.Fatal(err)
		}
		editMarker(t, mp, orig, func(m map[string]any) { m["database_oid"] = oid })
		c, err := r.Check(ctx, at("run-2", executors.ReadOnly(ex)))
		if err != nil || c.Done || !strings.Contains(c.Reason, "an earlier run, run-1") {
			t.Fatalf("check: %+v %v", c, err)
		}
		if _, err := r.Apply(ctx, at("run-2", ex)); err != nil {
			t.Fatal(err)
		}
		if n := srv.psql(t, "SELECT count(*) FROM t", "copy"); n != "100" {
			t.Fatalf("rows after the restore: %s", n)
		}
		if m, _ := r.readMarker(ctx, ex); m == nil || m.RunID != "run-2" || m.DatabaseOID != oid || m.State != "done" {
			t.Fatalf("marker %+v", m)
		}
	})
}

func TestRestoreNarration(t *testing.T) {
	tests := []struct {
		line        string
		count, drop bool
	}{
		{`pg_restore: creating TABLE "public.vds"`, true, true},
		{`pg_restore: processing data for table "public.vds"`, true, true},
		{`pg_restore: launching item 3372 TABLE DATA public.vds`, false, true},
		{`pg_restore: connecting to database for restore`, false, true},
		{`pg_restore: error: could not execute query: ERROR:  role "engine" does not exist`, false, false},
		{`pg_restore: from TOC entry 215; 1259 16386 TABLE t engine`, false, false},
		{`Command was: ALTER TABLE public.vds OWNER TO engine;`, false, false},
		// Two workers' messages in one line: counted, and the error kept.
		{`pg_restore: pg_restore: creating INDEX "public.i"`, true, true},
		{`pg_restore: creating INDEX "public.i"pg_restore: error: could not create`, true, false},
	}
	for _, tt := range tests {
		if count, drop := pg.RestoreNarration(tt.line); count != tt.count || drop != tt.drop {
			t.Errorf("pg.RestoreNarration(%q) = %v, %v; want %v, %v", tt.line, count, drop, tt.count, tt.drop)
		}
	}
}
