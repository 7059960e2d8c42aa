package steps

// pg_replicate's replica identities: what the source's tables without a
// primary key need before they are published, and how they are put back.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// A table published for logical replication needs a replica identity, or
// PostgreSQL refuses every UPDATE and DELETE on it at the source: the
// running application breaks. Real schemas have such tables (the oVirt
// engine has a dozen, updated all the time), so start gives each one for
// the time of the replication: USING INDEX where a unique index qualifies
// (not partial, no expression, not deferrable, only NOT NULL columns),
// else FULL. What each table had is recorded on the source's host first,
// and finish and cancel put it back on both servers.

// replIdentity is one table's replica identity change. Identities are
// pg_class.relreplident: d (default: the primary key), n (nothing),
// f (full), i (an index, named in the *Index field).
type replIdentity struct {
	Table    string `json:"table"` // schema.name, quoted as identifiers
	Was      string `json:"was"`
	WasIndex string `json:"was_index,omitempty"`
	Set      string `json:"set"`
	SetIndex string `json:"set_index,omitempty"`
}

// identityRecord is what start changed, kept on the source's host. It
// belongs to one run and one database of one server: another run's, or
// one about another server, is never taken for this run's.
type identityRecord struct {
	RunID       string         `json:"run_id"`
	SystemID    string         `json:"system_identifier"`
	Database    string         `json:"database"`
	DatabaseOID int64          `json:"database_oid"`
	Tables      []replIdentity `json:"tables"`
	Time        time.Time      `json:"time"`
}

func (rec *identityRecord) about(id pg.DatabaseID, database string) bool {
	return rec != nil && rec.SystemID == id.SystemID && rec.DatabaseOID == id.OID && rec.Database == database
}

// identityClause is the ALTER TABLE ... REPLICA IDENTITY clause.
func identityClause(kind, index string) string {
	switch kind {
	case "n":
		return "NOTHING"
	case "f":
		return "FULL"
	case "i":
		return "USING INDEX " + index
	}
	return "DEFAULT"
}

func (t replIdentity) setSQL() string {
	return "ALTER TABLE " + t.Table + " REPLICA IDENTITY " + identityClause(t.Set, t.SetIndex)
}

func (t replIdentity) restoreSQL() string {
	return "ALTER TABLE " + t.Table + " REPLICA IDENTITY " + identityClause(t.Was, t.WasIndex)
}

// identityNeedsSQL lists the published tables without a usable replica
// identity: their identity now, its index, and the first unique index
// that could serve (by name).
const identityNeedsSQL = `SELECT format('%I.%I', n.nspname, c.relname), c.relreplident,
  coalesce((SELECT format('%I', ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = c.oid AND i.indisreplident), ''),
  coalesce((SELECT format('%I', ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate AND i.indisvalid AND i.indisready
      AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) k(attnum)
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE k.attnum <= 0 OR a.attnotnull IS NOT TRUE)
    ORDER BY ic.relname LIMIT 1), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND ` + pg.UserSchemasSQL + `
  AND (c.relreplident = 'n'
    OR c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
    OR c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
ORDER BY 1;
`

