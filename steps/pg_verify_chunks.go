package steps

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

// Chunks: how pg_verify's baseline cuts a table into key ranges and sums
// them (see pg_verify_baseline.go).

const (
	chunkRows     = 5000  // rows a chunk aims at: one re-read in the downtime (measured: 20,000 rows of a table keyed by a random uuid cost 65-90 ms at 4 GB)
	maxChunks     = 4000  // per table: bounds the marker's size
	sampledRows   = 20000 // rows the bounds are sampled from, at least
	wholeTable    = -2    // the chunk of a table summed whole (no key, or small)
	nullKeyChunk  = -1    // the rows whose key is NULL
	rowHashSQL    = "hashtextextended((x.*)::text, 0)"
	chunkKeyTypes = `'int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype, 'uuid'::regtype, 'date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype`
)

// verifySessionSQL makes both servers render a row's text the same way
// whatever their defaults (PostgreSQL 13 and 15 differ in some): the
// checksum is of that text.
const verifySessionSQL = "SET LOCAL timezone = 'UTC'; SET LOCAL datestyle = 'ISO, YMD'; SET LOCAL intervalstyle = 'postgres'; " +
	"SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C';\n"

// chunkedTable is one table of a baseline.
type chunkedTable struct {
	Name string `json:"name"` // quote_ident(schema) || '.' || quote_ident(name), as test_decoding names it
	// Key is the chunk key column (quote_ident), the leading column of the
	// index the WAL identifies the table's rows by, so every decoded change
	// carries its value; "" when there is none (or it has a collatable
	// type: two servers may sort text differently).
	Key    string    `json:"key,omitempty"`
	Type   string    `json:"type,omitempty"`   // the key's type (format_type)
	Shape  string    `json:"shape"`            // the columns and their types: DDL since the baseline reads the table again
	Bounds string    `json:"bounds,omitempty"` // the chunks' lower bounds, an array literal; "": one chunk, the whole table
	Source chunkSums `json:"source"`
	Target chunkSums `json:"target"`

	estRows int64 // the planner's estimate, for the number of chunks
}

// chunkSums are a table's chunks: chunk number (width_bucket of the key
// in Bounds, nullKeyChunk, or wholeTable) -> rows and the sum of the rows'
// hashes.
type chunkSums map[int]chunkSum

type chunkSum struct {
	Rows int64  `json:"n"`
	Sum  string `json:"s"` // numeric: 64-bit hashes summed without overflow
}

