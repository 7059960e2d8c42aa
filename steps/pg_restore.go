package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgRestoreKind = Kind{
	Name:      "pg_restore",
	Summary:   "restore a pg_dump archive into an empty PostgreSQL database, classifying pg_restore's errors",
	NeedsHost: true,
	New:       func() Spec { return new(PgRestore) },
}

var _ Spec = (*PgRestore)(nil)

// PgRestore runs pg_restore on the database host as the PostgreSQL OS user.
//
// pg_restore keeps going after an error and exits non-zero at the end, so
// its exit status says little: the kind reads its stderr, accepts errors
// known to be harmless (a non-superuser cannot comment on or own the
// extensions the target database already has) and fails on anything else,
// listing the first few.
//
// Restoring twice into the same database, or into one that holds data, is
// the classic way to end up with duplicate rows or a mix of two databases:
// the target must have no tables unless clean: true. Progress is recorded
// in a marker file beside the archive, FILE.migrun-restore.DATABASE (JSON:
// the database's name and OID, the archive's sha256, state started or
// done). The marker lives on the host rather than in the database so that
// the restored database carries no trace of migrun; the OID stands in for
// the database's identity, since a database dropped and recreated under the
// same name gets a new one.
//
// A marker belongs to the run that wrote it (Runtime.RunID) and to the
// server it is about (its system identifier): a cluster re-initialised
// after a rehearsal gives its first database of a name the same OID as
// before, and a marker of the rehearsal must not make the real run skip
// its restore. One of another run, of another server, or written by a
// version of migrun that recorded neither, is not this step's: the step
// does not take it as a record of its own progress.
//
// An attempt interrupted midway leaves a partly restored database and a
// "started" marker. The next attempt, seeing that marker for this archive
// and this very database, restores with --clean --if-exists: that drops
// exactly the objects the archive creates, which are the only ones a
// partial restore of it can have made, and restores them from scratch. It
// keeps the database itself, with its owner, encoding, locale and
// per-database settings (ALTER DATABASE ... SET lc_messages, which the
// oVirt engine wants), none of which dropdb/createdb would preserve.
type PgRestore struct {
	Database    string   `yaml:"database" required:"true" doc:"the database to restore into; it must exist (createdb with the owner, encoding and locale the application wants)"`
	File        string   `yaml:"file" required:"true" doc:"absolute path of the pg_dump archive on the host: a custom-format file or a directory"`
	Jobs        int      `yaml:"jobs" doc:"objects restored in parallel (pg_restore -j): data loads and index builds spread over cores"`
	Clean       bool     `yaml:"clean" doc:"restore into a database that is not empty, dropping the archive's objects first (--clean --if-exists); objects not in the archive stay"`
	NoOwner     bool     `yaml:"no_owner" doc:"do not give objects their archived owners (--no-owner): everything belongs to the restoring role"`
	Role        string   `yaml:"role" doc:"role to restore as (pg_restore --role, SET ROLE after connecting)"`
	AllowErrors []string `yaml:"allow_errors" doc:"extra regular expressions of pg_restore errors to accept as harmless, matched against the error and its \"Command was:\" line"`

	PgConnection `yaml:",inline"`
}

// Validate checks the path, the job count and the extra error patterns.
func (r *PgRestore) Validate() []Problem {
	ps := validateArchivePath("file", r.File)
	if r.Jobs < 0 {
		ps = append(ps, Problem{"jobs", fmt.Sprintf("jobs %d is negative", r.Jobs)})
	}
	ps = append(ps, validateAllowErrors(r.AllowErrors)...)
	return append(ps, r.PgConnection.validate("")...)
}

func (r *PgRestore) Hosts(stepHost string) []string { return []string{stepHost} }

func (r *PgRestore) target() pg.Target { return r.PgConnection.target(r.Database) }

// restoreMarkerPath is the marker of restores of file into database.
// The name is escaped so that any database name makes one file name.
func restoreMarkerPath(file, database string) string {
	return file + ".migrun-restore." + url.PathEscape(database)
}

