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
	"github.com/migrun/migrun/internal/secret"
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

// schemaStream copies the schema: pg_stream's pipeline with pg_dump -s.
func (r *PgReplicate) schemaStream() *PgStream {
	return &PgStream{Source: r.Source, Target: r.Target, AllowErrors: r.AllowErrors, schemaOnly: true}
}

// replState is what the two servers hold of this replication.
type replState struct {
	runID        string     // the run reading it (Runtime.RunID): the markers it writes are its own
	oid          int64      // the target database's; 0: none
	systemID     string     // the target server's system identifier
	marker       *pg.Marker // nil: none of ours
	subscription bool       // on the target
	tables       int        // tables of the subscription
	ready        int        // of which the initial copy is done
	syncErrors   int64      // pg_stat_subscription_stats
	subOID       int64      // the subscription's OID, from the target or the marker; 0: unknown
	slot         bool       // the subscription's slot or one of its table-sync slots, on the source
	publication  bool       // on the source
}

func (st replState) finished() bool { return st.is(replFinished) }

func (st replState) is(state string) bool { return st.marker != nil && st.marker.State == state }

// subscriptionSQL reads the subscription's tables and their sync states
// and its error counters: one row, or none without the subscription.
func (r *PgReplicate) subscriptionSQL() string {
	return `SELECT s.oid, (SELECT count(*) FROM pg_subscription_rel WHERE srsubid = s.oid),
  (SELECT count(*) FROM pg_subscription_rel WHERE srsubid = s.oid AND srsubstate = 'r'),
  coalesce((SELECT sync_error_count + apply_error_count FROM pg_stat_subscription_stats WHERE subid = s.oid), 0)
FROM pg_subscription s WHERE s.subname = ` + pg.Literal(r.name()) + ` AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database());
`
}

// slotsWhere is the condition, on pg_replication_slots, that matches the
// subscription's slot and, when its OID is known, the table-sync slots
// its initial copy makes (pg_SUBOID_sync_RELID_SYSID): a failed or
// cancelled copy can leave those behind too, and any slot keeps the
// source's WAL.
func (r *PgReplicate) slotsWhere(subOID int64) string {
	w := "slot_name = " + pg.Literal(r.name())
	if subOID > 0 {
		w = "(" + w + " OR slot_name LIKE 'pg\\_" + strconv.FormatInt(subOID, 10) + "\\_sync\\_%')"
	}
	return w
}

// sourceObjectsSQL reads the slots and the publication on the source.
func (r *PgReplicate) sourceObjectsSQL(subOID int64) string {
	return `SELECT (SELECT count(*) FROM pg_replication_slots WHERE ` + r.slotsWhere(subOID) + `),
  (SELECT count(*) FROM pg_publication WHERE pubname = ` + pg.Literal(r.name()) + `);
`
}

// state reads both servers. Errors of a server not reachable yet are
// returned as they are, for the caller to tell with pg.NotReady. dst is
// nil when cancel could not reach the target's host. runID is the run's
// (Runtime.RunID): only its markers are taken for this step's progress.
func (r *PgReplicate) state(ctx context.Context, runID string, src, dst executors.Executor) (replState, error) {
	st := replState{runID: runID}
	if dst == nil {
		return st, fmt.Errorf("%s is not reachable", r.Target.Host)
	}
	id, err := pg.DatabaseIdentity(ctx, dst, r.Target.PgConnection.target("postgres"), r.Target.Database)
	if err != nil || id.OID == 0 {
		return st, err
	}
	st.oid, st.systemID = id.OID, id.SystemID
	m, err := pg.ReadMarker(ctx, dst, r.markerPath())
	if err != nil {
		return st, err
	}
	if r.ours(m, id, runID) {
		st.marker = m
	}
	if st.marker != nil {
		st.subOID = st.marker.SubscriptionOID
	}
	rows, err := pg.Probe(ctx, dst, r.target(), r.subscriptionSQL(), "the initial copy's progress changes on its own")
	if err != nil {
		return st, err
	}
	if len(rows) == 1 && len(rows[0]) == 4 {
		st.subscription = true
		st.subOID, _ = strconv.ParseInt(rows[0][0], 10, 64)
		st.tables, _ = strconv.Atoi(rows[0][1])
		st.ready, _ = strconv.Atoi(rows[0][2])
		st.syncErrors, _ = strconv.ParseInt(rows[0][3], 10, 64)
	}
	err = r.readSource(ctx, src, &st)
	return st, err
}

// finishStateSQL reads, in the target database itself, its identity and
// the subscription (subscriptionSQL's row after "sub").
func (r *PgReplicate) finishStateSQL() string {
	return "SELECT 'id', (SELECT oid FROM pg_database WHERE datname = current_database()), system_identifier FROM pg_control_system();\n" +
		"SELECT 'sub', q.* FROM (" + strings.TrimSuffix(r.subscriptionSQL(), ";\n") + ") q;\n"
}

