// Package runner runs a plan's steps in order against its hosts: the dry
// run (check + describe, writing nothing anywhere), the apply with its
// journal, lock, resume and on_failure rollback.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// Errors that refuse to start a run; the CLI maps them to exit code 3.
var (
	ErrCompleted       = errors.New("the plan already completed")
	ErrUnfinished      = errors.New("an earlier run of this plan did not finish")
	ErrPlanChanged     = errors.New("steps recorded done have changed since")
	ErrNothingToResume = errors.New("nothing to resume: no journal for this plan")
	ErrRolledBack      = errors.New("the failed run was rolled back")
	ErrOtherReview     = errors.New("the run being resumed applies another reviewed plan")
)

// Options tune a run. The zero value is a fresh apply with no output.
type Options struct {
	// State keeps the journal and the lock; nil means a FileStore in
	// StateDir.
	State Store
	// Set names the inventory set this run is, when a plan runs across a
	// fleet: the run's journal and lock are then PLAN@SET, and its events
	// carry the set.
	Set string
	// StateDir is the FileStore's directory when State is nil; default
	// ".migrun" beside the plan.
	StateDir string
	// Resume continues an interrupted or failed run; Restart discards its
	// journal and starts over. At most one may be set.
	Resume, Restart bool
	// From starts at this step id; Only runs just these ids.
	From string
	Only []string
	// Offline renders a dry run without connecting to any host.
	Offline bool
	// Events receives every event; nil drops them.
	Events func(Event)
	// Output receives the streamed output of commands (already redacted);
	// nil discards it.
	Output io.Writer
	// Progress reports long transfers; nil means none.
	Progress steps.Progress
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RetryDelay is the pause before retry n (n*RetryDelay); default 2s.
	RetryDelay time.Duration
	// Reviewed names the reviewed-plan file being applied; the journal
	// records it, and a resume must continue the same one.
	Reviewed *ReviewRef
	// Trace receives a line for each lock, journal write, connection and
	// host operation an apply waits on, with its timing (see trace.go);
	// nil writes none.
	Trace io.Writer
}

// Runner runs one loaded plan.
type Runner struct {
	plan    *plan.Plan
	connect Connector
	secrets secret.Values
	opts    Options
	// detected are this run's answers to the plan's detections, found
	// when Plan or Apply starts (see detect).
	detected map[string]bool
}

