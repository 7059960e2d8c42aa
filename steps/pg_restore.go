package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/executors"
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

// validateAllowErrors checks that every allow_errors pattern compiles.
func validateAllowErrors(allow []string) []Problem {
	var ps []Problem
	for i, re := range allow {
		if _, err := regexp.Compile(re); err != nil {
			ps = append(ps, Problem{fmt.Sprintf("allow_errors[%d]", i), err.Error()})
		}
	}
	return ps
}

func (r *PgRestore) Hosts(stepHost string) []string { return []string{stepHost} }

func (r *PgRestore) target() pg.Target { return r.PgConnection.target(r.Database) }

// restoreMarkerPath is the marker of restores of file into database.
// The name is escaped so that any database name makes one file name.
func restoreMarkerPath(file, database string) string {
	return file + ".migrun-restore." + url.PathEscape(database)
}

// restoreMarker is the marker's content.
type restoreMarker struct {
	State  string `json:"state"`            // "started" or "done"
	Source string `json:"source,omitempty"` // pg_stream, pg_replicate: the database streamed from
	// SubscriptionOID: pg_replicate's subscription, which names the
	// table-sync slots it may leave on the source.
	SubscriptionOID int64     `json:"subscription_oid,omitempty"`
	Database        string    `json:"database"`
	DatabaseOID     int64     `json:"database_oid"`
	SocketDir       string    `json:"socket_dir,omitempty"`
	Port            int       `json:"port,omitempty"`
	SHA256          string    `json:"sha256"`
	Size            int64     `json:"size"`
	Time            time.Time `json:"time"`
	// SystemID is the target server's system identifier, RunID the run
	// that wrote the marker: see PgRestore.
	SystemID string `json:"system_identifier,omitempty"`
	RunID    string `json:"run_id,omitempty"`
}

// sameRestore reports whether m is about restoring this archive into this
// very database (same server, same OID) by this run.
func (m restoreMarker) sameRestore(r *PgRestore, id pg.DatabaseID, runID string, dg archiveDigest) bool {
	return m.ownedBy(id, runID) && m.Database == r.Database && m.SocketDir == r.SocketDir && m.Port == r.Port &&
		m.SHA256 == dg.SHA256 && m.Size == dg.Size
}

// ownedBy reports whether m was written by run runID about the database
// identified by id. A dry run of a fresh run has no run id and owns no
// marker; nor does a run own one without a run id or a system identifier
// (written by an older migrun).
func (m restoreMarker) ownedBy(id pg.DatabaseID, runID string) bool {
	return runID != "" && m.RunID == runID && m.SystemID != "" && m.SystemID == id.SystemID && m.DatabaseOID == id.OID
}

// whose says, for a refusal, what left a marker that is not this run's.
func (m restoreMarker) whose(id pg.DatabaseID, runID string) string {
	at := m.Time.Format(time.RFC3339)
	switch {
	case m.RunID == "" || m.SystemID == "":
		return "an earlier run of an older migrun (" + m.State + " at " + at + ")"
	case m.RunID != runID:
		return "an earlier run, " + m.RunID + " (" + m.State + " at " + at + ")"
	case m.SystemID != id.SystemID:
		return "this run on another server, system identifier " + m.SystemID + " (" + m.State + " at " + at + ")"
	}
	return fmt.Sprintf("this run on another database of that name, OID %d (%s at %s)", m.DatabaseOID, m.State, at)
}

func (r *PgRestore) readMarker(ctx context.Context, ex executors.Executor) (*restoreMarker, error) {
	return readRestoreMarker(ctx, ex, restoreMarkerPath(r.File, r.Database))
}

