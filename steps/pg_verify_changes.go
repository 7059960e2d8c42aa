package steps

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// pg_verify's comparison in the downtime reads again only the chunks of a
// table that changed since the baseline (pg_verify_since.go). What
// changed comes from a logical replication slot decoded by test_decoding,
// the output plugin every PostgreSQL ships in contrib: its text output is
// not meant for machines, so this file reads it exactly as
// contrib/test_decoding/test_decoding.c writes it (pg_decode_change,
// pg_decode_truncate, tuple_to_stringinfo, print_literal):
//
//	table public.t: INSERT: id[bigint]:1 note[text]:'it''s'
//	table public.t: UPDATE: old-key: id[bigint]:1 new-tuple: id[bigint]:2 note[text]:null
//	table public.t: DELETE: id[bigint]:2
//	table public.t: DELETE: (no-tuple-data)
//	table public.t, "My Schema"."a.b": TRUNCATE: restart_seqs cascade
//
// Names are quote_identifier's, types format_type's (they may hold
// spaces, brackets and quotes: "timestamp with time zone", "integer[]",
// "\"my type\""), values print_literal's: bare for numbers, oids and
// booleans, B'...' for bit strings, single-quoted with '' doubled for the
// rest; null and unchanged-toast-datum stand for a NULL and for a toasted
// value the change did not rewrite. The query reading the slot has
// already turned newlines and \x1f into spaces, inside quotes included.

// tableChanges is what the decoded changes touched in one table.
type tableChanges struct {
	whole  bool     // a change whose key value is unknown: TRUNCATE, (no-tuple-data), key column absent or unchanged-toast-datum
	null   bool     // a row whose key is NULL was touched
	values []string // distinct non-NULL key values touched, as test_decoding prints them, unquoted (a quoted value's '' undoubled), in first-seen order
	chunks []int    // chunks known touched (drained at the baseline: see pg_verify_drain.go)
}

// decodedChanges reads test_decoding lines. keyOf gives, for a table named as
// test_decoding names it (quote_ident(schema) || '.' || quote_ident(name)), the
// chunk key column as quote_ident(attname) would print it; ok false means the table
// has no chunk key, and any change to it marks it whole. Tables absent from the
// output are untouched. A line it cannot parse is an error naming the line.
func decodedChanges(lines []string, keyOf func(table string) (column string, ok bool)) (map[string]*tableChanges, error) {
	d := changeDecoder{keyOf: keyOf, tables: map[string]*tableChanges{}, seen: map[string]map[string]bool{}}
	for _, line := range lines {
		if err := d.line(line); err != nil {
			return nil, fmt.Errorf("decoded change %q: %s", shortLine(line), err)
		}
	}
	return d.tables, nil
}

// changeDecoder gathers the changes of decodedChanges' lines.
type changeDecoder struct {
	keyOf  func(table string) (string, bool)
	tables map[string]*tableChanges
	seen   map[string]map[string]bool // a table's values already listed: a busy table repeats its keys many times
}

func (d *changeDecoder) table(name string) *tableChanges {
	ch := d.tables[name]
	if ch == nil {
		ch = &tableChanges{}
		d.tables[name] = ch
	}
	return ch
}

