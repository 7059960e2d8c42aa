package steps

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_verify's comparison read whole: each side's inventory (tables with
// their exact row counts, sequences, extensions) in one read-only
// snapshot, and the differences between the two. The comparison from a
// baseline (pg_verify_since.go) reads less and reports the same way.

// inventorySQL lists what one side has, one row per object: kind ("t",
// "s", "e"), name, value. The row counts use query_to_xml so that one
// statement counts every table, without a round trip per table.
func (v *PgVerify) inventorySQL() string {
	var b strings.Builder
	// FETCH_COUNT makes psql fetch through a cursor and print rows as
	// they come, so each table's count arrives when it is done: the
	// progress. The first row is how many tables there are.
	b.WriteString("\\set FETCH_COUNT 1\n")
	b.WriteString("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n")
	if v.tables() {
		b.WriteString(`SELECT 'n', '', count(*)::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND ` + pg.UserSchemasSQL + `;
`)
		// ONLY: a parent's rows are its own, not its partitions' or
		// children's, which are listed on their own lines.
		b.WriteString(`SELECT 't', quote_ident(n.nspname) || '.' || quote_ident(c.relname),
  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND ` + pg.UserSchemasSQL + `;
`)
	}
	if v.sequences() {
		b.WriteString(sequencesSQL)
	}
	if v.extensions() {
		b.WriteString(extensionsSQL)
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}

// sequencesSQL lists the sequences ('s' rows); last_value is NULL for a
// sequence never used (or setval(.., false)).
const sequencesSQL = "SELECT 's', quote_ident(schemaname) || '.' || quote_ident(sequencename), coalesce(last_value::text, 'unused') FROM pg_sequences;\n"

// extensionsSQL lists the extensions ('e' rows).
const extensionsSQL = "SELECT 'e', extname, extversion FROM pg_extension;\n"

// inventory is what one side holds: object name -> value, per kind.
type inventory struct {
	tables, sequences, extensions map[string]string
}

func (v *PgVerify) collect(ctx context.Context, rt *Runtime, ep PgEndpoint) (inventory, error) {
	var inv inventory
	ex, err := rt.Executor(ctx, ep.Host)
	if err != nil {
		return inv, err
	}
	rows, err := v.inventory(ctx, rt, ex, ep)
	if err != nil {
		return inv, fmt.Errorf("database %s: %w", ep.Database, err)
	}
	for _, row := range rows {
		if len(row) != 3 {
			return inv, fmt.Errorf("%s: database %s: unexpected psql output %q", ex.Name(), ep.Database, strings.Join(row, " "))
		}
	}
	return inventoryOf(rows), nil
}

// inventoryOf files the 't', 's' and 'e' rows of an inventory; other rows
// (a comparison since a baseline prints 'c' and 'h' rows too) are not its.
func inventoryOf(rows [][]string) inventory {
	inv := inventory{tables: map[string]string{}, sequences: map[string]string{}, extensions: map[string]string{}}
	for _, row := range rows {
		if len(row) != 3 {
			continue
		}
		switch row[0] {
		case "t":
			inv.tables[row[1]] = row[2]
		case "s":
			inv.sequences[row[1]] = row[2]
		case "e":
			inv.extensions[row[1]] = row[2]
		}
	}
	return inv
}

// inventory runs inventorySQL on ep, reporting tables counted as they
// stream in.
func (v *PgVerify) inventory(ctx context.Context, rt *Runtime, ex executors.Executor, ep PgEndpoint) ([][]string, error) {
	cmd := ep.target(ep.Database).PsqlCommand(v.inventorySQL(), true)
	cmd.Unstable = "row counts change while the database is in use"
	var (
		bar Bar
		out bytes.Buffer
	)
	lp := &lineProgress{w: &out, bar: nopBar{}, classify: func(l string) (bool, bool) {
		kind, rest, _ := strings.Cut(l, "\x1f")
		switch {
		case kind == "n" && bar == nil:
			total, _ := strconv.ParseInt(strings.TrimPrefix(rest, "\x1f"), 10, 64)
			bar = progressOf(rt).Start(Task{Label: "count rows of " + ep.Database + " on " + ep.Host, Unit: UnitTables, Total: total})
		case kind == "t" && bar != nil:
			bar.Add(1)
		}
		return false, false // every line is output too
	}}
	cmd.Stdout = lp
	_, err := ex.Run(ctx, cmd)
	lp.Close()
	if bar != nil {
		bar.Done(err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: psql: %w", ex.Name(), err)
	}
	return pg.ParseRows(out.Bytes()), nil
}

// comparison is the result of comparing two inventories.
type comparison struct {
	diffs                   []string
	tables, sequences, exts int    // objects on the source
	rows                    int64  // rows in the source's tables
	source, target          string // "engine on db", for messages
	tablesOn, seqOn, extsOn bool
	unknown                 bool // a database does not exist (yet)
	unknownReason           string
}

// compare runs the inventory on both sides at once and compares them.
// missingOK turns a missing server or database into an unknown result
// (for Check).
func (v *PgVerify) compare(ctx context.Context, rt *Runtime, missingOK bool) (comparison, error) {
	var (
		wg       sync.WaitGroup
		src, dst inventory
		se, de   error
	)
	wg.Add(2)
	go func() { defer wg.Done(); src, se = v.collect(ctx, rt, v.Source) }()
	go func() { defer wg.Done(); dst, de = v.collect(ctx, rt, v.Target) }()
	wg.Wait()
	c := comparison{
		source:   v.Source.Database + " on " + v.Source.Host,
		target:   v.Target.Database + " on " + v.Target.Host,
		tablesOn: v.tables(), seqOn: v.sequences(), extsOn: v.extensions(),
	}
	if missingOK {
		for _, e := range []struct {
			err  error
			name string
		}{{se, c.source}, {de, c.target}} {
			if pg.NotReady(e.err) {
				c.unknown, c.unknownReason = true, "database "+e.name+" is not reachable yet: "+hostcmd.FirstLine(e.err)
				return c, nil
			}
		}
	}
	if se != nil {
		return c, fmt.Errorf("source %s: %w", c.source, se)
	}
	if de != nil {
		return c, fmt.Errorf("target %s: %w", c.target, de)
	}
	c.diffs = append(c.diffs, diffSide("table", src.tables, dst.tables, "rows", func(n int) { c.tables = n })...)
	for _, n := range src.tables {
		rows, _ := strconv.ParseInt(n, 10, 64)
		c.rows += rows
	}
	c.diffs = append(c.diffs, diffSide("sequence", src.sequences, dst.sequences, "last_value", func(n int) { c.sequences = n })...)
	c.diffs = append(c.diffs, diffSide("extension", src.extensions, dst.extensions, "version", func(n int) { c.exts = n })...)
	return c, nil
}

// diffSide compares one kind of object, one line per difference, sorted
// by name; count receives the number of objects on the source.
func diffSide(kind string, src, dst map[string]string, what string, count func(int)) []string {
	count(len(src))
	names := make([]string, 0, len(src)+len(dst))
	for n := range src {
		names = append(names, n)
	}
	for n := range dst {
		if _, ok := src[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var diffs []string
	for _, n := range names {
		s, inSrc := src[n]
		d, inDst := dst[n]
		switch {
		case !inDst:
			diffs = append(diffs, fmt.Sprintf("%s %s: missing on the target (source: %s %s)", kind, n, what, s))
		case !inSrc:
			diffs = append(diffs, fmt.Sprintf("%s %s: only on the target (%s %s)", kind, n, what, d))
		case s != d:
			diffs = append(diffs, fmt.Sprintf("%s %s: %s %s on the source, %s on the target", kind, n, what, s, d))
		}
	}
	return diffs
}

// summary says what matched: "42 tables, 1,234,567 rows, 17 sequences, 3 extensions match".
func (c comparison) summary() string {
	var parts []string
	if c.tablesOn {
		parts = append(parts, hostcmd.Plural(c.tables, "table", "tables"), groupDigits(c.rows)+" rows")
	}
	if c.seqOn {
		parts = append(parts, hostcmd.Plural(c.sequences, "sequence", "sequences"))
	}
	if c.extsOn {
		parts = append(parts, hostcmd.Plural(c.exts, "extension", "extensions"))
	}
	return strings.Join(parts, ", ") + " match between " + c.source + " and " + c.target
}

// maxDiffsListed bounds the differences an error lists; the rest are counted.
const maxDiffsListed = 50

func (c comparison) err() error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s differs from %s (%s):", c.target, c.source, hostcmd.Plural(len(c.diffs), "difference", "differences"))
	for i, d := range c.diffs {
		if i == maxDiffsListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(c.diffs)-maxDiffsListed)
			break
		}
		b.WriteString("\n  " + d)
	}
	return fmt.Errorf("%s", b.String())
}

// groupDigits renders 1234567 as "1,234,567".
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
