package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_verify's state: the baseline's marker on the source host, tied to
// this run and both databases' identities, the slot beside it, and the
// one reading of both that every action starts from.

// Marker states.
const (
	verifyBaselined = "baseline" // chunks summed, slot following the source
	verifyVerified  = "verified" // compared in the downtime, slot dropped
	verifyCancelled = "cancelled"
)

// verifyMarker is the baseline, kept on the source host beside the slot
// it goes with. It is this run's and these two databases' only: a marker
// of another run, or of a server or database re-created since, is ignored.
type verifyMarker struct {
	State          string `json:"state"`
	RunID          string `json:"run_id"`
	Source         string `json:"source"`
	Target         string `json:"target"`
	SourceSystemID string `json:"source_system_identifier"`
	SourceOID      int64  `json:"source_database_oid"`
	TargetSystemID string `json:"target_system_identifier"`
	TargetOID      int64  `json:"target_database_oid"`
	Slot           string `json:"slot"`
	LSN            string `json:"lsn"` // the source snapshot's WAL position
	// Snapshot is the source's snapshot (pg_current_snapshot()): the slot,
	// created before it, decodes transactions it saw, whose changes the
	// sums hold already; they touch no chunk.
	Snapshot string         `json:"snapshot,omitempty"`
	Time     time.Time      `json:"time"`
	Tables   []chunkedTable `json:"tables"`
	// Drained are the chunks changed while the baseline was taken, decoded
	// at its end (pg_verify_drain.go), by table.
	Drained map[string]*drainedTable `json:"drained,omitempty"`
}

// verifyIDs are the identities of the two databases now.
type verifyIDs struct{ source, target pg.DatabaseID }

func (m *verifyMarker) ours(v *PgVerify, ids verifyIDs, runID string) bool {
	return m != nil && runID != "" && m.RunID == runID && m.Source == pgSourceID(v.Source) && m.Target == pgSourceID(v.Target) &&
		m.SourceSystemID == ids.source.SystemID && m.SourceOID == ids.source.OID &&
		m.TargetSystemID == ids.target.SystemID && m.TargetOID == ids.target.OID
}

// markerPath is on the source host, one per source cluster and database.
func (v *PgVerify) markerPath() string { return targetMarkerPath(v.markerDir, "pg_verify", v.Source) }

// slotName is this run's slot for this pair of databases: a slot of
// another run (or another pair) is never taken for ours.
func (v *PgVerify) slotName(runID string) string {
	h := sha256.Sum256([]byte(runID + "\x00" + pgSourceID(v.Source) + "\x00" + pgSourceID(v.Target)))
	return "migrun_verify_" + hex.EncodeToString(h[:6])
}

// baselineState is what the hosts hold of this run's baseline.
type baselineState struct {
	ids      verifyIDs
	marker   *verifyMarker // this run's, nil: none
	slot     bool          // this run's slot exists on the source
	walLevel string        // the source's
	changes  [][]string    // the source's tables and the slot's changes, when asked for
	src, dst executors.Executor
	// With readChanges and this run's baseline: one psql session on each
	// database, for the reading and the comparison after it (in the
	// downtime, each psql started costs 100 ms and more). nil otherwise,
	// or when the target's could not connect.
	srcSQL, dstSQL *pg.Session
}

// closeSessions ends the sessions readBaseline opened.
func (st *baselineState) closeSessions() {
	for _, s := range []*pg.Session{st.srcSQL, st.dstSQL} {
		if s != nil {
			s.Close()
		}
	}
	st.srcSQL, st.dstSQL = nil, nil
}

// What readBaseline reads.
type baselineRead int

const (
	readAll      baselineRead = iota // identities, marker, slot (baseline, cancel)
	readForCheck                     // as readAll, nothing past a marker that is not this run's
	readChanges                      // as readForCheck, with the changes since this run's baseline
)

