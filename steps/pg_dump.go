package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgDumpKind = Kind{
	Name:      "pg_dump",
	Summary:   "dump a PostgreSQL database to a custom or directory archive, with size and sha256 recorded",
	NeedsHost: true,
	New:       func() Spec { return new(PgDump) },
}

var _ Spec = (*PgDump)(nil)

// PgDump runs pg_dump on the database host as the PostgreSQL OS user.
//
// The archive is written under FILE.migrun-part and renamed into place only
// when pg_dump succeeded, so an interrupted dump never sits at FILE; then a
// sidecar FILE.migrun-meta records what the archive is (database, format,
// size, sha256). Check reuses an archive only when the sidecar matches the
// file as it is now: complete and unmodified.
//
// A dump must be taken after the application writing the database stopped;
// the runner runs steps in order, so a reused dump is one this plan made.
type PgDump struct {
	Database string `yaml:"database" required:"true" doc:"the database to dump"`
	File     string `yaml:"file" required:"true" doc:"absolute path of the archive on the host (a directory for format: directory); the os_user must be able to write its directory"`
	Format   string `yaml:"format" enum:"custom|directory" default:"custom" doc:"pg_dump -F c (one file) or -F d (a directory, which allows jobs)"`
	Jobs     int    `yaml:"jobs" doc:"tables dumped in parallel (pg_dump -j); format: directory only"`
	Compress string `yaml:"compress" enum:"0|1|2|3|4|5|6|7|8|9" doc:"gzip level (pg_dump -Z); 0 is none; default pg_dump's own (6)"`

	PgConnection `yaml:",inline"`
}

func (d *PgDump) format() string {
	if d.Format == "" {
		return "custom"
	}
	return d.Format
}

// Validate checks what the tags cannot: an absolute file, jobs only where
// pg_dump accepts them.
func (d *PgDump) Validate() []Problem {
	var ps []Problem
	ps = append(ps, validateArchivePath("file", d.File)...)
	switch {
	case d.Jobs < 0:
		ps = append(ps, Problem{"jobs", fmt.Sprintf("jobs %d is negative", d.Jobs)})
	case d.Jobs > 1 && d.format() != "directory":
		// pg_dump itself refuses, but only once the step runs.
		ps = append(ps, Problem{"jobs", "pg_dump runs parallel jobs only with format: directory"})
	}
	return append(ps, d.PgConnection.validate("")...)
}

func (d *PgDump) Hosts(stepHost string) []string { return []string{stepHost} }

// metaPath is the sidecar describing a complete archive.
func metaPath(file string) string { return file + ".migrun-meta" }