// sameRestore reports whether m is about restoring this archive into this
// very database (same server, same OID) by this run.
func (r *PgRestore) sameRestore(m *pg.Marker, id pg.DatabaseID, runID string, dg pg.ArchiveDigest) bool {
	return m.OwnedBy(id, runID) && m.Database == r.Database && m.SocketDir == r.SocketDir && m.Port == r.Port &&
		m.SHA256 == dg.SHA256 && m.Size == dg.Size
}

func (r *PgRestore) readMarker(ctx context.Context, ex executors.Executor) (*pg.Marker, error) {
	return pg.ReadMarker(ctx, ex, restoreMarkerPath(r.File, r.Database))
}

func (r *PgRestore) writeMarker(ctx context.Context, ex executors.Executor, state string, id pg.DatabaseID, runID string, dg pg.ArchiveDigest) error {
	m := pg.Marker{State: state, Database: r.Database, DatabaseOID: id.OID, SystemID: id.SystemID, RunID: runID,
		SocketDir: r.SocketDir, Port: r.Port, SHA256: dg.SHA256, Size: dg.Size}
	return pg.WriteMarker(ctx, ex, restoreMarkerPath(r.File, r.Database), m)
}

// Check reports the restore done when the marker says this run restored
// this archive completely into the database that exists now.
func (r *PgRestore) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("%s: restore into database %s: %w", ex.Name(), r.Database, err)
	}
	if _, err := ex.Stat(ctx, r.File); errors.Is(err, fs.ErrNotExist) {
		return Check{Unknown: true, Reason: "archive " + r.File + " does not exist yet"}, nil
	} else if err != nil {
		return Check{}, wrap(err)
	}
	m, err := r.readMarker(ctx, ex)
	if err != nil {
		return Check{}, wrap(err)
	}
	if m == nil {
		return Check{Reason: "no restore of " + r.File + " into " + r.Database + " recorded"}, nil
	}
	id, err := pg.DatabaseIdentity(ctx, ex, r.PgConnection.target("postgres"), r.Database)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, wrap(err)
	}
	if id.OID == 0 {
		return Check{Unknown: true, Reason: "database " + r.Database + " does not exist yet"}, nil
	}
	dg, err := pg.DigestArchive(ctx, ex, r.File)
	if err != nil {
		return Check{}, wrap(err)
	}
	switch {
	case !m.OwnedBy(id, rt.RunID):
		return Check{Reason: restoreMarkerPath(r.File, r.Database) + " was left by " + m.Whose(id, rt.RunID) + " and is not this run's record of this database: restoring"}, nil
	case !r.sameRestore(m, id, rt.RunID, dg):
		return Check{Reason: restoreMarkerPath(r.File, r.Database) + " is about another archive or another database of that name: restoring"}, nil
	case m.State != "done":
		return Check{Reason: "an earlier restore of " + r.File + " into " + r.Database + " was interrupted: its objects will be dropped and restored again (--clean --if-exists)"}, nil
	}
	return Check{Done: true, Reason: "restored from " + r.File + " (sha256 " + hostcmd.ShortSum(dg.SHA256) + ") into " + r.Database + " at " + m.Time.Format(time.RFC3339)}, nil
}

// argv is the pg_restore command line; clean adds --clean --if-exists.
func (r *PgRestore) argv(clean bool) []string {
	argv := pg.RestoreArgv(r.target(), r.Jobs, r.NoOwner, r.Role, clean, r.File)
	// -v narrates each archive item as it is restored: the progress.
	return append([]string{argv[0], "-v"}, argv[1:]...)
}

func (r *PgRestore) command(clean bool) executors.Command {
	return pg.RestoreCommand(r.target(), r.argv(clean))
}

