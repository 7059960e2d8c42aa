package textedit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/migrun/migrun/internal/secret"
)

// The key-value edit that config_set and ovirt_db_conf share: a file
// parsed into the lines that assign each key (Doc), the keys wanted, and
// the rewrite of exactly those lines, whatever the format (Codec).

// Doc is a parsed key-value file (shell, properties, ini): its physical
// lines and which of them assign which key, so that an edit can rewrite
// exactly those lines and keep every other byte.
type Doc struct {
	Lines   []string // physical lines, with their terminators
	entries []Entry
}

// Entry is one assignment in a Doc.
type Entry struct {
	section    string // ini only; "" before the first section
	key        string
	value      string // as the file's reader sees it
	first, end int    // the physical lines [first, end) that make it up
	// head and tail are the text before and after the value on its first
	// line ("ENGINE_DB_HOST=", " # comment"): a new value goes between
	// them, keeping the indentation, separator and comment. An empty head
	// means the entry is rewritten whole by Codec.newLine.
	head, tail string
}

// WantedKey is one key an edit sets.
type WantedKey struct {
	Key   string
	Value string // the value to write, secrets revealed
	Show  string // what diffs show for it
	// Secret masks the key's old and new values in diffs.
	Secret bool
	// Equal says whether a current value already is the wanted one; nil
	// means byte equality. (oVirt's booleans read "False" like "false".)
	Equal func(cur string) bool
}

func (w WantedKey) satisfied(cur string) bool {
	if w.Equal != nil {
		return w.Equal(cur)
	}
	return cur == w.Value
}

// Codec writes values in one file format.
type Codec struct {
	// Encode renders a value as the file spells it, or refuses one the
	// format cannot hold. Its errors name the key, never the value.
	Encode func(key, value string) (string, error)
	// newLine renders a whole assignment (no terminator) from the key and
	// an encoded value.
	newLine func(key, encoded string) string
}

// render writes w's value (or show, for diffs) into entry e's line.
func (c Codec) render(e *Entry, key, v, eol string) (string, error) {
	enc, err := c.Encode(key, v)
	if err != nil {
		return "", err
	}
	if e == nil || e.head == "" {
		return c.newLine(key, enc) + eol, nil
	}
	return e.head + enc + e.tail + eol, nil
}

// masked is how diffs show entry e when its value is secret.
func (c Codec) masked(e *Entry, eol string) string {
	s, err := c.render(e, e.key, secret.Masked, eol)
	if err != nil { // cannot happen: the mask is plain ASCII
		return e.key + "=" + secret.Masked + eol
	}
	return s
}

// Edit is the result of SetKeys: the new lines and what is left to add.
type Edit struct {
	// Lines are the file's physical Lines, one for one, after the edit; a
	// line the edit drops is empty (see compact).
	Lines   []Line
	OldShow string      // the file before the edit as diffs show it
	Missing []WantedKey // keys no entry of the section assigns
	What    []string
}

// SetKeys rewrites, in section, every entry of a key whose current value
// (cur: what the file's reader ends up with) is not the wanted one: all its
// assignments get the new value where they stand, so no stale duplicate is
// left and none is added. Keys already right are not touched at all, even
// when an earlier, overridden assignment says something else. secretKey
// names keys shown masked whatever the edit does (an unchanged password
// can still be a context line of the diff).
func SetKeys(doc Doc, section string, want []WantedKey, cur map[string]string, codec Codec, secretKey func(string) bool) (Edit, error) {
	var ed Edit
	out := make([]Line, len(doc.Lines))
	for i, l := range doc.Lines {
		out[i] = Line{l, l}
	}
	for i := range doc.entries {
		e := &doc.entries[i]
		if secretKey(e.key) {
			_, eol := LineBody(doc.Lines[e.end-1])
			out[e.first].Show = codec.masked(e, eol)
			for j := e.first + 1; j < e.end; j++ {
				out[j].Show = ""
			}
		}
	}
	ed.OldShow = JoinShow(out)
	for _, w := range want {
		v, ok := cur[w.Key]
		if ok && w.satisfied(v) {
			continue
		}
		found := false
		for i := range doc.entries {
			e := &doc.entries[i]
			if e.key != w.Key || e.section != section {
				continue
			}
			found = true
			_, eol := LineBody(doc.Lines[e.end-1])
			text, err := codec.render(e, w.Key, w.Value, eol)
			if err != nil {
				return Edit{}, err
			}
			show, err := codec.render(e, w.Key, w.Show, eol)
			if err != nil {
				return Edit{}, err
			}
			out[e.first] = Line{text, show}
			for j := e.first + 1; j < e.end; j++ {
				out[j] = Line{}
			}
		}
		if found {
			ed.What = append(ed.What, "set "+w.Key)
		} else {
			ed.Missing = append(ed.Missing, w)
			ed.What = append(ed.What, "add "+w.Key)
		}
	}
	ed.Lines = out
	return ed, nil
}

// Compact drops the lines SetKeys emptied: the continuation lines of
// rewritten multi-line entries.
func Compact(lines []Line) []Line {
	out := make([]Line, 0, len(lines))
	for _, l := range lines {
		if l.Text != "" {
			out = append(out, l)
		}
	}
	return out
}

// NewKeyLines renders keys an edit adds.
func NewKeyLines(want []WantedKey, codec Codec, eol string) ([]Line, error) {
	var out []Line
	for _, w := range want {
		text, err := codec.render(nil, w.Key, w.Value, eol)
		if err != nil {
			return nil, err
		}
		show, err := codec.render(nil, w.Key, w.Show, eol)
		if err != nil {
			return nil, err
		}
		out = append(out, Line{text, show})
	}
	return out, nil
}

// CheckKeys verifies that values (what a file parses to) hold the wanted
// ones, for the re-read after a write. Secret values are never named.
func CheckKeys(values map[string]string, want []WantedKey) error {
	var bad []string
	for _, w := range want {
		v, ok := values[w.Key]
		switch {
		case !ok:
			bad = append(bad, w.Key+" is missing")
		case !w.satisfied(v) && w.Secret:
			bad = append(bad, w.Key+" does not hold the wanted value")
		case !w.satisfied(v):
			bad = append(bad, fmt.Sprintf("%s is %q, want %q", w.Key, v, w.Value))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
