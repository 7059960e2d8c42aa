package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgStreamKind = Kind{
	Name:    "pg_stream",
	Summary: "stream a PostgreSQL database into an empty one on another server: pg_dump piped into pg_restore as it is produced, no intermediate file",
	// The two databases name their hosts; the step's host: is not used.
	NeedsHost: false,
	New:       func() Spec { return new(PgStream) },
}

var _ Spec = (*PgStream)(nil)

// PgStream moves a database from one server to another without a dump
// file: `pg_dump -F c` runs on the source host, `pg_restore` on the target
// host, and migrun relays the bytes from the one's stdout to the other's
// stdin as they are produced, so dump and restore overlap and no disk
// anywhere holds the archive. It only reads the source; it changes the
// target database alone.
//
// pg_restore reads the stream once, front to back, so it restores
// serially: it cannot run parallel jobs from a pipe, and the kind offers
// no jobs field (pg_dump -F d, copy and pg_restore with jobs do that).
//
// A stream cannot be resumed midway: an interrupted one is restarted from
// the beginning, and that needs an empty target database. The kind only
// ever streams into an empty database (no schema, table, view, sequence,
// function, type or large object of its own; extensions a DBA created
// beforehand are fine) and never empties one itself: Check and Apply
// refuse a target that holds anything, telling an interrupted stream of
// this step (drop and re-create the database, then apply again) from a
// database that is simply not empty.
//
// Progress is recorded as pg_restore records it, in a pg.Marker (state
// started or done, the target database's name and OID, the source, and for
// a finished stream its size and sha256), here in
// /var/tmp/migrun-pg_stream.PORT.DATABASE on the target host: there is no
// archive to put it beside, the database itself should carry no trace of
// migrun, and /var/tmp is writable by the login user and survives reboots.
// The OID tells the database from one dropped and re-created under the
// same name, so re-creating the target is all it takes to start afresh.
// The marker also records the target server's system identifier and the
// run that wrote it, and only that run on that server takes it for its own
// (see PgRestore): a rehearsal's marker says nothing about a cluster
// initialised again since, whose new database may get the same OID.
type PgStream struct {
	Source      PgEndpoint `yaml:"source" required:"true" doc:"the database to copy; pg_dump runs on its host, which the step only reads"`
	Target      PgEndpoint `yaml:"target" required:"true" doc:"the database to fill, which must exist and be empty (createdb with the owner, encoding and locale the application wants); pg_restore runs on its host and restores serially: it cannot run parallel jobs from a pipe"`
	Compress    string     `yaml:"compress" enum:"0|1|2|3|4|5|6|7|8|9" default:"0" doc:"gzip level of the stream (pg_dump -Z); 0 sends it uncompressed, since across a LAN compressing costs the source more CPU than it saves"`
	NoOwner     bool       `yaml:"no_owner" doc:"do not give objects their source owners (pg_restore --no-owner): everything belongs to the restoring role"`
	Role        string     `yaml:"role" doc:"role to restore as (pg_restore --role, SET ROLE after connecting)"`
	AllowErrors []string   `yaml:"allow_errors" doc:"extra regular expressions of pg_restore errors to accept as harmless, matched against the error and its \"Command was:\" line"`

	// markerDir holds the marker on the target host; "" is /var/tmp.
	markerDir string
	// schemaOnly streams the schema alone (pg_replicate's first stage),
	// without the publications and subscriptions a dump would carry.
	schemaOnly bool
}

// streamNotResumable is what the dry run and the refusals say.
const streamNotResumable = "not resumable mid-stream: an interrupted stream is restarted from the beginning (the target database must be emptied: drop and re-create it)"

// streamRetryAdvice ends the error of a stream whose pg_restore failed.
const streamRetryAdvice = "the target database is partly restored and a stream is not resumable: drop and re-create it, then apply again (accept a harmless error with allow_errors)"

// streamGrace is how long a pg_dump may take to finish once pg_restore
// ended by itself: it has then read the whole archive, and the dump is
// only exiting. Past it the dump is cancelled.
const streamGrace = 5 * time.Second

