package steps

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_verify's baseline ends by draining its slot: what the applications
// changed while the chunks were summed (46 s at 4 GB on the faithful
// stand-in) is decoded then, while they still run, rather than in the
// downtime, where decoding it cost about 0.1 s more at 4 GB than at
// 256 MB. The chunks those changes touched are recorded in the marker,
// then the slot is advanced past them: the comparison in the downtime
// decodes only what was written after the baseline, and reads again the
// recorded chunks as it does those it decodes itself.
//
// Nothing is lost between the two: the changes are read up to a WAL
// position on disk (transactions committed before it), the marker
// written, and only then the slot advanced to that position. A run stopped in
// between decodes the same changes again, which records the same chunks.

// drainedTable is what the drained changes touched in one table.
type drainedTable struct {
	Whole  bool  `json:"whole,omitempty"`  // a change whose chunk is unknown: the table is read whole
	Chunks []int `json:"chunks,omitempty"` // the chunks (nullKeyChunk for a NULL key), sorted
}

// drainPeekSQL reads the slot's changes up to the WAL flush position now
// ('u' row: that position; 'd' rows: the changes). The flush position,
// not the insert position: decoding reads only WAL on disk, and a
// transaction committed asynchronously may not be there yet; read up to
// the insert position, it would be missed now and then skipped by the
// slot's advance once the WAL writer has flushed it (found by the test of
// a change drained, on a server with synchronous_commit = off).
func (v *PgVerify) drainPeekSQL(runID string) string {
	return "SELECT pg_current_wal_flush_lsn() AS migrun_upto \\gset\nSELECT 'u', :'migrun_upto';\n" +
		slotChangesSQL(pg.Literal(v.slotName(runID)), ":'migrun_upto'") + ";\n"
}

// drainChunksSQL finds the chunks of the key values each table's changes
// touched ('w' rows: tag, name, chunk), in the source's own ordering of
// the key's type.
func drainChunksSQL(tag string, tables []chunkedTable, changes map[string]*tableChanges) string {
	var b strings.Builder
	for i := range tables {
		t := &tables[i]
		ch := changes[t.Name]
		if ch == nil || ch.whole || len(ch.values) == 0 || !t.chunked() {
			continue
		}
		lits := make([]string, len(ch.values))
		for j, val := range ch.values {
			lits[j] = pg.Literal(val)
		}
		fmt.Fprintf(&b, "SELECT DISTINCT 'w', %s, %s, coalesce(width_bucket(v, %s), %d) FROM unnest(ARRAY[%s]::%s[]) v;\n",
			pg.Literal(tag), pg.Literal(t.Name), t.boundsExpr(), nullKeyChunk, strings.Join(lits, ","), t.Type)
	}
	return b.String()
}

