package pg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/migrun/migrun/executors"
)

// A marker is a JSON file on the target host that records how far a kind
// got moving data into a database (pg_restore, pg_stream, pg_replicate,
// pg_capture), and for which run, server and database: a marker is only
// ever taken as this run's record of the database that exists now.

// Marker is a marker's content.
type Marker struct {
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

// OwnedBy reports whether m was written by run runID about the database
// identified by id. A dry run of a fresh run has no run id and owns no
// marker; nor does a run own one without a run id or a system identifier
// (written by an older migrun).
func (m Marker) OwnedBy(id DatabaseID, runID string) bool {
	return runID != "" && m.RunID == runID && m.SystemID != "" && m.SystemID == id.SystemID && m.DatabaseOID == id.OID
}

// Whose says, for a refusal, what left a marker that is not this run's.
func (m Marker) Whose(id DatabaseID, runID string) string {
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

// ReadMarker reads the marker at p; nil when there is none.
func ReadMarker(ctx context.Context, ex executors.Executor, p string) (*Marker, error) {
	data, err := ex.ReadFile(ctx, p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		// A torn or foreign file proves nothing: treat it as absent.
		return nil, nil
	}
	return &m, nil
}

// WriteMarker stamps m with the time and replaces the marker at p.
func WriteMarker(ctx context.Context, ex executors.Executor, p string, m Marker) error {
	m.Time = time.Now().UTC().Truncate(time.Second)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return ex.WriteFile(ctx, p, append(data, '\n'), executors.FileAttrs{Mode: 0o644})
}