// line reads one change. A line is parsed whole even where its table is
// already whole or has no key: output that is not what this file expects
// must fail loudly rather than pass as a table left untouched.
func (d *changeDecoder) line(line string) error {
	sc := &changeScanner{s: line}
	if !sc.eat("table ") {
		return errors.New(`not a "table ..." change`)
	}
	var names []string
	for {
		name, err := sc.qualifiedName()
		if err != nil {
			return err
		}
		names = append(names, name)
		// Only TRUNCATE names several tables, ", " between them; no
		// quote_identifier output holds ", " outside quotes.
		if !sc.eat(", ") {
			break
		}
	}
	if !sc.eat(": ") {
		return sc.errorf(`expected ": " after the table name`)
	}
	if sc.eat("TRUNCATE:") {
		if err := sc.truncateFlags(); err != nil {
			return err
		}
		for _, name := range names {
			d.table(name).whole = true
		}
		return nil
	}
	if len(names) > 1 {
		return errors.New("several tables in a change other than TRUNCATE")
	}
	name := names[0]
	var oldKey bool
	switch {
	case sc.eat("INSERT:"), sc.eat("DELETE:"):
	case sc.eat("UPDATE:"):
		// The old key is printed when the replica identity changed, or
		// always under REPLICA IDENTITY FULL; the row left the chunk of
		// that key, so it counts as much as the new tuple's.
		oldKey = sc.eat(" old-key:")
	default:
		return sc.errorf("expected INSERT, UPDATE, DELETE or TRUNCATE")
	}
	key, keyed := d.keyOf(name)
	ch := d.table(name)
	if !keyed {
		ch.whole = true
	}
	if oldKey {
		kv, err := sc.tuple(key, true)
		if err != nil {
			return err
		}
		if !sc.eat(" new-tuple:") {
			return sc.errorf(`expected " new-tuple:" after the old key`)
		}
		d.note(name, ch, keyed, kv)
	}
	// A DELETE without a replica identity (REPLICA IDENTITY NOTHING, or
	// DEFAULT without a primary key) says only that some row went.
	if sc.eat(" (no-tuple-data)") {
		if !sc.done() {
			return sc.errorf("unexpected text after (no-tuple-data)")
		}
		ch.whole = true
		return nil
	}
	kv, err := sc.tuple(key, false)
	if err != nil {
		return err
	}
	d.note(name, ch, keyed, kv)
	return nil
}

// note records the key value one tuple held.
func (d *changeDecoder) note(name string, ch *tableChanges, keyed bool, kv keyValue) {
	switch {
	case !keyed:
	case !kv.present, kv.toast:
		// Absent: a key outside the replica identity of an old key, or a
		// NULL of a REPLICA IDENTITY FULL old row (test_decoding leaves
		// out an old tuple's NULLs); unchanged-toast-datum: the value
		// itself was not logged. Either way the row's chunk is unknown.
		ch.whole = true
	case kv.null:
		ch.null = true
	default:
		seen := d.seen[name]
		if seen == nil {
			seen = map[string]bool{}
			d.seen[name] = seen
		}
		if !seen[kv.value] {
			seen[kv.value] = true
			ch.values = append(ch.values, kv.value)
		}
	}
}

// keyValue is what a tuple held in the key column.
type keyValue struct {
	present bool   // the column was printed
	null    bool   // null
	toast   bool   // unchanged-toast-datum
	value   string // otherwise, unquoted
}

// changeScanner reads a test_decoding line from left to right.
type changeScanner struct {
	s   string
	pos int
}

func (sc *changeScanner) done() bool { return sc.pos == len(sc.s) }

func (sc *changeScanner) at(prefix string) bool { return strings.HasPrefix(sc.s[sc.pos:], prefix) }

func (sc *changeScanner) eat(prefix string) bool {
	if sc.at(prefix) {
		sc.pos += len(prefix)
		return true
	}
	return false
}

func (sc *changeScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", sc.pos, fmt.Sprintf(format, args...))
}

// ident reads one quote_identifier output and returns it as printed,
// quotes included: that is how keyOf's callers spell names too.
func (sc *changeScanner) ident() (string, error) {
	start := sc.pos
	if sc.eat(`"`) {
		for {
			i := strings.IndexByte(sc.s[sc.pos:], '"')
			if i < 0 {
				sc.pos = start
				return "", sc.errorf("unterminated quoted name")
			}
			sc.pos += i + 1
			// "" is a quote inside the name.
			if !sc.eat(`"`) {
				return sc.s[start:sc.pos], nil
			}
		}
	}
	// quote_identifier leaves bare only lower-case letters, digits and
	// underscores; anything else here is not a name.
	for sc.pos < len(sc.s) {
		c := sc.s[sc.pos]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			break
		}
		sc.pos++
	}
	if sc.pos == start {
		return "", sc.errorf("expected a name")
	}
	return sc.s[start:sc.pos], nil
}

// qualifiedName reads schema.name.
func (sc *changeScanner) qualifiedName() (string, error) {
	start := sc.pos
	if _, err := sc.ident(); err != nil {
		return "", err
	}
	if !sc.eat(".") {
		return "", sc.errorf("expected a schema-qualified table name")
	}
	if _, err := sc.ident(); err != nil {
		return "", err
	}
	return sc.s[start:sc.pos], nil
}

