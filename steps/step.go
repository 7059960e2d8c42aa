// Package steps holds the step kinds: one file per kind, each with its
// schema (a Go struct with yaml/doc tags), its validation, a read-only
// Check, a dry-run Describe and an Apply. Adding a kind means adding one file
// and one line in registry.go.
package steps

import (
	"context"
	"io"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
)

// Spec is one step kind's fields, decoded from the plan. Implementations
// are pointers to structs whose exported fields carry tags:
//
//	yaml:"name"            the key in the plan (required on every field)
//	doc:"text"             one line for `migrun doc KIND` and the schema
//	required:"true"        the key must be present
//	enum:"a|b|c"           allowed values of a string
//	default:"x"            documented default (the decoder does not set it;
//	                       Validate or the methods apply it)
//	secret:"allowed"       the string may hold ${secret} references; any
//	                       other field refusing them keeps secrets out of argv
//
// Supported field types: string, bool, int, []string, map[string]string,
// and nested structs of the same. Every string is interpolated at load
// time: ${var} becomes its value and ${secret} becomes a secret.Token.
type Spec interface {
	// Validate checks what the tags cannot express (exactly one of two
	// fields, a path is absolute, ...). Field names in problems are the
	// yaml keys ("argv", "to"), so the loader can point at their lines.
	Validate() []Problem
	// Hosts lists the plan hosts the step touches. stepHost is the step's
	// `host:` (empty when not given); kinds that run on one host return it.
	Hosts(stepHost string) []string
	// Check reports, without changing anything, whether the step's work is
	// already done. It may run commands only with Command.ReadOnly set.
	// When the answer depends on earlier steps that have not run (dry run),
	// return a Check with Unknown set instead of an error.
	Check(ctx context.Context, rt *Runtime) (Check, error)
	// Describe lists exactly what Apply would do: commands as they would
	// run (secrets masked), file edits as unified diffs. Read-only.
	Describe(ctx context.Context, rt *Runtime) ([]Action, error)
	// Apply does the work. It may assume Check said "not done" (or that
	// the user forced a re-run) and must be safe to run again after an
	// interruption: resume re-runs a step that was in progress.
	Apply(ctx context.Context, rt *Runtime) (Outcome, error)
}

// ScalarSpec is implemented by kinds with a one-value shorthand, such as
// `command: "systemctl stop x"`: the decoder stores a scalar into the
// field whose yaml key ScalarField returns.
type ScalarSpec interface {
	ScalarField() string
}

// Verifier is implemented by kinds whose Apply only verifies (pg_check,
// pg_verify, wait): they change no host, so a dry run does not treat the
// state later steps read as changed by them.
type Verifier interface {
	VerifiesOnly()
}

// Problem is a validation failure on one field (yaml key; empty means the
// step as a whole).
type Problem struct {
	Field   string
	Message string
}

// Check is the answer of Spec.Check.
type Check struct {
	Done    bool   // already in the wanted state
	Unknown bool   // cannot tell before earlier steps run
	Reason  string // why, for the user ("dump already present, sha256 matches")
	// Planned is what the check decided to do, for the Apply that follows
	// it (Runtime.Checked): the probes behind it need not run twice, and
	// apply does what the check saw was needed. nil: Apply decides itself.
	Planned any
}

// Action is one thing a step would do, for the dry run.
type Action struct {
	Host    string `json:"host"`           // plan host name it happens on ("" for the workstation relay)
	Summary string `json:"summary"`        // one line: "run: pg_dump -F c ...", "copy engine:/a -> db:/a (12 MB)"
	Diff    string `json:"diff,omitempty"` // unified diff for file edits, else empty
}

// outputTail is how much of a step's output its Outcome keeps for the
// journal: the end, where errors are.
const outputTail = 4 << 10

// Outcome is what Apply reports back for the journal.
type Outcome struct {
	Changed bool
	// Output is a short human note or the tail of command output, already
	// free of secrets (the runner redacts again before storing it).
	Output string
}

// Runtime is what a step sees of the world while it runs.
type Runtime struct {
	StepID string
	// RunID names this run of the plan: the same across resumes of it, new
	// on a fresh apply or --restart. In a dry run it is the run that
	// `apply --resume` would continue, "" when an apply would start a fresh
	// one. Kinds that leave artefacts or markers on a host (a dump, a
	// restore's progress) record it, so that what an earlier rehearsal left
	// is never mistaken for this run's.
	RunID  string
	Host   string // the step's `host:`, "" if none
	Become string // the step's `become:`, "" if none
	DryRun bool

	// Executor returns the connected executor for a plan host. Under a
	// dry run it is read-only: writes return executors.ErrDryRun.
	Executor func(ctx context.Context, host string) (executors.Executor, error)
	// Secrets reveals tokens for stdin and 0600 files, and redacts output.
	Secrets secret.Values
	// Output receives the streamed stdout/stderr of commands (redacted).
	Output io.Writer
	// Progress reports long transfers; never nil (the runner supplies a
	// no-op when output is not wanted).
	Progress Progress
	// Checked is the Planned of the check that ran just before this
	// Apply, for its first attempt only (a retry decides again: the host
	// may have changed). A kind uses it only if it is of its own type.
	Checked any
	// Prepared holds what a Preparer opened ahead of this step; nil when
	// nothing was (a dry run, a step run alone): kinds open their own.
	Prepared *Prepared
}

// Progress creates progress reporters for long work.
type Progress interface {
	// Start begins reporting on t.
	Start(t Task) Bar
}

// Task is one long piece of work a step reports progress on.
type Task struct {
	Label string
	Unit  Unit
	Total int64 // -1 if unknown
	Done  int64 // already done when it starts (a resumed copy)
}

// Unit is what a Task counts.
type Unit string

const (
	UnitBytes  Unit = "bytes"
	UnitItems  Unit = "items"  // archive entries (pg_restore's table of contents)
	UnitTables Unit = "tables" // tables dumped, copied or verified
)

// Bar is one task in progress.
type Bar interface {
	Add(n int64)
	Done(err error)
}

// WhereError says where a step's work failed: "run on db as postgres",
// "stop ovirt-engine on engine". The runner puts the step's id before it
// and, since it names the host, not the host again.
type WhereError struct {
	Where string
	Err   error
}

func (e *WhereError) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *WhereError) Unwrap() error { return e.Err }

// Kind describes one step kind for the registry, docs and schema.
type Kind struct {
	Name    string // the plan key: "command", "copy"
	Summary string // one line for `migrun steps`
	// NeedsHost: the step must have `host:`. Kinds that name their hosts
	// in their own fields (copy) set it false.
	NeedsHost bool
	New       func() Spec // a zero spec for the decoder
}