// finishState is state for finish, which runs in the downtime: the marker
// and one psql on the target database, where state takes three psql on
// both servers. The source's slot and publication are not read: finish's
// own reading of the source refuses without the slot. Anything unexpected
// (no such database, a server not answering) goes the long way, whose
// errors say what is wrong.
func (r *PgReplicate) finishState(ctx context.Context, runID string, src, dst executors.Executor) (replState, error) {
	st := replState{runID: runID}
	m, err := pg.ReadMarker(ctx, dst, r.markerPath())
	if err != nil {
		return r.state(ctx, runID, src, dst)
	}
	rows, err := pg.Probe(ctx, dst, r.target(), r.finishStateSQL(), "the initial copy's progress changes on its own")
	if err != nil || len(rows) == 0 || len(rows[0]) != 3 || rows[0][0] != "id" {
		return r.state(ctx, runID, src, dst)
	}
	if st.oid, err = strconv.ParseInt(rows[0][1], 10, 64); err != nil || rows[0][2] == "" {
		return r.state(ctx, runID, src, dst)
	}
	st.systemID = rows[0][2]
	if r.ours(m, pg.DatabaseID{OID: st.oid, SystemID: st.systemID}, runID) {
		st.marker, st.subOID = m, m.SubscriptionOID
	}
	for _, row := range rows[1:] {
		if len(row) == 5 && row[0] == "sub" {
			st.subscription = true
			st.subOID, _ = strconv.ParseInt(row[1], 10, 64)
			st.tables, _ = strconv.Atoi(row[2])
			st.ready, _ = strconv.Atoi(row[3])
			st.syncErrors, _ = strconv.ParseInt(row[4], 10, 64)
		}
	}
	return st, nil
}

// readSource reads what the source holds of the replication into st.
func (r *PgReplicate) readSource(ctx context.Context, src executors.Executor, st *replState) error {
	rows, err := pg.Probe(ctx, src, r.source(), r.sourceObjectsSQL(st.subOID), "slots come and go on their own")
	if err != nil {
		return err
	}
	if len(rows) == 1 && len(rows[0]) == 2 {
		st.slot, st.publication = rows[0][0] != "0", rows[0][1] != "0"
	}
	return nil
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

func (r *PgReplicate) checkStart(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (Check, error) {
	switch {
	case st.finished() || st.is(replFinishing):
		return Check{Done: true, Reason: fmt.Sprintf("the replication into %s finished at %s", r.where(r.Target), st.marker.Time.Format(time.RFC3339))}, nil
	case st.subscription && st.ready == st.tables:
		return Check{Done: true, Reason: fmt.Sprintf("subscription %s follows %s: initial copy of %s done", r.name(), r.where(r.Source), hostcmd.Plural(st.tables, "table", "tables"))}, nil
	case st.subscription:
		return Check{Reason: fmt.Sprintf("subscription %s exists; initial copy of %d of %s done: waiting for the rest", r.name(), st.ready, hostcmd.Plural(st.tables, "table", "tables"))}, nil
	case st.is(replSchema):
		// A run stopped between copying the schema (one transaction: all
		// of it or nothing) and subscribing: Apply goes on from there.
	default:
		objs, err := targetObjects(ctx, dst, r.Target)
		if err != nil {
			return Check{}, r.wrap(err)
		}
		if objs.total > 0 {
			return Check{}, r.wrap(r.notEmpty(ctx, dst, st, objs))
		}
	}
	blockers, err := r.sourceBlockers(ctx, src)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	if len(blockers.fatal) > 0 {
		return Check{}, r.wrap(errors.New(strings.Join(blockers.fatal, "; ")))
	}
	reason, err := r.withIdentities(ctx, rt, src, "target "+r.where(r.Target)+" is empty: copy the schema, publish and subscribe; the initial copy runs while the source stays in use")
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the source server is not reachable yet: " + hostcmd.FirstLine(err)}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	if len(blockers.later) > 0 {
		// An earlier step of the plan (pg_conf, pg_role) may well see to
		// these; Apply refuses if it did not.
		reason += " (needs, at apply: " + strings.Join(blockers.later, "; ") + ")"
	}
	return Check{Reason: reason}, nil
}

// checkSourceEarly is start's check while the target database does not
// exist yet: unknown, unless the source has what no later step fixes
// (unlogged tables, large objects, another run's replica identities).
func (r *PgReplicate) checkSourceEarly(ctx context.Context, rt *Runtime, src executors.Executor, reason string) (Check, error) {
	b, err := r.sourceBlockers(ctx, src)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: reason}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	if len(b.fatal) > 0 {
		return Check{}, r.wrap(errors.New(strings.Join(b.fatal, "; ")))
	}
	withIDs, err := r.withIdentities(ctx, rt, src, reason)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: reason}, nil
	} else if err != nil {
		return Check{}, r.wrap(err)
	}
	return Check{Unknown: true, Reason: withIDs}, nil
}

// withIdentities adds to reason what start will do about replica
// identities; it fails when another run's record refuses the start.
func (r *PgReplicate) withIdentities(ctx context.Context, rt *Runtime, src executors.Executor, reason string) (string, error) {
	ip, err := r.planIdentities(ctx, rt, src)
	if err != nil {
		return reason, err
	}
	if d := ip.describe(); d != "" {
		reason += "; " + d
	}
	return reason, nil
}

// checkFinishQuick answers finish's check, inside the downtime, from the
// marker alone when this run's start subscribed: there is work left, and
// Apply reads both servers anyway. ok is false in every other case, which
// the full reading answers (it tells "finished" from a marker that only
// looks like this run's).
func (r *PgReplicate) checkFinishQuick(ctx context.Context, runID string, dst executors.Executor) (Check, bool) {
	m, err := pg.ReadMarker(ctx, dst, r.markerPath())
	if err != nil || m == nil || runID == "" || m.RunID != runID || m.State != replSubscribed ||
		m.Source != r.sourceID() || m.Database != r.Target.Database || m.SocketDir != r.Target.SocketDir || m.Port != r.Target.Port {
		return Check{}, false
	}
	return Check{Reason: fmt.Sprintf("this run's subscription %s follows %s: wait until the target applied the source's last change, copy the sequences, drop the replication", r.name(), r.where(r.Source))}, true
}