// truncateFlags reads the rest of a TRUNCATE line.
func (sc *changeScanner) truncateFlags() error {
	rest := sc.s[sc.pos:]
	if rest == " (no-flags)" {
		return nil
	}
	if !strings.HasPrefix(rest, " ") {
		return sc.errorf("expected TRUNCATE's flags")
	}
	for _, f := range strings.Split(rest[1:], " ") {
		if f != "restart_seqs" && f != "cascade" {
			return sc.errorf("unknown TRUNCATE flag %q", f)
		}
	}
	return nil
}

// tuple reads " name[type]:value" columns up to the end of the line or,
// for an old key, up to " new-tuple:", and returns the key column's value.
// The marker cannot be mistaken for a column: quote_identifier quotes a
// name with a hyphen, and literals holding the text are skipped whole.
func (sc *changeScanner) tuple(key string, oldKey bool) (keyValue, error) {
	var kv keyValue
	for !sc.done() {
		if oldKey && sc.at(" new-tuple:") {
			break
		}
		if !sc.eat(" ") {
			return kv, sc.errorf("expected a space before a column")
		}
		name, err := sc.ident()
		if err != nil {
			return kv, err
		}
		if err := sc.columnType(); err != nil {
			return kv, err
		}
		v, err := sc.value()
		if err != nil {
			return kv, err
		}
		if name == key {
			if kv.present {
				return kv, sc.errorf("column %s twice", name)
			}
			v.present = true
			kv = v
		}
	}
	return kv, nil
}

// columnType skips "[type]:". The type is format_type's: quoted names in
// it may hold anything, and arrays end in "[]", so the type ends at the
// first ']' outside quotes that closes the opening '['.
func (sc *changeScanner) columnType() error {
	if !sc.eat("[") {
		return sc.errorf("expected [ after a column name")
	}
	start := sc.pos
	depth, quoted := 0, false
	for ; sc.pos < len(sc.s); sc.pos++ {
		switch c := sc.s[sc.pos]; {
		case c == '"':
			// A "" inside quotes toggles twice: still quoted.
			quoted = !quoted
		case quoted:
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case c == ']':
			if sc.pos == start {
				return sc.errorf("empty column type")
			}
			sc.pos++
			if !sc.eat(":") {
				return sc.errorf("expected : after a column type")
			}
			return nil
		}
	}
	sc.pos = start
	return sc.errorf("unterminated column type")
}

// value reads one column's value.
func (sc *changeScanner) value() (keyValue, error) {
	switch {
	case sc.at("'"):
		return sc.quoted()
	case sc.at("B'"):
		// A bit string: its digits, as the type's input reads them back.
		sc.pos++
		return sc.quoted()
	}
	start := sc.pos
	end := strings.IndexByte(sc.s[sc.pos:], ' ')
	if end < 0 {
		end = len(sc.s) - sc.pos
	}
	if end == 0 {
		return keyValue{}, sc.errorf("expected a value")
	}
	sc.pos += end
	switch v := sc.s[start:sc.pos]; v {
	case "null":
		return keyValue{null: true}, nil
	case "unchanged-toast-datum":
		return keyValue{toast: true}, nil
	default:
		return keyValue{value: v}, nil
	}
}

// quoted reads a single-quoted literal, undoubling the quotes doubled in it.
func (sc *changeScanner) quoted() (keyValue, error) {
	start := sc.pos
	sc.pos++
	var b strings.Builder
	for {
		i := strings.IndexByte(sc.s[sc.pos:], '\'')
		if i < 0 {
			sc.pos = start
			return keyValue{}, sc.errorf("unterminated quoted value")
		}
		b.WriteString(sc.s[sc.pos : sc.pos+i])
		sc.pos += i + 1
		if !sc.eat("'") {
			return keyValue{value: b.String()}, nil
		}
		b.WriteByte('\'')
	}
}

// shortLine cuts a line for an error message: rows can be megabytes long.
func shortLine(line string) string {
	const limit = 120
	if len(line) <= limit {
		return line
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + "..."
}
