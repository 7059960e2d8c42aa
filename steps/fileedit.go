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
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/textedit"
)

// This file holds what the kinds that edit a text file in place share
// (ovirt_db_conf, config_set, line): reading the file, rendering the edit as
// a diff with secrets masked, and writing it safely: a backup copy first,
// then an atomic replace with the old mode and owner, then a re-read that
// checks the file says what was meant. The key-value edit, its formats and
// the diff are in steps/internal/textedit.

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

// fileOn names a file as a plan writes it: HOST:/path, or /path for one on
// the workstation.
func fileOn(host, file string) string {
	if host == "" {
		return file
	}
	return host + ":" + file
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
	diff := textedit.UnifiedDiff(e.path, res.oldShow, res.newShow)
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
