package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/ovirtconf"
	"github.com/migrun/migrun/internal/secret"
)

// This file holds what the kinds that edit a text file in place share
// (ovirt_db_conf, config_set, line): reading the file, rendering the edit as
// a diff with secrets masked, and writing it safely: a backup copy first,
// then an atomic replace with the old mode and owner, then a re-read that
// checks the file says what was meant.

const (
	// backupInfix and backupStamp name the copy of a file taken before an
	// edit: FILE.migrun-backup-20060102T150405Z, in UTC so that backups
	// sort by time whatever the hosts' time zones. The name must not end
	// in .conf: the engine loads every *.conf in engine.conf.d, and a
	// backup it loaded would override the edit.
	backupInfix = ".migrun-backup-"
	backupStamp = "20060102T150405Z"
)

// secretKeyRE recognises keys whose values are secrets by name. Their old
// values are masked in diffs too: the file holds them in clear, and a diff
// that shows the password being replaced must show neither password.
var secretKeyRE = regexp.MustCompile(`(?i)pass(word|wd)|secret|token|credential`)

// looksSecret reports whether a key's value should never be shown.
func looksSecret(key string) bool { return secretKeyRE.MatchString(key) }

// textLine is one physical line of a file being edited: its bytes, with
// the line terminator, and what a diff shows in its place.
type textLine struct {
	text string
	show string
}

// rawLines splits s into physical lines that keep their terminators; a
// last line without one stays without. "" has no lines.
func rawLines(s string) []string { return ovirtconf.Lines(s) }

// lineBody splits a physical line into its content and its terminator
// ("\n", "\r\n" or "" for a last line without one).
func lineBody(l string) (body, eol string) {
	if b, ok := strings.CutSuffix(l, "\r\n"); ok {
		return b, "\r\n"
	}
	if b, ok := strings.CutSuffix(l, "\n"); ok {
		return b, "\n"
	}
	return l, ""
}

// fileEOL is the terminator new lines get: the file's own, so that a file
// with CRLF lines does not end up with both.
func fileEOL(lines []string) string {
	for _, l := range lines {
		if _, eol := lineBody(l); eol != "" {
			return eol
		}
	}
	return "\n"
}

// plainLines are the lines of s shown as they are.
func plainLines(s string) []textLine {
	raw := rawLines(s)
	out := make([]textLine, len(raw))
	for i, l := range raw {
		out[i] = textLine{l, l}
	}
	return out
}

// appendLines adds lines at the end of out, first ending a last line that
// has no terminator (the only change an append makes to an existing line).
func appendLines(out []textLine, eol string, add ...textLine) []textLine {
	if len(add) == 0 {
		return out
	}
	if n := len(out); n > 0 && !strings.HasSuffix(out[n-1].text, "\n") {
		out[n-1].text += eol
		out[n-1].show += eol
	}
	return append(out, add...)
}

func joinText(ls []textLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.text)
	}
	return b.String()
}

func joinShow(ls []textLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.show)
	}
	return b.String()
}

// editResult is an edit worked out from a file's current content.
type editResult struct {
	text    string   // the new content; equal to the old one when nothing changes
	oldShow string   // the old content as diffs show it (secrets masked)
	newShow string   // the new content as diffs show it
	what    []string // what changes, for summaries: "set ENGINE_DB_HOST" (never values)
	notes   []string // what the user should know: "no line matches after: appending at the end"
}

// textEdit is one edit of a text file on the step's host. The kinds build
// it with closures that hold the wanted values, secrets revealed; it does
// the reading, the diff, the backup, the write and the re-check.
type textEdit struct {
	path string
	// create makes a missing file an empty one to edit; otherwise a missing
	// file is an error (Unknown in Check: an earlier step may create it),
	// unless missingDone says a missing file is already as wanted.
	create      bool
	missingDone bool
	// newMode is the mode of a file the edit creates.
	newMode fs.FileMode
	// edit computes the new content from the current one ("" if missing).
	edit func(old string) (editResult, error)
	// verify checks that the content read back after the write parses to
	// the wanted values. Its errors must not hold secret values.
	verify func(written string) error
}

// editState is the file as read before an edit.
type editState struct {
	ex     executors.Executor
	loc    location // host:path, for messages
	exists bool
	info   executors.FileInfo
	data   string
}