// New returns a runner for p. secrets are the resolved values of the
// secrets p uses; connect opens executors for its hosts.
func New(p *plan.Plan, connect Connector, secrets secret.Values, opts Options) *Runner {
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir(p.File)
	}
	if opts.State == nil {
		opts.State = FileStore{Dir: opts.StateDir}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Events == nil {
		opts.Events = func(Event) {}
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	if opts.Progress == nil {
		opts.Progress = steps.NopProgress{}
	}
	if secrets == nil {
		// hostSecrets adds to it.
		secrets = secret.Values{}
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 2 * time.Second
	}
	return &Runner{plan: p, connect: connect, secrets: secrets, opts: opts}
}

// DefaultStateDir is ".migrun" in the plan file's directory.
func DefaultStateDir(planFile string) string {
	return filepath.Join(filepath.Dir(planFile), ".migrun")
}

// JournalName is the name of a run's journal and lock in a state store:
// the plan's name, or PLAN@SET for one set of an inventory.
func JournalName(plan, set string) string {
	if set == "" {
		return plan
	}
	return plan + "@" + set
}

// journalName is this run's JournalName.
func (r *Runner) journalName() string { return JournalName(r.plan.Name, r.opts.Set) }

// StepError is a step that failed; it names the step and its host.
type StepError struct {
	Step string
	Host string
	Err  error
}

func (e *StepError) Error() string {
	where := "step " + e.Step
	var we *steps.WhereError
	if e.Host != "" && !errors.As(e.Err, &we) {
		// A kind that says where it failed names the host itself.
		where += " on " + e.Host
	}
	return where + ": " + e.Err.Error()
}

func (e *StepError) Unwrap() error { return e.Err }

// RunError is a failed apply: the step that failed and how the rollback went.
type RunError struct {
	Failed       *StepError
	RollbackErrs []error // on_failure steps that failed in turn
	// PointOfNoReturn is the step marked point_of_no_return that was done
	// before the failure; on_failure did not run.
	PointOfNoReturn string
}

func (e *RunError) Error() string {
	msg := e.Failed.Error()
	if e.PointOfNoReturn != "" {
		msg += fmt.Sprintf(" (after %s, the point of no return: on_failure was not run; fix the cause and continue with --resume)", e.PointOfNoReturn)
	}
	if len(e.RollbackErrs) > 0 {
		msg += fmt.Sprintf(" (and %d on_failure step(s) failed: %v)", len(e.RollbackErrs), errors.Join(e.RollbackErrs...))
	}
	return msg
}

func (e *RunError) Unwrap() error { return e.Failed }

// selected reports whether a step is picked by --from/--only.
func (r *Runner) selected(i int, id string) bool {
	if len(r.opts.Only) > 0 {
		return slices.Contains(r.opts.Only, id)
	}
	if r.opts.From != "" {
		for j := range r.plan.Steps[:i+1] {
			if r.plan.Steps[j].ID == r.opts.From {
				return true
			}
		}
		return false
	}
	return true
}

// checkSelection refuses --from/--only ids the plan does not have.
func (r *Runner) checkSelection() error {
	if r.opts.Resume && r.opts.Restart {
		return errors.New("--resume and --restart exclude each other")
	}
	if r.opts.From != "" && len(r.opts.Only) > 0 {
		return errors.New("--from and --only exclude each other")
	}
	ids := map[string]bool{}
	for _, s := range r.plan.Steps {
		ids[s.ID] = true
	}
	for _, id := range append([]string{r.opts.From}, r.opts.Only...) {
		if id != "" && !ids[id] {
			return fmt.Errorf("no step %q in plan %s", id, r.plan.Name)
		}
	}
	return nil
}

// whenTrue evaluates a step's `when:` against the plan's vars.
func (r *Runner) whenTrue(st plan.Step) (bool, string) {
	if st.When == "" {
		return true, ""
	}
	if r.opts.Offline && r.whenDetects(st.When) {
		// Not found offline: show the step as it would run.
		return true, ""
	}
	if plan.WhenHolds(st.When, r.whenVars()) {
		return true, ""
	}
	return false, "when: " + st.When + " is false"
}

// whenDetects reports whether when reads a detection.
func (r *Runner) whenDetects(when string) bool {
	names := r.plan.DetectionNames()
	for _, t := range plan.WhenTerms(when) {
		if names[t.Var] {
			return true
		}
	}
	return false
}

// runtime builds what a step sees.
func (r *Runner) runtime(st plan.Step, hosts *pool, dryRun bool) *steps.Runtime {
	return &steps.Runtime{
		StepID:   st.ID,
		Host:     st.Host,
		Become:   st.Become,
		DryRun:   dryRun,
		Executor: hosts.get,
		Secrets:  r.secrets,
		Output:   r.opts.Output,
		Progress: r.opts.Progress,
	}
}

// hostsOf lists the hosts the given steps touch, sorted, "" excluded.
func hostsOf(list ...[]plan.Step) []string {
	seen := map[string]bool{}
	for _, stepsList := range list {
		for _, st := range stepsList {
			for _, h := range st.Spec.Hosts(st.Host) {
				seen[h] = true
			}
		}
	}
	delete(seen, "")
	names := make([]string, 0, len(seen))
	for h := range seen {
		names = append(names, h)
	}
	sort.Strings(names)
	return names
}

// connectAll dials every host before the first step runs, so a refused
// host key or a wrong password stops the run before anything changed. The
// hosts are dialed concurrently: a run pays for one handshake, not one
// per host.
func connectAll(ctx context.Context, hosts *pool, names []string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, h := range names {
		wg.Go(func() { _, errs[i] = hosts.get(ctx, h) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// clean renders an error for people and files: secret tokens masked and
// any secret value that slipped into command output redacted.
func (r *Runner) clean(s string) string {
	return r.secrets.Redact(secret.Mask(s))
}

func (r *Runner) emit(e Event) {
	e.Version = EventSchemaVersion
	e.Time = r.opts.Now()
	e.Plan = r.plan.Name
	e.Set = r.opts.Set
	e.Error = r.clean(e.Error)
	e.Reason = r.clean(e.Reason)
	r.opts.Events(e)
}

func whoAmI() (userName, host string) {
	if u, err := user.Current(); err == nil {
		userName = u.Username
	}
	host, _ = os.Hostname()
	return userName, host
}

// stepHost is the host shown for a step: its `host:`, or the hosts its
// kind names joined ("engine->db" for a copy).
func stepHost(st plan.Step) string {
	if st.Host != "" {
		return st.Host
	}
	return strings.Join(stepHosts(st), "->")
}