func (s *PgStream) Validate() []Problem {
	ps := s.Source.PgConnection.validate("source.")
	ps = append(ps, s.Target.PgConnection.validate("target.")...)
	if s.Source == s.Target {
		ps = append(ps, Problem{"target", "source and target are the same database"})
	}
	return append(ps, validateAllowErrors(s.AllowErrors)...)
}

// Hosts are the source's host, then the target's.
func (s *PgStream) Hosts(string) []string { return []string{s.Source.Host, s.Target.Host} }

func (s *PgStream) compress() string {
	if s.Compress == "" {
		return "0"
	}
	return s.Compress
}

func (s *PgStream) source() pg.Target { return s.Source.target(s.Source.Database) }
func (s *PgStream) target() pg.Target { return s.Target.target(s.Target.Database) }

// dumpCommand writes the archive to stdout (no -f). -Z is always given:
// pg_dump's own default would compress.
func (s *PgStream) dumpCommand() executors.Command {
	argv := append([]string{"pg_dump", "-F", "c", "-Z", s.compress()}, s.source().ConnArgv()...)
	if s.schemaOnly {
		argv = append(argv, "--schema-only", "--no-publications", "--no-subscriptions")
	}
	return s.source().ClientCommand(append(argv, s.Source.Database), false)
}

// restoreCommand reads the archive from stdin, with pg_restore's settings.
func (s *PgStream) restoreCommand() executors.Command {
	t := s.target()
	argv := pg.RestoreArgv(t, 0, s.NoOwner, s.Role, false, "")
	if s.schemaOnly {
		// All of the schema or none of it: an interrupted copy leaves an
		// empty database to start again from, not half a schema.
		argv = append(argv, "--single-transaction")
	}
	return pg.RestoreCommand(t, argv)
}

// sourceID names the source in the marker: a stream from another
// database is another stream.
func (s *PgStream) sourceID() string { return pgSourceID(s.Source) }

func (s *PgStream) markerPath() string { return targetMarkerPath(s.markerDir, "pg_stream", s.Target) }

// ours reports whether m records a stream of this step, by run runID,
// into the database that now has identity id.
func (s *PgStream) ours(m *pg.Marker, id pg.DatabaseID, runID string) bool {
	return markerIsOurs(m, s.Source, s.Target, id, runID)
}

func (s *PgStream) where(ep PgEndpoint) string { return "database " + ep.Database + " on " + ep.Host }

// Check: done when the marker records a finished stream from this source
// into the target database as it exists now. A target that is not empty
// otherwise is an error, also in a dry run; an empty one is streamed into.
func (s *PgStream) Check(ctx context.Context, rt *Runtime) (Check, error) {
	dst, err := rt.Executor(ctx, s.Target.Host)
	if err != nil {
		return Check{}, err
	}
	wrap := func(err error) error { return fmt.Errorf("target %s: %w", s.where(s.Target), err) }
	id, err := pg.DatabaseIdentity(ctx, dst, s.Target.PgConnection.target("postgres"), s.Target.Database)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the target server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, wrap(err)
	}
	if id.OID == 0 {
		return Check{Unknown: true, Reason: "target " + s.where(s.Target) + " does not exist yet"}, nil
	}
	m, err := pg.ReadMarker(ctx, dst, s.markerPath())
	if err != nil {
		return Check{}, wrap(err)
	}
	if s.ours(m, id, rt.RunID) && m.State == "done" {
		return Check{Done: true, Reason: fmt.Sprintf("streamed from %s into %s at %s (%s, sha256 %s)",
			s.where(s.Source), s.where(s.Target), m.Time.Format(time.RFC3339), FormatBytes(m.Size), hostcmd.ShortSum(m.SHA256))}, nil
	}
	objs, err := targetObjects(ctx, dst, s.Target)
	if err != nil {
		return Check{}, wrap(err)
	}
	if objs.total > 0 {
		return Check{}, wrap(s.refusal(ctx, dst, m, id, rt.RunID, objs))
	}

	src, err := rt.Executor(ctx, s.Source.Host)
	if err != nil {
		return Check{}, err
	}
	srcOID, err := pg.DatabaseOID(ctx, src, s.Source.PgConnection.target("postgres"), s.Source.Database)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, fmt.Errorf("source %s: %w", s.where(s.Source), err)
	}
	if srcOID == 0 {
		return Check{Unknown: true, Reason: "source " + s.where(s.Source) + " does not exist yet"}, nil
	}
	reason := "target " + s.where(s.Target) + " is empty: streaming " + s.where(s.Source) + " into it"
	if s.ours(m, id, rt.RunID) {
		reason = "an earlier stream into " + s.where(s.Target) + " did not finish and left it empty: streaming again from the beginning"
	}
	return Check{Reason: reason}, nil
}