// read fetches the file. It refuses what it cannot edit in place: a
// directory, a device, and a symlink, which an atomic replace would turn
// into a regular file and so cut off from what it points to.
func (e *textEdit) read(ctx context.Context, rt *Runtime) (*editState, error) {
	st := &editState{loc: location{Host: rt.Host, Path: e.path}}
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.loc, err)
	}
	st.ex = ex
	fi, err := ex.Stat(ctx, e.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("stat %s: %w", st.loc, err)
	case !fi.Mode.IsRegular():
		return nil, fmt.Errorf("%s is a %s, not a regular file", st.loc, describeType(fi.Mode))
	}
	// Stat follows symlinks; the directory listing does not.
	entries, err := ex.ReadDir(ctx, path.Dir(e.path))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", location{rt.Host, path.Dir(e.path)}, err)
	}
	for _, de := range entries {
		if de.Name == path.Base(e.path) && de.Mode&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symlink: editing it would replace the link with a file; name the file it points to", st.loc)
		}
	}
	data, err := ex.ReadFile(ctx, e.path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", st.loc, err)
	}
	st.exists, st.info, st.data = true, fi, string(data)
	return st, nil
}

// plan reads the file and works out the edit. res is nil when the file
// is missing and may not be created (see create and missingDone).
func (e *textEdit) plan(ctx context.Context, rt *Runtime) (st *editState, res *editResult, err error) {
	if st, err = e.read(ctx, rt); err != nil {
		return nil, nil, err
	}
	if !st.exists && !e.create {
		return st, nil, nil
	}
	r, err := e.edit(st.data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", st.loc, err)
	}
	return st, &r, nil
}

// check is Spec.Check for an edit: done when the edit changes nothing.
func (e *textEdit) check(ctx context.Context, rt *Runtime) (Check, error) {
	st, res, err := e.plan(ctx, rt)
	switch {
	case err != nil:
		return Check{}, err
	case res == nil && e.missingDone:
		return Check{Done: true, Reason: st.loc.String() + " does not exist: nothing to remove"}, nil
	case res == nil:
		// Likely created by an earlier step that has not run (dry run);
		// Apply fails with the same words if it still does not exist.
		return Check{Unknown: true, Reason: st.loc.String() + " does not exist yet"}, nil
	case res.text == st.data:
		return Check{Done: true, Reason: st.loc.String() + " is already as wanted"}, nil
	}
	return Check{Reason: st.loc.String() + ": would " + strings.Join(res.what, ", ")}, nil
}

// describe is Spec.Describe for an edit: a summary and the diff.
func (e *textEdit) describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	loc := location{Host: rt.Host, Path: e.path}
	st, res, err := e.plan(ctx, rt)
	switch {
	case err != nil:
		return []Action{{Host: rt.Host, Summary: "edit " + loc.String()}}, err
	case res == nil && e.missingDone:
		return []Action{{Host: rt.Host, Summary: loc.String() + " does not exist: nothing to remove"}}, nil
	case res == nil:
		return []Action{{Host: rt.Host, Summary: "edit " + loc.String() + " (does not exist yet)"}}, nil
	case res.text == st.data:
		return []Action{{Host: rt.Host, Summary: loc.String() + " is already as wanted: no change"}}, nil
	}
	sum := "edit " + loc.String() + ": " + strings.Join(res.what, ", ")
	if st.exists {
		sum += " (backup: " + e.path + backupInfix + "<UTC time>)"
	} else {
		sum = fmt.Sprintf("create %s (mode %04o): %s", loc, e.newMode, strings.Join(res.what, ", "))
	}
	for _, n := range res.notes {
		sum += "; " + n
	}
	// The kinds mask what they know to be secret; Redact is the net under
	// them, for a secret value that turns up anywhere else in the file.
	diff := unifiedDiff(e.path, res.oldShow, res.newShow)
	return []Action{{
		Host:    rt.Host,
		Summary: rt.Secrets.Redact(secret.Mask(sum)),
		Diff:    rt.Secrets.Redact(secret.Mask(diff)),
	}}, nil
}