// readBaseline reads both databases' identities, the source's marker and
// slot. A database that does not exist yet has OID 0: no marker is ours.
// For a comparison, a marker of another run or none ends the reading
// there (nothing to compare from), and with a baseline of this run
// readChanges has the same psql also read the source's tables and the
// slot's changes since (rows 'c' and 'd' in st.changes): in the downtime
// every round trip counts.
func (v *PgVerify) readBaseline(ctx context.Context, rt *Runtime, what baselineRead) (baselineState, error) {
	var st baselineState
	src, dst, errS, errD := hostcmd.AtOnce(
		func() (executors.Executor, error) { return rt.Executor(ctx, v.Source.Host) },
		func() (executors.Executor, error) { return rt.Executor(ctx, v.Target.Host) })
	if err := errors.Join(errS, errD); err != nil {
		return st, err
	}
	st.src, st.dst = src, dst
	marker, err := readVerifyMarker(ctx, src, v.markerPath())
	if err != nil {
		return st, fmt.Errorf("%s: %w", src.Name(), err)
	}
	thisRun := marker != nil && marker.RunID == rt.RunID && rt.RunID != ""
	if what != readAll && !thisRun {
		return st, nil
	}
	changes := what == readChanges && marker.State == verifyBaselined
	type sourceSide struct {
		id       pg.DatabaseID
		slot     bool
		walLevel string
		rows     [][]string
	}
	s, d, errS, errD := hostcmd.AtOnce(
		func() (sourceSide, error) {
			var s sourceSide
			var rows [][]string
			var err error
			if changes {
				// In the slot's database: a slot is decoded where it was made.
				st.srcSQL = rt.session(ctx, src, v.Source.target(v.Source.Database), true)
				rows, err = st.srcSQL.Run(ctx, "BEGIN;\n"+verifySessionSQL+v.identitySQL(rt.RunID)+catalogSQL()+v.peekSQL(rt.RunID)+"COMMIT;\n")
			} else {
				rows, err = pg.Probe(ctx, src, v.Source.target("postgres"), v.identitySQL(rt.RunID), "changes since the baseline")
			}
			if err != nil {
				return s, err
			}
			if len(rows) == 0 || len(rows[0]) != 5 || rows[0][0] != "i" {
				return s, fmt.Errorf("%s: unexpected psql output %q", src.Name(), rows)
			}
			i := rows[0]
			if s.id.OID, err = strconv.ParseInt(i[1], 10, 64); err != nil {
				return s, fmt.Errorf("%s: unexpected database oid %q", src.Name(), i[1])
			}
			s.id.SystemID, s.walLevel, s.slot, s.rows = i[2], i[3], i[4] != "0", rows[1:]
			return s, nil
		},
		func() (pg.DatabaseID, error) {
			if changes {
				st.dstSQL = rt.session(ctx, dst, v.Target.target(v.Target.Database), true)
			}
			if st.dstSQL != nil {
				if id, err := st.dstSQL.Identity(ctx); err == nil {
					return id, nil
				}
				// No such database, most likely: the long way says.
				st.dstSQL.Close()
				st.dstSQL = nil
			}
			return pg.DatabaseIdentity(ctx, dst, v.Target.PgConnection.target("postgres"), v.Target.Database)
		})
	if errS != nil {
		return st, fmt.Errorf("source %s on %s: %w", v.Source.Database, v.Source.Host, errS)
	}
	if errD != nil {
		return st, fmt.Errorf("target %s on %s: %w", v.Target.Database, v.Target.Host, errD)
	}
	st.ids = verifyIDs{source: s.id, target: d}
	st.slot, st.walLevel = s.slot, s.walLevel
	if marker.ours(v, st.ids, rt.RunID) && s.id.OID != 0 && d.OID != 0 {
		st.marker, st.changes = marker, s.rows
	}
	return st, nil
}

// identitySQL reads the source database's OID (0: none), the server's
// system identifier, its wal_level and whether this run's slot exists:
// one 'i' row.
func (v *PgVerify) identitySQL(runID string) string {
	return "SELECT 'i', coalesce((SELECT oid FROM pg_database WHERE datname = " + pg.Literal(v.Source.Database) + "), 0), " +
		"system_identifier, current_setting('wal_level'), " +
		"(SELECT count(*) FROM pg_replication_slots WHERE slot_name = " + pg.Literal(v.slotName(runID)) + ") FROM pg_control_system();\n"
}

