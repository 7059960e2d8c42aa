package steps

import (
	"context"
	"fmt"
	"strconv"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

// What a replication has left on both servers, read in one psql each:
// the marker, the subscription, the slots, the publication.

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
