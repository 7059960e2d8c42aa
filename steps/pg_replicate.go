package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgReplicateKind = Kind{
	Name:    "pg_replicate",
	Summary: "move a PostgreSQL database with logical replication: copy and follow it while the application runs (start), then cut over in seconds (finish)",
	// The two databases name their hosts; the step's host: is not used.
	NeedsHost: false,
	New:       func() Spec { return new(PgReplicate) },
}

var _ Spec = (*PgReplicate)(nil)

// PgReplicate moves a database to another server with PostgreSQL's own
// logical replication, so that the application's downtime no longer grows
// with the size of the database. A plan uses it in two steps:
//
//   - action: start, while the application still runs: the schema is
//     copied into the empty target (pg_dump -s piped into pg_restore, as
//     pg_stream does), the source publishes all its tables, and the target
//     subscribes. The step returns once every table's initial copy is done;
//     from then on the target follows every change on the source.
//   - action: finish, once the application is stopped: refuse while any
//     other client is connected to the source, wait until the target has
//     applied everything the source wrote (the replication slot's confirmed
//     position reaches the source's WAL insert position), copy the
//     sequences and refresh the materialized views (logical replication
//     carries neither), and end the replication: subscription, slots and
//     publication are dropped. Each server's side is one psql session:
//     this is engine downtime, and every connection costs some.
//
// action: cancel drops the replication without finishing it (on_failure):
// a forgotten slot makes the source keep its WAL for ever and fills its
// disk. The target keeps what was copied.
//
// What it needs, checked before anything changes: wal_level = logical on
// the source (a restart: pg_conf with apply_with: restart, while the
// application runs), a role the target server can log in as with
// REPLICATION (pg_role replication: true), no unlogged tables and no large
// objects (not replicated), and an empty target database.
// Schema changes on the source between start and finish are not carried.
//
// Progress is kept in a marker on the target host,
// /var/tmp/migrun-pg_replicate.PORT.DATABASE, like pg_stream's: the state
// (schema, subscribed, finishing, finished, cancelled), the source, the
// subscription's OID, which names its table-sync slots, and whose it is:
// the run that wrote it and the target database's identity (its OID and
// the server's system identifier), so that a database dropped and
// re-created, a cluster initialised again, or a marker another run left
// is a fresh start, never "already done".
//
// Tables without a primary key get a replica identity from start until
// finish or cancel (see pg_replicate_identity.go).
type PgReplicate struct {
	Action         string             `yaml:"action" required:"true" enum:"start|finish|cancel" doc:"start: copy the schema, publish, subscribe and wait for the initial copy (while the application runs); finish: wait until the target caught up, copy the sequences and drop the replication (application stopped); cancel: drop the replication without finishing (on_failure)"`
	Source         PgEndpoint         `yaml:"source" required:"true" doc:"the database to move (the publisher); psql and pg_dump run on its host"`
	Target         PgEndpoint         `yaml:"target" required:"true" doc:"the database to fill (the subscriber), which must exist and be empty at start"`
	Publisher      PgReplicateConnect `yaml:"publisher" doc:"how the target server connects to the source server (needed by action start): address, port, a role with REPLICATION and its password"`
	Name           string             `yaml:"name" doc:"name of the publication, subscription and replication slot (default: migrun_ and the target database's name)"`
	CatchUpTimeout string             `yaml:"catch_up_timeout" default:"5m" doc:"action finish: how long to wait for the target to apply the source's last changes, a Go duration"`
	AllowErrors    []string           `yaml:"allow_errors" doc:"extra regular expressions of pg_restore errors to accept as harmless while copying the schema"`

	// poll is how often waits look again; tests shorten it.
	poll time.Duration
	// markerDir holds the marker on the target host; "" is /var/tmp.
	markerDir string
}

// PgReplicateConnect is the libpq connection the subscription opens from
// the target server to the source server.
type PgReplicateConnect struct {
	Host     string `yaml:"host" doc:"the source server's address as the target server reaches it"`
	Port     int    `yaml:"port" default:"5432" doc:"the source server's port"`
	User     string `yaml:"user" doc:"role to connect as: it needs REPLICATION (or superuser) and SELECT on every table"`
	Password string `yaml:"password" secret:"allowed" doc:"its password, normally \"${secret}\"; it is stored in the target's pg_subscription until finish or cancel drops the subscription"`
	SSLMode  string `yaml:"sslmode" enum:"disable|allow|prefer|require|verify-ca|verify-full" default:"prefer" doc:"libpq sslmode of the connection"`
}