func (r *PgRestore) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	redo := false
	if ex, err := rt.Executor(ctx, rt.Host); err == nil && !r.Clean {
		redo = r.redoing(ctx, ex, rt.RunID)
	}
	cmd := r.command(r.Clean || redo)
	acts := []Action{}
	switch {
	case r.Clean:
		acts = append(acts, Action{Host: rt.Host, Summary: "the database " + r.Database + " may hold data: the archive's objects are dropped first"})
	case redo:
		acts = append(acts, Action{Host: rt.Host, Summary: "an interrupted restore of this archive by this run left tables in database " + r.Database + ": the archive's objects are dropped and restored again (--clean --if-exists)"})
	default:
		acts = append(acts, Action{Host: rt.Host, Summary: "refuse unless database " + r.Database + " has no tables (or an interrupted restore of this archive left them: then add --clean --if-exists)"})
	}
	acts = append(acts,
		Action{Host: rt.Host, Summary: "record the start in " + restoreMarkerPath(r.File, r.Database)},
		Action{Host: rt.Host, Summary: "run on " + rt.Host + " as " + r.target().RunAs() + ": " + hostcmd.EnvPrefix(cmd.Env) + executors.QuoteArgv(cmd.Argv)},
		Action{Host: rt.Host, Summary: "accept only errors known to be harmless (" + strings.Join(r.harmlessDescriptions(), "; ") + "), then record the restore as done"},
	)
	return acts, nil
}

// redoing reports whether Apply would redo, with --clean --if-exists, this
// run's interrupted restore of this archive into this database: the
// database holds tables and the marker is this run's record of this
// archive and database. Anything it cannot read says no: Apply then
// decides, and refuses what it cannot vouch for.
func (r *PgRestore) redoing(ctx context.Context, ex executors.Executor, runID string) bool {
	dg, err := pg.DigestArchive(ctx, ex, r.File)
	if err != nil {
		return false
	}
	id, err := pg.DatabaseIdentity(ctx, ex, r.PgConnection.target("postgres"), r.Database)
	if err != nil || id.OID == 0 {
		return false
	}
	if tables, err := r.userTables(ctx, ex); err != nil || len(tables) == 0 {
		return false
	}
	m, err := r.readMarker(ctx, ex)
	return err == nil && m != nil && m.OwnedBy(id, runID) && r.sameRestore(m, id, runID, dg)
}

// Apply refuses a non-empty target (unless clean or redoing an interrupted
// attempt of this step), marks the restore started, runs pg_restore,
// classifies its errors and marks the restore done.
func (r *PgRestore) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("%s: restore into database %s: %w", ex.Name(), r.Database, err)
	}
	harmless, err := r.harmless()
	if err != nil {
		return Outcome{}, wrap(err)
	}
	dg, err := pg.DigestArchive(ctx, ex, r.File)
	if err != nil {
		return Outcome{}, wrap(err)
	}
	id, err := pg.DatabaseIdentity(ctx, ex, r.PgConnection.target("postgres"), r.Database)
	if err != nil {
		return Outcome{}, wrap(err)
	}
	if id.OID == 0 {
		return Outcome{}, wrap(fmt.Errorf("the database does not exist: create it first, with the owner, encoding and locale it needs (createdb -O OWNER -E UTF8 --locale=en_US.UTF-8 -T template0 %s)", r.Database))
	}
	tables, err := r.userTables(ctx, ex)
	if err != nil {
		return Outcome{}, wrap(err)
	}
	clean, note := r.Clean, ""
	if len(tables) > 0 && !clean {
		m, err := r.readMarker(ctx, ex)
		if err != nil {
			return Outcome{}, wrap(err)
		}
		if m != nil && !m.OwnedBy(id, rt.RunID) {
			return Outcome{}, wrap(fmt.Errorf("the database is not empty (%s), and %s was left by %s and is not this run's record of this database: restore into an empty database (drop and re-create it), or set clean: true to drop the archive's objects first",
				describeTables(tables), restoreMarkerPath(r.File, r.Database), m.Whose(id, rt.RunID)))
		}
		if m == nil || !r.sameRestore(m, id, rt.RunID, dg) {
			return Outcome{}, wrap(fmt.Errorf("the database is not empty (%s): restore into an empty database, or set clean: true to drop the archive's objects first", describeTables(tables)))
		}
		// Ours, half done (or done and forced again): redo from scratch.
		clean, note = true, "an earlier restore of this archive into this database did not finish: its objects were dropped and restored again\n"
	}
	if err := r.writeMarker(ctx, ex, "started", id, rt.RunID, dg); err != nil {
		return Outcome{}, wrap(err)
	}

	cmd := r.command(clean)
	errs := &pg.RestoreLog{}
	out := executors.NewTail(outputTail)
	var w io.Writer = out
	if rt.Output != nil {
		w = io.MultiWriter(rt.Output, out)
	}
	total := r.archiveItems(ctx, ex)
	bar := progressOf(rt).Start(Task{Label: "pg_restore " + r.File + " into " + r.Database, Unit: UnitItems, Total: total})
	stderr := &lineProgress{w: io.MultiWriter(w, errs), bar: bar, limit: total, classify: pg.RestoreNarration}
	cmd.Stdout, cmd.Stderr = w, stderr
	_, runErr := ex.Run(ctx, cmd)
	stderr.Close()
	bar.Done(runErr)
	o := Outcome{Changed: true, Output: note + strings.TrimSpace(out.String())}
	// Cancelled, connection lost or errors: the marker stays "started".
	report, err := errs.Result(runErr, harmless, restoreRetryAdvice)
	if err != nil {
		return o, wrap(err)
	}
	if err := r.writeMarker(ctx, ex, "done", id, rt.RunID, dg); err != nil {
		return o, wrap(err)
	}
	o.Output = strings.TrimSpace(o.Output + "\n" + restoreSummary(report, r.File, r.Database, dg))
	return o, nil
}

