package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

func TestPgStreamValidate(t *testing.T) {
	src := PgEndpoint{Host: "old", Database: "engine"}
	dst := PgEndpoint{Host: "new", Database: "engine"}
	tests := []struct {
		name string
		spec PgStream
		want []string // problem fields
	}{
		{"minimal", PgStream{Source: src, Target: dst}, nil},
		{"same host, other database", PgStream{Source: src, Target: PgEndpoint{Host: "old", Database: "copy"}}, nil},
		{"same database", PgStream{Source: src, Target: src}, []string{"target"}},
		{"connections", PgStream{Source: PgEndpoint{Host: "old", Database: "engine", PgConnection: PgConnection{SocketDir: "run"}},
			Target: PgEndpoint{Host: "new", Database: "engine", PgConnection: PgConnection{Port: 70000, OSUser: "a b"}}},
			[]string{"source.socket_dir", "target.port", "target.os_user"}},
		{"allow_errors", PgStream{Source: src, Target: dst, AllowErrors: []string{"ok", "(unclosed"}}, []string{"allow_errors[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problemFields(tt.spec.Validate()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems on %v, want %v (%v)", got, tt.want, tt.spec.Validate())
			}
		})
	}
	s := PgStream{Source: src, Target: dst}
	if h := s.Hosts("ignored"); !reflect.DeepEqual(h, []string{"old", "new"}) {
		t.Fatalf("hosts %v", h)
	}
	if k, ok := Builtin().Lookup("pg_stream"); !ok || k.NeedsHost {
		t.Fatalf("registry: %+v %v", k, ok)
	}
}

func TestPgStreamDescribe(t *testing.T) {
	tests := []struct {
		name string
		spec PgStream
		want []string // one per action: source, target, relay
	}{
		{"defaults", PgStream{Source: PgEndpoint{Host: "old", Database: "engine"}, Target: PgEndpoint{Host: "new", Database: "engine"}},
			[]string{
				"run on old as postgres: LC_MESSAGES=C PGOPTIONS='-c lc_messages=C' pg_dump -F c -Z 0 engine (reads database engine on old",
				"run on new as postgres: LC_MESSAGES=C PGOPTIONS='-c lc_messages=C -c maintenance_work_mem=512MB -c synchronous_commit=off' pg_restore -d engine (archive read from the stream on stdin), only if database engine on new is empty; start and end recorded in /var/tmp/migrun-pg_stream.5432.engine; only errors known to be harmless accepted (must be owner of extension",
				"relay pg_dump's output to pg_restore's input through migrun as it is produced, no intermediate file; " +
					"not resumable mid-stream: an interrupted stream is restarted from the beginning (the target database must be emptied: drop and re-create it)",
			}},
		{"everything", PgStream{
			Source:   PgEndpoint{Host: "old", Database: "engine", PgConnection: PgConnection{SocketDir: "/run/srv", Port: 5433, OSUser: "srv"}},
			Target:   PgEndpoint{Host: "new", Database: "en gine", PgConnection: PgConnection{Port: 5434}},
			Compress: "3", NoOwner: true, Role: "engine", AllowErrors: []string{"boom"}},
			[]string{
				"run on old as srv: LC_MESSAGES=C PGOPTIONS='-c lc_messages=C' pg_dump -F c -Z 3 -h /run/srv -p 5433 engine",
				"pg_restore -d 'en gine' -p 5434 --no-owner --role=engine (archive read from the stream on stdin), only if database en gine on new is empty; " +
					"start and end recorded in /var/tmp/migrun-pg_stream.5434.en%20gine; only errors known to be harmless accepted (must be owner of extension plpgsql/uuid-ossp; " +
					`schema "public" already exists; errors of COMMENT ON EXTENSION; /boom/)`,
				streamNotResumable,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts, err := tt.spec.Describe(context.Background(), testRuntime(hosts{}, nil, nil))
			if err != nil {
				t.Fatal(err)
			}
			if len(acts) != 3 || acts[0].Host != tt.spec.Source.Host || acts[1].Host != tt.spec.Target.Host || acts[2].Host != "" {
				t.Fatalf("actions %+v", acts)
			}
			for i, want := range tt.want {
				if !strings.Contains(acts[i].Summary, want) {
					t.Errorf("action %d lacks %q:\n%s", i, want, acts[i].Summary)
				}
			}
		})
	}
}