// Replication states kept in the marker.
const (
	replSchema     = "schema"     // the schema copy started
	replSubscribed = "subscribed" // schema copied, subscription created
	replFinishing  = "finishing"  // caught up and checked: sequences, views and teardown left
	replFinished   = "finished"
	replCancelled  = "cancelled"
)

var replNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func (r *PgReplicate) Validate() []Problem {
	ps := r.Source.PgConnection.validate("source.")
	ps = append(ps, r.Target.PgConnection.validate("target.")...)
	if r.Source == r.Target {
		ps = append(ps, Problem{"target", "source and target are the same database"})
	}
	if r.Name != "" && !replNameRE.MatchString(r.Name) {
		// Replication slot names allow nothing else.
		ps = append(ps, Problem{"name", fmt.Sprintf("%q: use lower-case letters, digits and _ (at most 63), as replication slot names must", r.Name)})
	}
	if r.Action == "start" {
		if r.Publisher.Host == "" {
			ps = append(ps, Problem{"publisher.host", "action start needs the source server's address as the target server reaches it"})
		}
		if r.Publisher.User == "" {
			ps = append(ps, Problem{"publisher.user", "action start needs a role with REPLICATION to connect as"})
		}
	}
	if strings.ContainsAny(r.Publisher.Host, " '\\") {
		ps = append(ps, Problem{"publisher.host", fmt.Sprintf("%q is not a host name or address", r.Publisher.Host)})
	}
	if r.Publisher.Port < 0 || r.Publisher.Port > 65535 {
		ps = append(ps, Problem{"publisher.port", fmt.Sprintf("port %d is out of range", r.Publisher.Port)})
	}
	if r.CatchUpTimeout != "" {
		if d, err := time.ParseDuration(r.CatchUpTimeout); err != nil || d <= 0 {
			ps = append(ps, Problem{"catch_up_timeout", fmt.Sprintf("%q is not a positive duration like \"5m\"", r.CatchUpTimeout)})
		}
	}
	return append(ps, validateAllowErrors(r.AllowErrors)...)
}

// Hosts are the source's host, then the target's.
func (r *PgReplicate) Hosts(string) []string { return []string{r.Source.Host, r.Target.Host} }