// differing are the chunks whose sums differ between the two sides.
func (t *chunkedTable) differing() []int {
	var out []int
	for n, s := range t.Source {
		if t.Target[n] != s {
			out = append(out, n)
		}
	}
	for n := range t.Target {
		if _, ok := t.Source[n]; !ok {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// catalogSQL lists the tables ('c' rows): name, chunk key and its type,
// estimated rows, columns.
func catalogSQL() string {
	return `SELECT 'c', quote_ident(n.nspname) || '.' || quote_ident(c.relname), coalesce(k.col, ''), coalesce(k.typ, ''),
  greatest(c.reltuples, 0)::bigint,
  coalesce((SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
    FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
  SELECT quote_ident(a.attname) AS col, format_type(a.atttypid, a.atttypmod) AS typ
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
  WHERE i.indrelid = c.oid AND c.relkind = 'r' AND am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL
    AND a.atttypid IN (` + chunkKeyTypes + `)
    AND (c.relreplident = 'f' OR c.relreplident = 'd' AND i.indisprimary OR c.relreplident = 'i' AND i.indisreplident)
  ORDER BY i.indisreplident DESC, i.indisprimary DESC, i.indisunique DESC, i.indexrelid
  LIMIT 1) k ON true
WHERE c.relkind IN ('r', 'p') AND ` + pg.UserSchemasSQL + ";\n"
}

func parseCatalog(rows [][]string) ([]chunkedTable, error) {
	var out []chunkedTable
	for _, r := range rows {
		if len(r) == 0 || r[0] != "c" {
			continue
		}
		if len(r) != 6 {
			return nil, fmt.Errorf("unexpected psql output %q", strings.Join(r, " "))
		}
		est, _ := strconv.ParseInt(r[4], 10, 64)
		out = append(out, chunkedTable{Name: r[1], Key: r[2], Type: r[3], estRows: est, Shape: r[5]})
	}
	return out, nil
}

// boundsSQL samples the chunks' bounds of every table large enough to be
// cut ('b' rows: name, array), the last bound the key's current maximum,
// so rows inserted since fall in a chunk of their own. The maximum is read
// off the index (uuid has no max() before PostgreSQL 16).
func boundsSQL(tables []chunkedTable) string {
	var b strings.Builder
	for _, t := range tables {
		if t.Key == "" || t.estRows < 2*chunkRows {
			continue
		}
		n := min(max(t.estRows/chunkRows, 2), maxChunks)
		fracs := make([]string, 0, n)
		for i := int64(1); i < n; i++ {
			fracs = append(fracs, strconv.FormatFloat(float64(i)/float64(n), 'g', 6, 64))
		}
		pct := math.Min(100, math.Max(0.0001, 100*float64(max(sampledRows, 20*n))/float64(t.estRows)))
		fmt.Fprintf(&b, "SELECT 'b', %s, ARRAY(SELECT DISTINCT k FROM unnest((SELECT percentile_disc('{%s}'::float8[]) WITHIN GROUP (ORDER BY x.%s) FROM ONLY %s AS x TABLESAMPLE SYSTEM (%s)) || ARRAY[(SELECT x.%s FROM ONLY %s x WHERE x.%s IS NOT NULL ORDER BY 1 DESC LIMIT 1)]) k WHERE k IS NOT NULL ORDER BY 1)::text;\n",
			pg.Literal(t.Name), strings.Join(fracs, ","), t.Key, t.Name, strconv.FormatFloat(pct, 'f', 4, 64), t.Key, t.Name, t.Key)
	}
	return b.String()
}

func setBounds(tables []chunkedTable, rows [][]string) error {
	bounds := map[string]string{}
	for _, r := range rows {
		if len(r) != 3 || r[0] != "b" {
			return fmt.Errorf("unexpected psql output %q", strings.Join(r, " "))
		}
		if r[2] != "{}" {
			bounds[r[1]] = r[2]
		}
	}
	for i := range tables {
		tables[i].Bounds = bounds[tables[i].Name]
	}
	return nil
}

// chunked reports whether t is summed chunk by chunk.
func (t *chunkedTable) chunked() bool { return t.Key != "" && t.Bounds != "" }

func (t *chunkedTable) boundsExpr() string { return pg.Literal(t.Bounds) + "::" + t.Type + "[]" }

// sumSQL sums every chunk of t ('h' rows: name, chunk, rows, sum).
func (t *chunkedTable) sumSQL() string {
	if !t.chunked() {
		return fmt.Sprintf("SELECT 'h', %s, %d, count(*), coalesce(sum(%s), 0) FROM ONLY %s x;\n", pg.Literal(t.Name), wholeTable, rowHashSQL, t.Name)
	}
	return fmt.Sprintf("SELECT 'h', %s, coalesce(width_bucket(x.%s, %s), %d), count(*), coalesce(sum(%s), 0) FROM ONLY %s x GROUP BY 3;\n",
		pg.Literal(t.Name), t.Key, t.boundsExpr(), nullKeyChunk, rowHashSQL, t.Name)
}

// resumSQL sums again, in the downtime, the chunks the changed key values
// fall in and the chunks listed: psql's \gexec runs one range query per
// chunk, which the key's index answers (none where the table does not
// exist: see guarded). values are rendered as the source
// prints them, so the same literals give the same chunks on both sides.
func (t *chunkedTable) resumSQL(values []string, null bool, chunks []int) string {
	if null {
		chunks = append(chunks, nullKeyChunk)
	}
	lits := make([]string, len(values))
	for i, v := range values {
		lits[i] = pg.Literal(v)
	}
	nums := make([]string, len(chunks))
	for i, n := range chunks {
		nums[i] = strconv.Itoa(n)
	}
	col, typ := pg.Literal("x."+t.Key), pg.Literal(t.Type)
	return fmt.Sprintf(`SELECT format('SELECT %%L, %%L, %%s, count(*), coalesce(sum(%s), 0) FROM ONLY %%s x WHERE %%s', 'h', %s, d.n, %s,
  CASE WHEN d.n = %d THEN format('%%s IS NULL', %s)
    WHEN d.n = 0 THEN format('%%s < %%L::%%s', %s, b.bb[1], %s)
    WHEN d.n >= cardinality(b.bb) THEN format('%%s >= %%L::%%s', %s, b.bb[cardinality(b.bb)], %s)
    ELSE format('%%s >= %%L::%%s AND %%s < %%L::%%s', %s, b.bb[d.n], %s, %s, b.bb[d.n + 1], %s) END)
FROM (SELECT coalesce(width_bucket(v, b.bb), %d) AS n FROM unnest(ARRAY[%s]::%s[]) v, (SELECT %s AS bb) b
  UNION SELECT unnest('{%s}'::int[])) d, (SELECT %s AS bb) b
WHERE to_regclass(%s) IS NOT NULL
\gexec
`, rowHashSQL, pg.Literal(t.Name), pg.Literal(t.Name), nullKeyChunk, col, col, typ, col, typ, col, typ, col, typ,
		nullKeyChunk, strings.Join(lits, ","), t.Type, t.boundsExpr(), strings.Join(nums, ","), t.boundsExpr(), pg.Literal(t.Name))
}

// readSnapshotSQL begins the read-only snapshot every summing script of
// pg_verify reads in, rendering rows alike on both servers.
const readSnapshotSQL = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n" + verifySessionSQL

// sourcePositionSQL, a source's first query, takes the snapshot ('l' row):
// the insert position read in it is past every commit the snapshot sees,
// and the snapshot itself says which transactions the slot decodes that
// the sums hold already (the slot was created before it).
const sourcePositionSQL = "SELECT 'l', pg_current_wal_insert_lsn(), pg_current_snapshot();\n"

// baselineSQL sums every chunk of tables in one read-only snapshot; on the
// source it first reads the snapshot's WAL position ('l' row).
func baselineSQL(tables []chunkedTable, source bool) string {
	var b strings.Builder
	b.WriteString(readSnapshotSQL)
	if source {
		b.WriteString(sourcePositionSQL)
	} else {
		b.WriteString("SELECT 'l', '';\n")
	}
	for i := range tables {
		b.WriteString(tables[i].sumSQL())
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}

// chunkResult is what one side's summing script printed.
type chunkResult struct {
	lsn    string
	snap   string // pg_current_snapshot() of the source's
	chunks map[string]chunkSums
	rows   [][]string // every other row ('c', 's', 'e')
}

// sumChunks runs script on ep, showing the tables summed as progress.
func (v *PgVerify) sumChunks(ctx context.Context, rt *Runtime, ex executors.Executor, ep PgEndpoint, script string, tables int) (chunkResult, error) {
	cmd := ep.target(ep.Database).PsqlCommand(script, true)
	cmd.Unstable = "checksums change while the database is in use"
	bar := progressOf(rt).Start(Task{Label: "checksum rows of " + ep.Database + " on " + ep.Host, Unit: UnitTables, Total: int64(tables)})
	var (
		out  bytes.Buffer
		last string
	)
	lp := &lineProgress{w: &out, bar: bar, classify: func(l string) (bool, bool) {
		kind, rest, _ := strings.Cut(l, "\x1f")
		name, _, _ := strings.Cut(rest, "\x1f")
		if kind == "h" && name != last {
			last = name
			return true, false
		}
		return false, false
	}}
	cmd.Stdout = lp
	_, err := ex.Run(ctx, cmd)
	lp.Close()
	bar.Done(err)
	if err != nil {
		return chunkResult{}, fmt.Errorf("%s: database %s: psql: %w", ex.Name(), ep.Database, err)
	}
	return chunkResultOf(pg.ParseRows(out.Bytes()), ep)
}

// sumChunksIn is sumChunks in an open session: the rows come at the end,
// so the progress is the start and the end.
func (v *PgVerify) sumChunksIn(ctx context.Context, rt *Runtime, s *pg.Session, ep PgEndpoint, script string, tables int) (chunkResult, error) {
	bar := progressOf(rt).Start(Task{Label: "checksum rows of " + ep.Database + " on " + ep.Host, Unit: UnitTables, Total: int64(tables)})
	rows, err := s.Run(ctx, script)
	if err == nil {
		bar.Add(int64(tables))
	}
	bar.Done(err)
	if err != nil {
		return chunkResult{}, fmt.Errorf("database %s: %w", ep.Database, err)
	}
	return chunkResultOf(rows, ep)
}

// chunkResultOf reads a summing script's rows.
func chunkResultOf(rows [][]string, ep PgEndpoint) (chunkResult, error) {
	res := chunkResult{chunks: map[string]chunkSums{}}
	for _, r := range rows {
		switch {
		case len(r) == 2 && r[0] == "l":
			res.lsn = r[1]
		case len(r) == 3 && r[0] == "l":
			res.lsn, res.snap = r[1], r[2]
		case len(r) == 5 && r[0] == "h":
			n, err1 := strconv.Atoi(r[2])
			rows, err2 := strconv.ParseInt(r[3], 10, 64)
			if err1 != nil || err2 != nil {
				return res, fmt.Errorf("%s: database %s: unexpected psql output %q", ep.Host, ep.Database, strings.Join(r, " "))
			}
			if res.chunks[r[1]] == nil {
				res.chunks[r[1]] = chunkSums{}
			}
			res.chunks[r[1]][n] = chunkSum{Rows: rows, Sum: r[4]}
		case len(r) > 0 && r[0] != "":
			res.rows = append(res.rows, r)
		}
	}
	return res, nil
}
