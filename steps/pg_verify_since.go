package steps

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_verify's comparison in the downtime when this run took a baseline
// (see pg_verify_baseline.go): only the chunks changed since, or differing
// then, are read again.

// recheck is what the downtime reads again of one source table.
type recheck struct {
	table *chunkedTable // the baseline's, or the table as it is now when the baseline has not got it
	all   bool          // every chunk (the sums replace the baseline's)
	sql   string        // "" : nothing (the baseline's sums stand)
}

// planRecheck decides, from the changes decoded since the baseline, what
// to read again of the table now on the source, now. base is the
// baseline's table of that name, nil if none.
func planRecheck(now chunkedTable, base *chunkedTable, ch *tableChanges) recheck {
	switch {
	case base == nil || base.Shape != now.Shape:
		// New since the baseline, or its columns changed: read it whole.
		now.Bounds = ""
		return recheck{table: &now, all: true, sql: now.sumSQL()}
	case !base.chunked():
		if ch != nil || len(base.differing()) > 0 {
			return recheck{table: base, all: true, sql: base.sumSQL()}
		}
	case ch != nil && ch.whole:
		return recheck{table: base, all: true, sql: base.sumSQL()}
	default:
		dirty := base.differing()
		if ch != nil || len(dirty) > 0 {
			var values []string
			var null bool
			if ch != nil {
				values, null, dirty = ch.values, ch.null, append(dirty, ch.chunks...)
			}
			return recheck{table: base, sql: base.resumSQL(values, null, dirty)}
		}
	}
	return recheck{table: base}
}

// guarded runs a summing query through \gexec only where the table
// exists: on a side that lacks it, the comparison reports the table
// missing rather than failing on it. resumSQL's generator guards itself.
func guarded(name, sql string) string {
	if strings.HasSuffix(sql, "\\gexec\n") {
		return sql
	}
	sql = strings.TrimSuffix(strings.TrimSuffix(sql, "\n"), ";")
	return "SELECT " + pg.Literal(sql) + " WHERE to_regclass(" + pg.Literal(name) + ") IS NOT NULL\n\\gexec\n"
}

// Prepare opens the comparison's two sessions while the step before it
// runs (Preparer); a comparison without a baseline of this run leaves
// them unused.
func (v *PgVerify) Prepare(ctx context.Context, rt *Runtime) {
	if v.Action != "baseline" && v.Action != "cancel" && v.tables() {
		rt.warmSession(ctx, v.Source, true)
		rt.warmSession(ctx, v.Target, true)
	}
}

