package steps

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
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
}

// streamNotResumable is what the dry run and the refusals say.
const streamNotResumable = "not resumable mid-stream: an interrupted stream is restarted from the beginning (the target database must be emptied: drop and re-create it)"

// streamRetryAdvice ends the error of a stream whose pg_restore failed.
const streamRetryAdvice = "the target database is partly restored and a stream is not resumable: drop and re-create it, then apply again (accept a harmless error with allow_errors)"

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
	return pg.DumpCommand(s.source(), s.compress(), false)
}

// restoreCommand reads the archive from stdin, with pg_restore's settings.
func (s *PgStream) restoreCommand() executors.Command {
	return pg.StreamRestoreCommand(s.target(), s.NoOwner, s.Role, false)
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
			s.where(s.Source), s.where(s.Target), m.Time.Format(time.RFC3339), bytesize.Format(m.Size), hostcmd.ShortSum(m.SHA256))}, nil
	}
	objs, err := pg.ReadObjects(ctx, dst, s.target())
	if err != nil {
		return Check{}, wrap(err)
	}
	if objs.Total > 0 {
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

// refusal explains why a target that is not empty will not be streamed
// into, and what to do.
func (s *PgStream) refusal(ctx context.Context, ex executors.Executor, m *pg.Marker, id pg.DatabaseID, runID string, objs pg.Objects) error {
	recreate := pg.RecreateHint(ctx, ex, s.Target.Host, s.target())
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
	objs, err := pg.ReadObjects(ctx, dst, s.target())
	if err != nil {
		return Outcome{}, wrap(err)
	}
	if objs.Total > 0 {
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
	marker.State, marker.Size, marker.SHA256 = "done", res.Bytes, res.SHA256
	if err := pg.WriteMarker(ctx, dst, s.markerPath(), marker); err != nil {
		return o, wrap(err)
	}
	o.Output = strings.TrimSpace(o.Output + "\n" + fmt.Sprintf("streamed %s into %s: %s (sha256 %s) in %s",
		s.where(s.Source), s.where(s.Target), bytesize.Format(res.Bytes), hostcmd.ShortSum(res.SHA256), time.Since(begin).Round(100*time.Millisecond)) +
		res.Report.AcceptedNote())
	return o, nil
}

// stream runs pg_dump on src and pg_restore on dst at once, the one's
// stdout piped into the other's stdin (pg.Stream), its bytes shown as
// progress.
func (s *PgStream) stream(ctx context.Context, rt *Runtime, src, dst executors.Executor, harmless []*regexp.Regexp, out io.Writer) (pg.StreamResult, error) {
	bar := progressOf(rt).Start(Task{Label: s.Source.Host + ":" + s.Source.Database + " -> " + s.Target.Host + ":" + s.Target.Database, Unit: UnitBytes, Total: -1})
	res, err := pg.Stream{From: src, Dump: s.dumpCommand(), To: dst, Restore: s.restoreCommand(),
		Harmless: harmless, Advice: streamRetryAdvice, Out: out, Progress: barWriter{bar}}.Run(ctx)
	bar.Done(err)
	return res, err
}