func (r *PgReplicate) checkFinish(st replState) (Check, error) {
	switch {
	case st.finished():
		return Check{Done: true, Reason: fmt.Sprintf("the replication into %s finished at %s", r.where(r.Target), st.marker.Time.Format(time.RFC3339))}, nil
	case st.is(replFinishing):
		return Check{Reason: "an earlier run caught up and stopped before the end: set the sequences again and drop what is left of the replication"}, nil
	case st.subscription:
		return Check{Reason: fmt.Sprintf("subscription %s follows %s: wait until the target applied the source's last change, copy the sequences, drop the replication", r.name(), r.where(r.Source))}, nil
	case st.is(replCancelled):
		return Check{}, r.wrap(fmt.Errorf("the replication was cancelled (%s): the target holds a partial copy; drop and re-create it, then start again",
			st.marker.Time.Format(time.RFC3339)))
	}
	return Check{Unknown: true, Reason: "no subscription " + r.name() + " yet: the start step makes it"}, nil
}

// checkCancel lists what is left of the replication: what to drop, and
// the replica identities (this run's record, rec) to put back.
func (r *PgReplicate) checkCancel(st replState, rec *identityRecord) Check {
	var left []string
	if st.subscription {
		left = append(left, "subscription "+r.name()+" on "+r.Target.Host)
	}
	if st.slot {
		left = append(left, "replication slots of "+r.name()+" on "+r.Source.Host)
	}
	if st.publication {
		left = append(left, "publication "+r.name()+" on "+r.Source.Host)
	}
	var reason []string
	if len(left) > 0 {
		reason = append(reason, "drop "+strings.Join(left, ", "))
	}
	if rec != nil {
		reason = append(reason, "put back the replica identity of "+hostcmd.Plural(len(rec.Tables), "table", "tables")+" on "+r.Source.Host)
	}
	if len(reason) == 0 {
		return Check{Done: true, Reason: "no replication " + r.name() + " to cancel"}
	}
	return Check{Reason: strings.Join(reason, "; ")}
}

// notEmpty explains why the target will not be subscribed.
func (r *PgReplicate) notEmpty(ctx context.Context, dst executors.Executor, st replState, objs dbObjects) error {
	recreate := recreateHint(ctx, dst, r.Target)
	if st.marker != nil {
		return fmt.Errorf("an earlier replication from %s into it (%s since %s) left %s and no subscription; drop and re-create the database, then apply again%s",
			r.where(r.Source), st.marker.State, st.marker.Time.Format(time.RFC3339), objs, recreate)
	}
	return fmt.Errorf("the target database is not empty (%s): pg_replicate only copies into an empty database, so that two databases are never mixed", objs)
}

// blockers are what stands in the way of publishing the source: fatal
// ones no step of a plan would fix (large objects, unlogged tables),
// later ones an earlier step may (wal_level, the role). Tables without a
// replica identity are not among them: start gives them one.
type blockers struct{ fatal, later []string }

// sourceBlockersSQL reads, in one query: wal_level, free replication
// slots, whether the publisher role may replicate, large objects and
// unlogged tables.
func (r *PgReplicate) sourceBlockersSQL() string {
	user := r.Publisher.User
	return `SELECT current_setting('wal_level'),
  current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots WHERE slot_name <> ` + pg.Literal(r.name()) + `),
  coalesce((SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = ` + pg.Literal(user) + `), 'missing'),
  (SELECT count(*) FROM pg_largeobject_metadata),
  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND c.relpersistence = 'u' AND ` + pg.UserSchemasSQL + `);
`
}

func (r *PgReplicate) sourceBlockers(ctx context.Context, src executors.Executor) (blockers, error) {
	var b blockers
	rows, err := pg.Query(ctx, src, r.source(), r.sourceBlockersSQL())
	if err != nil {
		return b, err
	}
	if len(rows) != 1 || len(rows[0]) != 5 {
		return b, fmt.Errorf("%s: unexpected psql output %q", src.Name(), rows)
	}
	row := rows[0]
	if row[0] != "logical" {
		b.later = append(b.later, fmt.Sprintf("the source server runs with wal_level = %s: logical is needed (set it and restart the server: pg_conf with apply_with: restart)", row[0]))
	}
	if free, _ := strconv.Atoi(row[1]); free < 1 {
		b.later = append(b.later, "the source server has no free replication slot (max_replication_slots; a restart)")
	}
	switch row[2] {
	case "missing":
		b.later = append(b.later, fmt.Sprintf("role %s does not exist on the source server", r.Publisher.User))
	case "false":
		b.later = append(b.later, fmt.Sprintf("role %s may not replicate: grant it REPLICATION (pg_role replication: true)", r.Publisher.User))
	}
	if n, _ := strconv.Atoi(row[3]); n > 0 {
		b.fatal = append(b.fatal, fmt.Sprintf("the source database holds %s, which logical replication does not carry: move it with pg_dump and pg_restore", hostcmd.Plural(n, "large object", "large objects")))
	}
	if n, _ := strconv.Atoi(row[4]); n > 0 {
		b.fatal = append(b.fatal, fmt.Sprintf("the source database has %s, whose rows logical replication does not carry: make them logged (ALTER TABLE ... SET LOGGED) or move the database with pg_dump and pg_restore", hostcmd.Plural(n, "unlogged table", "unlogged tables")))
	}
	return b, nil
}

// conninfo is the subscription's libpq connection string with password
// as given (revealed for the server, masked for the dry run). libpq
// quotes values in single quotes with backslash escapes.
func (r *PgReplicate) conninfo(password string) string {
	q := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	port := r.Publisher.Port
	if port == 0 {
		port = 5432
	}
	sslmode := r.Publisher.SSLMode
	if sslmode == "" {
		sslmode = "prefer"
	}
	s := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s application_name=%s",
		q(r.Publisher.Host), port, q(r.Source.Database), q(r.Publisher.User), sslmode, q(r.name()))
	if password != "" {
		s += " password=" + q(password)
	}
	return s
}

