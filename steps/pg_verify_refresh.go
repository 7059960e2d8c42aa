package steps

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_verify's baseline, last: a refresh of the chunks the downtime would
// read again for what happened while the baseline was taken, the drained
// ones and those that differed (the target is summed seconds after the
// source, after applying more). They are summed once more, on both sides,
// from a new snapshot, cut finer: at 4 GB on the faithful stand-in those
// were 5,000-row chunks whose rows lie all over a large table (the newest
// rows of event_notification_hist the notifier deletes, the few tasks of
// async_tasks_entities the engine rewrites every tick), read in the
// downtime at 20-40 ms each a side where the same chunk of a 256 MB
// database costs a few. Cut into sub-chunks of about 100 rows, a chunk
// that stopped changing now matches and is not read again, and one the
// clients keep changing costs the downtime its touched sub-chunks only.
//
// The refresh's own sums are as the baseline's: the source's in one
// snapshot, whose WAL position the target's subscription then passes, the
// target's after. What the slot decodes of transactions that snapshot saw
// is in the refreshed sums, so the drain after it (pg_verify_drain.go)
// counts those changes only in chunks the refresh did not sum.

const (
	subChunkRows    = 100  // rows a sub-chunk of a refreshed chunk aims at
	maxRefreshSplit = 2000 // sub-chunks a refresh adds at most: bounds the marker's growth
)

// refreshed is what a refresh summed: its snapshot on the source and, by
// table, the chunks it covers (numbered in the table's new bounds).
type refreshed struct {
	snap   pg.Snapshot
	chunks map[string]map[int]bool
}

// hotChunks are the chunks of t the downtime would read again for what
// happened while the baseline was taken, in order; none when the table
// is read whole anyway. The NULL-key chunk is not among them: it has no
// range to cut.
func hotChunks(t *chunkedTable, d *drainedTable) []int {
	if !t.chunked() || d != nil && d.Whole {
		return nil
	}
	hot := t.differing()
	if d != nil {
		hot = append(hot, d.Chunks...)
	}
	hot = slices.DeleteFunc(hot, func(c int) bool { return c < 0 })
	slices.Sort(hot)
	return slices.Compact(hot)
}

// chunkRange is the condition on t's key of chunk c of bounds (as
// width_bucket numbers them: 0 below the first bound, len(bounds) from
// the last one on).
func (t *chunkedTable) chunkRange(bounds []string, c int) string {
	var conds []string
	if c > 0 {
		conds = append(conds, fmt.Sprintf("x.%s >= %s::%s", t.Key, pg.Literal(bounds[c-1]), t.Type))
	}
	if c < len(bounds) {
		conds = append(conds, fmt.Sprintf("x.%s < %s::%s", t.Key, pg.Literal(bounds[c]), t.Type))
	}
	if len(conds) == 0 {
		conds = append(conds, "x."+t.Key+" IS NOT NULL")
	}
	return strings.Join(conds, " AND ")
}

// subBoundsSQL cuts chunk c of t every step rows ('k' row: name, chunk,
// the new bounds inside it, an array), never at its lowest key
// (first_value: uuid has no min() before PostgreSQL 16).
func (t *chunkedTable) subBoundsSQL(bounds []string, c int, step int64) string {
	return fmt.Sprintf("SELECT 'k', %s, %d, array(SELECT DISTINCT k FROM (SELECT x.%s AS k, row_number() OVER w AS rn, first_value(x.%s) OVER w AS lo FROM ONLY %s x WHERE %s WINDOW w AS (ORDER BY x.%s)) s WHERE rn %% %d = 1 AND k > lo ORDER BY k)::text;\n",
		pg.Literal(t.Name), c, t.Key, t.Key, t.Name, t.chunkRange(bounds, c), t.Key, step)
}

// rangeSumSQL sums, in t's bounds, the rows of chunk c of the old bounds
// ('h' rows, as sumSQL's).
func (t *chunkedTable) rangeSumSQL(old []string, c int) string {
	return fmt.Sprintf("SELECT 'h', %s, width_bucket(x.%s, %s), count(*), coalesce(sum(%s), 0) FROM ONLY %s x WHERE %s GROUP BY 3;\n",
		pg.Literal(t.Name), t.Key, t.boundsExpr(), rowHashSQL, t.Name, t.chunkRange(old, c))
}

// chunkSplit is one table's refresh: its hot chunks, cut at the sub-bounds
// the source gave.
type chunkSplit struct {
	table  *chunkedTable // the marker's
	bounds []string      // its bounds before
	hot    []int
	subs   map[int][]string // hot chunk -> the bounds inside it
}

// moved is where chunk c of the old bounds starts in the new ones.
func (s *chunkSplit) moved(c int) int {
	if c < 0 {
		return c
	}
	n := c
	for _, h := range s.hot {
		if h < c {
			n += len(s.subs[h])
		}
	}
	return n
}

// newBounds are the old bounds with each hot chunk's sub-bounds in place.
func (s *chunkSplit) newBounds() []string {
	var out []string
	for i := 0; i <= len(s.bounds); i++ {
		out = append(out, s.subs[i]...) // inside chunk i, below bounds[i]
		if i < len(s.bounds) {
			out = append(out, s.bounds[i])
		}
	}
	return out
}

// covered are the new chunks the hot ones became.
func (s *chunkSplit) covered() map[int]bool {
	out := map[int]bool{}
	for _, h := range s.hot {
		for i := range len(s.subs[h]) + 1 {
			out[s.moved(h)+i] = true
		}
	}
	return out
}

// bounded is the table with the new bounds, its sums as they were.
func (s *chunkSplit) bounded() chunkedTable {
	t := *s.table
	t.Bounds = pg.ArrayLiteral(s.newBounds())
	return t
}

