package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
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
// ended. Every transition is recorded before it is announced (see the log
// below), so after a crash it says exactly which step was in progress.
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

// ReadJournal loads a journal; a missing file returns (nil, nil).
func ReadJournal(path string) (*Journal, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("journal %s is corrupt: %w (move it aside to start over)", path, err)
	}
	if j.Version != journalVersion {
		return nil, fmt.Errorf("journal %s has format version %d; this migrun reads %d", path, j.Version, journalVersion)
	}
	if err := j.replay(path); err != nil {
		return nil, err
	}
	return &j, nil
}

// save writes the journal durably.
func (j *Journal) save(path string, now time.Time) error {
	j.Updated = now
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := executors.WriteFileAtomic(path, append(data, '\n'), 0o600, -1, -1); err != nil {
		return fmt.Errorf("write journal %s: %w", path, err)
	}
	return nil
}

// The journal is a snapshot plus a log. The snapshot (NAME.journal.json)
// is rewritten atomically, with fsync, when a run starts and ends; in
// between, every transition is appended to NAME.journal.log as one JSON
// line, and ReadJournal replays the log over the snapshot. An append costs
// a write, where a snapshot costs a marshal of the whole journal, a file
// creation, a rename and two fsyncs: that made the runner's own overhead
// milliseconds per step.
//
// Durability: the log is fdatasynced when a step is about to change its
// hosts (its "running" record), which also makes every record before it
// durable. So after a crash of the machine a step recorded done is never
// run again unless it is the last one, which the journal then shows as
// running and resume re-checks; a kill of migrun itself loses nothing
// (written records are in the page cache).

// logEntry is one line of the journal log: a step record, or the run's
// status fields (Step nil).
type logEntry struct {
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

func logPath(journalPath string) string {
	return strings.TrimSuffix(journalPath, ".json") + ".log"
}

// journalLog appends transitions to the log of one journal.
type journalLog struct {
	f *os.File
}

// openLog starts an empty log beside a freshly saved snapshot.
func openLog(journalPath string) (*journalLog, error) {
	f, err := os.OpenFile(logPath(journalPath), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal log: %w", err)
	}
	return &journalLog{f: f}, nil
}

// append writes one entry; sync makes it and every earlier one durable.
func (l *journalLog) append(e logEntry, sync bool) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("journal log: %w", err)
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("journal log: %w", err)
		}
	}
	return nil
}

// close closes the log and, once a final snapshot holds everything,
// removes it.
func (l *journalLog) close(remove bool) error {
	err := l.f.Close()
	if remove {
		if rerr := os.Remove(l.f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// replay applies the log beside path, if any, to j. A torn last line (a
// crash in the middle of a write) is ignored: its transition never
// completed.
func (j *Journal) replay(path string) error {
	data, err := os.ReadFile(logPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal log: %w", err)
	}
	current := ""
	if len(j.History) > 0 {
		current = j.History[len(j.History)-1].RunID
	}
	lines := bytes.Split(data, []byte("\n"))
	for n, line := range lines {
		if len(line) == 0 {
			continue
		}
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil {
			if n == len(lines)-1 {
				break // torn by a crash mid-write
			}
			return fmt.Errorf("journal log %s line %d is corrupt: %w", logPath(path), n+1, err)
		}
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
			return fmt.Errorf("journal log %s line %d: step index %d out of range", logPath(path), n+1, e.Index)
		}
	}
	return nil
}