// streamFixture adds to engineFixture what a stream must carry besides
// tables: a function, a sequence moved on by hand, a view.
const streamFixture = engineFixture + `
CREATE FUNCTION host_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM vds';
CREATE SEQUENCE ticket_seq START 100;
SELECT setval('ticket_seq', 4242);
CREATE VIEW recent AS SELECT * FROM audit_log WHERE audit_log_id > 990;
`

// TestPgStreamServer streams between two real clusters: into an empty
// database, then the refusals, a failing dump and the restart after an
// interrupted stream.
func TestPgStreamServer(t *testing.T) {
	srcPG, dstPG := startPostgres(t), startPostgres(t)
	ctx := context.Background()
	srcPG.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")
	srcPG.psql(t, streamFixture, "engine")
	dstPG.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")

	srcEx, dstEx := executors.NewLocal("src"), executors.NewLocal("dst")
	var output bytes.Buffer
	live := testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, &output)
	dry := testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
	dry.DryRun = true
	// The dry run of a run being resumed has its run id (see runner.Plan).
	live.RunID, dry.RunID = "run-1", "run-1"
	markers := t.TempDir()
	stream := func(srcDB, dstDB string) *PgStream {
		return &PgStream{
			Source:    PgEndpoint{Host: "src", Database: srcDB, PgConnection: conn(srcPG)},
			Target:    PgEndpoint{Host: "dst", Database: dstDB, PgConnection: conn(dstPG)},
			markerDir: markers,
		}
	}
	marker := func(t *testing.T, s *PgStream) *pg.Marker {
		t.Helper()
		m, err := pg.ReadMarker(ctx, dstEx, s.markerPath())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	noMarker := func(t *testing.T, s *PgStream) {
		t.Helper()
		if _, err := os.Stat(s.markerPath()); !os.IsNotExist(err) {
			t.Fatalf("marker %s: %v", s.markerPath(), err)
		}
	}
	s := stream("engine", "engine")
	verify := &PgVerify{Source: PgEndpoint{Host: "src", Database: "engine", PgConnection: conn(srcPG)},
		Target: PgEndpoint{Host: "dst", Database: "engine", PgConnection: conn(dstPG)}}

	t.Run("check cannot tell yet", func(t *testing.T) {
		down := PgConnection{SocketDir: pgDir(t), Port: 5999}
		tests := []struct {
			name   string
			spec   PgStream
			reason string
		}{
			{"source server down", PgStream{Source: PgEndpoint{Host: "src", Database: "engine", PgConnection: down},
				Target: s.Target, markerDir: markers}, "the source server is not reachable yet"},
			{"source database missing", PgStream{Source: PgEndpoint{Host: "src", Database: "later", PgConnection: conn(srcPG)},
				Target: s.Target, markerDir: markers}, "source database later on src does not exist yet"},
			{"target server down", PgStream{Source: s.Source, Target: PgEndpoint{Host: "dst", Database: "engine", PgConnection: down},
				markerDir: markers}, "the target server is not reachable yet"},
			{"target database missing", PgStream{Source: s.Source, Target: PgEndpoint{Host: "dst", Database: "later", PgConnection: conn(dstPG)},
				markerDir: markers}, "target database later on dst does not exist yet"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c, err := tt.spec.Check(ctx, dry)
				if err != nil || !c.Unknown || !strings.Contains(c.Reason, tt.reason) {
					t.Fatalf("check: %+v %v, want unknown: %q", c, err, tt.reason)
				}
			})
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		c, err := s.Check(ctx, dry)
		if err != nil || c.Done || c.Unknown || !strings.Contains(c.Reason, "is empty: streaming database engine on src into it") {
			t.Fatalf("check: %+v %v", c, err)
		}
		acts, err := s.Describe(ctx, dry)
		if err != nil {
			t.Fatal(err)
		}
		text := summaries(acts)
		for _, want := range []string{"pg_dump -F c -Z 0 -h " + srcPG.SocketDir, "pg_restore -d engine -h " + dstPG.SocketDir, streamNotResumable} {
			if !strings.Contains(text, want) {
				t.Errorf("describe lacks %q:\n%s", want, text)
			}
		}
		if _, err := s.Apply(ctx, dry); !errors.Is(err, executors.ErrDryRun) {
			t.Fatalf("apply under dry run: %v", err)
		}
		if n := dstPG.psql(t, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace", "engine"); n != "0" {
			t.Fatalf("dry run restored %s relations", n)
		}
		noMarker(t, s)
	})

	t.Run("stream into an empty database", func(t *testing.T) {
		o, err := applyShown(ctx, t, s, dry, live)
		if err != nil {
			t.Fatalf("%v\noutput:\n%s", err, output.String())
		}
		t.Logf("output:\n%s", o.Output)
		if !o.Changed || !strings.Contains(o.Output, "streamed database engine on src into database engine on dst: ") {
			t.Fatalf("outcome %+v", o)
		}
		m := marker(t, s)
		if m == nil || m.State != "done" || m.Size == 0 || len(m.SHA256) != 64 || m.Source != s.sourceID() {
			t.Fatalf("marker %+v", m)
		}
		// Tables with their row counts, sequences, extensions.
		if c, err := verify.Check(ctx, dry); err != nil || !c.Done {
			t.Fatalf("verify: %+v %v", c, err)
		}
		const q = `SELECT (SELECT count(*) FROM vds) || ' ' || (SELECT count(*) FROM audit_log) || ' ' || host_count() || ' ' ||
  (SELECT last_value FROM ticket_seq) || ' ' || (SELECT last_value FROM audit_log_audit_log_id_seq) || ' ' ||
  (SELECT count(*) FROM recent) || ' ' || (SELECT extversion FROM pg_extension WHERE extname = 'uuid-ossp') || ' ' ||
  (SELECT tableowner FROM pg_tables WHERE tablename = 'vds')`
		want := srcPG.psql(t, q, "engine")
		if got := dstPG.psql(t, q, "engine"); got != want || !strings.HasPrefix(got, "50 1000 50 4242 1000 10 ") {
			t.Fatalf("target %q, source %q", got, want)
		}
	})

	t.Run("done: check says so, apply again changes nothing", func(t *testing.T) {
		for _, rt := range []*Runtime{dry, live} {
			c, err := s.Check(ctx, rt)
			if err != nil || !c.Done || !strings.Contains(c.Reason, "streamed from database engine on src into database engine on dst") {
				t.Fatalf("check: %+v %v", c, err)
			}
		}
		before := marker(t, s)
		_, err := s.Apply(ctx, live) // forced: refused, the database holds the stream
		if err == nil || !strings.Contains(err.Error(), "already holds a finished stream") || !strings.Contains(err.Error(), "dropdb") {
			t.Fatalf("forced apply: %v", err)
		}
		if after := marker(t, s); !reflect.DeepEqual(before, after) {
			t.Fatalf("marker changed: %+v -> %+v", before, after)
		}
	})

	t.Run("a marker of another run or server is not ours", func(t *testing.T) {
		// The finished stream's marker, as another run or server would
		// have left it on this very database: the stream is not taken as
		// done, and the refusal of the filled target says who left it.
		orig, err := os.ReadFile(s.markerPath())
		if err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(s.markerPath(), orig, 0o644)
		tests := []struct {
			name  string
			edit  func(m map[string]any)
			whose string
		}{
			{"another run", func(m map[string]any) { m["run_id"] = "run-0" }, "was left by an earlier run, run-0 (done at "},
			{"another server", func(m map[string]any) { m["system_identifier"] = "1" }, "was left by this run on another server, system identifier 1"},
			{"an older migrun", func(m map[string]any) { delete(m, "run_id"); delete(m, "system_identifier") }, "was left by an earlier run of an older migrun"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				editMarker(t, s.markerPath(), orig, tt.edit)
				_, cerr := s.Check(ctx, dry)
				_, aerr := s.Apply(ctx, live)
				for _, err := range []error{cerr, aerr} {
					if err == nil || !strings.Contains(err.Error(), "holds no finished stream of this step") || !strings.Contains(err.Error(), tt.whose) {
						t.Fatalf("want a refusal naming %q, got %v", tt.whose, err)
					}
				}
				t.Logf("refusal: %v", aerr)
			})
		}
	})

	t.Run("another run's marker on an empty database: streamed afresh", func(t *testing.T) {
		// A rehearsal streamed into a database of a cluster since
		// initialised again, whose new database got the same OID.
		dstPG.psql(t, "CREATE DATABASE rehearsed OWNER engine;")
		r := stream("engine", "rehearsed")
		oid, err := pg.DatabaseOID(ctx, dstEx, conn(dstPG).target("postgres"), "rehearsed")
		if err != nil {
			t.Fatal(err)
		}
		sysid := dstPG.psql(t, "SELECT system_identifier FROM pg_control_system()")
		old := pg.Marker{State: "done", Source: r.sourceID(), Database: "rehearsed", DatabaseOID: oid, SocketDir: dstPG.SocketDir,
			Port: dstPG.Port, SystemID: sysid, RunID: "run-0", Size: 1, SHA256: strings.Repeat("0", 64)}
		if err := pg.WriteMarker(ctx, dstEx, r.markerPath(), old); err != nil {
			t.Fatal(err)
		}
		c, err := r.Check(ctx, dry)
		if err != nil || c.Done || !strings.Contains(c.Reason, "is empty: streaming database engine on src into it") {
			t.Fatalf("check: %+v %v", c, err)
		}
		o, err := applyShown(ctx, t, r, dry, live)
		if err != nil || strings.Contains(o.Output, "did not finish") {
			t.Fatalf("apply: %+v %v", o, err)
		}
		if n := dstPG.psql(t, "SELECT count(*) FROM audit_log", "rehearsed"); n != "1000" {
			t.Fatalf("audit_log: %s rows", n)
		}
		if m := marker(t, r); m.RunID != "run-1" || m.SystemID != sysid || m.DatabaseOID != oid || m.State != "done" {
			t.Fatalf("marker %+v", m)
		}
		// The same run, resumed, finds its own marker.
		if c, err := r.Check(ctx, live); err != nil || !c.Done {
			t.Fatalf("check of the same run: %+v %v", c, err)
		}
	})

	t.Run("not empty target refused", func(t *testing.T) {
		dstPG.psql(t, "CREATE DATABASE other;")
		tests := []struct {
			name, setup, want string
		}{
			{"a table", "CREATE TABLE keep (a int); INSERT INTO keep VALUES (1);", "the database is not empty (1 object: table public.keep)"},
			{"a function", "DROP TABLE keep; CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';", "(1 object: function public.f)"},
			{"a schema", "DROP FUNCTION f; CREATE SCHEMA s; CREATE TABLE s.a (a int); CREATE TABLE s.b (a int); CREATE TABLE s.c (a int);",
				"(4 objects: table s.a, table s.b, table s.c, …)"},
		}
		o := stream("engine", "other")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dstPG.psql(t, tt.setup, "other")
				before := dstPG.psql(t, "SELECT count(*) FROM pg_class", "other")
				_, cerr := o.Check(ctx, dry)
				_, aerr := o.Apply(ctx, live)
				for _, err := range []error{cerr, aerr} {
					if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "only streams into an empty database") {
						t.Fatalf("want refusal %q, got %v", tt.want, err)
					}
				}
				t.Logf("refusal: %v", aerr)
				noMarker(t, o)
				if after := dstPG.psql(t, "SELECT count(*) FROM pg_class", "other"); after != before {
					t.Fatalf("relations %s -> %s", before, after)
				}
			})
		}
	})

	t.Run("failures", func(t *testing.T) {
		tests := []struct {
			name         string
			srcDB, dstDB string
			role         string
			cancel       bool // cancel the step once the first bytes streamed
			want         []string
		}{
			{name: "pg_dump fails", srcDB: "nope", dstDB: "fresh",
				want: []string{"pg_dump failed after 0 B: src: (as postgres) pg_dump", `FATAL:  database "nope" does not exist`}},
			{name: "pg_restore fails", srcDB: "engine", dstDB: "badrole", role: "ghost",
				want: []string{"pg_restore reported 1 error not known to be harmless", `role "ghost" does not exist`, "drop and re-create it, then apply again"}},
			{name: "interrupted", srcDB: "engine", dstDB: "cut", cancel: true,
				want: []string{"stream interrupted after", "context canceled"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dstPG.psql(t, "CREATE DATABASE "+tt.dstDB+";")
				f := stream(tt.srcDB, tt.dstDB)
				f.Role = tt.role
				rt, sctx := live, ctx
				if tt.cancel {
					c, cancel := context.WithCancel(ctx)
					defer cancel()
					cp := *live
					cp.Progress = cancelAtFirstBytes{cancel}
					rt, sctx = &cp, c
				}
				o, err := f.Apply(sctx, rt)
				if err == nil {
					t.Fatal("the stream succeeded")
				}
				t.Logf("error: %v\noutput:\n%s", err, o.Output)
				for _, want := range tt.want {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q: %v", want, err)
					}
				}
				if tt.cancel && !errors.Is(err, context.Canceled) {
					t.Errorf("not a cancellation: %v", err)
				}
				if m := marker(t, f); !o.Changed || m == nil || m.State != "started" {
					t.Fatalf("changed %v, marker %+v", o.Changed, m)
				}
				if c, err := f.Check(ctx, dry); c.Done || err == nil && !strings.Contains(c.Reason, "did not finish") && !c.Unknown {
					t.Fatalf("check after the failure: %+v %v", c, err)
				}
			})
		}
	})

	t.Run("after a failed pg_dump, a fixed source streams from the beginning", func(t *testing.T) {
		f := stream("nope", "fresh")
		if c, err := f.Check(ctx, dry); err != nil || !c.Unknown || !strings.Contains(c.Reason, "source database nope on src does not exist") {
			t.Fatalf("check: %+v %v", c, err)
		}
		if n := dstPG.psql(t, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace", "fresh"); n != "0" {
			t.Fatalf("the failed stream left %s relations", n)
		}
		srcPG.psql(t, "CREATE DATABASE nope;")
		srcPG.psql(t, "CREATE TABLE t AS SELECT g FROM generate_series(1, 10) g;", "nope")
		if c, err := f.Check(ctx, dry); err != nil || c.Done || !strings.Contains(c.Reason, "did not finish and left it empty: streaming again from the beginning") {
			t.Fatalf("check: %+v %v", c, err)
		}
		o, err := f.Apply(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(o.Output, "did not finish and left it empty: streamed again from the beginning") {
			t.Fatalf("output:\n%s", o.Output)
		}
		if n := dstPG.psql(t, "SELECT sum(g) FROM t", "fresh"); n != "55" {
			t.Fatalf("sum %s", n)
		}
	})

	t.Run("interrupted stream: refused until the target is re-created", func(t *testing.T) {
		// What a crash midway leaves: objects and a "started" marker.
		m := marker(t, s)
		m.State = "started"
		data, _ := json.Marshal(m)
		if err := os.WriteFile(s.markerPath(), data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, cerr := s.Check(ctx, dry)
		_, aerr := s.Apply(ctx, live)
		for _, err := range []error{cerr, aerr} {
			if err == nil {
				t.Fatal("no refusal")
			}
			for _, want := range []string{"did not finish", streamNotResumable, "dropdb -h " + dstPG.SocketDir, "createdb -h " + dstPG.SocketDir,
				"-T template0 -O engine -E UTF8 --lc-collate=" + dstPG.Locale, " engine (and redo any ALTER DATABASE"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal lacks %q:\n%v", want, err)
				}
			}
		}
		t.Logf("refusal: %v", aerr)
		// Doing as told: a new database (new OID) is streamed into.
		dstPG.psql(t, "DROP DATABASE engine; CREATE DATABASE engine OWNER engine;")
		if c, err := s.Check(ctx, dry); err != nil || c.Done {
			t.Fatalf("check after re-creating: %+v %v", c, err)
		}
		if _, err := s.Apply(ctx, live); err != nil {
			t.Fatal(err)
		}
		if c, err := verify.Check(ctx, dry); err != nil || !c.Done {
			t.Fatalf("verify: %+v %v", c, err)
		}
	})

	t.Run("as the owner, harmless errors accepted", func(t *testing.T) {
		// A non-superuser owner restores; a DBA created the extension.
		dstPG.psql(t, "CREATE DATABASE owned OWNER engine;")
		dstPG.psql(t, `CREATE EXTENSION "uuid-ossp";`, "owned")
		h := stream("engine", "owned")
		h.Role, h.NoOwner = "engine", true
		if c, err := h.Check(ctx, dry); err != nil || c.Done {
			t.Fatalf("check with a pre-created extension: %+v %v", c, err)
		}
		o, err := h.Apply(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(o.Output, "accepted as harmless: ") || !strings.Contains(o.Output, "must be owner of extension") {
			t.Fatalf("output:\n%s", o.Output)
		}
		if owner := dstPG.psql(t, "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log'", "owned"); owner != "engine" {
			t.Fatalf("audit_log owned by %q", owner)
		}
	})
}

// cancelAtFirstBytes is a Progress that cancels the step when the first
// bytes are reported: an interrupt in the middle of a stream.
type cancelAtFirstBytes struct{ cancel context.CancelFunc }

func (p cancelAtFirstBytes) Start(Task) Bar { return p }
func (p cancelAtFirstBytes) Done(error)     {}
func (p cancelAtFirstBytes) Add(n int64) {
	if n > 0 {
		p.cancel()
	}
}

// TestMarkerIsOurs: a marker is this step's only when the run, the
// server, the database and the stream all match; anything else, an older
// migrun's marker included, is another run's, and refusals say whose.
func TestMarkerIsOurs(t *testing.T) {
	src := PgEndpoint{Host: "old", Database: "engine"}
	dst := PgEndpoint{Host: "new", Database: "engine", PgConnection: PgConnection{Port: 5433}}
	id := pg.DatabaseID{OID: 16384, SystemID: "7301234567890123456"}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	mine := pg.Marker{State: "done", Source: pgSourceID(src), Database: "engine", DatabaseOID: id.OID, Port: 5433,
		SystemID: id.SystemID, RunID: "run-1", Time: at}
	tests := []struct {
		name  string
		edit  func(m *pg.Marker)
		runID string
		ours  bool
		whose string // whose() of a marker that is not ours
	}{
		{"same run, server and database", func(*pg.Marker) {}, "run-1", true, ""},
		{"another run", func(m *pg.Marker) { m.RunID = "run-0" }, "run-1", false, "an earlier run, run-0 (done at 2025-03-01T12:00:00Z)"},
		{"a dry run of a fresh run", func(*pg.Marker) {}, "", false, "an earlier run, run-1 (done at"},
		{"another server", func(m *pg.Marker) { m.SystemID = "7300000000000000001" }, "run-1", false, "this run on another server, system identifier 7300000000000000001"},
		{"a database re-created", func(m *pg.Marker) { m.DatabaseOID = 16390 }, "run-1", false, "this run on another database of that name, OID 16390"},
		{"an older migrun", func(m *pg.Marker) { m.RunID, m.SystemID = "", "" }, "run-1", false, "an earlier run of an older migrun (done at"},
		{"an older migrun, dry run", func(m *pg.Marker) { m.RunID, m.SystemID = "", "" }, "", false, "older migrun"},
		{"no system identifier", func(m *pg.Marker) { m.SystemID = "" }, "run-1", false, "older migrun"},
		{"another source", func(m *pg.Marker) { m.Source = "elsewhere: database engine (local socket)" }, "run-1", false, ""},
		{"another port", func(m *pg.Marker) { m.Port = 5432 }, "run-1", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mine
			tt.edit(&m)
			if got := markerIsOurs(&m, src, dst, id, tt.runID); got != tt.ours {
				t.Fatalf("markerIsOurs = %v, want %v (%+v)", got, tt.ours, m)
			}
			// Refusals name a marker of another run or server, not one of
			// this run about another stream.
			note := foreignMarkerNote(&m, "/var/tmp/m", id, tt.runID)
			if tt.whose == "" {
				if note != "" {
					t.Fatalf("note on a marker of this run: %q", note)
				}
				return
			}
			if !strings.Contains(m.Whose(id, tt.runID), tt.whose) || !strings.Contains(note, "/var/tmp/m was left by ") || !strings.Contains(note, tt.whose) {
				t.Fatalf("whose %q, note %q, want %q", m.Whose(id, tt.runID), note, tt.whose)
			}
		})
	}
	if markerIsOurs(nil, src, dst, id, "run-1") {
		t.Fatal("no marker is ours")
	}
}

// editMarker rewrites the marker at p: orig's JSON with edit applied, the
// way a marker of another run, another server or an older migrun reads.
func editMarker(t *testing.T, p string, orig []byte, edit func(m map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(orig, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