// targetObjectsSQL lists what makes a database not empty: schemas other
// than public, relations, functions, types and large objects, leaving out
// the members of extensions (a DBA may create those beforehand, and the
// restore's CREATE EXTENSION IF NOT EXISTS accepts them). Rows: total
// count, kind, name; a few names suffice.
const targetObjectsSQL = `WITH o(kind, name) AS (
  SELECT 'schema', quote_ident(n.nspname) FROM pg_namespace n
  WHERE ` + pg.UserSchemasSQL + ` AND n.nspname <> 'public'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
  UNION ALL
  SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
    WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'type' END,
    quote_ident(n.nspname) || '.' || quote_ident(c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND ` + pg.UserSchemasSQL + `
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  UNION ALL
  SELECT 'function', quote_ident(n.nspname) || '.' || quote_ident(p.proname)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE ` + pg.UserSchemasSQL + `
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  UNION ALL
  SELECT 'type', quote_ident(n.nspname) || '.' || quote_ident(t.typname)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE t.typtype IN ('d', 'e', 'r') AND ` + pg.UserSchemasSQL + `
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
  UNION ALL
  SELECT 'large object', l.oid::text FROM pg_largeobject_metadata l
)
SELECT count(*) OVER (), kind, name FROM o ORDER BY kind = 'table' DESC, kind, name LIMIT 3;
`

// dbObjects is a database's own objects: a few names and the count.
type dbObjects struct {
	total int
	names []string // "table public.t"
}

func (o dbObjects) String() string {
	s := hostcmd.Plural(o.total, "object", "objects") + ": " + strings.Join(o.names, ", ")
	if o.total > len(o.names) {
		s += ", …"
	}
	return s
}

// targetObjects reads what the target database holds of its own (the
// kinds that only fill an empty database: pg_stream, pg_replicate).
func targetObjects(ctx context.Context, ex executors.Executor, target PgEndpoint) (dbObjects, error) {
	rows, err := pg.Query(ctx, ex, target.target(target.Database), targetObjectsSQL)
	if err != nil {
		return dbObjects{}, err
	}
	var o dbObjects
	for _, row := range rows {
		if len(row) != 3 {
			return dbObjects{}, fmt.Errorf("%s: unexpected psql output %q", ex.Name(), strings.Join(row, " "))
		}
		o.total, _ = strconv.Atoi(row[0])
		o.names = append(o.names, row[1]+" "+row[2])
	}
	return o, nil
}

// refusal explains why a target that is not empty will not be streamed
// into, and what to do.
func (s *PgStream) refusal(ctx context.Context, ex executors.Executor, m *pg.Marker, id pg.DatabaseID, runID string, objs dbObjects) error {
	recreate := recreateHint(ctx, ex, s.Target)
	switch {
	case s.ours(m, id, runID) && m.State == "done":
		// Only a forced re-run gets here: Check says done.
		return fmt.Errorf("it already holds a finished stream from %s (%s); to stream again, drop and re-create it first%s",
			s.where(s.Source), m.Time.Format(time.RFC3339), recreate)
	case s.ours(m, id, runID):
		return fmt.Errorf("an earlier stream from %s into it (started %s) did not finish and left %s; %s.\nDrop and re-create the database, then apply again%s",
			s.where(s.Source), m.Time.Format(time.RFC3339), objs, streamNotResumable, recreate)
	}
	return fmt.Errorf("the database is not empty (%s) and holds no finished stream of this step%s: pg_stream only streams into an empty database, so that two databases are never mixed",
		objs, foreignMarkerNote(m, s.markerPath(), id, runID))
}