// apply gives the table in the new bounds: the chunks not refreshed
// renumbered, the refreshed ones from src and dst.
func (s *chunkSplit) apply(src, dst chunkSums) chunkedTable {
	t := s.bounded()
	hot := map[int]bool{}
	for _, h := range s.hot {
		hot[h] = true
	}
	renumber := func(old, fresh chunkSums) chunkSums {
		out := chunkSums{}
		for c, sum := range old {
			if !hot[c] {
				out[s.moved(c)] = sum
			}
		}
		maps.Copy(out, fresh)
		return out
	}
	t.Source, t.Target = renumber(s.table.Source, src), renumber(s.table.Target, dst)
	return t
}

// refreshHot refreshes m's hot chunks (see above) and, when it has, sets
// m's tables and drained chunks to the result. Its error leaves m as it
// was: the downtime then reads those chunks whole.
func (v *PgVerify) refreshHot(ctx context.Context, st baselineState, m *verifyMarker) (*refreshed, string, error) {
	var splits []*chunkSplit
	hotTotal := 0
	for i := range m.Tables {
		t := &m.Tables[i]
		hot := hotChunks(t, m.Drained[t.Name])
		if len(hot) == 0 {
			continue
		}
		bounds, err := pg.ParseArray(t.Bounds)
		if err != nil {
			return nil, "", fmt.Errorf("table %s: %w", t.Name, err)
		}
		splits = append(splits, &chunkSplit{table: t, bounds: bounds, hot: hot, subs: map[int][]string{}})
		hotTotal += len(hot)
	}
	if hotTotal == 0 {
		return nil, "", nil
	}
	perChunk := max(int64(maxRefreshSplit/hotTotal), 1)

	srcT := v.Source.target(v.Source.Database)
	s := pg.OpenSession(ctx, st.src, srcT, true)
	defer s.Close()
	var q strings.Builder
	q.WriteString(readSnapshotSQL + sourcePositionSQL)
	for _, sp := range splits {
		for _, c := range sp.hot {
			step := max(int64(subChunkRows), (sp.table.Source[c].Rows+perChunk-1)/perChunk)
			q.WriteString(sp.table.subBoundsSQL(sp.bounds, c, step))
		}
	}
	rows, err := s.Run(ctx, q.String())
	if err != nil {
		return nil, "", fmt.Errorf("source %s: %w", v.Source.Database, err)
	}
	pos, err := chunkResultOf(rows, v.Source) // the 'l' row; the 'k' rows are its rows
	if err != nil {
		return nil, "", err
	}
	byName := map[string]*chunkSplit{}
	for _, sp := range splits {
		byName[sp.table.Name] = sp
	}
	for _, r := range pos.rows {
		switch {
		case len(r) == 4 && r[0] == "k" && byName[r[1]] != nil:
			c, err := strconv.Atoi(r[2])
			if err != nil {
				return nil, "", fmt.Errorf("source %s: unexpected chunk %q", v.Source.Database, r[2])
			}
			if byName[r[1]].subs[c], err = pg.ParseArray(r[3]); err != nil {
				return nil, "", fmt.Errorf("source %s: table %s: %w", v.Source.Database, r[1], err)
			}
		default:
			return nil, "", fmt.Errorf("source %s: unexpected psql output %q", v.Source.Database, strings.Join(r, " "))
		}
	}
	lsn := pos.lsn
	snap, err := pg.ParseSnapshot(pos.snap)
	if err != nil || lsn == "" {
		return nil, "", fmt.Errorf("source %s: no snapshot in %q (%v)", v.Source.Database, rows, err)
	}

	// The same sums on both sides, in the new bounds.
	var sums strings.Builder
	for _, sp := range splits {
		t := sp.bounded()
		for _, c := range sp.hot {
			sums.WriteString(t.rangeSumSQL(sp.bounds, c))
		}
	}
	rows, err = s.Run(ctx, sums.String()+"COMMIT;\n")
	if err != nil {
		return nil, "", fmt.Errorf("source %s: %w", v.Source.Database, err)
	}
	src, err := chunkResultOf(rows, v.Source)
	if err != nil {
		return nil, "", err
	}
	if err := v.waitApplied(ctx, st, lsn); err != nil {
		return nil, "", err
	}
	rows, err = pg.Probe(ctx, st.dst, v.Target.target(v.Target.Database),
		readSnapshotSQL+sums.String()+"COMMIT;\n", "checksums change while the database is in use")
	if err != nil {
		return nil, "", fmt.Errorf("target %s: %w", v.Target.Database, err)
	}
	dst, err := chunkResultOf(rows, v.Target)
	if err != nil {
		return nil, "", err
	}

	fresh := &refreshed{snap: snap, chunks: map[string]map[int]bool{}}
	before, after := 0, 0
	for _, sp := range splits {
		name := sp.table.Name
		nt := sp.apply(src.chunks[name], dst.chunks[name])
		covered := sp.covered()
		fresh.chunks[name] = covered
		before += len(sp.hot)
		after += len(covered)
		if d := m.Drained[name]; d != nil {
			d.Chunks = slices.DeleteFunc(d.Chunks, func(c int) bool { return c >= 0 }) // every one refreshed
			if len(d.Chunks) == 0 {
				delete(m.Drained, name)
			}
		}
		*sp.table = nt
	}
	differ := 0
	for _, sp := range splits {
		differ += len(sp.table.differing())
	}
	return fresh, fmt.Sprintf("%s refreshed as %d (%d differ)", hostcmd.Plural(before, "chunk", "chunks"), after, differ), nil
}
