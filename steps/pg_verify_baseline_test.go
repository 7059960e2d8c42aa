package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

// baselineFixture is cut into chunks: a table large enough to have many
// (bigint key), a table without a primary key whose identity is FULL with
// an index to chunk by, one without any index (summed whole), a uuid key,
// a sequence.
const baselineFixture = `
CREATE TABLE audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), message text, score float8);
INSERT INTO audit (message, score) SELECT 'event ' || g || E' it''s\n"odd"', g / 7.0 FROM generate_series(1, 120000) g;
CREATE TABLE hist (audit_id bigint NOT NULL, sent_at timestamptz NOT NULL, reason text);
CREATE INDEX hist_audit ON hist (audit_id);
INSERT INTO hist SELECT g, now(), 'sent' FROM generate_series(1, 120000, 8) g;
CREATE TABLE entities (task uuid NOT NULL, entity uuid NOT NULL);
INSERT INTO entities SELECT gen_random_uuid(), gen_random_uuid() FROM generate_series(1, 300);
CREATE TABLE vms (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL);
INSERT INTO vms (name) SELECT 'vm' || g FROM generate_series(1, 50000) g;
CREATE SEQUENCE ticket_seq;
SELECT setval('ticket_seq', 77);
ANALYZE;
`

// TestPgVerifyBaseline takes a baseline on a database being replicated,
// changes the source, cuts over and compares in the downtime reading only
// what changed; then breaks the copy in each way a comparison must catch.
func TestPgVerifyBaseline(t *testing.T) {
	srcPG, dstPG := startPostgres(t), startPostgres(t)
	ctx := context.Background()
	srcPG.psql(t, "ALTER SYSTEM SET wal_level = logical")
	srcPG.restart(t)
	srcPG.psql(t, "CREATE DATABASE engine")
	srcPG.psql(t, baselineFixture, "engine")
	dstPG.psql(t, "CREATE DATABASE engine")

	srcEx, dstEx := executors.NewLocal("src"), executors.NewLocal("dst")
	runtime := func(runID string) *Runtime {
		rt := testRuntime(hosts{"src": srcEx, "dst": dstEx}, nil, nil)
		rt.RunID = runID
		return rt
	}
	markers := t.TempDir()
	src := PgEndpoint{Host: "src", Database: "engine", PgConnection: conn(srcPG)}
	dst := PgEndpoint{Host: "dst", Database: "engine", PgConnection: conn(dstPG)}
	verify := func(action string) *PgVerify {
		return &PgVerify{Action: action, Source: src, Target: dst, markerDir: markers}
	}
	repl := func(action string) *PgReplicate {
		return &PgReplicate{Action: action, Source: src, Target: dst, Name: "migrun_engine", poll: 20 * time.Millisecond, markerDir: markers,
			Publisher: PgReplicateConnect{Host: srcPG.SocketDir, Port: srcPG.Port, User: "postgres"}}
	}
	slots := func(t *testing.T) string {
		t.Helper()
		return srcPG.psql(t, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'migrun_verify_%'")
	}
	marker := func(t *testing.T) verifyMarker {
		t.Helper()
		data, err := os.ReadFile(verify("baseline").markerPath())
		if err != nil {
			t.Fatal(err)
		}
		var m verifyMarker
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("dry run changes nothing", func(t *testing.T) {
		dry := testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
		dry.DryRun, dry.RunID = true, "run-1"
		c, err := verify("baseline").Check(ctx, dry)
		if err != nil || c.Done || !strings.Contains(c.Reason, "checksum every table chunk by chunk") {
			t.Fatalf("check: %+v %v", c, err)
		}
		if _, err := verify("baseline").Apply(ctx, dry); !errors.Is(err, executors.ErrDryRun) {
			t.Fatalf("apply under dry run: %v", err)
		}
		if n := slots(t); n != "0" {
			t.Fatalf("dry run created %s slots", n)
		}
	})

	live := runtime("run-1")
	if _, err := repl("start").Apply(ctx, live); err != nil {
		t.Fatal(err)
	}

	t.Run("baseline, changes, cut-over, compare", func(t *testing.T) {
		o, err := verify("baseline").Apply(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("baseline: %s", o.Output)
		if !o.Changed || !strings.Contains(o.Output, "baseline of 4 tables") {
			t.Fatalf("outcome %+v", o)
		}
		if n := slots(t); n != "1" {
			t.Fatalf("%s verify slots after the baseline", n)
		}
		m := marker(t)
		byName := map[string]chunkedTable{}
		for _, tb := range m.Tables {
			byName[tb.Name] = tb
		}
		if a := byName["public.audit"]; a.Key != "id" || !a.chunked() || len(a.Source) < 3 {
			t.Fatalf("audit not chunked: key %q bounds %q, %d chunks", a.Key, a.Bounds, len(a.Source))
		}
		if h := byName["public.hist"]; h.Key != "audit_id" {
			t.Fatalf("hist's chunk key %q, want audit_id (identity FULL, an index)", h.Key)
		}
		if v := byName["public.vms"]; v.Key != "id" || !v.chunked() || len(v.Source) < 2 {
			t.Fatalf("vms not chunked by its uuid: key %q bounds %q, %d chunks", v.Key, v.Bounds, len(v.Source))
		}
		if e := byName["public.entities"]; e.Key != "" || e.chunked() {
			t.Fatalf("entities has no index, chunked by %q", e.Key)
		}
		if c, err := verify("baseline").Check(ctx, live); err != nil || !c.Done {
			t.Fatalf("check after the baseline: %+v %v", c, err)
		}
		// The application goes on writing: new rows, an update in the
		// middle of the big table, deletes in a table without a key.
		// More than the 64 KiB tail of output a command's Result keeps.
		srcPG.psql(t, `INSERT INTO audit (message) SELECT 'late ' || g || repeat('.', 100) FROM generate_series(1, 3000) g;
UPDATE audit SET message = 'changed' WHERE id = 60000;
DELETE FROM hist WHERE audit_id = 9;
UPDATE vms SET name = 'renamed' WHERE name = 'vm7';
SELECT nextval('ticket_seq');`, "engine")
		dry := testRuntime(hosts{"src": executors.ReadOnly(srcEx), "dst": executors.ReadOnly(dstEx)}, nil, nil)
		dry.DryRun, dry.RunID = true, live.RunID
		if _, err := applyShown(ctx, t, repl("finish"), dry, live); err != nil {
			t.Fatal(err)
		}
		c, err := verify("compare").Check(ctx, live)
		if err != nil || c.Done || !strings.Contains(c.Reason, "since this run's baseline") {
			t.Fatalf("compare check: %+v %v", c, err)
		}
		o, err = applyShown(ctx, t, verify("compare"), dry, live)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("compare: %s", o.Output)
		// audit, hist and vms changed; entities did not and is not read.
		if !strings.Contains(o.Output, "4 tables, 188,299 rows, 2 sequences") || !strings.Contains(o.Output, "3 tables read again") {
			t.Fatalf("compare: %s", o.Output)
		}
		if n := slots(t); n != "0" {
			t.Fatalf("the slot outlived the comparison: %s", n)
		}
		if c, err := verify("compare").Check(ctx, live); err != nil || !c.Done {
			t.Fatalf("check after compare: %+v %v", c, err)
		}
		if m := marker(t); m.State != verifyVerified {
			t.Fatalf("marker state %q", m.State)
		}
	})

	// The copy is now still and the source goes on alone: each case takes
	// a baseline of its own run, breaks the copy (before the baseline: a
	// chunk that differs then; after it: one the source changed since),
	// and the comparison must fail, naming the table; then it is mended
	// and the baseline cancelled.
	for i, tc := range []struct {
		name, before, after, mend, want string
		// baseline: in the baseline's output (a chunk that differs then
		// is summed again, cut finer, and differs still)
		baseline string
		onTarget bool // after runs on the target
		// drain: after (committed synchronously: a drain reads the WAL
		// on disk), then a drain: the change recorded in the marker, no
		// longer in the slot.
		drain bool
		// refresh: after the drain, a refresh and a drain after it; the
		// chunk the change touched no longer drained, its sub-chunk
		// differing instead.
		refresh bool
	}{
		{name: "a row missing on the target", before: "DELETE FROM audit WHERE id = 5",
			mend: "INSERT INTO audit SELECT * FROM audit_copy WHERE id = 5", want: "table public.audit: rows 123000 on the source, 122999 on the target",
			baseline: "1 chunk refreshed as "},
		{name: "an extra row on the target", before: "INSERT INTO vms (name) VALUES ('extra')",
			mend: "DELETE FROM vms WHERE name = 'extra'", want: "table public.vms: rows 50000 on the source, 50001 on the target",
			baseline: "1 chunk refreshed as "}, // by a uuid
		{name: "a changed row on the target", before: "UPDATE audit SET score = 0.5 WHERE id = 100000",
			mend: "UPDATE audit SET score = (SELECT score FROM audit_copy WHERE id = 100000) WHERE id = 100000",
			want: "table public.audit: rows 123000 on both, but the rows' contents differ (1 chunk)", baseline: "1 chunk refreshed as "},
		{name: "a wrong sequence value", before: "SELECT setval('ticket_seq', 5)",
			mend: "SELECT setval('ticket_seq', 78)", want: "sequence public.ticket_seq: last_value 78 on the source, 5 on the target"},
		{name: "a row the source changed since the baseline", after: "UPDATE audit SET message = 'moved on' WHERE id = 70000",
			mend: "UPDATE audit SET message = 'moved on' WHERE id = 70000", want: "table public.audit: rows 123000 on both, but the rows' contents differ (1 chunk)"},
		{name: "a row the source deleted since, without a key", after: "DELETE FROM hist WHERE audit_id = 17",
			mend: "DELETE FROM hist WHERE audit_id = 17", want: "table public.hist: rows 14998 on the source, 14999 on the target"},
		{name: "a row the source changed while the baseline was taken (drained)", after: "SET synchronous_commit = on; UPDATE audit SET message = 'drained' WHERE id = 71000",
			drain: true, mend: "UPDATE audit SET message = 'drained' WHERE id = 71000",
			want: "table public.audit: rows 123000 on both, but the rows' contents differ (1 chunk)"},
		{name: "a row the source changed while the baseline was taken (drained, refreshed)", after: "SET synchronous_commit = on; UPDATE audit SET message = 'refreshed' WHERE id = 72000",
			drain: true, refresh: true, mend: "UPDATE audit SET message = 'refreshed' WHERE id = 72000",
			want: "table public.audit: rows 123000 on both, but the rows' contents differ (1 chunk)"},
		{name: "a row deleted without a key while the baseline was taken (drained)", after: "SET synchronous_commit = on; DELETE FROM hist WHERE audit_id = 25",
			drain: true, mend: "DELETE FROM hist WHERE audit_id = 25", want: "table public.hist: rows 14997 on the source, 14998 on the target"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := runtime("run-break-" + string(rune('a'+i)))
			dstPG.psql(t, "DROP TABLE IF EXISTS audit_copy; CREATE UNLOGGED TABLE audit_copy AS SELECT * FROM audit", "engine")
			if tc.before != "" {
				dstPG.psql(t, tc.before, "engine")
			}
			o, err := verify("baseline").Apply(ctx, rt)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(o.Output, tc.baseline) || tc.baseline != "" && !strings.Contains(o.Output, "(1 differ)") {
				t.Fatalf("baseline: %s\nwant %q, (1 differ)", o.Output, tc.baseline)
			}
			if tc.after != "" {
				srcPG.psql(t, tc.after, "engine")
			}
			if tc.drain {
				m := marker(t)
				if err := verify("baseline").drainChanges(ctx, rt, srcEx, &m, nil); err != nil {
					t.Fatal(err)
				}
				if len(marker(t).Drained) == 0 {
					t.Fatal("the drain recorded nothing")
				}
				if n := srcPG.psql(t, "SELECT count(*) FROM pg_logical_slot_peek_changes((SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'migrun_verify_%'), NULL, NULL) WHERE data LIKE 'table %'", "engine"); n != "0" {
					t.Fatalf("%s changes left in the slot after the drain", n)
				}
			}
			if tc.refresh {
				m := marker(t)
				chunks := len(m.Tables[0].Source) + len(m.Tables[1].Source) + len(m.Tables[2].Source) + len(m.Tables[3].Source)
				st := baselineState{src: srcEx, dst: dstEx}
				fresh, out, err := verify("baseline").refreshHot(ctx, st, &m)
				if err != nil || fresh == nil || !strings.Contains(out, "1 chunk refreshed as ") || !strings.Contains(out, "(1 differ)") {
					t.Fatalf("refresh: %q %v", out, err)
				}
				if err := verify("baseline").drainChanges(ctx, rt, srcEx, &m, fresh); err != nil {
					t.Fatal(err)
				}
				m = marker(t)
				if len(m.Drained) != 0 {
					t.Fatalf("drained after the refresh: %+v", m.Drained)
				}
				if now := len(m.Tables[0].Source) + len(m.Tables[1].Source) + len(m.Tables[2].Source) + len(m.Tables[3].Source); now < chunks+10 {
					t.Fatalf("%d chunks after the refresh, %d before: not cut", now, chunks)
				}
			}
			_, err = verify("compare").Apply(ctx, rt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("compare: %v\nwant %q", err, tc.want)
			}
			if n := slots(t); n != "0" {
				t.Fatalf("a failed comparison left its slot: %s", n)
			}
			// Another run's baseline is not ours: it compares everything.
			if c, err := verify("compare").Check(ctx, runtime("someone-else")); err != nil || c.Done || strings.Contains(c.Reason, "baseline") {
				t.Fatalf("another run's check: %+v %v", c, err)
			}
			dstPG.psql(t, tc.mend+"; DROP TABLE audit_copy", "engine")
			// Without the slot the comparison reads every row.
			if o, err := verify("compare").Apply(ctx, rt); err != nil || strings.Contains(o.Output, "read again") {
				t.Fatalf("compare after mending: %+v %v", o, err)
			}
			if c, err := verify("compare").Check(ctx, rt); err != nil || !c.Done {
				t.Fatalf("check after mending: %+v %v", c, err)
			}
			if n := slots(t); n != "0" {
				t.Fatalf("slot left: %s", n)
			}
		})
	}

	// A drain after a refresh: a change the refresh's snapshot saw is in
	// its sums where it summed (not recorded), nowhere else (recorded).
	t.Run("a drain after a refresh counts what it saw outside its chunks only", func(t *testing.T) {
		rt := runtime("run-seen")
		if _, err := verify("baseline").Apply(ctx, rt); err != nil {
			t.Fatal(err)
		}
		srcPG.psql(t, "SET synchronous_commit = on; UPDATE audit SET message = 'seen in' WHERE id = 73000; UPDATE audit SET message = 'seen out' WHERE id = 10", "engine")
		m := marker(t)
		var audit *chunkedTable
		for i := range m.Tables {
			if m.Tables[i].Name == "public.audit" {
				audit = &m.Tables[i]
			}
		}
		chunkOf := func(id int) int {
			n, err := strconv.Atoi(srcPG.psql(t, fmt.Sprintf("SELECT width_bucket(%d::bigint, %s)", id, audit.boundsExpr()), "engine"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		in, out := chunkOf(73000), chunkOf(10)
		if in == out {
			t.Fatalf("ids 73000 and 10 in one chunk %d", in)
		}
		snap, err := pg.ParseSnapshot(srcPG.psql(t, "SELECT pg_current_snapshot()", "engine"))
		if err != nil {
			t.Fatal(err)
		}
		fresh := &refreshed{snap: snap, chunks: map[string]map[int]bool{"public.audit": {in: true}}}
		if err := verify("baseline").drainChanges(ctx, rt, srcEx, &m, fresh); err != nil {
			t.Fatal(err)
		}
		if d := marker(t).Drained["public.audit"]; d == nil || !slices.Equal(d.Chunks, []int{out}) {
			t.Fatalf("drained %+v, want chunk %d only (not %d)", d, out, in)
		}
		dstPG.psql(t, "UPDATE audit SET message = 'seen in' WHERE id = 73000; UPDATE audit SET message = 'seen out' WHERE id = 10", "engine")
		if _, err := verify("cancel").Apply(ctx, rt); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cancel drops the slot", func(t *testing.T) {
		rt := runtime("run-cancel")
		if _, err := verify("baseline").Apply(ctx, rt); err != nil {
			t.Fatal(err)
		}
		if c, err := verify("cancel").Check(ctx, rt); err != nil || c.Done {
			t.Fatalf("cancel check: %+v %v", c, err)
		}
		o, err := verify("cancel").Apply(ctx, rt)
		if err != nil {
			t.Fatal(err)
		}
		if n := slots(t); n != "0" {
			t.Fatalf("slot left: %s (%s); cancel said %q", n, srcPG.psql(t, "SELECT string_agg(slot_name || ' ' || active, ', ') FROM pg_replication_slots"), o.Output)
		}
		if c, err := verify("cancel").Check(ctx, rt); err != nil || !c.Done {
			t.Fatalf("cancel check after: %+v %v", c, err)
		}
		// Without the slot the comparison reads everything, and passes.
		if o, err := verify("compare").Apply(ctx, rt); err != nil || strings.Contains(o.Output, "read again") {
			t.Fatalf("compare without a slot: %+v %v", o, err)
		}
	})
}