// readRestoreMarker reads the marker at p; nil when there is none.
func readRestoreMarker(ctx context.Context, ex executors.Executor, p string) (*restoreMarker, error) {
	data, err := ex.ReadFile(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var m restoreMarker
	if err := json.Unmarshal(data, &m); err != nil {
		// A torn or foreign file proves nothing: treat it as absent.
		return nil, nil
	}
	return &m, nil
}

func (r *PgRestore) writeMarker(ctx context.Context, ex executors.Executor, state string, id pg.DatabaseID, runID string, dg archiveDigest) error {
	m := restoreMarker{State: state, Database: r.Database, DatabaseOID: id.OID, SystemID: id.SystemID, RunID: runID,
		SocketDir: r.SocketDir, Port: r.Port, SHA256: dg.SHA256, Size: dg.Size}
	return writeRestoreMarker(ctx, ex, restoreMarkerPath(r.File, r.Database), m)
}

// writeRestoreMarker stamps m with the time and replaces the marker at p.
func writeRestoreMarker(ctx context.Context, ex executors.Executor, p string, m restoreMarker) error {
	m.Time = time.Now().UTC().Truncate(time.Second)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return ex.WriteFile(ctx, p, append(data, '\n'), executors.FileAttrs{Mode: 0o644})
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
	id, err := pg.DatabaseIdentity(ctx, ex, r.PgConnection.target(""), r.Database)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the server is not reachable yet: " + firstLine(err)}, nil
	} else if err != nil {
		return Check{}, wrap(err)
	}
	if id.OID == 0 {
		return Check{Unknown: true, Reason: "database " + r.Database + " does not exist yet"}, nil
	}
	dg, err := digestArchive(ctx, ex, r.File)
	if err != nil {
		return Check{}, wrap(err)
	}
	switch {
	case !m.ownedBy(id, rt.RunID):
		return Check{Reason: restoreMarkerPath(r.File, r.Database) + " was left by " + m.whose(id, rt.RunID) + " and is not this run's record of this database: restoring"}, nil
	case !m.sameRestore(r, id, rt.RunID, dg):
		return Check{Reason: restoreMarkerPath(r.File, r.Database) + " is about another archive or another database of that name: restoring"}, nil
	case m.State != "done":
		return Check{Reason: "an earlier restore of " + r.File + " into " + r.Database + " was interrupted: its objects will be dropped and restored again (--clean --if-exists)"}, nil
	}
	return Check{Done: true, Reason: "restored from " + r.File + " (sha256 " + shortSum(dg.SHA256) + ") into " + r.Database + " at " + m.Time.Format(time.RFC3339)}, nil
}

// argv is the pg_restore command line; clean adds --clean --if-exists.
func (r *PgRestore) argv(clean bool) []string {
	argv := restoreArgv(r.target(), r.Jobs, r.NoOwner, r.Role, clean, r.File)
	// -v narrates each archive item as it is restored: the progress.
	return append([]string{argv[0], "-v"}, argv[1:]...)
}

// restoreArgv is a pg_restore command line into t's database. file ""
// reads the archive from standard input (pg_stream).
func restoreArgv(t pg.Target, jobs int, noOwner bool, role string, clean bool, file string) []string {
	argv := append([]string{"pg_restore", "-d", t.Database}, t.ConnArgv()...)
	if jobs > 1 {
		argv = append(argv, "-j", strconv.Itoa(jobs))
	}
	if noOwner {
		argv = append(argv, "--no-owner")
	}
	if role != "" {
		argv = append(argv, "--role="+role)
	}
	if clean {
		argv = append(argv, "--clean", "--if-exists")
	}
	if file != "" {
		argv = append(argv, file)
	}
	return argv
}

// restoreOptions speed up the restore session (field notes): index and
// constraint builds dominate, and nothing is lost by not waiting for each
// commit's WAL flush, since an interrupted restore is redone anyway.
var restoreOptions = []string{"-c maintenance_work_mem=512MB", "-c synchronous_commit=off"}

func (r *PgRestore) command(clean bool) executors.Command {
	return restoreCommand(r.target(), r.argv(clean))
}

// restoreCommand runs pg_restore argv as t's OS user with restoreOptions.
func restoreCommand(t pg.Target, argv []string) executors.Command {
	return t.ClientCommand(argv, false, restoreOptions...)
}