// name is the publication's, subscription's and slot's name.
func (r *PgReplicate) name() string {
	if r.Name != "" {
		return r.Name
	}
	var b strings.Builder
	for _, c := range strings.ToLower(r.Target.Database) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	n := "migrun_" + b.String()
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

func (r *PgReplicate) catchUpTimeout() time.Duration {
	d, err := time.ParseDuration(r.CatchUpTimeout)
	if err != nil || d <= 0 {
		return 5 * time.Minute
	}
	return d
}

func (r *PgReplicate) pollEvery() time.Duration {
	if r.poll > 0 {
		return r.poll
	}
	return 100 * time.Millisecond
}

func (r *PgReplicate) source() pg.Target { return r.Source.target(r.Source.Database) }
func (r *PgReplicate) target() pg.Target { return r.Target.target(r.Target.Database) }

func (r *PgReplicate) where(ep PgEndpoint) string {
	return "database " + ep.Database + " on " + ep.Host
}

func (r *PgReplicate) sourceID() string { return pgSourceID(r.Source) }

func (r *PgReplicate) markerPath() string {
	return targetMarkerPath(r.markerDir, "pg_replicate", r.Target)
}

// ours reports whether m records a replication of this step, by run
// runID, into the database that now has identity id: a marker of a
// rehearsal on a cluster initialised again since is not.
func (r *PgReplicate) ours(m *pg.Marker, id pg.DatabaseID, runID string) bool {
	return markerIsOurs(m, r.Source, r.Target, id, runID)
}

// writeMarker records state for the run and the target server st was
// read for (see PgRestore).
func (r *PgReplicate) writeMarker(ctx context.Context, ex executors.Executor, state string, st replState) error {
	return pg.WriteMarker(ctx, ex, r.markerPath(), pg.Marker{State: state, Source: r.sourceID(),
		Database: r.Target.Database, DatabaseOID: st.oid, SocketDir: r.Target.SocketDir, Port: r.Target.Port,
		SubscriptionOID: st.subOID, SystemID: st.systemID, RunID: st.runID})
}

// readSubscription returns the subscription's OID on the target, 0 when
// there is none.
func (r *PgReplicate) readSubscription(ctx context.Context, dst executors.Executor) (int64, error) {
	rows, err := pg.Query(ctx, dst, r.target(), "SELECT oid FROM pg_subscription WHERE subname = "+pg.Literal(r.name())+
		" AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database());\n")
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	return strconv.ParseInt(rows[0][0], 10, 64)
}

// schemaDump and schemaRestore copy the schema alone, start's first
// stage: uncompressed, and restored in one transaction.
func (r *PgReplicate) schemaDump() executors.Command { return pg.DumpCommand(r.source(), "0", true) }

func (r *PgReplicate) schemaRestore() executors.Command {
	return pg.StreamRestoreCommand(r.target(), false, "", true)
}

// connect returns the executors of the source's and the target's hosts.
func (r *PgReplicate) connect(ctx context.Context, rt *Runtime) (src, dst executors.Executor, err error) {
	if src, err = rt.Executor(ctx, r.Source.Host); err != nil {
		return nil, nil, err
	}
	if dst, err = rt.Executor(ctx, r.Target.Host); err != nil {
		if r.Action == "cancel" && !rt.DryRun {
			// Cancel still cleans the source up (see Apply).
			return src, nil, nil
		}
		return nil, nil, err
	}
	return src, dst, nil
}

func (r *PgReplicate) wrap(err error) error {
	return fmt.Errorf("replicate %s -> %s: %w", r.where(r.Source), r.where(r.Target), err)
}

// Check tells, per action, whether there is anything left to do.
func (r *PgReplicate) Check(ctx context.Context, rt *Runtime) (Check, error) {
	src, dst, err := r.connect(ctx, rt)
	if err != nil {
		return Check{}, err
	}
	if r.Action == "finish" {
		if c, ok := r.checkFinishQuick(ctx, rt.RunID, dst); ok {
			return c, nil
		}
	}
	st, err := r.state(ctx, rt.RunID, src, dst)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "a server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	if st.oid == 0 {
		reason := "target " + r.where(r.Target) + " does not exist yet"
		if r.Action == "start" {
			// What the source holds can refuse already: before the first
			// change of the plan, not after (apply checks every step first).
			return r.checkSourceEarly(ctx, rt, src, reason)
		}
		return Check{Unknown: true, Reason: reason}, nil
	}
	switch r.Action {
	case "start":
		return r.checkStart(ctx, rt, src, dst, st)
	case "finish":
		return r.checkFinish(st)
	default:
		rec, err := r.ownIdentityRecord(ctx, rt, src)
		if err != nil {
			return Check{}, r.wrap(err)
		}
		return r.checkCancel(st, rec), nil
	}
}