// recreateHint is ", e.g. on HOST as USER: dropdb ... && createdb ..."
// with the database's owner, encoding and locale, or "" when they cannot
// be read.
func recreateHint(ctx context.Context, ex executors.Executor, target PgEndpoint) string {
	t := target.target(target.Database)
	rows, err := pg.Query(ctx, ex, target.target("postgres"), `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
FROM pg_database WHERE datname = `+pg.Literal(target.Database)+";\n")
	if err != nil || len(rows) != 1 || len(rows[0]) != 4 {
		return ""
	}
	r := rows[0]
	drop := append(append([]string{"dropdb"}, t.ConnArgv()...), target.Database)
	create := append(append([]string{"createdb"}, t.ConnArgv()...),
		"-T", "template0", "-O", r[0], "-E", r[1], "--lc-collate="+r[2], "--lc-ctype="+r[3], target.Database)
	return fmt.Sprintf(", e.g. on %s as %s: %s && %s (and redo any ALTER DATABASE ... SET, GRANT or CREATE EXTENSION you had prepared in it)",
		target.Host, t.RunAs(), executors.QuoteArgv(drop), executors.QuoteArgv(create))
}

// Describe: one action per host, each command exactly as it runs, and
// the relay between them.
func (s *PgStream) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	dump, restore := s.dumpCommand(), s.restoreCommand()
	return []Action{
		{Host: s.Source.Host, Summary: "run on " + s.Source.Host + " as " + s.source().RunAs() + ": " + hostcmd.EnvPrefix(dump.Env) + executors.QuoteArgv(dump.Argv) +
			" (reads " + s.where(s.Source) + "; the archive goes to the stream)"},
		{Host: s.Target.Host, Summary: "run on " + s.Target.Host + " as " + s.target().RunAs() + ": " + hostcmd.EnvPrefix(restore.Env) + executors.QuoteArgv(restore.Argv) +
			" (archive read from the stream on stdin), only if " + s.where(s.Target) + " is empty; start and end recorded in " + s.markerPath() +
			"; only errors known to be harmless accepted (" + strings.Join(pg.HarmlessDescriptions(s.AllowErrors), "; ") + ")"},
		{Summary: "relay pg_dump's output to pg_restore's input through migrun as it is produced, no intermediate file; " + streamNotResumable},
	}, nil
}

// Apply refuses a target that is not empty, marks the stream started,
// streams, classifies pg_restore's errors and marks the stream done.
func (s *PgStream) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	src, err := rt.Executor(ctx, s.Source.Host)
	if err != nil {
		return Outcome{}, err
	}
	dst, err := rt.Executor(ctx, s.Target.Host)
	if err != nil {
		return Outcome{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("stream %s -> %s: %w", s.where(s.Source), s.where(s.Target), err)
	}
	harmless, err := pg.HarmlessPatterns(s.AllowErrors)
	if err != nil {
		return Outcome{}, wrap(err)
	}
	id, err := pg.DatabaseIdentity(ctx, dst, s.Target.PgConnection.target("postgres"), s.Target.Database)
	if err != nil {
		return Outcome{}, wrap(err)
	}
	if id.OID == 0 {
		return Outcome{}, wrap(fmt.Errorf("the target database does not exist: create it first, with the owner, encoding and locale it needs (createdb -O OWNER -E UTF8 --locale=en_US.UTF-8 -T template0 %s)", s.Target.Database))
	}
	m, err := pg.ReadMarker(ctx, dst, s.markerPath())
	if err != nil {
		return Outcome{}, wrap(err)
	}
	objs, err := targetObjects(ctx, dst, s.Target)
	if err != nil {
		return Outcome{}, wrap(err)
	}
	if objs.total > 0 {
		return Outcome{}, wrap(s.refusal(ctx, dst, m, id, rt.RunID, objs))
	}
	note := ""
	if s.ours(m, id, rt.RunID) && m.State != "done" {
		note = "an earlier stream into this database did not finish and left it empty: streamed again from the beginning\n"
	}
	// A marker of another run or server is not ours: it is replaced.
	marker := pg.Marker{State: "started", Source: s.sourceID(), Database: s.Target.Database, DatabaseOID: id.OID,
		SystemID: id.SystemID, RunID: rt.RunID, SocketDir: s.Target.SocketDir, Port: s.Target.Port}
	if err := pg.WriteMarker(ctx, dst, s.markerPath(), marker); err != nil {
		return Outcome{}, wrap(err)
	}

	out, w := streamOutput(rt)
	begin := time.Now()
	res, err := s.stream(ctx, rt, src, dst, harmless, w)
	o := Outcome{Changed: true, Output: note + strings.TrimSpace(out.String())}
	if err != nil {
		// The marker stays "started".
		return o, wrap(err)
	}
	marker.State, marker.Size, marker.SHA256 = "done", res.bytes, res.sha256
	if err := pg.WriteMarker(ctx, dst, s.markerPath(), marker); err != nil {
		return o, wrap(err)
	}
	o.Output = strings.TrimSpace(o.Output + "\n" + fmt.Sprintf("streamed %s into %s: %s (sha256 %s) in %s",
		s.where(s.Source), s.where(s.Target), FormatBytes(res.bytes), hostcmd.ShortSum(res.sha256), time.Since(begin).Round(100*time.Millisecond)) +
		res.report.AcceptedNote())
	return o, nil
}