func (r *PgRestore) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	cmd := r.command(r.Clean)
	acts := []Action{}
	if r.Clean {
		acts = append(acts, Action{Host: rt.Host, Summary: "the database " + r.Database + " may hold data: the archive's objects are dropped first"})
	} else {
		acts = append(acts, Action{Host: rt.Host, Summary: "refuse unless database " + r.Database + " has no tables (or an interrupted restore of this archive left them: then add --clean --if-exists)"})
	}
	acts = append(acts,
		Action{Host: rt.Host, Summary: "record the start in " + restoreMarkerPath(r.File, r.Database)},
		Action{Host: rt.Host, Summary: "run on " + rt.Host + " as " + r.target().RunAs() + ": " + describeEnv(cmd.Env) + executors.QuoteArgv(cmd.Argv)},
		Action{Host: rt.Host, Summary: "accept only errors known to be harmless (" + strings.Join(r.harmlessDescriptions(), "; ") + "), then record the restore as done"},
	)
	return acts, nil
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
	dg, err := digestArchive(ctx, ex, r.File)
	if err != nil {
		return Outcome{}, wrap(err)
	}
	id, err := pg.DatabaseIdentity(ctx, ex, r.PgConnection.target(""), r.Database)
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
		if m != nil && !m.ownedBy(id, rt.RunID) {
			return Outcome{}, wrap(fmt.Errorf("the database is not empty (%s), and %s was left by %s and is not this run's record of this database: restore into an empty database (drop and re-create it), or set clean: true to drop the archive's objects first",
				describeTables(tables), restoreMarkerPath(r.File, r.Database), m.whose(id, rt.RunID)))
		}
		if m == nil || !m.sameRestore(r, id, rt.RunID, dg) {
			return Outcome{}, wrap(fmt.Errorf("the database is not empty (%s): restore into an empty database, or set clean: true to drop the archive's objects first", describeTables(tables)))
		}
		// Ours, half done (or done and forced again): redo from scratch.
		clean, note = true, "an earlier restore of this archive into this database did not finish: its objects were dropped and restored again\n"
	}
	if err := r.writeMarker(ctx, ex, "started", id, rt.RunID, dg); err != nil {
		return Outcome{}, wrap(err)
	}

	cmd := r.command(clean)
	errs := &restoreErrors{}
	out := executors.NewTail(outputTail)
	var w io.Writer = out
	if rt.Output != nil {
		w = io.MultiWriter(rt.Output, out)
	}
	total := r.archiveItems(ctx, ex)
	bar := progressOf(rt).Start(Task{Label: "pg_restore " + r.File + " into " + r.Database, Unit: UnitItems, Total: total})
	stderr := &lineProgress{w: io.MultiWriter(w, errs), bar: bar, limit: total, classify: restoreNarration}
	cmd.Stdout, cmd.Stderr = w, stderr
	_, runErr := ex.Run(ctx, cmd)
	stderr.Close()
	bar.Done(runErr)
	o := Outcome{Changed: true, Output: note + strings.TrimSpace(out.String())}
	// Cancelled, connection lost or errors: the marker stays "started".
	report, err := errs.result(runErr, harmless, restoreRetryAdvice)
	if err != nil {
		return o, wrap(err)
	}
	if err := r.writeMarker(ctx, ex, "done", id, rt.RunID, dg); err != nil {
		return o, wrap(err)
	}
	o.Output = strings.TrimSpace(o.Output + "\n" + report.summary(r.File, r.Database, dg))
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
	cmd := r.target().ClientCommand([]string{"pg_restore", "-l", r.File}, false)
	cmd.Stdout = count
	if _, err := ex.Run(ctx, cmd); err != nil {
		return -1
	}
	count.Close()
	return n
}

// restoreNarration classifies pg_restore -v's lines: each archive item
// restored counts one; the narration is dropped; errors, warnings and
// their context stay for the classifier and the output. With -j the
// workers write to one pipe a piece at a time, so one line may hold
// several messages: each "pg_restore: " in it is looked at.
func restoreNarration(l string) (count, drop bool) {
	if !strings.Contains(l, restorePrefix) {
		return false, false
	}
	n, keep := 0, !strings.HasPrefix(l, restorePrefix)
	for _, msg := range strings.Split(l, restorePrefix)[1:] {
		switch {
		case hasAnyPrefix(msg, "creating ", "processing data for table ", "executing ", "setting owner and privileges for "):
			n++
		case hasAnyPrefix(msg, "error: ", "warning: ", "from TOC entry ", "while ", "detail: ", "hint: "):
			keep = true
		}
	}
	return n > 0, !keep
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
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
		return plural(len(tables), "table", "tables") + ": " + strings.Join(tables, ", ")
	}
	return fmt.Sprintf("%d tables: %s, …", len(tables), strings.Join(tables[:show], ", "))
}

// defaultHarmless are the pg_restore errors that leave a complete restore:
// the target already has the extension (CREATE EXTENSION IF NOT EXISTS
// succeeded) but the restoring role does not own it, so it cannot comment
// on it; and the public schema that every new database already has.
var defaultHarmless = []struct {
	re   *regexp.Regexp
	desc string
}{
	{regexp.MustCompile(`must be owner of extension (plpgsql|uuid-ossp)\b`), "must be owner of extension plpgsql/uuid-ossp"},
	{regexp.MustCompile(`schema "public" already exists`), `schema "public" already exists`},
	{regexp.MustCompile(`(?m)^Command was: COMMENT ON EXTENSION `), "errors of COMMENT ON EXTENSION"},
}