// peekSQL reads the changes this run's slot decoded ('d' rows), where the
// slot exists; newlines and the field separator in values become spaces
// (the parser needs the key values only, never text with those in it).
func (v *PgVerify) peekSQL(runID string) string {
	// format's own %: the query's, doubled; the slot's name, %L.
	q := strings.ReplaceAll(slotChangesSQL("\x00", "NULL"), "%", "%%")
	return "SELECT format(" + strings.Replace(pg.Literal(q), "\x00", "%L", 1) + ", slot_name)\nFROM pg_replication_slots WHERE slot_name = " +
		pg.Literal(v.slotName(runID)) + "\n\\gexec\n"
}

// slotChangesSQL selects slot's decoded changes up to upto (both SQL
// expressions; upto NULL: all) as 'd' rows: transaction id, change.
func slotChangesSQL(slot, upto string) string {
	return "SELECT 'd', xid, translate(data, E'\\n\\x1f', '  ') FROM pg_logical_slot_peek_changes(" + slot + ", " + upto +
		", NULL, 'include-xids', '0', 'skip-empty-xacts', '1') WHERE data LIKE 'table %'"
}

// slotChanges sorts the changes of slotChangesSQL's 'd' rows (other rows
// are not its) by their transaction: those the baseline's snapshot saw
// are dropped, the sums hold them (the slot was made before the snapshot,
// so it decodes some of those); of the rest, those a later snapshot
// (refresh's: see pg_verify_refresh.go; the zero Snapshot sees none) saw
// go to seen, the others to lines.
func slotChanges(rows [][]string, baseline, refresh pg.Snapshot) (lines, seen []string, err error) {
	for _, r := range rows {
		if len(r) == 0 || r[0] != "d" {
			continue
		}
		if len(r) != 3 {
			return nil, nil, fmt.Errorf("unexpected decoded change %q", strings.Join(r, " "))
		}
		xid, err := strconv.ParseUint(r[1], 10, 32)
		if err != nil {
			return nil, nil, fmt.Errorf("decoded change of transaction %q: not a transaction id", r[1])
		}
		switch {
		case baseline.Sees(uint32(xid)):
		case refresh.Sees(uint32(xid)):
			seen = append(seen, r[2])
		default:
			lines = append(lines, r[2])
		}
	}
	return lines, seen, nil
}

// runMarker is the source's marker if this run wrote it, unconfirmed: the
// databases may have been re-created since (readBaseline confirms).
func (v *PgVerify) runMarker(ctx context.Context, rt *Runtime) (*verifyMarker, error) {
	src, err := rt.Executor(ctx, v.Source.Host)
	if err != nil {
		return nil, err
	}
	m, err := readVerifyMarker(ctx, src, v.markerPath())
	if err != nil || m == nil || rt.RunID == "" || m.RunID != rt.RunID {
		return nil, err
	}
	return m, nil
}

func readVerifyMarker(ctx context.Context, ex executors.Executor, p string) (*verifyMarker, error) {
	data, err := ex.ReadFile(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var m verifyMarker
	if json.Unmarshal(data, &m) != nil {
		return nil, nil // a torn or foreign file proves nothing
	}
	return &m, nil
}

func (v *PgVerify) writeMarker(ctx context.Context, ex executors.Executor, m *verifyMarker) error {
	m.Time = time.Now().UTC().Truncate(time.Second)
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return ex.WriteFile(ctx, v.markerPath(), append(data, '\n'), executors.FileAttrs{Mode: 0o644})
}

// dropSlotSQL drops this run's slot if it is there.
func (v *PgVerify) dropSlotSQL(runID string) string {
	return "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = " + pg.Literal(v.slotName(runID)) + ";\n"
}