// streamResult is what a finished stream carried.
type streamResult struct {
	bytes  int64
	sha256 string
	report pg.RestoreReport
}

// stream runs pg_dump on src and pg_restore on dst at once, the one's
// stdout piped into the other's stdin. The first to fail cancels the
// other: a failed dump leaves a truncated archive that cannot restore, and
// a pg_restore that stopped reading leaves the dump nowhere to go.
func (s *PgStream) stream(ctx context.Context, rt *Runtime, src, dst executors.Executor, harmless []*regexp.Regexp, out io.Writer) (streamResult, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bar := progressOf(rt).Start(Task{Label: s.Source.Host + ":" + s.Source.Database + " -> " + s.Target.Host + ":" + s.Target.Database, Unit: UnitBytes, Total: -1})

	var (
		mu    sync.Mutex
		first string // "source" or "target": which failed first
	)
	failed := func(side string) {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = side
		}
	}

	pr, pw := io.Pipe()
	relay := &streamRelay{w: pw, h: sha256.New(), bar: bar}
	dump := s.dumpCommand()
	dump.Stdout, dump.Stderr = relay, out
	restore := s.restoreCommand()
	errs := &pg.RestoreLog{}
	restore.Stdin = pr
	restore.Stdout, restore.Stderr = out, io.MultiWriter(out, errs)

	var dumpErr error
	dumpDone := make(chan struct{})
	go func() {
		defer close(dumpDone)
		_, dumpErr = src.Run(sctx, dump)
		if dumpErr != nil {
			failed("source")
			cancel()
			pw.CloseWithError(dumpErr)
			return
		}
		pw.Close() // EOF: the archive is complete
	}()

	_, restoreErr := dst.Run(sctx, restore)
	// Nothing reads the stream any more: a dump still writing must not
	// block on it (its further output is dropped).
	pr.CloseWithError(errors.New("pg_restore has ended"))
	var exit *executors.ExitError
	if restoreErr != nil && !errors.As(restoreErr, &exit) {
		failed("target")
		cancel()
	}
	select {
	case <-dumpDone:
	case <-time.After(streamGrace):
		failed("target")
		cancel()
		<-dumpDone
	}
	res := streamResult{bytes: relay.n, sha256: hex.EncodeToString(relay.h.Sum(nil))}

	var err error
	switch report, rerr := errs.Result(restoreErr, harmless, streamRetryAdvice); {
	case ctx.Err() != nil:
		err = fmt.Errorf("stream interrupted after %s: %w", FormatBytes(res.bytes), ctx.Err())
	case dumpErr != nil && first == "source":
		err = fmt.Errorf("pg_dump failed after %s: %w", FormatBytes(res.bytes), dumpErr)
	case rerr != nil:
		err = rerr
	case dumpErr != nil:
		err = fmt.Errorf("pg_restore ended before pg_dump on %s finished the stream (after %s): %w", s.Source.Host, FormatBytes(res.bytes), dumpErr)
	default:
		res.report = report
	}
	bar.Done(err)
	return res, err
}

// streamRelay passes the dump on to the pipe, counting and hashing it.
// One goroutine writes (the executor's stdout copy).
type streamRelay struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	bar Bar
}

func (r *streamRelay) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	r.bar.Add(int64(n))
	return n, err
}