func (r *PgReplicate) maskedPassword() string {
	switch {
	case r.Publisher.Password == "":
		return ""
	case secret.Contains(r.Publisher.Password):
		return secret.Mask(r.Publisher.Password)
	}
	return hiddenValue
}

func (r *PgReplicate) publicationSQL() string {
	return "CREATE PUBLICATION " + pg.Ident(r.name()) + " FOR ALL TABLES;\n"
}

func (r *PgReplicate) subscriptionCreateSQL(password string) string {
	return "CREATE SUBSCRIPTION " + pg.Ident(r.name()) + " CONNECTION " + pg.Literal(r.conninfo(password)) +
		" PUBLICATION " + pg.Ident(r.name()) + ";\n"
}

// teardownSourceSQL waits, on the server, up to slotWait for the slots'
// walsenders to notice that the subscription is gone (moments, normally:
// a poll from here would cost a psql each time), drops the slots that are
// inactive and the publication, runs then (statements that need the
// publication gone), and counts the slots left, still active.
// (pg_replication_slots reads shared memory: each loop sees it anew.)
func (r *PgReplicate) teardownSourceSQL(subOID int64, then string) string {
	w := r.slotsWhere(subOID)
	return fmt.Sprintf(`DO $migrun$DECLARE deadline timestamptz := clock_timestamp() + interval '%d milliseconds'; BEGIN
  WHILE EXISTS (SELECT 1 FROM pg_replication_slots WHERE %s AND active) AND clock_timestamp() < deadline LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
END$migrun$;
`, slotWait.Milliseconds(), w) +
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE " + w + " AND NOT active;\n" +
		"DROP PUBLICATION IF EXISTS " + pg.Ident(r.name()) + ";\n" + then +
		"SELECT count(*) FROM pg_replication_slots WHERE " + w + ";\n"
}

// slotWait is how long one teardown waits on the server for walsenders.
const slotWait = 2 * time.Second

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
		s := r.schemaStream()
		dump, restore := s.dumpCommand(), s.restoreCommand()
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

// Apply runs the action.
func (r *PgReplicate) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	src, dst, err := r.connect(ctx, rt)
	if err != nil {
		return Outcome{}, err
	}
	var st replState
	if r.Action == "finish" {
		st, err = r.finishState(ctx, rt.RunID, src, dst)
	} else {
		st, err = r.state(ctx, rt.RunID, src, dst)
	}
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
		return Outcome{}, r.wrap(fmt.Errorf("the target database does not exist: create it first, with the owner, encoding and locale it needs (pg_database)"))
	}
	var o Outcome
	switch r.Action {
	case "start":
		o, err = r.start(ctx, rt, src, dst, st)
	case "finish":
		o, err = r.finish(ctx, rt, src, dst, st)
	default:
		o, err = r.cancel(ctx, rt, src, dst, st)
	}
	if err != nil {
		return o, r.wrap(err)
	}
	return o, nil
}