// apply is Spec.Apply for an edit. When the file already is as wanted it
// writes nothing, not even a backup. Otherwise it copies the file to a
// backup with the same mode and owner, replaces the file atomically (with
// that mode and owner too), and reads it back to prove the edit took.
func (e *textEdit) apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	st, res, err := e.plan(ctx, rt)
	switch {
	case err != nil:
		return Outcome{}, err
	case res == nil && e.missingDone:
		return Outcome{Output: st.loc.String() + " does not exist: nothing to remove"}, nil
	case res == nil:
		return Outcome{}, fmt.Errorf("%s does not exist (set create: true to create it)", st.loc)
	case res.text == st.data:
		return Outcome{Output: st.loc.String() + " is already as wanted"}, nil
	}

	attrs := executors.FileAttrs{Mode: e.newMode}
	var backup string
	if st.exists {
		// Numeric ids: names would be resolved again on the host and
		// could, in theory, map elsewhere; the ids are what the file had.
		attrs = executors.FileAttrs{
			Mode:  st.info.Mode.Perm(),
			Owner: strconv.Itoa(st.info.UID),
			Group: strconv.Itoa(st.info.GID),
		}
		if backup, err = e.backupName(ctx, st); err != nil {
			return Outcome{}, err
		}
		// WriteFile is atomic: the backup is whole or absent, never torn.
		if err := st.ex.WriteFile(ctx, backup, []byte(st.data), attrs); err != nil {
			return Outcome{}, fmt.Errorf("back up %s to %s: %w", st.loc, backup, err)
		}
	}
	out := Outcome{Changed: true, Output: strings.Join(res.what, ", ") + " in " + st.loc.String()}
	if backup != "" {
		out.Output += "; backup at " + backup
	}
	if err := st.ex.WriteFile(ctx, e.path, []byte(res.text), attrs); err != nil {
		// Changed stays true: whether the rename happened is not known
		// for certain after, say, a lost connection.
		return out, fmt.Errorf("write %s: %w", st.loc, err)
	}
	if err := e.recheck(ctx, st, res.text, attrs); err != nil {
		if backup != "" {
			err = fmt.Errorf("%w (the file before the edit is at %s)", err, backup)
		}
		return out, err
	}
	return out, nil
}

// recheck reads the file back after the write: the bytes, what they
// parse to, and the mode and owner.
func (e *textEdit) recheck(ctx context.Context, st *editState, want string, attrs executors.FileAttrs) error {
	got, err := st.ex.ReadFile(ctx, e.path)
	if err != nil {
		return fmt.Errorf("read %s back after writing it: %w", st.loc, err)
	}
	if string(got) != want {
		return fmt.Errorf("%s reads back different from what was written (%d bytes, want %d): was it changed meanwhile?", st.loc, len(got), len(want))
	}
	if err := e.verify(string(got)); err != nil {
		return fmt.Errorf("%s after the edit: %w", st.loc, err)
	}
	if !st.exists {
		return nil
	}
	fi, err := st.ex.Stat(ctx, e.path)
	if err != nil {
		return fmt.Errorf("stat %s after writing it: %w", st.loc, err)
	}
	if fi.Mode.Perm() != attrs.Mode || fi.UID != st.info.UID || fi.GID != st.info.GID {
		return fmt.Errorf("%s is now mode %04o owner %d:%d, want %04o %d:%d as before the edit",
			st.loc, fi.Mode.Perm(), fi.UID, fi.GID, attrs.Mode, st.info.UID, st.info.GID)
	}
	return nil
}

// backupName picks FILE.migrun-backup-STAMP, with .2, .3, ... after it
// should two edits fall in the same second: a backup is never overwritten.
func (e *textEdit) backupName(ctx context.Context, st *editState) (string, error) {
	base := e.path + backupInfix + time.Now().UTC().Format(backupStamp)
	name := base
	for n := 2; ; n++ {
		_, err := st.ex.Stat(ctx, name)
		if errors.Is(err, fs.ErrNotExist) {
			return name, nil
		}
		if err != nil {
			return "", fmt.Errorf("stat %s: %w", location{st.loc.Host, name}, err)
		}
		name = base + "." + strconv.Itoa(n)
	}
}

// validateFile checks a file field: an absolute path naming a file.
func validateFile(key, p string) []Problem {
	switch {
	case p == "":
		return []Problem{{key, "give the file to edit"}}
	case !path.IsAbs(p):
		return []Problem{{key, fmt.Sprintf("%q is not an absolute path", p)}}
	case strings.HasSuffix(p, "/") || path.Clean(p) == "/":
		return []Problem{{key, fmt.Sprintf("%q names a directory, not a file", p)}}
	}
	return nil
}

// revealed is a plan value with secrets revealed for writing, and how
// diffs show it.
type revealed struct {
	value string
	show  string
}

// hiddenValue shows a new value that is secret by its key but was given in
// clear in the plan: a password is still a password. It differs from the
// ******** of old values so that the diff shows the line changing.
const hiddenValue = "<hidden>"

// reveal resolves s for writing. A value holding a secret shows as its
// masked tokens; mask makes a value show as hiddenValue even without one.
func reveal(rt *Runtime, s string, mask bool) (revealed, error) {
	v, err := rt.Secrets.Reveal(s)
	if err != nil {
		return revealed{}, err
	}
	switch {
	case secret.Contains(s):
		return revealed{v, secret.Mask(s)}, nil
	case mask:
		return revealed{v, hiddenValue}, nil
	}
	return revealed{v, v}, nil
}

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