// compareSince compares the databases in the downtime, from this run's
// baseline st.marker; read says what was read again, table by table.
func (v *PgVerify) compareSince(ctx context.Context, rt *Runtime, st baselineState) (c comparison, read []string, err error) {
	m := st.marker
	c = comparison{source: v.Source.Database + " on " + v.Source.Host, target: v.Target.Database + " on " + v.Target.Host,
		tablesOn: true, seqOn: v.sequences(), extsOn: v.extensions()}
	// The source's tables now and the slot's changes, read with the
	// identities (readBaseline). Peeking keeps the changes.
	rows := st.changes
	now, err := parseCatalog(rows)
	if err != nil {
		return c, nil, fmt.Errorf("source %s: %w", v.Source.Database, err)
	}
	base := map[string]*chunkedTable{}
	for i := range m.Tables {
		base[m.Tables[i].Name] = &m.Tables[i]
	}
	snap, err := pg.ParseSnapshot(m.Snapshot)
	if err != nil {
		return c, nil, fmt.Errorf("marker %s: %w", v.markerPath(), err)
	}
	lines, _, err := slotChanges(rows, snap, pg.Snapshot{})
	if err != nil {
		return c, nil, fmt.Errorf("source %s: slot %s: %w", v.Source.Database, m.Slot, err)
	}
	changes, err := decodedChanges(lines, func(table string) (string, bool) {
		if t := base[table]; t != nil && t.chunked() {
			return t.Key, true
		}
		return "", false
	})
	if err != nil {
		return c, nil, fmt.Errorf("source %s: slot %s: %w", v.Source.Database, m.Slot, err)
	}
	withDrained(changes, m.Drained)

	var script strings.Builder
	script.WriteString(readSnapshotSQL)
	checks := make([]recheck, len(now))
	queries := 0
	for i, t := range now {
		checks[i] = planRecheck(t, base[t.Name], changes[t.Name])
		if checks[i].sql != "" {
			queries++
			script.WriteString(guarded(t.Name, checks[i].sql))
		}
	}
	script.WriteString(catalogSQL())
	if v.sequences() {
		script.WriteString(sequencesSQL)
	}
	if v.extensions() {
		script.WriteString(extensionsSQL)
	}
	script.WriteString("COMMIT;\n")
	// The slot goes with the source's reading, whatever the outcome: it
	// would keep the source's WAL, and a comparison run again (after the
	// target is mended) without it reads every row.
	sum := func(ex executors.Executor, s *pg.Session, ep PgEndpoint, script string) (chunkResult, error) {
		if s != nil {
			return v.sumChunksIn(ctx, rt, s, ep, script, queries)
		}
		return v.sumChunks(ctx, rt, ex, ep, script, queries)
	}
	src, dst, errS, errD := hostcmd.AtOnce(
		func() (chunkResult, error) {
			return sum(st.src, st.srcSQL, v.Source, script.String()+v.dropSlotSQL(rt.RunID))
		},
		func() (chunkResult, error) { return sum(st.dst, st.dstSQL, v.Target, script.String()) })
	if errS != nil {
		return c, nil, fmt.Errorf("source %s: %w", c.source, errS)
	}
	if errD != nil {
		return c, nil, fmt.Errorf("target %s: %w", c.target, errD)
	}
	srcInv, dstInv := inventoryOf(src.rows), inventoryOf(dst.rows)
	dstCatalog, err := parseCatalog(dst.rows)
	if err != nil {
		return c, nil, fmt.Errorf("target %s: %w", c.target, err)
	}
	dstTables := map[string]string{}
	for _, t := range dstCatalog {
		dstTables[t.Name] = t.Shape
	}
	srcNames := map[string]bool{}
	for i, t := range now {
		srcNames[t.Name] = true
		rc := checks[i]
		if rc.sql != "" {
			read = append(read, rc.describe(len(src.chunks[t.Name])))
		}
		s, d := rc.table.Source, rc.table.Target
		if rc.all {
			s, d = src.chunks[t.Name], dst.chunks[t.Name]
		} else if rc.sql != "" {
			s, d = maps.Clone(s), maps.Clone(d)
			maps.Copy(s, src.chunks[t.Name])
			maps.Copy(d, dst.chunks[t.Name])
		}
		sn, dn, differ := sumsCompare(s, d)
		c.tables++
		c.rows += sn
		shape, onTarget := dstTables[t.Name]
		switch {
		case !onTarget:
			c.diffs = append(c.diffs, fmt.Sprintf("table %s: missing on the target (source: rows %d)", t.Name, sn))
		case shape != t.Shape:
			c.diffs = append(c.diffs, fmt.Sprintf("table %s: columns differ (source: %s; target: %s)", t.Name, t.Shape, shape))
		case sn != dn:
			c.diffs = append(c.diffs, fmt.Sprintf("table %s: rows %d on the source, %d on the target", t.Name, sn, dn))
		case differ > 0:
			c.diffs = append(c.diffs, fmt.Sprintf("table %s: rows %d on both, but the rows' contents differ (%s)", t.Name, sn,
				hostcmd.Plural(differ, "chunk", "chunks")))
		}
	}
	for _, t := range dstCatalog { // in the target catalog's order, not a map's
		if !srcNames[t.Name] {
			c.diffs = append(c.diffs, fmt.Sprintf("table %s: only on the target", t.Name))
		}
	}
	c.diffs = append(c.diffs, diffSide("sequence", srcInv.sequences, dstInv.sequences, "last_value", func(n int) { c.sequences = n })...)
	c.diffs = append(c.diffs, diffSide("extension", srcInv.extensions, dstInv.extensions, "version", func(n int) { c.exts = n })...)
	return c, read, nil
}

// describe says what was read again of the table: n chunks came back.
func (rc recheck) describe(n int) string {
	switch {
	case !rc.table.chunked():
		return rc.table.Name + " whole"
	case rc.all:
		return rc.table.Name + " all " + strconv.Itoa(n) + " chunks"
	}
	return fmt.Sprintf("%s %d of %d chunks", rc.table.Name, n, len(rc.table.Source))
}

// sumsCompare totals two sides' chunks and counts the chunks that differ;
// an absent chunk has no rows.
func sumsCompare(s, d chunkSums) (srcRows, dstRows int64, differ int) {
	zero := chunkSum{Sum: "0"}
	get := func(m chunkSums, n int) chunkSum {
		if x, ok := m[n]; ok {
			return x
		}
		return zero
	}
	for n, x := range s {
		srcRows += x.Rows
		if get(d, n) != x {
			differ++
		}
	}
	for n, x := range d {
		dstRows += x.Rows
		if _, ok := s[n]; !ok && x != zero {
			differ++
		}
	}
	return srcRows, dstRows, differ
}
