package steps

import (
	"context"
	"reflect"
	"strings"
	"testing"
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
	if got, want := r.argv(false), []string{"pg_restore", "-d", "engine", "/var/tmp/engine.dump"}; !reflect.DeepEqual(got, want) {
		t.Errorf("plain: %q, want %q", got, want)
	}
	r = PgRestore{Database: "engine", File: "/var/tmp/engine.dump", Jobs: 4, NoOwner: true, Role: "engine",
		PgConnection: PgConnection{SocketDir: "/run/pg", Port: 5433}}
	want := []string{"pg_restore", "-d", "engine", "-h", "/run/pg", "-p", "5433", "-j", "4", "--no-owner", "--role=engine", "--clean", "--if-exists", "/var/tmp/engine.dump"}
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
func feed(s string) *restoreErrors {
	p := &restoreErrors{}
	for len(s) > 0 {
		n := min(7, len(s))
		p.Write([]byte(s[:n]))
		s = s[n:]
	}
	p.flush()
	return p
}

func TestRestoreErrorsHarmless(t *testing.T) {
	harmless, err := (&PgRestore{}).harmless()
	if err != nil {
		t.Fatal(err)
	}
	rep := feed(harmlessStderr).classify(harmless)
	if len(rep.failures) != 0 {
		t.Fatalf("failures: %v", rep.failures)
	}
	if rep.total() != 4 {
		t.Fatalf("total %d, accepted %v", rep.total(), rep.accepted)
	}
	sum := rep.summary("/d/e.dump", "engine", archiveDigest{Size: 2048, SHA256: "0123456789abcdef"})
	for _, want := range []string{"restored /d/e.dump (2 KiB, sha256 0123456789ab…) into engine", `could not execute query: ERROR:  schema "public" already exists (×1)`} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
}

func TestRestoreErrorsFailure(t *testing.T) {
	harmless, _ := (&PgRestore{}).harmless()
	p := feed(failingStderr)
	if len(p.errors) != 3 || p.reported != 3 {
		t.Fatalf("parsed %d errors, reported %d: %+v", len(p.errors), p.reported, p.errors)
	}
	rep := p.classify(harmless)
	if len(rep.failures) != 2 {
		t.Fatalf("failures %+v", rep.failures)
	}
	msg := rep.err().Error()
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
	if rep := feed(failingStderr).classify(harmless); len(rep.failures) != 0 {
		t.Fatalf("with allow_errors: failures %v", rep.failures)
	}
}

// An error count above what was parsed is a failure: migrun does not call
// harmless what it did not read.
func TestRestoreErrorsUnparsed(t *testing.T) {
	harmless, _ := (&PgRestore{}).harmless()
	rep := feed("pg_restore: something odd\npg_restore: warning: errors ignored on restore: 2\n").classify(harmless)
	if len(rep.failures) != 1 || rep.unparsed != 2 {
		t.Fatalf("report %+v", rep)
	}
	// Many failures are listed up to a bound.
	var b strings.Builder
	for range 8 {
		b.WriteString("pg_restore: error: could not execute query: ERROR:  boom\nCommand was: SELECT 1;\n\n")
	}
	msg := feed(b.String()).classify(harmless).err().Error()
	if strings.Count(msg, "boom") != maxListed || !strings.Contains(msg, "… and 3 more") {
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
		"run on db as postgres: LC_MESSAGES=C PGOPTIONS='-c lc_messages=C -c maintenance_work_mem=512MB -c synchronous_commit=off' pg_restore -d engine -j 2 /var/tmp/engine.dump",
		"/var/tmp/engine.dump.migrun-restore.engine",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("describe lacks %q:\n%s", want, text)
		}
	}
}