// drainChanges moves the changes the slot decoded so far into m (see
// above) and writes it. After a refresh (fresh not nil), the changes its
// snapshot saw are in its sums: they count only in chunks it did not sum.
func (v *PgVerify) drainChanges(ctx context.Context, rt *Runtime, src executors.Executor, m *verifyMarker, fresh *refreshed) error {
	s := pg.OpenSession(ctx, src, v.Source.target(v.Source.Database), false)
	defer s.Close()
	rows, err := s.Run(ctx, v.drainPeekSQL(rt.RunID))
	if err != nil {
		return fmt.Errorf("source %s: slot %s: %w", v.Source.Database, m.Slot, err)
	}
	var upto string
	for _, r := range rows {
		if len(r) == 2 && r[0] == "u" {
			upto = r[1]
		}
	}
	if upto == "" {
		return fmt.Errorf("source %s: no WAL position in %q", v.Source.Database, rows)
	}
	baseline, err := pg.ParseSnapshot(m.Snapshot)
	if err != nil {
		return fmt.Errorf("marker %s: %w", v.markerPath(), err)
	}
	var refresh pg.Snapshot
	if fresh != nil {
		refresh = fresh.snap
	}
	lines, seenLines, err := slotChanges(rows, baseline, refresh)
	if err != nil {
		return fmt.Errorf("source %s: slot %s: %w", v.Source.Database, m.Slot, err)
	}
	base := map[string]*chunkedTable{}
	for i := range m.Tables {
		base[m.Tables[i].Name] = &m.Tables[i]
	}
	keyOf := func(table string) (string, bool) {
		if t := base[table]; t != nil && t.chunked() {
			return t.Key, true
		}
		return "", false
	}
	changes, err := decodedChanges(lines, keyOf)
	if err != nil {
		return fmt.Errorf("source %s: slot %s: %w", v.Source.Database, m.Slot, err)
	}
	seen, err := decodedChanges(seenLines, keyOf)
	if err != nil {
		return fmt.Errorf("source %s: slot %s: %w", v.Source.Database, m.Slot, err)
	}
	chunks := map[string][]int{}
	if sql := drainChunksSQL("w", m.Tables, changes) + drainChunksSQL("v", m.Tables, seen); sql != "" {
		rows, err := s.Run(ctx, sql)
		if err != nil {
			return fmt.Errorf("source %s: chunks of the changed keys: %w", v.Source.Database, err)
		}
		for _, r := range rows {
			if len(r) != 4 || r[0] != "w" {
				return fmt.Errorf("source %s: unexpected psql output %q", v.Source.Database, strings.Join(r, " "))
			}
			n, err := strconv.Atoi(r[3])
			if err != nil {
				return fmt.Errorf("source %s: unexpected chunk %q", v.Source.Database, r[3])
			}
			if r[1] == "v" && fresh != nil && fresh.chunks[r[2]][n] {
				continue // summed by the refresh after this change
			}
			chunks[r[2]] = append(chunks[r[2]], n)
		}
	}
	for _, set := range []map[string]*tableChanges{changes, seen} {
		for name, ch := range set {
			d := drainedTable{Whole: ch.whole || base[name] == nil, Chunks: chunks[name]}
			if ch.null {
				d.Chunks = append(d.Chunks, nullKeyChunk) // never refreshed
			}
			m.drained(name, d)
		}
	}
	// Recorded before the slot moves past them.
	if err := v.writeMarker(ctx, src, m); err != nil {
		return fmt.Errorf("%s: %w", src.Name(), err)
	}
	if _, err := s.Run(ctx, "SELECT 1 FROM pg_replication_slot_advance("+pg.Literal(m.Slot)+", "+pg.Literal(upto)+"::pg_lsn);\n"); err != nil {
		return fmt.Errorf("source %s: advance slot %s: %w", v.Source.Database, m.Slot, err)
	}
	return nil
}

// drained adds d to what m records drained of table name.
func (m *verifyMarker) drained(name string, d drainedTable) {
	if !d.Whole && len(d.Chunks) == 0 {
		return
	}
	if m.Drained == nil {
		m.Drained = map[string]*drainedTable{}
	}
	was := m.Drained[name]
	if was == nil {
		was = &drainedTable{}
		m.Drained[name] = was
	}
	was.Whole = was.Whole || d.Whole
	was.Chunks = append(was.Chunks, d.Chunks...)
	slices.Sort(was.Chunks)
	was.Chunks = slices.Compact(was.Chunks)
}

// withDrained adds to changes, decoded in the downtime, the chunks the
// baseline drained.
func withDrained(changes map[string]*tableChanges, drained map[string]*drainedTable) {
	for name, d := range drained {
		ch := changes[name]
		if ch == nil {
			ch = &tableChanges{}
			changes[name] = ch
		}
		ch.whole = ch.whole || d.Whole
		ch.chunks = append(ch.chunks, d.Chunks...)
	}
}

// drainedSummary says what the drain recorded.
func drainedSummary(drained map[string]*drainedTable) string {
	whole, chunks := 0, 0
	for _, d := range drained {
		if d.Whole {
			whole++
		} else {
			chunks += len(d.Chunks)
		}
	}
	return fmt.Sprintf("%s whole, %s", hostcmd.Plural(whole, "table", "tables"), hostcmd.Plural(chunks, "chunk", "chunks"))
}
