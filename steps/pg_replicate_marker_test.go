package steps

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

// TestPgReplicateRehearsal is the rehearsal that made the real run skip
// its replication: run A replicates into the target and finishes; the
// target cluster is initialised again and its new database gets the OID
// the rehearsal's had (simulated: the database is re-created and the
// marker rewritten to its new OID). Only the same run on the same server
// takes the marker for its own; run B, or a marker of another server or
// of an older migrun, starts from scratch and copies everything.
func TestPgReplicateRehearsal(t *testing.T) {
	srcPG, dstPG := startPostgres(t), startPostgres(t)
	ctx := context.Background()
	srcPG.psql(t, "ALTER SYSTEM SET wal_level = logical")
	srcPG.restart(t)
	srcPG.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")
	srcPG.psql(t, `CREATE TABLE vds (id int PRIMARY KEY, name text);
INSERT INTO vds SELECT g, 'host' || g FROM generate_series(1, 100) g;
CREATE SEQUENCE ticket_seq; SELECT setval('ticket_seq', 4242);`, "engine")
	dstPG.psql(t, "CREATE ROLE engine LOGIN; CREATE DATABASE engine OWNER engine;")

	srcEx, dstEx := executors.NewLocal("src"), executors.NewLocal("dst")
	runtimes := func(runID string) (live, dry *Runtime) {
		live = testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, nil)
		dry = testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
		live.RunID, dry.RunID, dry.DryRun = runID, runID, true
		return live, dry
	}
	markers := t.TempDir()
	repl := func(action string) *PgReplicate {
		return &PgReplicate{
			Action:    action,
			Source:    PgEndpoint{Host: "src", Database: "engine", PgConnection: conn(srcPG)},
			Target:    PgEndpoint{Host: "dst", Database: "engine", PgConnection: conn(dstPG)},
			Publisher: PgReplicateConnect{Host: srcPG.SocketDir, Port: srcPG.Port, User: "postgres"},
			poll:      20 * time.Millisecond,
			markerDir: markers,
		}
	}
	rows := func(t *testing.T) string {
		t.Helper()
		return dstPG.psql(t, "SELECT count(*) FROM vds", "engine")
	}

	// The rehearsal: run A, start and finish.
	liveA, dryA := runtimes("run-A")
	for _, action := range []string{"start", "finish"} {
		if _, err := repl(action).Apply(ctx, liveA); err != nil {
			t.Fatalf("run A %s: %v", action, err)
		}
	}
	if n := rows(t); n != "100" {
		t.Fatalf("run A copied %s rows", n)
	}
	markerPath := repl("start").markerPath()
	rehearsal, err := os.ReadFile(markerPath)
	if err != nil {
		t.Fatal(err)
	}
	sysid := dstPG.psql(t, "SELECT system_identifier FROM pg_control_system()")
	if m, _ := pg.ReadMarker(ctx, dstEx, markerPath); m == nil || m.State != replFinished || m.RunID != "run-A" || m.SystemID != sysid {
		t.Fatalf("run A's marker %+v, want finished by run-A on server %s", m, sysid)
	}
	// Run A, resumed, finds both steps done.
	for _, action := range []string{"start", "finish"} {
		if c, err := repl(action).Check(ctx, dryA); err != nil || !c.Done {
			t.Fatalf("run A %s check: %+v %v", action, c, err)
		}
	}

	tests := []struct {
		name  string
		runID string
		edit  func(m map[string]any) // besides the new database's OID
		done  bool                   // the marker is the run's own: both steps done
	}{
		// The marker as the bug saw it: same name, same OID. For run A
		// itself that is its own progress (a resume).
		{name: "same run, same server", runID: "run-A", edit: func(map[string]any) {}, done: true},
		{name: "another run", runID: "run-B", edit: func(map[string]any) {}},
		{name: "another server", runID: "run-A", edit: func(m map[string]any) { m["system_identifier"] = "1" }},
		{name: "an older migrun", runID: "run-A", edit: func(m map[string]any) { delete(m, "run_id"); delete(m, "system_identifier") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The cluster initialised again: an empty database, and the
			// rehearsal's marker naming its OID.
			dstPG.psql(t, "DROP DATABASE engine; CREATE DATABASE engine OWNER engine;")
			oid, err := pg.DatabaseOID(ctx, dstEx, conn(dstPG).target("postgres"), "engine")
			if err != nil {
				t.Fatal(err)
			}
			editMarker(t, markerPath, rehearsal, func(m map[string]any) {
				m["database_oid"] = oid
				tt.edit(m)
			})
			live, dry := runtimes(tt.runID)
			for _, action := range []string{"start", "finish"} {
				if c, err := repl(action).Check(ctx, dry); c.Done != tt.done || !tt.done && err != nil {
					t.Fatalf("%s check: %+v %v, want done=%v", action, c, err, tt.done)
				}
			}
			if tt.done {
				return
			}
			o, err := repl("start").Apply(ctx, live)
			if err != nil || !o.Changed || !strings.Contains(o.Output, "copied the schema") || !strings.Contains(o.Output, "initial copy of 1 table done") {
				t.Fatalf("start: %+v %v", o, err)
			}
			if n := rows(t); n != "100" {
				t.Fatalf("start copied %s rows", n)
			}
			if m, _ := pg.ReadMarker(ctx, dstEx, markerPath); m == nil || m.State != replSubscribed || m.RunID != tt.runID || m.SystemID != sysid || m.DatabaseOID != oid {
				t.Fatalf("marker after start %+v", m)
			}
			// The replication is this run's now: its cancel drops it.
			if _, err := repl("cancel").Apply(ctx, live); err != nil {
				t.Fatal(err)
			}
			if n := srcPG.psql(t, "SELECT (SELECT count(*) FROM pg_replication_slots) || '/' || (SELECT count(*) FROM pg_publication)", "engine"); n != "0/0" {
				t.Fatalf("slots/publications left on the source: %s", n)
			}
		})
	}
}