func (r *PgRestore) harmlessDescriptions() []string { return harmlessDescriptions(r.AllowErrors) }

// harmlessDescriptions names the accepted errors for a dry run: the
// defaults, then the allow_errors patterns.
func harmlessDescriptions(allow []string) []string {
	var d []string
	for _, h := range defaultHarmless {
		d = append(d, h.desc)
	}
	for _, a := range allow {
		d = append(d, "/"+a+"/")
	}
	return d
}

func (r *PgRestore) harmless() ([]*regexp.Regexp, error) { return harmlessPatterns(r.AllowErrors) }

// harmlessPatterns compiles the accepted error patterns, defaults first.
func harmlessPatterns(allow []string) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for _, h := range defaultHarmless {
		res = append(res, h.re)
	}
	for _, a := range allow {
		re, err := regexp.Compile(a)
		if err != nil {
			return nil, fmt.Errorf("allow_errors %q: %w", a, err)
		}
		res = append(res, re)
	}
	return res, nil
}

// restoreError is one error pg_restore reported.
type restoreError struct {
	Entry   string // "from TOC entry 215; 1259 16386 TABLE t engine", if given
	Message string // "could not execute query: ERROR:  role \"engine\" does not exist" (+ DETAIL/HINT lines)
	Command string // the first line of "Command was: ..."
}

// text is what the harmless patterns are matched against.
func (e restoreError) text() string {
	s := e.Message
	if e.Command != "" {
		s += "\nCommand was: " + e.Command
	}
	return s
}

func (e restoreError) String() string {
	s := e.Message
	if e.Entry != "" {
		s = e.Entry + ": " + s
	}
	if e.Command != "" {
		s += "\nCommand was: " + e.Command
	}
	return s
}

// restoreErrors parses pg_restore's stderr as it streams, keeping every
// error (with its TOC entry and command) and the count pg_restore reports
// at the end. pg_restore 15 writes:
//
//	pg_restore: while PROCESSING TOC:
//	pg_restore: from TOC entry 215; 1259 16386 TABLE t engine
//	pg_restore: error: could not execute query: ERROR:  role "engine" does not exist
//	Command was: ALTER TABLE public.t OWNER TO engine;
//	pg_restore: warning: errors ignored on restore: 1
type restoreErrors struct {
	mu       sync.Mutex
	lines    lineSplitter
	entry    string
	cur      *restoreError // the error whose continuation lines may follow
	inCmd    bool          // cur's "Command was:" started: further lines are its SQL
	errors   []restoreError
	reported int // "errors ignored on restore: N"
}

func (p *restoreErrors) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines.feed(b, p.lineBytes)
	return len(b), nil
}

func (p *restoreErrors) lineBytes(b []byte) { p.line(strings.TrimSuffix(string(b), "\n")) }

// flush parses a last line that had no newline.
func (p *restoreErrors) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines.flush(p.lineBytes)
	p.end()
}

const (
	restorePrefix   = "pg_restore: "
	restoreErrorPfx = "pg_restore: error: "
	restoreEntryPfx = "pg_restore: from TOC entry "
	restoreIgnored  = "pg_restore: warning: errors ignored on restore: "
	restoreCmdPfx   = "Command was: "
)

// maxContinuation bounds the DETAIL/HINT lines kept per error.
const maxContinuation = 4

func (p *restoreErrors) line(l string) {
	l = strings.TrimRight(l, "\r")
	switch {
	case strings.HasPrefix(l, restoreErrorPfx):
		p.end()
		p.cur = &restoreError{Entry: p.entry, Message: strings.TrimPrefix(l, restoreErrorPfx)}
		p.entry = ""
	case strings.HasPrefix(l, restoreEntryPfx):
		p.end()
		p.entry = strings.TrimPrefix(l, restorePrefix)
	case strings.HasPrefix(l, restoreIgnored):
		p.end()
		p.reported, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, restoreIgnored)))
	case strings.HasPrefix(l, restorePrefix):
		p.end() // "while PROCESSING TOC:", warnings, progress
	case p.cur == nil:
	case strings.HasPrefix(l, restoreCmdPfx):
		p.cur.Command = strings.TrimPrefix(l, restoreCmdPfx)
		p.inCmd = true
	case l == "" || p.inCmd:
		// The blank line that ends an error, or the rest of a multi-line
		// command: the first line identifies it well enough.
	case strings.Count(p.cur.Message, "\n") < maxContinuation:
		p.cur.Message += "\n" + l // DETAIL:, HINT:, LINE 1: ...
	}
}