// archiveItems counts the entries of the archive's table of contents
// (pg_restore -l), the progress total; -1 when it cannot be had.
func (r *PgRestore) archiveItems(ctx context.Context, ex executors.Executor) int64 {
	var n int64
	count := &lineProgress{w: io.Discard, bar: nopBar{}, classify: func(l string) (bool, bool) {
		if l != "" && !strings.HasPrefix(l, ";") {
			n++
		}
		return false, true
	}}
	cmd := r.target().ClientCommand([]string{"pg_restore", "-l", r.File}, true) // reads the archive only
	cmd.Stdout = count
	if _, err := ex.Run(ctx, cmd); err != nil {
		return -1
	}
	count.Close()
	return n
}

// userTables lists up to a few tables outside the system schemas, and
// their total count, to tell an empty database from one holding data.
func (r *PgRestore) userTables(ctx context.Context, ex executors.Executor) ([]string, error) {
	rows, err := pg.Query(ctx, ex, r.target(), `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND `+pg.UserSchemasSQL+` ORDER BY 1;
`)
	if err != nil {
		return nil, err
	}
	tables := make([]string, len(rows))
	for i, row := range rows {
		tables[i] = row[0]
	}
	return tables, nil
}

func describeTables(tables []string) string {
	const show = 3
	if len(tables) <= show {
		return hostcmd.Plural(len(tables), "table", "tables") + ": " + strings.Join(tables, ", ")
	}
	return fmt.Sprintf("%d tables: %s, …", len(tables), strings.Join(tables[:show], ", "))
}

func (r *PgRestore) harmlessDescriptions() []string { return pg.HarmlessDescriptions(r.AllowErrors) }

func (r *PgRestore) harmless() ([]*regexp.Regexp, error) { return pg.HarmlessPatterns(r.AllowErrors) }

// restoreRetryAdvice ends pg_restore's error: a retry redoes the restore.
const restoreRetryAdvice = "the database is partly restored; accept a harmless error with allow_errors, or fix the cause and apply again (the restore is then redone from scratch)"

// restoreSummary is the Outcome line of a restore.
func restoreSummary(rep pg.RestoreReport, file, database string, dg pg.ArchiveDigest) string {
	s := fmt.Sprintf("restored %s (%s, sha256 %s) into %s", file, bytesize.Format(dg.Size), hostcmd.ShortSum(dg.SHA256), database)
	return s + rep.AcceptedNote()
}