// dumpMeta is the sidecar's content. Finished is for people; it takes no
// part in the comparison.
type dumpMeta struct {
	Database string `json:"database"`
	Format   string `json:"format"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	// RunID is the run that made the dump (see Runtime.RunID).
	RunID    string    `json:"run_id"`
	Finished time.Time `json:"finished"`
}

// matches reports why m does not describe an archive of database in
// format whose digest is got ("" when it does).
func (m dumpMeta) mismatch(database, format string, got pg.ArchiveDigest) string {
	switch {
	case m.Database != database:
		return fmt.Sprintf("it is a dump of database %q, not %q", m.Database, database)
	case m.Format != format:
		return fmt.Sprintf("it is a %s dump, not %s", m.Format, format)
	case m.Size != got.Size || m.SHA256 != got.SHA256:
		return fmt.Sprintf("it changed since it was dumped (recorded %d bytes, sha256 %s; now %d bytes, sha256 %s)",
			m.Size, hostcmd.ShortSum(m.SHA256), got.Size, hostcmd.ShortSum(got.SHA256))
	}
	return ""
}

// Check reports the dump done when FILE exists and its sidecar describes
// it exactly (database, format, size, sha256).
func (d *PgDump) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	why, err := d.reusable(ctx, ex, rt.RunID)
	if err != nil {
		return Check{}, fmt.Errorf("%s: dump of %s: %w", ex.Name(), d.Database, err)
	}
	if why != "" {
		return Check{Reason: why}, nil
	}
	return Check{Done: true, Reason: "complete dump of " + d.Database + " at " + d.File + " (size and sha256 match " + metaPath(d.File) + ")"}, nil
}

// reusable returns "" when the archive at FILE is a complete dump this
// step would make, else the reason it is not.
//
// A dump is reused only by the run that made it (a resume): a dump left by
// an earlier rehearsal is complete but stale, and restoring it would lose
// everything written since. A dry run has no run yet, so it says it would
// dump again.
func (d *PgDump) reusable(ctx context.Context, ex executors.Executor, runID string) (string, error) {
	if _, err := ex.Stat(ctx, d.File); errors.Is(err, fs.ErrNotExist) {
		return "no dump at " + d.File + " yet", nil
	} else if err != nil {
		return "", err
	}
	data, err := ex.ReadFile(ctx, metaPath(d.File))
	if errors.Is(err, fs.ErrNotExist) {
		return d.File + " exists but " + metaPath(d.File) + " does not: not known to be a complete dump; dumping again", nil
	} else if err != nil {
		return "", err
	}
	var m dumpMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return metaPath(d.File) + " is unreadable (" + err.Error() + "); dumping again", nil
	}
	got, err := pg.DigestArchive(ctx, ex, d.File)
	if errors.Is(err, fs.ErrNotExist) {
		return d.File + " is not a complete " + d.format() + " archive; dumping again", nil
	} else if err != nil {
		return "", err
	}
	if got.Format != d.format() {
		return fmt.Sprintf("%s is a %s archive, not %s; dumping again", d.File, got.Format, d.format()), nil
	}
	if why := m.mismatch(d.Database, d.format(), got); why != "" {
		return d.File + ": " + why + "; dumping again", nil
	}
	if runID == "" || m.RunID != runID {
		return fmt.Sprintf("%s is a complete dump from an earlier run (finished %s); a migration dumps afresh", d.File, m.Finished.Format(time.RFC3339)), nil
	}
	return "", nil
}

// argv is the pg_dump command line writing to out.
func (d *PgDump) argv(out string) []string {
	// -v narrates each table's data as it is dumped: the progress.
	argv := []string{"pg_dump", "-v", "-F", d.format()[:1]}
	if d.Jobs > 1 {
		argv = append(argv, "-j", strconv.Itoa(d.Jobs))
	}
	if d.Compress != "" {
		argv = append(argv, "-Z", d.Compress)
	}
	argv = append(argv, d.target().ConnArgv()...)
	return append(argv, "-f", out, d.Database)
}

func (d *PgDump) target() pg.Target { return d.PgConnection.target(d.Database) }

func (d *PgDump) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	part := hostcmd.PartPath(d.File)
	return []Action{
		{Host: rt.Host, Summary: "remove a leftover " + part + " of an interrupted dump, if any"},
		{Host: rt.Host, Summary: "run on " + rt.Host + " as " + d.target().RunAs() + ": " + hostcmd.EnvPrefix(d.target().ClientCommand(nil, false).Env) + executors.QuoteArgv(d.argv(part))},
		{Host: rt.Host, Summary: "rename " + part + " to " + d.File + " (replacing it) and record database, format, size and sha256 in " + metaPath(d.File)},
	}, nil
}

// Apply dumps to the part path, renames it over FILE and writes the
// sidecar last: the sidecar exists only for a finished, renamed archive.
func (d *PgDump) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("%s: pg_dump of database %s: %w", ex.Name(), d.Database, err)
	}
	part := hostcmd.PartPath(d.File)
	// The old sidecar goes first: from here on FILE is not a known dump
	// until the new one is written.
	if err := ex.Remove(ctx, metaPath(d.File)); err != nil {
		return Outcome{}, wrap(err)
	}
	if err := removeTree(ctx, ex, part); err != nil {
		return Outcome{}, wrap(err)
	}

	cmd := d.target().ClientCommand(d.argv(part), false)
	tail := executors.NewTail(outputTail)
	var w io.Writer = tail
	if rt.Output != nil {
		w = io.MultiWriter(rt.Output, tail)
	}
	total := d.tablesWithData(ctx, ex)
	bar := progressOf(rt).Start(Task{Label: "pg_dump " + d.Database + " on " + ex.Name(), Unit: UnitTables, Total: total})
	lp := &lineProgress{w: w, bar: bar, limit: total, classify: func(l string) (bool, bool) {
		if strings.HasPrefix(l, "pg_dump: dumping contents of table ") {
			return true, true
		}
		// The rest of -v's narration ("reading tables", "saving
		// encoding", "finished item ...") is dropped; errors and
		// warnings stay.
		return false, strings.HasPrefix(l, "pg_dump: ") && !strings.HasPrefix(l, "pg_dump: error") && !strings.HasPrefix(l, "pg_dump: warning") &&
			!strings.HasPrefix(l, "pg_dump: detail") && !strings.HasPrefix(l, "pg_dump: hint")
	}}
	cmd.Stdout, cmd.Stderr = lp, lp
	_, err = ex.Run(ctx, cmd)
	lp.Close()
	bar.Done(err)
	if err != nil {
		return Outcome{Changed: true, Output: tail.String()}, wrap(err)
	}

	dg, err := pg.DigestArchive(ctx, ex, part)
	if err != nil {
		return Outcome{Changed: true}, wrap(err)
	}
	if d.format() == "directory" {
		// rename(2) will not replace a non-empty directory.
		if err := removeTree(ctx, ex, d.File); err != nil {
			return Outcome{Changed: true}, wrap(err)
		}
	}
	if err := ex.Rename(ctx, part, d.File); err != nil {
		return Outcome{Changed: true}, wrap(err)
	}
	m := dumpMeta{Database: d.Database, Format: d.format(), Size: dg.Size, SHA256: dg.SHA256, RunID: rt.RunID, Finished: time.Now().UTC().Truncate(time.Second)}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Outcome{Changed: true}, wrap(err)
	}
	if err := ex.WriteFile(ctx, metaPath(d.File), append(data, '\n'), executors.FileAttrs{Mode: 0o644}); err != nil {
		return Outcome{Changed: true}, wrap(err)
	}
	what := "sha256 " + dg.SHA256
	if d.format() == "directory" {
		what = "toc.dat sha256 " + dg.SHA256
	}
	out := strings.TrimSpace(tail.String())
	if out != "" {
		out += "\n"
	}
	return Outcome{Changed: true, Output: out + fmt.Sprintf("dumped %s to %s: %s, %s", d.Database, d.File, bytesize.Format(dg.Size), what)}, nil
}

// removeTree removes p and everything under it; a missing p is fine. It
// refuses anything but an absolute clean path below the root, as a last
// guard around rm -rf.
func removeTree(ctx context.Context, ex executors.Executor, p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("refusing to remove %q", p)
	}
	fi, err := ex.Stat(ctx, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.IsDir():
		return ex.Remove(ctx, p)
	}
	_, err = ex.Run(ctx, executors.Command{Argv: []string{"rm", "-rf", "--", p}})
	return err
}

// tablesWithData counts the tables whose rows pg_dump dumps (ordinary
// tables and partitions outside the system schemas and extensions), for
// the progress total; -1 when the count cannot be had (progress is never
// worth failing a dump for).
func (d *PgDump) tablesWithData(ctx context.Context, ex executors.Executor) int64 {
	rows, err := pg.Probe(ctx, ex, d.target(), `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND `+pg.UserSchemasSQL+`
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e');`, "")
	if err != nil || len(rows) != 1 || len(rows[0]) != 1 {
		return -1
	}
	n, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		return -1
	}
	return n
}
