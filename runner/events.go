package runner

import (
	"time"

	"github.com/migrun/migrun/steps"
)

// Event types, in the order a run emits them.
const (
	EventRunStart  = "run_start"
	EventDetect    = "detect" // a detection's answer: Step is its name, Status true, false, or unknown (offline)
	EventStepStart = "step_start"
	EventStepPlan  = "step_plan" // dry run: check result and actions
	EventStepRetry = "step_retry"
	// EventStepRunning repeats while a step runs longer than a couple of
	// seconds; Duration is how long so far.
	EventStepRunning = "step_running"
	// EventProgress reports a step's task (bytes copied, archive items
	// restored, tables verified) in Progress.
	EventProgress      = "progress"
	EventStepEnd       = "step_end"
	EventRollbackStart = "rollback_start"
	// EventRollbackSkipped: a step failed after a point_of_no_return step
	// was done, so on_failure does not run.
	EventRollbackSkipped = "rollback_skipped"
	EventRunEnd          = "run_end"
)

// EventSchemaVersion is the version of the event format --output json
// prints, described by docs/events.schema.json. It changes when a field
// changes meaning or goes away, not when one is added.
const EventSchemaVersion = 1

// EventTypes lists every event type, for the schema's test.
var EventTypes = []string{EventRunStart, EventDetect, EventStepStart, EventStepPlan, EventStepRetry,
	EventStepRunning, EventProgress, EventStepEnd, EventRollbackStart, EventRollbackSkipped, EventRunEnd}

// Event is one thing that happened during a dry run or an apply. The CLI
// renders events as text lines or as JSON lines (--output json), so CI gets
// the same facts a person sees. Events never hold secret values.
type Event struct {
	Version  int            `json:"version"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`
	Plan     string         `json:"plan"`
	Set      string         `json:"set,omitempty"`  // the inventory set, in a fleet
	Mode     string         `json:"mode,omitempty"` // plan, fresh, resume, restart
	Step     string         `json:"step,omitempty"`
	Kind     string         `json:"kind,omitempty"`
	Host     string         `json:"host,omitempty"`
	Rollback bool           `json:"rollback,omitempty"` // an on_failure step
	Status   string         `json:"status,omitempty"`
	Changed  bool           `json:"changed,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Error    string         `json:"error,omitempty"`
	Attempt  int            `json:"attempt,omitempty"`
	Duration time.Duration  `json:"duration_ns,omitempty"`
	Actions  []steps.Action `json:"actions,omitempty"`
	// Description is the step's `description:` from the plan.
	Description string `json:"description,omitempty"`
	// KnownAfter (dry run) names the earlier step that changes this
	// step's hosts first: what is shown is as of now.
	KnownAfter string `json:"known_after,omitempty"`
	// PointOfNoReturn (dry run): once this step is done, a later failure
	// does not run on_failure.
	PointOfNoReturn bool `json:"point_of_no_return,omitempty"`
	// Progress is a progress event's state.
	Progress *ProgressInfo `json:"progress,omitempty"`
}

// ProgressInfo is how far a step's task is.
type ProgressInfo struct {
	Label string `json:"label"`
	Unit  string `json:"unit"` // bytes, items or tables
	Done  int64  `json:"done"`
	Total int64  `json:"total"` // -1 when unknown
	Final bool   `json:"final,omitempty"`
}