// Describe lists the statements and commands of the action, as they run.
func (r *PgReplicate) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	src, dst := r.source(), r.target()
	putBack := Action{Host: r.Source.Host, Summary: "put back the replica identities start gave (as recorded in " + r.identityRecordPath() + "), on both servers"}
	teardown := []Action{
		{Host: r.Target.Host, Summary: pg.Action(r.Target.Host, dst, r.dropSubscriptionSQL())},
		{Host: r.Source.Host, Summary: pg.Action(r.Source.Host, src, r.teardownSourceSQL(0, "")) + " (with the subscription's table-sync slots; a walsender still holding one after a few seconds is ended)"},
	}
	switch r.Action {
	case "start":
		dump, restore := r.schemaDump(), r.schemaRestore()
		var acts []Action
		if ex, err := rt.Executor(ctx, r.Source.Host); err == nil {
			if ip, err := r.planIdentities(ctx, rt, ex); err == nil && len(ip.changes) > 0 {
				stmts := make([]string, len(ip.changes))
				for i, t := range ip.changes {
					stmts[i] = t.setSQL() + ";"
				}
				acts = append(acts, Action{Host: r.Source.Host, Summary: "record in " + r.identityRecordPath() + " on " + r.Source.Host +
					" what the tables without a primary key have, then " + pg.Action(r.Source.Host, src, strings.Join(stmts, " ")) +
					" (one transaction per table, each waiting at most 0.2 s for its lock and trying again, so the application's transactions never fail; put back at finish or cancel)"})
			}
		}
		acts = append(acts, []Action{
			{Host: r.Source.Host, Summary: "run on " + r.Source.Host + " as " + src.RunAs() + ": " + hostcmd.EnvPrefix(dump.Env) + executors.QuoteArgv(dump.Argv) +
				" (reads the schema of " + r.where(r.Source) + " into the stream)"},
			{Host: r.Target.Host, Summary: "run on " + r.Target.Host + " as " + dst.RunAs() + ": " + hostcmd.EnvPrefix(restore.Env) + executors.QuoteArgv(restore.Argv) +
				" (schema read from the stream on stdin), only if " + r.where(r.Target) + " is empty; progress recorded in " + r.markerPath() +
				"; only errors known to be harmless accepted (" + strings.Join(pg.HarmlessDescriptions(r.AllowErrors), "; ") + ")"},
		}...)
		return append(acts,
			Action{Host: r.Source.Host, Summary: pg.Action(r.Source.Host, src, r.publicationSQL())},
			Action{Host: r.Target.Host, Summary: pg.Action(r.Target.Host, dst, r.subscriptionCreateSQL(r.maskedPassword()))},
			Action{Host: r.Target.Host, Summary: "wait until every table's initial copy is done (pg_subscription_rel); the source stays in use and its later changes follow"},
			Action{Host: r.Target.Host, Summary: pg.Action(r.Target.Host, dst, settleTargetSQL) +
				" (hint bits, visibility map and the planner's statistics of the copied rows, now rather than by autovacuum in the downtime)"},
		), nil
	case "finish":
		return []Action{
			{Host: r.Source.Host, Summary: pg.Action(r.Source.Host, src, r.finalSQL(true)) +
				" (refuses while another client is connected; waits at most " + r.catchUpTimeout().String() + ")"},
			{Host: r.Target.Host, Summary: pg.Action(r.Target.Host, dst, r.cutOverTargetSQL(finalState{setvals: []string{"SELECT pg_catalog.setval(...);"}})) +
				" (one setval per sequence of the source, and the materialized views populated there refreshed first; with the replica identities start gave put back)"},
			{Host: r.Source.Host, Summary: teardown[1].Summary + "; in the same session, once the publication is gone, the replica identities start gave put back (as recorded in " +
				r.identityRecordPath() + ", removed then)"},
		}, nil
	}
	return append(teardown, putBack), nil
}

var errNoTargetDatabase = errors.New("the target database does not exist: create it first, with the owner, encoding and locale it needs (pg_database)")

// Apply runs the action.
func (r *PgReplicate) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	src, dst, err := r.connect(ctx, rt)
	if err != nil {
		return Outcome{}, err
	}
	if r.Action == "finish" {
		o, err := r.applyFinish(ctx, rt, src, dst)
		if err != nil {
			return o, r.wrap(err)
		}
		return o, nil
	}
	st, err := r.state(ctx, rt.RunID, src, dst)
	if r.Action == "cancel" && (err != nil || st.oid == 0) && !st.finished() {
		// on_failure: the target may be unreachable or have no database
		// yet; what must go is on the source (a slot keeps its WAL).
		o, err := r.cancelSource(ctx, rt, src, err)
		if err != nil {
			return o, r.wrap(err)
		}
		return o, nil
	}
	if err != nil {
		return Outcome{}, r.wrap(err)
	}
	if st.oid == 0 {
		return Outcome{}, r.wrap(errNoTargetDatabase)
	}
	var o Outcome
	switch r.Action {
	case "start":
		o, err = r.start(ctx, rt, src, dst, st)
	default:
		o, err = r.cancel(ctx, rt, src, dst, st)
	}
	if err != nil {
		return o, r.wrap(err)
	}
	return o, nil
}