func (r *PgReplicate) start(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (Outcome, error) {
	if st.finished() {
		return Outcome{Output: "the replication already finished"}, nil
	}
	begin := time.Now()
	var notes []string
	o := Outcome{}
	if !st.subscription {
		b, err := r.sourceBlockers(ctx, src)
		if err != nil {
			return o, err
		}
		if all := append(b.fatal, b.later...); len(all) > 0 {
			return o, errors.New(strings.Join(all, "; "))
		}
		objs, err := targetObjects(ctx, dst, r.Target)
		if err != nil {
			return o, err
		}
		if objs.total > 0 && !st.is(replSchema) {
			return o, r.notEmpty(ctx, dst, st, objs)
		}
		// Before the schema copy, so that the target's tables get the same
		// identities (the subscription needs a matching one on its side
		// for USING INDEX).
		ip, err := r.planIdentities(ctx, rt, src)
		if err != nil {
			return o, err
		}
		if err := r.giveIdentities(ctx, rt, src, ip); err != nil {
			o.Changed = true
			return o, err
		}
		if len(ip.changes) > 0 {
			o.Changed = true
			notes = append(notes, hostcmd.Plural(len(ip.changes), "table", "tables")+" without a primary key given a replica identity until finish ("+r.identityRecordPath()+" on "+r.Source.Host+" records what they had)")
		}
		switch {
		case objs.total == 0:
			out, err := r.copySchema(ctx, rt, src, dst, st)
			o.Changed = true
			if err != nil {
				return o, err
			}
			notes = append(notes, out)
		default:
			// The schema copy is one transaction, so a schema there is
			// complete; the subscription's initial copy needs its tables
			// empty.
			if err := r.checkTablesEmpty(ctx, dst); err != nil {
				return o, err
			}
			notes = append(notes, "the schema copied by an earlier run is there")
		}
		if err := r.subscribe(ctx, rt, src, dst, st); err != nil {
			o.Changed = true
			return o, err
		}
		o.Changed = true
		sub, err := r.readSubscription(ctx, dst)
		if err != nil {
			return o, err
		}
		st.subOID = sub
		if err := r.writeMarker(ctx, dst, replSubscribed, st); err != nil {
			return o, err
		}
		notes = append(notes, "published all tables of "+r.where(r.Source)+" and subscribed "+r.where(r.Target)+" as "+r.name())
	}
	n, err := r.waitInitialCopy(ctx, rt, dst)
	if err != nil {
		return o, err
	}
	notes = append(notes, fmt.Sprintf("initial copy of %s done in %s; the target follows the source until finish",
		hostcmd.Plural(n, "table", "tables"), time.Since(begin).Round(100*time.Millisecond)))
	settled := time.Now()
	if _, err := pg.Exec(ctx, dst, r.target(), settleTargetSQL); err != nil {
		return o, fmt.Errorf("vacuum the copied tables on %s: %w", r.Target.Host, err)
	}
	notes = append(notes, fmt.Sprintf("the copied tables vacuumed and analyzed on %s in %s", r.Target.Host, time.Since(settled).Round(100*time.Millisecond)))
	o.Output = strings.Join(notes, "\n")
	return o, nil
}

// copySchema streams pg_dump -s into pg_restore, between two markers:
// a run interrupted midway leaves "schema", which tells the next one.
func (r *PgReplicate) copySchema(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (string, error) {
	harmless, err := pg.HarmlessPatterns(r.AllowErrors)
	if err != nil {
		return "", err
	}
	if err := r.writeMarker(ctx, dst, replSchema, replState{runID: st.runID, oid: st.oid, systemID: st.systemID}); err != nil {
		return "", err
	}
	out, w := streamOutput(rt)
	s := r.schemaStream()
	res, err := s.stream(ctx, rt, src, dst, harmless, w)
	if err != nil {
		return "", fmt.Errorf("copy the schema: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return "copied the schema (" + FormatBytes(res.bytes) + " archive)" + res.report.AcceptedNote(), nil
}

// checkTablesEmpty makes sure a schema left by an interrupted run holds
// no rows yet: the subscription's initial copy appends to what is there.
func (r *PgReplicate) checkTablesEmpty(ctx context.Context, dst executors.Executor) error {
	// Exact, not the planner's estimates, which read 0 before an ANALYZE.
	rows, err := pg.Query(ctx, dst, r.target(), `DO $migrun$DECLARE t regclass; filled int := 0; found boolean; BEGIN
  FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND `+pg.UserSchemasSQL+`
  LOOP EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s)', t) INTO found; IF found THEN filled := filled + 1; END IF; END LOOP;
  PERFORM set_config('migrun.filled', filled::text, false);
END$migrun$;
SELECT current_setting('migrun.filled');
`)
	if err != nil {
		return err
	}
	if len(rows) == 1 && rows[0][0] != "0" {
		return fmt.Errorf("an earlier run copied the schema and stopped before subscribing, and %s tables hold data now; drop and re-create the database, then apply again", rows[0][0])
	}
	return nil
}

// subscribe publishes the source and subscribes the target. A slot left
// by a CREATE SUBSCRIPTION that failed after making it is dropped first.
func (r *PgReplicate) subscribe(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) error {
	if !st.publication {
		if _, err := pg.Exec(ctx, src, r.source(), r.publicationSQL()); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	if st.slot {
		if _, err := pg.Exec(ctx, src, r.source(), "SELECT pg_drop_replication_slot("+pg.Literal(r.name())+") FROM pg_replication_slots WHERE slot_name = "+pg.Literal(r.name())+" AND NOT active;\n"); err != nil {
			return fmt.Errorf("drop the slot a failed subscription left: %w", err)
		}
	}
	password, err := rt.Secrets.Reveal(r.Publisher.Password)
	if err != nil {
		return fmt.Errorf("publisher.password: %w", err)
	}
	if _, err := pg.ExecSecret(ctx, dst, r.target(), pg.QuietSessionSQL+r.subscriptionCreateSQL(password)); err != nil {
		msg := err.Error()
		if password != "" {
			// As given, and as quoted in the statement (conninfo, then
			// SQL literal), should a server message echo it.
			conn := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
			for _, form := range []string{strings.ReplaceAll(conn, "'", "''"), conn, strings.ReplaceAll(password, "'", "''"), password} {
				msg = strings.ReplaceAll(msg, form, hiddenValue)
			}
		}
		return fmt.Errorf("subscribe: %s", rt.Secrets.Redact(msg))
	}
	return nil
}

// waitInitialCopy waits until every table of the subscription is ready.
// settleTargetSQL runs once the initial copy is done. The copy inserted
// every row on the target: from PostgreSQL 13 on, that many inserts
// trigger autovacuum's first pass over each table (the insert threshold),
// which on a large database runs for minutes and would still be reading
// and writing every page when the downtime comes, slowing the comparison
// and the application's first queries on the new server. The application's
// planner also needs the statistics of the new tables from its first
// query. Doing both now, while the source is still in use, keeps them out
// of the downtime; a resumed start runs it again, which is cheap.
const settleTargetSQL = "VACUUM (ANALYZE);\n"

// The copy takes as long as the data does; it has no time limit, but a
// worker that fails (a table missing on the target, a lost connection)
// ends the wait with the server's word for it.
func (r *PgReplicate) waitInitialCopy(ctx context.Context, rt *Runtime, dst executors.Executor) (int, error) {
	var bar Bar
	defer func() {
		if bar != nil {
			bar.Done(nil)
		}
	}()
	var errors0 int64 = -1
	shown := 0
	every := 10 * r.pollEvery() // a second by default: a copy takes a while
	for {
		rows, err := pg.Probe(ctx, dst, r.target(), r.subscriptionSQL(), "the initial copy's progress changes on its own")
		if err != nil {
			return 0, err
		}
		if len(rows) != 1 || len(rows[0]) != 4 {
			return 0, fmt.Errorf("subscription %s is gone from %s", r.name(), r.Target.Host)
		}
		total, _ := strconv.Atoi(rows[0][1])
		ready, _ := strconv.Atoi(rows[0][2])
		errs, _ := strconv.ParseInt(rows[0][3], 10, 64)
		if bar == nil {
			bar = progressOf(rt).Start(Task{Label: "initial copy " + r.Source.Host + ":" + r.Source.Database + " -> " + r.Target.Host + ":" + r.Target.Database, Unit: UnitTables, Total: int64(total), Done: int64(ready)})
			shown = ready
		} else if ready > shown {
			bar.Add(int64(ready - shown))
			shown = ready
		}
		switch {
		case errors0 < 0:
			errors0 = errs
		case errs > errors0:
			return ready, fmt.Errorf("the subscription's workers on %s fail (%d errors; see its server log): %s",
				r.Target.Host, errs-errors0, r.lastWorkerError(ctx, dst))
		}
		if ready == total {
			return total, nil
		}
		if err := hostcmd.Sleep(ctx, every); err != nil {
			return ready, err
		}
	}
}

// lastWorkerError says where the workers' errors are: the target's
// current server log file when the server names it (logging_collector),
// else the log in general. The errors themselves are only in the log.
func (r *PgReplicate) lastWorkerError(ctx context.Context, dst executors.Executor) string {
	rows, err := pg.Query(ctx, dst, r.target(), `SELECT coalesce(pg_current_logfile(), '');
`)
	if err != nil || len(rows) != 1 || rows[0][0] == "" {
		return "look for \"logical replication\" in the server log"
	}
	return "look for \"logical replication\" in " + rows[0][0]
}

func (r *PgReplicate) finish(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (Outcome, error) {
	switch {
	case st.finished():
		return Outcome{Output: "the replication already finished"}, nil
	case st.is(replFinishing):
		// Caught up and checked by an earlier run, which stopped before
		// the end: the source has not moved since (its application is
		// stopped), so its sequences are read again and the rest redone.
		final, err := r.readFinal(ctx, src, false)
		if err != nil {
			return Outcome{}, err
		}
		if final.identities, err = r.runIdentityRecord(ctx, rt, src, final.source); err != nil {
			return Outcome{}, err
		}
		return r.cutOver(ctx, src, dst, st, final, "an earlier run caught up; ")
	case !st.subscription:
		return Outcome{}, fmt.Errorf("no subscription %s on %s: run the start step first", r.name(), r.Target.Host)
	case st.ready != st.tables:
		return Outcome{}, fmt.Errorf("the initial copy is not done (%d of %s ready): run the start step first", st.ready, hostcmd.Plural(st.tables, "table", "tables"))
	}
	begin := time.Now()
	final, err := r.readFinal(ctx, src, true)
	if err != nil {
		return Outcome{}, err
	}
	if final.identities, err = r.runIdentityRecord(ctx, rt, src, final.source); err != nil {
		return Outcome{}, err
	}
	caught := fmt.Sprintf("target caught up with %s in %s (%s behind at the start); ", r.where(r.Source),
		time.Since(begin).Round(time.Millisecond), FormatBytes(final.lag))
	return r.cutOver(ctx, src, dst, st, final, caught)
}

// finalState is what the source says once the target has caught up: the
// statements that give the target its sequences and the materialized
// views to refresh there.
type finalState struct {
	source pg.DatabaseID // the source database's, to hold the identity record to
	lag    int64         // bytes the target was behind when the wait began
	// identities is this run's record of the replica identities start
	// gave, to put back on both servers; nil when it gave none.
	identities *identityRecord
	setvals    []string // SELECT pg_catalog.setval(...);
	views      []string // schema.name, quoted as identifiers
}

// finalSQL is the source's side of the cut-over in one session, since
// every psql costs a connection (tens of milliseconds, all of them engine
// downtime): no other client, then the wait until the slot's confirmed
// position reaches the WAL insert position (not the write position: a
// transaction committed asynchronously may not be written yet, and the
// slot only gets past it once it is), looping on the server, then no
// other client again (one may have come and written meanwhile), then the
// sequences and the populated materialized views. With wait false only
// the last two.
func (r *PgReplicate) finalSQL(wait bool) string {
	n := pg.Literal(r.name())
	var b strings.Builder
	if wait {
		timeout := r.catchUpTimeout()
		fmt.Fprintf(&b, "SET statement_timeout = %d;\n", (timeout + 30*time.Second).Milliseconds())
		b.WriteString(pg.ClientCheckSQL)
		fmt.Fprintf(&b, `DO $migrun$DECLARE target pg_lsn := pg_current_wal_insert_lsn(); deadline timestamptz := clock_timestamp() + interval '%d milliseconds'; got pg_lsn; BEGIN
  SELECT confirmed_flush_lsn INTO got FROM pg_replication_slots WHERE slot_name = %s;
  IF NOT FOUND THEN RAISE EXCEPTION 'migrun-noslot'; END IF;
  PERFORM set_config('migrun.lag', greatest(pg_wal_lsn_diff(target, got), 0)::bigint::text, false);
  WHILE got IS NULL OR got < target LOOP
    IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'migrun-behind %%', greatest(pg_wal_lsn_diff(target, got), 0)::bigint; END IF;
    PERFORM pg_sleep(0.01);
    SELECT confirmed_flush_lsn INTO got FROM pg_replication_slots WHERE slot_name = %s;
  END LOOP;
END$migrun$;
`, timeout.Milliseconds(), n, n)
		b.WriteString(pg.ClientCheckSQL)
		b.WriteString("SELECT 'lag', current_setting('migrun.lag');\n")
	}
	b.WriteString(`SELECT 'id', (SELECT oid FROM pg_database WHERE datname = current_database()) || ' ' || system_identifier FROM pg_control_system();
SELECT 'seq', format('SELECT pg_catalog.setval(%L, %s, %s);', quote_ident(schemaname) || '.' || quote_ident(sequencename),
  coalesce(last_value, start_value), (last_value IS NOT NULL)::text) FROM pg_sequences ORDER BY schemaname, sequencename;
SELECT 'view', format('%I.%I', schemaname, matviewname) FROM pg_matviews WHERE ispopulated;
`)
	return b.String()
}

// The refusals finalSQL raises.
var (
	replBehindRE = regexp.MustCompile(`migrun-behind (\d+)`)
)

// readFinal runs finalSQL on the source and turns its refusals into
// errors people can act on.
func (r *PgReplicate) readFinal(ctx context.Context, src executors.Executor, wait bool) (finalState, error) {
	var f finalState
	rows, err := pg.Probe(ctx, src, r.source(), r.finalSQL(wait), "the replication position and sequences move on their own")
	if err != nil {
		var exit *executors.ExitError
		if errors.As(err, &exit) {
			if m := pg.ClientsRE.FindStringSubmatch(exit.Stderr); m != nil {
				total, _ := strconv.Atoi(m[1])
				return f, fmt.Errorf("%s still connected to %s (%s): stop the application first (and every other service using the database), or what it writes after the cut-over is lost; the replication goes on",
					hostcmd.Plural(total, "client is", "clients are"), r.where(r.Source), strings.TrimSpace(m[2]))
			}
			if m := replBehindRE.FindStringSubmatch(exit.Stderr); m != nil {
				behind, _ := strconv.ParseInt(m[1], 10, 64)
				return f, fmt.Errorf("the target is still %s behind the source after %s (catch_up_timeout); is its subscription worker running? (pg_stat_subscription on %s)",
					FormatBytes(behind), r.catchUpTimeout(), r.Target.Host)
			}
			if strings.Contains(exit.Stderr, "migrun-noslot") {
				return f, fmt.Errorf("replication slot %s is gone from %s", r.name(), r.Source.Host)
			}
		}
		return f, err
	}
	for _, row := range rows {
		if len(row) != 2 {
			return f, fmt.Errorf("%s: unexpected psql output %q", src.Name(), row)
		}
		switch row[0] {
		case "lag":
			f.lag, _ = strconv.ParseInt(row[1], 10, 64)
		case "id":
			oid, sys, _ := strings.Cut(row[1], " ")
			f.source.OID, _ = strconv.ParseInt(oid, 10, 64)
			f.source.SystemID = sys
		case "seq":
			f.setvals = append(f.setvals, row[1])
		case "view":
			f.views = append(f.views, row[1])
		}
	}
	return f, nil
}

// cutOverTargetSQL is the target's side in one session: the sequences,
// the materialized views (in the order the schema copy created them,
// which is pg_restore's dependency order: a view built on another comes
// after it), then the subscription dropped, detached from its slot first
// so that nothing needs to reach the source (the slots go there
// directly). All of it may run in a transaction: DROP SUBSCRIPTION only
// refuses one while the subscription still has a slot.
func (r *PgReplicate) cutOverTargetSQL(f finalState) string {
	var b strings.Builder
	for _, s := range f.setvals {
		b.WriteString(s + "\n")
	}
	if len(f.views) > 0 {
		names := make([]string, len(f.views))
		for i, v := range f.views {
			names[i] = pg.Literal(v)
		}
		b.WriteString(`DO $migrun$DECLARE v regclass; BEGIN
  FOR v IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'm' AND format('%I.%I', n.nspname, c.relname) = ANY (ARRAY[` + strings.Join(names, ", ") + `]::text[]) ORDER BY c.oid
  LOOP EXECUTE format('REFRESH MATERIALIZED VIEW %s', v); END LOOP;
END$migrun$;
`)
	}
	b.WriteString(r.dropSubscriptionSQL())
	if f.identities != nil {
		// Once nothing is replicated any more, in the same session.
		b.WriteString(targetIdentitiesSQL(f.identities))
	}
	return b.String()
}

// dropSubscriptionSQL drops the subscription if it is there, without
// reaching the source.
func (r *PgReplicate) dropSubscriptionSQL() string {
	n := pg.Ident(r.name())
	return `DO $migrun$BEGIN
  IF EXISTS (SELECT 1 FROM pg_subscription WHERE subname = ` + pg.Literal(r.name()) + ` AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
    EXECUTE ` + pg.Literal("ALTER SUBSCRIPTION "+n+" DISABLE") + `;
    EXECUTE ` + pg.Literal("ALTER SUBSCRIPTION "+n+" SET (slot_name = NONE)") + `;
    EXECUTE ` + pg.Literal("DROP SUBSCRIPTION "+n) + `;
  END IF;
END$migrun$;
`
}

// cutOver gives the target the final state and ends the replication:
// marked "finishing" first, so that a run stopped anywhere in between
// redoes exactly this part.
func (r *PgReplicate) cutOver(ctx context.Context, src, dst executors.Executor, st replState, f finalState, note string) (Outcome, error) {
	if !st.is(replFinishing) {
		if err := r.writeMarker(ctx, dst, replFinishing, st); err != nil {
			return Outcome{Changed: true}, err
		}
	}
	begin := time.Now()
	if _, err := pg.Exec(ctx, dst, r.target(), r.cutOverTargetSQL(f)); err != nil {
		return Outcome{Changed: true}, fmt.Errorf("sequences, materialized views and subscription on %s: %w", r.Target.Host, err)
	}
	// The replica identities go back in the same session, once the
	// publication is gone: a table without its identity while still
	// published would refuse UPDATE and DELETE.
	if err := r.dropSourceSlots(ctx, src, st.subOID, restoreIdentitiesSQL(f.identities)); err != nil {
		return Outcome{Changed: true}, err
	}
	if f.identities != nil {
		if err := r.removeIdentityRecord(ctx, src); err != nil {
			return Outcome{Changed: true}, err
		}
	}
	if err := r.writeMarker(ctx, dst, replFinished, st); err != nil {
		return Outcome{Changed: true}, err
	}
	if f.identities != nil {
		note += hostcmd.Plural(len(f.identities.Tables), "replica identity", "replica identities") + " put back, "
	}
	views := ""
	if len(f.views) > 0 {
		views = " and " + hostcmd.Plural(len(f.views), "materialized view", "materialized views") + " refreshed"
	}
	return Outcome{Changed: true, Output: fmt.Sprintf("%s%s copied%s, subscription, slots and publication %s dropped in %s",
		note, hostcmd.Plural(len(f.setvals), "sequence", "sequences"), views, r.name(), time.Since(begin).Round(time.Millisecond))}, nil
}

// teardown drops the subscription (on the target, without reaching the
// source), then the slots on the source once their walsenders have gone,
// then the publication. A walsender normally notices within moments that
// its subscriber left; one that lingers (a lost network: it waits for
// wal_sender_timeout) is ended after a few seconds, since its subscription
// is gone and nothing will use the slot again. subOID names the table-sync
// slots to drop too (0: unknown, only the main slot).
func (r *PgReplicate) teardown(ctx context.Context, src, dst executors.Executor, subOID int64) error {
	if dst != nil {
		if _, err := pg.Exec(ctx, dst, r.target(), r.dropSubscriptionSQL()); err != nil {
			return fmt.Errorf("drop subscription %s: %w", r.name(), err)
		}
	}
	return r.dropSourceSlots(ctx, src, subOID, "")
}

// dropSourceSlots drops the replication's slots and publication on the
// source, ending walsenders that still hold a slot after a grace period.
// then runs once, in the first session, after the publication is dropped.
func (r *PgReplicate) dropSourceSlots(ctx context.Context, src executors.Executor, subOID int64, then string) error {
	begin := time.Now()
	terminated := false
	for {
		rows, err := pg.Exec(ctx, src, r.source(), r.teardownSourceSQL(subOID, then))
		if err != nil {
			what := "drop the slots and publication " + r.name()
			if then != "" {
				what += " and put back the replica identities"
			}
			return fmt.Errorf("%s on %s: %w", what, r.Source.Host, err)
		}
		then = ""
		left := pg.ParseRows(rows.Stdout)
		if len(left) > 0 && len(left[len(left)-1]) == 1 && left[len(left)-1][0] == "0" {
			return nil
		}
		switch waited := time.Since(begin); {
		case waited > 30*time.Second:
			return fmt.Errorf("replication slots of %s on %s stay active 30 s after the subscription was dropped: end their walsenders (pg_terminate_backend) and drop them (pg_drop_replication_slot), or the source keeps its WAL for them", r.name(), r.Source.Host)
		case waited > 3*time.Second && !terminated:
			if _, err := pg.Exec(ctx, src, r.source(), "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE "+r.slotsWhere(subOID)+" AND active;\n"); err != nil {
				return fmt.Errorf("end the walsenders of %s: %w", r.name(), err)
			}
			terminated = true
		}
		if err := hostcmd.Sleep(ctx, r.pollEvery()); err != nil {
			return err
		}
	}
}

func (r *PgReplicate) cancel(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) (Outcome, error) {
	rec, err := r.ownIdentityRecord(ctx, rt, src)
	if err != nil {
		return Outcome{}, err
	}
	c := r.checkCancel(st, rec)
	if c.Done {
		return Outcome{Output: c.Reason}, nil
	}
	// Marked first: a cancel interrupted midway must not look like a
	// schema still waiting for its subscription.
	if st.marker != nil && !st.finished() {
		if err := r.writeMarker(ctx, dst, replCancelled, st); err != nil {
			return Outcome{Changed: true}, err
		}
	}
	if err := r.teardown(ctx, src, dst, st.subOID); err != nil {
		return Outcome{Changed: true}, err
	}
	// After the publication is gone (see cutOver).
	if err := r.putBackIdentities(ctx, src, dst, rec); err != nil {
		return Outcome{Changed: true}, err
	}
	return Outcome{Changed: true, Output: "done: " + c.Reason + "; " + r.where(r.Target) + " keeps what was copied (drop and re-create it before starting again)"}, nil
}

// cancelSource is cancel when the target cannot be read (why): the slot
// and publication on the source go, and the output says what may be left
// on the target.
func (r *PgReplicate) cancelSource(ctx context.Context, rt *Runtime, src executors.Executor, why error) (Outcome, error) {
	var st replState
	if err := r.readSource(ctx, src, &st); err != nil {
		return Outcome{}, err
	}
	rec, err := r.ownIdentityRecord(ctx, rt, src)
	if err != nil {
		return Outcome{}, err
	}
	if !st.slot && !st.publication && rec == nil {
		return Outcome{Output: "no replication " + r.name() + " on " + r.Source.Host + " to cancel"}, nil
	}
	if err := r.dropSourceSlots(ctx, src, 0, ""); err != nil {
		return Outcome{Changed: true}, err
	}
	if err := r.putBackIdentities(ctx, src, nil, rec); err != nil {
		return Outcome{Changed: true}, err
	}
	note := "the target database does not exist"
	if why != nil {
		note = "the target could not be read (" + hostcmd.FirstLine(why) + ")"
	}
	return Outcome{Changed: true, Output: "slot and publication " + r.name() + " dropped on " + r.Source.Host + "; " + note +
		": if subscription " + r.name() + " exists there, drop it with ALTER SUBSCRIPTION ... DISABLE, ... SET (slot_name = NONE), DROP SUBSCRIPTION"}, nil
}
