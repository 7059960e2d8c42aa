package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// account is a client's own record of its transactions, kept in a file
// that outlives restarts of the service, so that tests can hold the
// database to it: Committed is also the sequence number of the last
// transaction that committed.
type account struct {
	Role      string `json:"role"`
	Committed int64  `json:"committed"`
	Failed    int64  `json:"failed"`
	// Ambiguous counts failures whose COMMIT was sent but not answered:
	// the transaction may or may not have committed.
	Ambiguous int64     `json:"ambiguous"`
	Failures  []failure `json:"failures"` // the latest maxFailures
	// Database is where the last transaction committed (host:port/db).
	Database string `json:"database"`
	// Also holds, for each other database the client writes in its own
	// transaction before the main one (the DWH's history, Keycloak's
	// sessions), the sequence number of the last one committed there.
	Also    map[string]int64 `json:"also,omitempty"`
	Updated time.Time        `json:"updated"`

	path string
}

// failure is one failed transaction or connection attempt.
type failure struct {
	At    time.Time `json:"at"`
	Seq   int64     `json:"seq"`
	Error string    `json:"error"`
}

const maxFailures = 200

func openAccount(path, role string) (*account, error) {
	a := &account{Role: role, path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a, a.save()
	case err != nil:
		return nil, err
	}
	if err := json.Unmarshal(b, a); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	a.path = path
	return a, nil
}

// committedIn records transaction seq's part in the database called
// name; it is saved with the main transaction's outcome.
func (a *account) committedIn(name string, seq int64) {
	if a.Also == nil {
		a.Also = map[string]int64{}
	}
	a.Also[name] = seq
}

func (a *account) committed(db string) error {
	a.Committed++
	a.Database = db
	return a.save()
}

func (a *account) failed(seq int64, ambiguous bool, err error) error {
	a.Failed++
	if ambiguous {
		a.Ambiguous++
	}
	a.Failures = append(a.Failures, failure{At: time.Now().UTC(), Seq: seq, Error: err.Error()})
	if n := len(a.Failures); n > maxFailures {
		a.Failures = a.Failures[n-maxFailures:]
	}
	return a.save()
}

// save replaces the file atomically: a reader never sees half of it.
func (a *account) save() error {
	a.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
		return err
	}
	tmp := a.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, a.path)
}