// identityNeeds reads the tables that need a replica identity and the
// one each will get.
func (r *PgReplicate) identityNeeds(ctx context.Context, src executors.Executor) ([]replIdentity, error) {
	rows, err := pg.Query(ctx, src, r.source(), identityNeedsSQL)
	if err != nil {
		return nil, err
	}
	var ts []replIdentity
	for _, row := range rows {
		if len(row) != 4 {
			return nil, fmt.Errorf("%s: unexpected psql output %q", src.Name(), row)
		}
		t := replIdentity{Table: row[0], Was: row[1], WasIndex: row[2], Set: "f"}
		if row[3] != "" {
			t.Set, t.SetIndex = "i", row[3]
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// identityRecordPath is the record on the source's host, one per source
// port and database.
func (r *PgReplicate) identityRecordPath() string {
	return targetMarkerPath(r.markerDir, "pg_replicate-identity", r.Source)
}

func (r *PgReplicate) readIdentityRecord(ctx context.Context, src executors.Executor) (*identityRecord, error) {
	data, err := src.ReadFile(ctx, r.identityRecordPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var rec identityRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %s is not a record of replica identities (%v): look at it, and remove it if it is not migrun's", src.Name(), r.identityRecordPath(), err)
	}
	return &rec, nil
}

func (r *PgReplicate) writeIdentityRecord(ctx context.Context, src executors.Executor, rec identityRecord) error {
	rec.Time = time.Now().UTC().Truncate(time.Second)
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return src.WriteFile(ctx, r.identityRecordPath(), append(data, '\n'), executors.FileAttrs{Mode: 0o644})
}

// identityPlan is what start will do about replica identities.
type identityPlan struct {
	id      pg.DatabaseID
	rec     *identityRecord // this run's record, when there is one
	changes []replIdentity  // tables to change now
}

func (p identityPlan) describe() string {
	if len(p.changes) == 0 {
		return ""
	}
	var full, byIndex []string
	for _, t := range p.changes {
		if t.Set == "i" {
			byIndex = append(byIndex, t.Table+" (USING INDEX "+t.SetIndex+")")
		} else {
			full = append(full, t.Table)
		}
	}
	var parts []string
	if len(byIndex) > 0 {
		parts = append(parts, strings.Join(byIndex, ", "))
	}
	if len(full) > 0 {
		parts = append(parts, "FULL: "+strings.Join(full, ", "))
	}
	return fmt.Sprintf("%s without a primary key get a replica identity for the replication, put back at finish or cancel: %s",
		hostcmd.Plural(len(p.changes), "table", "tables"), strings.Join(parts, "; "))
}

// planIdentities decides which tables to give an identity. A record this
// run wrote means an interrupted start: its tables are changed again (a
// no-op where done). A record another run left about this very database
// refuses: its tables may still carry that run's identities, and only
// its record knows what they had before.
func (r *PgReplicate) planIdentities(ctx context.Context, rt *Runtime, src executors.Executor) (identityPlan, error) {
	var p identityPlan
	id, err := pg.DatabaseIdentity(ctx, src, r.Source.PgConnection.target("postgres"), r.Source.Database)
	if err != nil {
		return p, err
	}
	p.id = id
	rec, err := r.readIdentityRecord(ctx, src)
	if err != nil {
		return p, err
	}
	if rec.about(id, r.Source.Database) {
		if rec.RunID == "" || rec.RunID != rt.RunID {
			return p, r.foreignIdentities(rec)
		}
		p.rec = rec
	}
	needs, err := r.identityNeeds(ctx, src)
	if err != nil {
		return p, err
	}
	seen := map[string]bool{}
	if p.rec != nil {
		for _, t := range p.rec.Tables {
			seen[t.Table] = true
			p.changes = append(p.changes, t)
		}
	}
	for _, t := range needs {
		if !seen[t.Table] {
			p.changes = append(p.changes, t)
		}
	}
	return p, nil
}

// foreignIdentities explains a record another run left.
func (r *PgReplicate) foreignIdentities(rec *identityRecord) error {
	var stmts []string
	for _, t := range rec.Tables {
		stmts = append(stmts, t.restoreSQL()+";")
	}
	run := rec.RunID
	if run == "" {
		run = "unknown"
	}
	return fmt.Errorf("an earlier run (%s, %s) changed the replica identity of %s in %s and did not put it back (%s on %s records it): "+
		"run that run's cancel step, or put them back by hand and remove the record: %s",
		run, rec.Time.Format(time.RFC3339), hostcmd.Plural(len(rec.Tables), "table", "tables"), r.where(r.Source),
		r.identityRecordPath(), r.Source.Host, strings.Join(stmts, " "))
}

// giveIdentities records, then changes, the identities p calls for.
func (r *PgReplicate) giveIdentities(ctx context.Context, rt *Runtime, src executors.Executor, p identityPlan) error {
	if len(p.changes) == 0 {
		return nil
	}
	rec := identityRecord{RunID: rt.RunID, SystemID: p.id.SystemID, Database: r.Source.Database, DatabaseOID: p.id.OID, Tables: p.changes}
	if err := r.writeIdentityRecord(ctx, src, rec); err != nil {
		return fmt.Errorf("record the replica identities on %s: %w", r.Source.Host, err)
	}
	stmts := make([]string, len(p.changes))
	for i, t := range p.changes {
		stmts[i] = t.setSQL()
	}
	if _, err := pg.Exec(ctx, src, r.source(), pg.LockPatientSQL(stmts)); err != nil {
		return fmt.Errorf("give %s a replica identity: %w", hostcmd.Plural(len(stmts), "table", "tables"), err)
	}
	return nil
}

// runIdentityRecord returns this run's record about the source database
// with identity id, nil when there is none.
func (r *PgReplicate) runIdentityRecord(ctx context.Context, rt *Runtime, src executors.Executor, id pg.DatabaseID) (*identityRecord, error) {
	rec, err := r.readIdentityRecord(ctx, src)
	if err != nil || rec == nil {
		return nil, err
	}
	if !rec.about(id, r.Source.Database) || rec.RunID == "" || rec.RunID != rt.RunID {
		return nil, nil
	}
	return rec, nil
}

// ownIdentityRecord is runIdentityRecord that reads the source's identity
// itself.
func (r *PgReplicate) ownIdentityRecord(ctx context.Context, rt *Runtime, src executors.Executor) (*identityRecord, error) {
	id, err := pg.DatabaseIdentity(ctx, src, r.Source.PgConnection.target("postgres"), r.Source.Database)
	if err != nil {
		return nil, err
	}
	return r.runIdentityRecord(ctx, rt, src, id)
}

// restoreIdentitiesSQL puts back what rec changed, lock-patiently (on a
// source still in use, at cancel).
func restoreIdentitiesSQL(rec *identityRecord) string {
	if rec == nil {
		return ""
	}
	stmts := make([]string, len(rec.Tables))
	for i, t := range rec.Tables {
		stmts[i] = t.restoreSQL()
	}
	return pg.LockPatientSQL(stmts)
}

// putBackIdentities restores rec on the source and, when dst is not nil,
// on the target (whose schema copy carried the changed identities), then
// removes the record.
func (r *PgReplicate) putBackIdentities(ctx context.Context, src, dst executors.Executor, rec *identityRecord) error {
	if rec == nil {
		return nil
	}
	sql := restoreIdentitiesSQL(rec)
	if dst != nil {
		if err := r.restoreTargetIdentities(ctx, dst, rec); err != nil {
			return err
		}
	}
	if _, err := pg.Exec(ctx, src, r.source(), sql); err != nil {
		return fmt.Errorf("put back the replica identities on %s: %w", r.Source.Host, err)
	}
	return r.removeIdentityRecord(ctx, src)
}

// targetIdentitiesSQL puts back, on the target, the identities of the
// tables that are there (a cancelled start may not have copied them all).
func targetIdentitiesSQL(rec *identityRecord) string {
	var b strings.Builder
	for _, t := range rec.Tables {
		fmt.Fprintf(&b, "DO $migrun$BEGIN IF to_regclass(%s) IS NOT NULL THEN EXECUTE %s; END IF; END$migrun$;\n",
			pg.Literal(t.Table), pg.Literal(t.restoreSQL()))
	}
	return b.String()
}

// restoreTargetIdentities runs targetIdentitiesSQL on the target.
func (r *PgReplicate) restoreTargetIdentities(ctx context.Context, dst executors.Executor, rec *identityRecord) error {
	if _, err := pg.Exec(ctx, dst, r.target(), targetIdentitiesSQL(rec)); err != nil {
		return fmt.Errorf("put back the replica identities on %s: %w", r.Target.Host, err)
	}
	return nil
}

func (r *PgReplicate) removeIdentityRecord(ctx context.Context, src executors.Executor) error {
	if err := src.Remove(ctx, r.identityRecordPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s on %s: %w", r.identityRecordPath(), r.Source.Host, err)
	}
	return nil
}
