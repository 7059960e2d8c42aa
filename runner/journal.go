package runner

import (
	"encoding/json"
	"fmt"
	"time"
)

// Step and run statuses as the journal records them.
const (
	StatusPending     = "pending"
	StatusRunning     = "running"   // Apply started, not yet finished
	StatusDone        = "done"      // Apply succeeded or Check found it done
	StatusSkipped     = "skipped"   // `when` was false, or outside --from/--only
	StatusFailed      = "failed"    // Apply returned an error
	StatusUnknown     = "unknown"   // the connection died mid-step: outcome unknown
	StatusCompleted   = "completed" // run: every step done or skipped
	StatusInterrupted = "interrupted"
)

// journalVersion is the journal file format version.
const journalVersion = 1

// Journal is the durable record of one plan's run: what ran, when, how it
// ended. Every transition is recorded before it is announced (see
// Lock.Append), so after a crash it says exactly which step was in progress.
type Journal struct {
	Version     int       `json:"version"`
	Plan        string    `json:"plan"`
	PlanFile    string    `json:"plan_file"`
	PlanDigest  string    `json:"plan_digest"`
	RunID       string    `json:"run_id"`
	Status      string    `json:"status"`
	Started     time.Time `json:"started"`
	Updated     time.Time `json:"updated"`
	Ended       time.Time `json:"ended,omitzero"`
	User        string    `json:"user,omitempty"`
	Workstation string    `json:"workstation,omitempty"`
	// Reviewed is the reviewed-plan file this run applies, if any.
	Reviewed   *ReviewRef `json:"reviewed,omitempty"`
	FailedStep string     `json:"failed_step,omitempty"`
	Error      string     `json:"error,omitempty"`
	// PointOfNoReturn is the point_of_no_return step the failed run was
	// past: the reason on_failure did not run.
	PointOfNoReturn string `json:"point_of_no_return,omitempty"`
	// Detected are the answers to the plan's detections its first apply
	// found; a resume goes on with them.
	Detected  map[string]bool `json:"detected,omitempty"`
	Steps     []*StepRecord   `json:"steps"`
	OnFailure []*StepRecord   `json:"on_failure,omitempty"`
	// History keeps one line per apply invocation (fresh, resume, restart),
	// oldest first: an audit trail that survives resumes.
	History []RunRecord `json:"history"`
}

// StepRecord is one step's entry in the journal.
type StepRecord struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Host     string    `json:"host,omitempty"`
	Digest   string    `json:"digest"`
	Status   string    `json:"status"`
	Changed  bool      `json:"changed,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	Reason   string    `json:"reason,omitempty"` // why done/skipped
	Output   string    `json:"output,omitempty"` // tail of output, redacted
	Error    string    `json:"error,omitempty"`
	// Ran lists what the step's apply did on its hosts, as shown to
	// people: commands (secrets masked) and file writes.
	Ran []string `json:"ran,omitempty"`
}

// ReviewRef names a reviewed-plan file by its sha256.
type ReviewRef struct {
	SHA256 string `json:"sha256"`
	File   string `json:"file,omitempty"`
}

// RunRecord is one apply invocation in Journal.History.
type RunRecord struct {
	RunID   string    `json:"run_id"` // this invocation's own id
	Mode    string    `json:"mode"`   // fresh, resume, restart
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Status  string    `json:"status"`
	User    string    `json:"user,omitempty"`
	From    string    `json:"workstation,omitempty"`
	// Reviewed is the reviewed-plan file applied by this invocation.
	Reviewed *ReviewRef `json:"reviewed,omitempty"`
}

// step finds a step record by id.
func (j *Journal) step(id string) *StepRecord {
	for _, s := range j.Steps {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// DecodeJournal reads a journal snapshot; where names it in errors.
func DecodeJournal(data []byte, where string) (*Journal, error) {
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("journal %s is corrupt: %w (move it aside to start over)", where, err)
	}
	if j.Version != journalVersion {
		return nil, fmt.Errorf("journal %s has format version %d; this migrun reads %d", where, j.Version, journalVersion)
	}
	return &j, nil
}

// LogEntry is one transition of the journal log: a step record, or the
// run's status fields (Step nil).
type LogEntry struct {
	// Run is the apply invocation (the last History record's RunID) that
	// wrote the entry; replay ignores entries of any other, so a log left
	// by an earlier invocation never rewrites a newer snapshot.
	Run        string      `json:"run"`
	List       string      `json:"list,omitempty"` // "steps" or "on_failure"
	Index      int         `json:"index"`
	Step       *StepRecord `json:"step,omitempty"`
	Status     string      `json:"status"`
	FailedStep string      `json:"failed_step,omitempty"`
	Error      string      `json:"error,omitempty"`
	// PointOfNoReturn: see Journal.
	PointOfNoReturn string    `json:"point_of_no_return,omitempty"`
	Updated         time.Time `json:"updated"`
}

// Replay applies the transitions of the journal's current apply
// invocation (its last History record), in order, to j. Entries of any
// other invocation are left out: a log an earlier invocation left never
// rewrites a newer snapshot.
func (j *Journal) Replay(entries []LogEntry) error {
	current := ""
	if len(j.History) > 0 {
		current = j.History[len(j.History)-1].RunID
	}
	for n, e := range entries {
		if e.Run != current {
			continue
		}
		j.Status, j.FailedStep, j.Error, j.PointOfNoReturn, j.Updated = e.Status, e.FailedStep, e.Error, e.PointOfNoReturn, e.Updated
		if e.Step == nil {
			continue
		}
		list := &j.Steps
		if e.List == "on_failure" {
			list = &j.OnFailure
		}
		switch {
		case e.Index < len(*list):
			(*list)[e.Index] = e.Step
		case e.Index == len(*list):
			*list = append(*list, e.Step)
		default:
			return fmt.Errorf("transition %d: step index %d out of range", n+1, e.Index)
		}
	}
	return nil
}
