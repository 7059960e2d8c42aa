package steps

import (
	"errors"
	"fmt"
	"strings"

	"github.com/migrun/migrun/internal/secret"
)

// The key-value edit that config_set and ovirt_db_conf share: a file
// parsed into the lines that assign each key (kvDoc), the keys wanted, and
// the rewrite of exactly those lines, whatever the format (kvCodec).

// kvDoc is a parsed key-value file (shell, properties, ini): its physical
// lines and which of them assign which key, so that an edit can rewrite
// exactly those lines and keep every other byte.
type kvDoc struct {
	lines   []string // physical lines, with their terminators
	entries []kvEntry
}

// kvEntry is one assignment in a kvDoc.
type kvEntry struct {
	section    string // ini only; "" before the first section
	key        string
	value      string // as the file's reader sees it
	first, end int    // the physical lines [first, end) that make it up
	// head and tail are the text before and after the value on its first
	// line ("ENGINE_DB_HOST=", " # comment"): a new value goes between
	// them, keeping the indentation, separator and comment. An empty head
	// means the entry is rewritten whole by kvCodec.newLine.
	head, tail string
}

// wantedKey is one key an edit sets.
type wantedKey struct {
	key   string
	value string // the value to write, secrets revealed
	show  string // what diffs show for it
	// secret masks the key's old and new values in diffs.
	secret bool
	// equal says whether a current value already is the wanted one; nil
	// means byte equality. (oVirt's booleans read "False" like "false".)
	equal func(cur string) bool
}

func (w wantedKey) satisfied(cur string) bool {
	if w.equal != nil {
		return w.equal(cur)
	}
	return cur == w.value
}

// kvCodec writes values in one file format.
type kvCodec struct {
	// encode renders a value as the file spells it, or refuses one the
	// format cannot hold. Its errors name the key, never the value.
	encode func(key, value string) (string, error)
	// newLine renders a whole assignment (no terminator) from the key and
	// an encoded value.
	newLine func(key, encoded string) string
}

// render writes w's value (or show, for diffs) into entry e's line.
func (c kvCodec) render(e *kvEntry, key, v, eol string) (string, error) {
	enc, err := c.encode(key, v)
	if err != nil {
		return "", err
	}
	if e == nil || e.head == "" {
		return c.newLine(key, enc) + eol, nil
	}
	return e.head + enc + e.tail + eol, nil
}

// masked is how diffs show entry e when its value is secret.
func (c kvCodec) masked(e *kvEntry, eol string) string {
	s, err := c.render(e, e.key, secret.Masked, eol)
	if err != nil { // cannot happen: the mask is plain ASCII
		return e.key + "=" + secret.Masked + eol
	}
	return s
}

// kvEdit is the result of setKeys: the new lines and what is left to add.
type kvEdit struct {
	// lines are the file's physical lines, one for one, after the edit; a
	// line the edit drops is empty (see compact).
	lines   []textLine
	oldShow string      // the file before the edit as diffs show it
	missing []wantedKey // keys no entry of the section assigns
	what    []string
}

// setKeys rewrites, in section, every entry of a key whose current value
// (cur: what the file's reader ends up with) is not the wanted one: all its
// assignments get the new value where they stand, so no stale duplicate is
// left and none is added. Keys already right are not touched at all, even
// when an earlier, overridden assignment says something else. secretKey
// names keys shown masked whatever the edit does (an unchanged password
// can still be a context line of the diff).
func setKeys(doc kvDoc, section string, want []wantedKey, cur map[string]string, codec kvCodec, secretKey func(string) bool) (kvEdit, error) {
	var ed kvEdit
	out := make([]textLine, len(doc.lines))
	for i, l := range doc.lines {
		out[i] = textLine{l, l}
	}
	for i := range doc.entries {
		e := &doc.entries[i]
		if secretKey(e.key) {
			_, eol := lineBody(doc.lines[e.end-1])
			out[e.first].show = codec.masked(e, eol)
			for j := e.first + 1; j < e.end; j++ {
				out[j].show = ""
			}
		}
	}
	ed.oldShow = joinShow(out)
	for _, w := range want {
		v, ok := cur[w.key]
		if ok && w.satisfied(v) {
			continue
		}
		found := false
		for i := range doc.entries {
			e := &doc.entries[i]
			if e.key != w.key || e.section != section {
				continue
			}
			found = true
			_, eol := lineBody(doc.lines[e.end-1])
			text, err := codec.render(e, w.key, w.value, eol)
			if err != nil {
				return kvEdit{}, err
			}
			show, err := codec.render(e, w.key, w.show, eol)
			if err != nil {
				return kvEdit{}, err
			}
			out[e.first] = textLine{text, show}
			for j := e.first + 1; j < e.end; j++ {
				out[j] = textLine{}
			}
		}
		if found {
			ed.what = append(ed.what, "set "+w.key)
		} else {
			ed.missing = append(ed.missing, w)
			ed.what = append(ed.what, "add "+w.key)
		}
	}
	ed.lines = out
	return ed, nil
}

// compact drops the lines setKeys emptied: the continuation lines of
// rewritten multi-line entries.
func compact(lines []textLine) []textLine {
	out := make([]textLine, 0, len(lines))
	for _, l := range lines {
		if l.text != "" {
			out = append(out, l)
		}
	}
	return out
}

// newKeyLines renders keys an edit adds.
func newKeyLines(want []wantedKey, codec kvCodec, eol string) ([]textLine, error) {
	var out []textLine
	for _, w := range want {
		text, err := codec.render(nil, w.key, w.value, eol)
		if err != nil {
			return nil, err
		}
		show, err := codec.render(nil, w.key, w.show, eol)
		if err != nil {
			return nil, err
		}
		out = append(out, textLine{text, show})
	}
	return out, nil
}

// checkKeys verifies that values (what a file parses to) hold the wanted
// ones, for the re-read after a write. Secret values are never named.
func checkKeys(values map[string]string, want []wantedKey) error {
	var bad []string
	for _, w := range want {
		v, ok := values[w.key]
		switch {
		case !ok:
			bad = append(bad, w.key+" is missing")
		case !w.satisfied(v) && w.secret:
			bad = append(bad, w.key+" does not hold the wanted value")
		case !w.satisfied(v):
			bad = append(bad, fmt.Sprintf("%s is %q, want %q", w.key, v, w.value))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