// end closes the error being read, if any.
func (p *restoreErrors) end() {
	if p.cur != nil {
		p.errors = append(p.errors, *p.cur)
		p.cur, p.inCmd = nil, false
	}
}

// restoreReport is the classification of one restore's errors.
type restoreReport struct {
	accepted map[string]int // harmless errors by first message line
	failures []restoreError
	unparsed int // errors pg_restore counted that no error line matched
}

// classify splits the errors into accepted and failures. When pg_restore
// counted more errors than were parsed, the difference counts as failed:
// an error not understood is not an error known to be harmless.
func (p *restoreErrors) classify(harmless []*regexp.Regexp) restoreReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := restoreReport{accepted: map[string]int{}}
	for _, e := range p.errors {
		ok := false
		for _, re := range harmless {
			if re.MatchString(e.text()) {
				ok = true
				break
			}
		}
		if ok {
			first, _, _ := strings.Cut(e.Message, "\n")
			rep.accepted[first]++
		} else {
			rep.failures = append(rep.failures, e)
		}
	}
	// The count covers errors of the query phase only ("ignored"); fatal
	// errors come on top, so only a larger count reveals a missed line.
	if n := p.reported - len(p.errors); n > 0 {
		rep.unparsed = n
		rep.failures = append(rep.failures, restoreError{Message: fmt.Sprintf("%d more errors counted by pg_restore that migrun could not read; see the output", n)})
	}
	return rep
}

// result flushes the parser and judges a finished pg_restore: runErr is
// what Run returned. A run that did not end by itself (cancelled,
// connection lost) is its own error; errors not known to be harmless fail
// it, with advice, the last line, saying what to do next.
func (p *restoreErrors) result(runErr error, harmless []*regexp.Regexp, advice string) (restoreReport, error) {
	p.flush()
	var exit *executors.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return restoreReport{}, runErr
	}
	report := p.classify(harmless)
	switch {
	case len(report.failures) > 0:
		return report, report.errAdvice(advice)
	case runErr != nil && report.total() == 0:
		// A non-zero exit with no error line at all: nothing to classify,
		// so nothing to call harmless.
		return report, fmt.Errorf("pg_restore failed: %w", runErr)
	}
	return report, nil
}

// maxListed is how many failing errors an error message lists.
const maxListed = 5

// restoreRetryAdvice ends pg_restore's error: a retry redoes the restore.
const restoreRetryAdvice = "the database is partly restored; accept a harmless error with allow_errors, or fix the cause and apply again (the restore is then redone from scratch)"

func (rep restoreReport) err() error { return rep.errAdvice(restoreRetryAdvice) }

// errAdvice lists the failures, then the advice line.
func (rep restoreReport) errAdvice(advice string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "pg_restore reported %s not known to be harmless", plural(len(rep.failures), "error", "errors"))
	if n := rep.total(); n > len(rep.failures) {
		fmt.Fprintf(&b, " (of %d)", n)
	}
	b.WriteString(":")
	for i, e := range rep.failures {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(rep.failures)-maxListed)
			break
		}
		b.WriteString("\n  - " + strings.ReplaceAll(e.String(), "\n", "\n    "))
	}
	for _, e := range rep.failures {
		if missingRoleRE.MatchString(e.Message) {
			b.WriteString("\nhint: create the archive's roles on the target first (CREATE ROLE), or restore with no_owner: true")
			break
		}
	}
	b.WriteString("\n" + advice)
	return errors.New(b.String())
}

var missingRoleRE = regexp.MustCompile(`role ".*" does not exist`)

func (rep restoreReport) total() int {
	n := len(rep.failures)
	for _, c := range rep.accepted {
		n += c
	}
	return n
}

func (rep restoreReport) summary(file, database string, dg archiveDigest) string {
	s := fmt.Sprintf("restored %s (%s, sha256 %s) into %s", file, FormatBytes(dg.Size), shortSum(dg.SHA256), database)
	return s + rep.acceptedNote()
}

// acceptedNote is "\naccepted as harmless: ..." naming the errors accepted
// and how often, or "" when there were none.
func (rep restoreReport) acceptedNote() string {
	if len(rep.accepted) == 0 {
		return ""
	}
	msgs := make([]string, 0, len(rep.accepted))
	for m, c := range rep.accepted {
		msgs = append(msgs, fmt.Sprintf("%s (×%d)", m, c))
	}
	sort.Strings(msgs)
	return "\naccepted as harmless: " + strings.Join(msgs, "; ")
}
