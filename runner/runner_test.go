package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// world is the fake hosts' state shared by the test steps: which steps
// applied, in order, and what files were written.
type world struct {
	mu      sync.Mutex
	applied []string
	files   map[string]string // host:path -> content
	dials   map[string]int
}

func newWorld() *world { return &world{files: map[string]string{}, dials: map[string]int{}} }

func (w *world) log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.applied, ",")
}

// fakeExec is an in-memory host: only what the test kind uses.
type fakeExec struct {
	executors.Executor // nil: any other method panics
	name               string
	w                  *world
}

func (f *fakeExec) Name() string { return f.name }
func (f *fakeExec) Close() error { return nil }
func (f *fakeExec) ReadFile(ctx context.Context, path string) ([]byte, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	c, ok := f.w.files[f.name+":"+path]
	if !ok {
		return nil, os.ErrNotExist
	}
	return []byte(c), nil
}
func (f *fakeExec) WriteFile(ctx context.Context, path string, data []byte, attrs executors.FileAttrs) error {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.files[f.name+":"+path] = string(data)
	return nil
}

// testSpec writes `content` to `path` on its host. Check is done when the
// file holds the content. Knobs make it fail, block or print.
type testSpec struct {
	w        *world
	Path     string `json:"path" yaml:"path"`
	Content  string `json:"content" yaml:"content"`
	FailN    int    `json:"fail_n" yaml:"fail_n"` // fail the first FailN applies
	Fatal    bool   `json:"fatal" yaml:"fatal"`   // always fail
	Unknown  bool   `json:"unknown" yaml:"unknown"`
	Refuse   string `json:"refuse" yaml:"refuse"` // Check fails with this
	Output   string `json:"output" yaml:"output"`
	started  chan struct{}
	release  chan struct{}
	attempts int
	checkRun string // the RunID the last Check saw
	checked  []any  // rt.Checked at each Apply
}

func (s *testSpec) Validate() []steps.Problem      { return nil }
func (s *testSpec) Hosts(stepHost string) []string { return []string{stepHost} }
func (s *testSpec) Check(ctx context.Context, rt *steps.Runtime) (steps.Check, error) {
	s.checkRun = rt.RunID
	if s.Refuse != "" {
		return steps.Check{}, errors.New(s.Refuse)
	}
	e, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return steps.Check{}, err
	}
	b, err := e.ReadFile(ctx, s.Path)
	if err == nil && string(b) == s.Content {
		return steps.Check{Done: true, Reason: s.Path + " holds the content"}, nil
	}
	return steps.Check{Planned: "write " + s.Path}, nil
}
func (s *testSpec) Describe(ctx context.Context, rt *steps.Runtime) ([]steps.Action, error) {
	e, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return nil, err
	}
	// A describe that tries to write proves the dry run's executors refuse.
	if err := e.WriteFile(ctx, s.Path, []byte("from describe"), executors.FileAttrs{}); !errors.Is(err, executors.ErrDryRun) {
		return nil, errors.New("describe could write under a dry run")
	}
	return []steps.Action{{Host: rt.Host, Summary: "write " + s.Path + " " + s.Content}}, nil
}
func (s *testSpec) Apply(ctx context.Context, rt *steps.Runtime) (steps.Outcome, error) {
	s.attempts++
	s.checked = append(s.checked, rt.Checked)
	if s.started != nil {
		close(s.started)
		s.started = nil
		select {
		case <-s.release:
		case <-ctx.Done():
			return steps.Outcome{}, ctx.Err()
		}
	}
	if s.Fatal || s.attempts <= s.FailN {
		return steps.Outcome{}, errors.New("boom with " + s.Content + s.Output)
	}
	if s.Unknown {
		return steps.Outcome{}, executors.ErrOutcomeUnknown
	}
	e, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return steps.Outcome{}, err
	}
	if err := e.WriteFile(ctx, s.Path, []byte(s.Content), executors.FileAttrs{}); err != nil {
		return steps.Outcome{}, err
	}
	s.w.mu.Lock()
	s.w.applied = append(s.w.applied, rt.StepID)
	s.w.mu.Unlock()
	// As a kind hands a secret to a command: revealed, then echoed back
	// (the runner must redact it).
	out, err := rt.Secrets.Reveal(s.Output)
	if err != nil {
		return steps.Outcome{}, err
	}
	fmt.Fprint(rt.Output, out)
	return steps.Outcome{Changed: true, Output: out}, nil
}

// fixture builds a plan of test steps over two fake hosts.
type fixture struct {
	t      testing.TB
	w      *world
	plan   *plan.Plan
	dir    string
	events []Event
}

func newFixture(t testing.TB, ids ...string) *fixture {
	f := &fixture{t: t, w: newWorld(), dir: t.TempDir()}
	f.plan = &plan.Plan{
		File:  filepath.Join(f.dir, "plan.yaml"),
		Name:  "test-plan",
		Vars:  map[string]string{"yes": "true", "no": "false"},
		Hosts: map[string]plan.Host{"a": {Name: "a"}, "b": {Name: "b"}},
	}
	for i, id := range ids {
		f.plan.Steps = append(f.plan.Steps, f.step(id, []string{"a", "b"}[i%2]))
	}
	f.redigest()
	return f
}

func (f *fixture) step(id, host string) plan.Step {
	return plan.Step{ID: id, Kind: "test", Host: host, Spec: &testSpec{w: f.w, Path: "/" + id, Content: "v1 " + id}}
}

func (f *fixture) spec(i int) *testSpec { return f.plan.Steps[i].Spec.(*testSpec) }

// redigest stands in for the loader: a step's digest follows its spec.
func (f *fixture) redigest() {
	var all []string
	for _, list := range [][]plan.Step{f.plan.Steps, f.plan.OnFailure} {
		for i := range list {
			s, ok := list[i].Spec.(*testSpec)
			if p, isPrep := list[i].Spec.(*prepSpec); !ok && isPrep {
				s = p.testSpec
			}
			list[i].Digest = list[i].ID + "|" + s.Path + "|" + s.Content
			all = append(all, list[i].Digest)
		}
	}
	f.plan.Digest = strings.Join(all, ";")
}

func (f *fixture) connect(ctx context.Context, h plan.Host) (executors.Executor, error) {
	f.w.mu.Lock()
	f.w.dials[h.Name]++
	f.w.mu.Unlock()
	return &fakeExec{name: h.Name, w: f.w}, nil
}

func (f *fixture) runner(opts Options) *Runner {
	opts.StateDir = filepath.Join(f.dir, "state")
	opts.RetryDelay = time.Millisecond
	opts.Events = func(e Event) { f.events = append(f.events, e) }
	return New(f.plan, f.connect, secret.Values{"pw": "hunter2"}, opts)
}

func (f *fixture) apply(opts Options) (*Journal, error) {
	f.t.Helper()
	return f.runner(opts).Apply(context.Background())
}

func (f *fixture) journal() *Journal {
	f.t.Helper()
	j, err := ReadJournal(JournalPath(filepath.Join(f.dir, "state"), f.plan.Name))
	if err != nil || j == nil {
		f.t.Fatalf("read journal: %v, %v", j, err)
	}
	return j
}

func statuses(recs []*StepRecord) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.ID+"="+r.Status)
	}
	return strings.Join(s, ",")
}

func TestApplyRunsInOrderAndRecordsJournal(t *testing.T) {
	f := newFixture(t, "one", "two", "three")
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	if got := f.w.log(); got != "one,two,three" {
		t.Fatalf("applied %q, want one,two,three", got)
	}
	j := f.journal()
	if j.Status != StatusCompleted || j.PlanDigest != f.plan.Digest {
		t.Fatalf("journal status %q digest %q", j.Status, j.PlanDigest)
	}
	if got := statuses(j.Steps); got != "one=done,two=done,three=done" {
		t.Fatalf("steps %s", got)
	}
	for _, s := range j.Steps {
		if !s.Changed || s.Started.IsZero() || s.Ended.IsZero() || s.Attempts != 1 {
			t.Fatalf("step record incomplete: %+v", s)
		}
	}
	// One connection per host for the whole run.
	if f.w.dials["a"] != 1 || f.w.dials["b"] != 1 {
		t.Fatalf("dials %v, want one per host", f.w.dials)
	}
	if len(j.History) != 1 || j.History[0].Mode != "fresh" || j.History[0].Status != StatusCompleted {
		t.Fatalf("history %+v", j.History)
	}
}

func TestCompletedPlanIsRefusedUnlessRestart(t *testing.T) {
	f := newFixture(t, "one", "two")
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(JournalPath(filepath.Join(f.dir, "state"), f.plan.Name))
	if _, err := f.apply(Options{}); !errors.Is(err, ErrCompleted) {
		t.Fatalf("second apply: err = %v, want ErrCompleted", err)
	}
	if _, err := f.apply(Options{Resume: true}); !errors.Is(err, ErrCompleted) {
		t.Fatalf("resume of a completed plan: err = %v, want ErrCompleted", err)
	}
	after, _ := os.ReadFile(JournalPath(filepath.Join(f.dir, "state"), f.plan.Name))
	if !bytes.Equal(before, after) {
		t.Fatal("a refused apply changed the journal")
	}
	if got := f.w.log(); got != "one,two" {
		t.Fatalf("refused apply ran steps: %q", got)
	}
	// --restart runs again; the steps' checks find the work done.
	if _, err := f.apply(Options{Restart: true}); err != nil {
		t.Fatal(err)
	}
	j := f.journal()
	if j.RunID != j.History[1].RunID || j.RunID == j.History[0].RunID {
		t.Fatalf("restart kept the old run id: %q, history %+v", j.RunID, j.History)
	}
	if len(j.History) != 2 || j.History[1].Mode != "restart" {
		t.Fatalf("history %+v", j.History)
	}
	if !strings.HasPrefix(j.Steps[0].Reason, "already done") || j.Steps[0].Changed {
		t.Fatalf("restart: step one %+v, want already done", j.Steps[0])
	}
}

func TestFailureRunsOnFailureAndResumeContinues(t *testing.T) {
	f := newFixture(t, "one", "two", "three")
	f.spec(1).FailN = 1 // two fails once
	f.plan.OnFailure = []plan.Step{f.step("undo-a", "a"), f.step("undo-b", "b")}
	f.plan.OnFailure[0].Spec.(*testSpec).Fatal = true // a failing rollback step does not stop the next
	f.redigest()

	_, err := f.apply(Options{})
	var runErr *RunError
	if !errors.As(err, &runErr) || runErr.Failed.Step != "two" || runErr.Failed.Host != "b" || len(runErr.RollbackErrs) != 1 {
		t.Fatalf("err = %v, want a RunError for step two on b with one failed rollback", err)
	}
	if got := f.w.log(); got != "one,undo-b" {
		t.Fatalf("applied %q", got)
	}
	j := f.journal()
	if j.Status != StatusFailed || j.FailedStep != "two" || !strings.Contains(j.Error, "boom") {
		t.Fatalf("journal: status %q failed %q error %q", j.Status, j.FailedStep, j.Error)
	}
	if got := statuses(j.Steps); got != "one=done,two=failed,three=pending" {
		t.Fatalf("steps %s", got)
	}
	if got := statuses(j.OnFailure); got != "undo-a=failed,undo-b=done" {
		t.Fatalf("on_failure %s", got)
	}

	if _, err := f.apply(Options{}); !errors.Is(err, ErrUnfinished) {
		t.Fatalf("plain apply after a failure: err = %v, want ErrUnfinished", err)
	}
	failedRun := j.RunID
	// on_failure changed things (undo-b): steps recorded done may have been
	// undone, so resuming past them is refused.
	if _, err := f.apply(Options{Resume: true}); !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "undo-b") {
		t.Fatalf("resume after a rollback: err = %v, want ErrRolledBack naming undo-b", err)
	}
	// Without a rollback that did anything, resume continues the run.
	j.OnFailure = nil
	saveJournal(t, FileStore{Dir: filepath.Join(f.dir, "state")}, f.plan.Name, j)
	if _, err := f.apply(Options{Resume: true}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := f.w.log(); got != "one,undo-b,two,three" {
		t.Fatalf("after resume applied %q: want one skipped and two, three run", got)
	}
	j = f.journal()
	if j.Status != StatusCompleted || j.FailedStep != "" || len(j.OnFailure) != 0 {
		t.Fatalf("journal after resume: %+v", j)
	}
	if len(j.History) != 2 || j.History[0].Status != StatusFailed || j.History[1].Mode != "resume" {
		t.Fatalf("history %+v", j.History)
	}
	// A resume continues the same run: artefacts of the run stay its own.
	if j.RunID != failedRun || j.History[1].RunID == j.History[0].RunID {
		t.Fatalf("run id %q after resume, want %q kept (history %+v)", j.RunID, failedRun, j.History)
	}
}

func TestPointOfNoReturnStopsOnFailure(t *testing.T) {
	tests := []struct {
		name     string
		failing  int  // index of the step that fails once
		resumed  bool // the marked step was done by an earlier apply of the run
		rollback bool // on_failure must run
	}{
		{name: "failure before the point rolls back", failing: 0, rollback: true},
		{name: "failure of the marked step itself rolls back", failing: 1, rollback: true},
		{name: "failure after the point does not", failing: 2},
		{name: "nor after a resume that skipped the point", failing: 2, resumed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "stop", "start-on-new", "wait")
			f.plan.Steps[1].PointOfNoReturn = true
			f.plan.OnFailure = []plan.Step{f.step("undo", "a")}
			f.redigest()
			if tt.resumed {
				// A crash after the marked step: the resume finds it done.
				f.spec(2).started, f.spec(2).release = make(chan struct{}), make(chan struct{})
				ctx, cancel := context.WithCancel(context.Background())
				started := f.spec(2).started
				go func() { <-started; cancel() }()
				if _, err := f.runner(Options{}).Apply(ctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("interrupted apply: %v", err)
				}
				f.spec(2).attempts = 0
			}
			f.spec(tt.failing).FailN = 1
			f.events = nil
			_, err := f.apply(Options{Resume: tt.resumed})
			var runErr *RunError
			if !errors.As(err, &runErr) || runErr.Failed.Step != f.plan.Steps[tt.failing].ID {
				t.Fatalf("err = %v, want a RunError for step %d", err, tt.failing)
			}
			j := f.journal()
			if want := map[bool]string{false: "start-on-new"}[tt.rollback]; j.PointOfNoReturn != want {
				t.Fatalf("journal point_of_no_return %q, want %q", j.PointOfNoReturn, want)
			}
			ranUndo := strings.Contains(f.w.log(), "undo")
			if ranUndo != tt.rollback || (len(j.OnFailure) > 0) != tt.rollback {
				t.Fatalf("on_failure ran: %v (journal %s), want %v", ranUndo, statuses(j.OnFailure), tt.rollback)
			}
			var skipped []Event
			for _, e := range f.events {
				if e.Type == EventRollbackSkipped {
					skipped = append(skipped, e)
				}
			}
			if tt.rollback {
				if runErr.PointOfNoReturn != "" || len(skipped) != 0 {
					t.Fatalf("point of no return %q, %d skip events; want none", runErr.PointOfNoReturn, len(skipped))
				}
				return
			}
			if runErr.PointOfNoReturn != "start-on-new" || !strings.Contains(err.Error(), "--resume") ||
				len(skipped) != 1 || !strings.Contains(skipped[0].Reason, "start-on-new") {
				t.Fatalf("err = %v, skip events %+v: want the point named and --resume advised", err, skipped)
			}
			// Not rolled back, so the run resumes from the failed step.
			if _, err := f.apply(Options{Resume: true}); err != nil {
				t.Fatalf("resume after a failure past the point: %v", err)
			}
			if got := f.w.log(); got != "stop,start-on-new,wait" {
				t.Fatalf("applied %q", got)
			}
			if j := f.journal(); j.Status != StatusCompleted || j.PointOfNoReturn != "" {
				t.Fatalf("after the resume: status %s, point_of_no_return %q", j.Status, j.PointOfNoReturn)
			}
		})
	}
}

func TestResumeRefusesChangedDoneStep(t *testing.T) {
	f := newFixture(t, "one", "two")
	f.spec(1).Fatal = true
	f.redigest()
	if _, err := f.apply(Options{}); err == nil {
		t.Fatal("want failure")
	}
	f.spec(0).Content = "v2 one" // a done step changed
	f.spec(1).Fatal = false
	f.redigest()
	_, err := f.apply(Options{Resume: true})
	if !errors.Is(err, ErrPlanChanged) || !strings.Contains(err.Error(), "one") {
		t.Fatalf("err = %v, want ErrPlanChanged naming step one", err)
	}
	// Changing the failed (not done) step is fine.
	f.spec(0).Content = "v1 one"
	f.spec(1).Content = "v2 two"
	f.redigest()
	if _, err := f.apply(Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
}

func TestResumeRechecksStepLeftRunning(t *testing.T) {
	f := newFixture(t, "one", "two", "three")
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	// Forge a crash: step two was running (its work did land), three never ran.
	j := f.journal()
	j.Status = StatusRunning
	j.Steps[1].Status = StatusRunning
	j.Steps[2].Status = StatusPending
	delete(f.w.files, "a:/three")
	saveJournal(t, FileStore{Dir: filepath.Join(f.dir, "state")}, f.plan.Name, j)
	f.w.applied = nil
	if _, err := f.apply(Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.w.log(); got != "three" {
		t.Fatalf("resume applied %q: step two's check should have found it done", got)
	}
	j = f.journal()
	if !strings.HasPrefix(j.Steps[1].Reason, "already done") {
		t.Fatalf("step two: %+v", j.Steps[1])
	}
}

func TestOutcomeUnknownIsRecordedAndNotRetried(t *testing.T) {
	f := newFixture(t, "one")
	f.plan.Steps[0].Retries = 3
	f.spec(0).Unknown = true
	_, err := f.apply(Options{})
	if !errors.Is(err, executors.ErrOutcomeUnknown) {
		t.Fatalf("err = %v", err)
	}
	if j := f.journal(); j.Steps[0].Status != StatusUnknown || j.Steps[0].Attempts != 1 {
		t.Fatalf("step: %+v", j.Steps[0])
	}
}

func TestRetries(t *testing.T) {
	f := newFixture(t, "one")
	f.plan.Steps[0].Retries = 2
	f.spec(0).FailN = 2
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	if j := f.journal(); j.Steps[0].Attempts != 3 {
		t.Fatalf("attempts %d, want 3", j.Steps[0].Attempts)
	}
	var retries int
	for _, e := range f.events {
		if e.Type == EventStepRetry {
			retries++
		}
	}
	if retries != 2 {
		t.Fatalf("%d retry events, want 2", retries)
	}
	// What the check planned goes to the first attempt; a retry decides again.
	if got := f.spec(0).checked; len(got) != 3 || got[0] != "write /one" || got[1] != nil || got[2] != nil {
		t.Fatalf("Runtime.Checked at each attempt: %q", got)
	}
}

func TestWhenFromAndOnly(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		when map[int]string
		want string
		recs string
	}{
		{"when false skips", Options{}, map[int]string{1: "no"}, "one,three", "one=done,two=skipped,three=done"},
		{"negated when", Options{}, map[int]string{0: "!yes", 1: "!no"}, "two,three", "one=skipped,two=done,three=done"},
		{"when with &&", Options{}, map[int]string{0: "yes && !no", 1: "yes && no", 2: "!no&&yes"}, "one,three", "one=done,two=skipped,three=done"},
		{"from", Options{From: "two"}, nil, "two,three", "one=skipped,two=done,three=done"},
		{"only", Options{Only: []string{"one", "three"}}, nil, "one,three", "one=done,two=skipped,three=done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "one", "two", "three")
			for i, w := range tt.when {
				f.plan.Steps[i].When = w
			}
			if _, err := f.apply(tt.opts); err != nil {
				t.Fatal(err)
			}
			if got := f.w.log(); got != tt.want {
				t.Fatalf("applied %q, want %q", got, tt.want)
			}
			if got := statuses(f.journal().Steps); got != tt.recs {
				t.Fatalf("journal %s, want %s", got, tt.recs)
			}
		})
	}
	f := newFixture(t, "one")
	if _, err := f.apply(Options{From: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown --from: err = %v", err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	f := newFixture(t, "one", "two")
	f.w.files["b:/two"] = "v1 two" // already done
	pv, err := f.runner(Options{}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(pv.Steps) != 2 || pv.Steps[0].Check.Done || !pv.Steps[1].Check.Done || pv.Pending() != 1 {
		t.Fatalf("preview %+v", pv.Steps)
	}
	if len(pv.Steps[0].Actions) != 1 || pv.Steps[0].Actions[0].Summary != "write /one v1 one" {
		t.Fatalf("actions %+v", pv.Steps[0].Actions)
	}
	if len(f.w.files) != 1 || f.w.log() != "" {
		t.Fatalf("dry run changed the hosts: %v", f.w.files)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run created the state dir: %v", err)
	}
	// Offline: no connection at all, actions unknown.
	f2 := newFixture(t, "one")
	pv, err = f2.runner(Options{Offline: true}).Plan(context.Background())
	if err != nil || len(f2.w.dials) != 0 || !errors.Is(pv.Steps[0].DescribeErr, ErrOffline) {
		t.Fatalf("offline: err %v dials %v preview %+v", err, f2.w.dials, pv.Steps[0])
	}
}

// TestDryRunSeesTheRunToResume: the dry run gives the steps the run id
// of the run `apply --resume` would continue, so that they recognise what
// it left on the hosts, and "" when apply would start afresh.
func TestDryRunSeesTheRunToResume(t *testing.T) {
	f := newFixture(t, "one", "two")
	planRun := func(opts Options) string {
		t.Helper()
		f.spec(0).checkRun = "unset"
		if _, err := f.runner(opts).Plan(context.Background()); err != nil {
			t.Fatal(err)
		}
		return f.spec(0).checkRun
	}
	if got := planRun(Options{}); got != "" {
		t.Fatalf("no journal: run id %q, want none", got)
	}
	f.spec(1).Fatal = true
	if _, err := f.apply(Options{}); err == nil {
		t.Fatal("step two did not fail")
	}
	failed := f.journal().RunID
	for _, opts := range []Options{{}, {Resume: true}} {
		if got := planRun(opts); got != failed || got == "" {
			t.Fatalf("failed run, %+v: run id %q, want %q", opts, got, failed)
		}
	}
	if got := planRun(Options{Restart: true}); got != "" {
		t.Fatalf("--restart: run id %q, want none", got)
	}
	f.spec(1).Fatal = false
	if _, err := f.apply(Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
	if got := planRun(Options{}); got != "" {
		t.Fatalf("completed run: run id %q, want none", got)
	}
}

func TestLockRefusesConcurrentApply(t *testing.T) {
	f := newFixture(t, "one")
	f.spec(0).started = make(chan struct{})
	f.spec(0).release = make(chan struct{})
	started := f.spec(0).started
	done := make(chan error)
	go func() { _, err := f.runner(Options{}).Apply(context.Background()); done <- err }()
	<-started
	_, err := f.runner(Options{}).Apply(context.Background())
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("concurrent apply: err = %v, want ErrLocked naming the holder", err)
	}
	close(f.spec(0).release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Released: a restart can take it.
	if _, err := f.apply(Options{Restart: true}); err != nil {
		t.Fatal(err)
	}
}

func TestCancelLeavesResumableJournal(t *testing.T) {
	f := newFixture(t, "one", "two")
	f.plan.OnFailure = []plan.Step{f.step("undo", "a")}
	f.redigest()
	f.spec(1).started = make(chan struct{})
	f.spec(1).release = make(chan struct{})
	started := f.spec(1).started
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := f.runner(Options{}).Apply(ctx); done <- err }()
	<-started
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	j := f.journal()
	if j.Status != StatusInterrupted || j.Steps[1].Status != StatusUnknown || len(j.OnFailure) != 0 {
		t.Fatalf("journal after cancel: status %s steps %s on_failure %d", j.Status, statuses(j.Steps), len(j.OnFailure))
	}
	if _, err := f.apply(Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.w.log(); got != "one,two" {
		t.Fatalf("applied %q", got)
	}
}

func TestSecretsNeverReachJournalOrEvents(t *testing.T) {
	f := newFixture(t, "one")
	f.spec(0).Output = "password is hunter2 and token " + secret.Token("pw")
	f.spec(0).Content = "x"
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(JournalPath(filepath.Join(f.dir, "state"), f.plan.Name))
	if bytes.Contains(data, []byte("hunter2")) || bytes.Contains(data, []byte("\x1e")) {
		t.Fatalf("journal holds a secret: %s", data)
	}
	if !bytes.Contains(data, []byte(secret.Masked)) {
		t.Fatalf("journal output not redacted: %s", data)
	}
	f2 := newFixture(t, "one")
	f2.spec(0).Fatal = true
	f2.spec(0).Output = "hunter2"
	f2.apply(Options{})
	for _, e := range f2.events {
		if strings.Contains(e.Error+e.Reason, "hunter2") {
			t.Fatalf("event holds a secret: %+v", e)
		}
	}
	data, _ = os.ReadFile(JournalPath(filepath.Join(f2.dir, "state"), f2.plan.Name))
	if bytes.Contains(data, []byte("hunter2")) {
		t.Fatalf("journal holds a secret from an error: %s", data)
	}
}

// TestJournalLogReplaysAfterCrash: while a run is in progress the snapshot
// is stale and the log holds the transitions; ReadJournal (what status and
// resume read after a kill -9) replays it, skips a torn last line and
// ignores entries another apply invocation left.
func TestJournalLogReplaysAfterCrash(t *testing.T) {
	f := newFixture(t, "one", "two", "three")
	f.spec(1).started = make(chan struct{})
	f.spec(1).release = make(chan struct{})
	started, release := f.spec(1).started, f.spec(1).release
	done := make(chan error)
	go func() { _, err := f.runner(Options{}).Apply(context.Background()); done <- err }()
	<-started

	path := JournalPath(filepath.Join(f.dir, "state"), f.plan.Name)
	var snap Journal
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	if got := statuses(snap.Steps); got != "one=pending,two=pending,three=pending" {
		t.Fatalf("snapshot mid-run: %s (the test expects transitions in the log)", got)
	}
	lf, err := os.OpenFile(logPath(path), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// An entry of another invocation, then a torn line as a crash leaves.
	fmt.Fprintf(lf, `{"run":"other","list":"steps","index":2,"step":{"id":"three","status":"done"},"status":"completed"}`+"\n")
	fmt.Fprintf(lf, `{"run":"%s","list":"steps","index":2,"step":{"id":"thr`, snap.History[len(snap.History)-1].RunID)
	lf.Close()
	j, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(j.Steps); got != "one=done,two=running,three=pending" || j.Status != StatusRunning {
		t.Fatalf("replayed mid-run: %s (run %s), want done,running,pending", got, j.Status)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logPath(path)); !os.IsNotExist(err) {
		t.Errorf("the log outlived the final snapshot: %v", err)
	}
	if got := statuses(f.journal().Steps); got != "one=done,two=done,three=done" {
		t.Errorf("final journal: %s", got)
	}
}

func TestStepErrorNamesTheStepOnce(t *testing.T) {
	tests := []struct {
		inner error
		want  string
	}{
		{errors.New("boom"), "step a on db: boom"},
		// service, command and the kinds built on them say where.
		{&steps.WhereError{Where: "service x on db", Err: errors.New("boom")}, "step a: service x on db: boom"},
		{fmt.Errorf("check: %w", &steps.WhereError{Where: "run on db", Err: errors.New("boom")}), "step a: check: run on db: boom"},
	}
	for _, tt := range tests {
		if got := (&StepError{Step: "a", Host: "db", Err: tt.inner}).Error(); got != tt.want {
			t.Errorf("StepError(%q) = %q, want %q", tt.inner, got, tt.want)
		}
	}
}

// A step whose check refuses refuses the apply before the first step
// changes anything, and no journal is written; a step the run would not
// run (when: false) does not.
func TestPreflightRefusesBeforeAnyChange(t *testing.T) {
	f := newFixture(t, "one", "two", "three", "four")
	f.spec(2).Refuse = "unlogged tables"
	f.plan.Steps[3].When = "no"
	f.spec(3).Refuse = "never asked"
	_, err := f.apply(Options{})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "unlogged tables") || strings.Contains(err.Error(), "never asked") {
		t.Fatalf("apply: %v", err)
	}
	var se *StepError
	if !errors.As(err, &se) || se.Step != "three" {
		t.Fatalf("the refusal does not name step three: %v", err)
	}
	if got := f.w.log(); got != "" {
		t.Fatalf("applied %q before the refusal", got)
	}
	if j, err := ReadJournal(JournalPath(filepath.Join(f.dir, "state"), f.plan.Name)); err != nil || j != nil {
		t.Fatalf("journal after a refused apply: %+v %v", j, err)
	}
	f.spec(2).Refuse = ""
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	if got := f.w.log(); got != "one,two,three" {
		t.Fatalf("applied %q", got)
	}
}

// prepSpec is a testSpec that prepares (steps.Preparer): it records which
// step it was prepared for and what had been applied by then.
type prepSpec struct {
	*testSpec
	calls *[]string
}

func (p *prepSpec) Prepare(ctx context.Context, rt *steps.Runtime) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	*p.calls = append(*p.calls, fmt.Sprintf("%s after [%s] prepared=%t", rt.StepID, strings.Join(p.w.applied, " "), rt.Prepared != nil))
}

// TestPrepareNextStep: the next step the apply will run gets ready while
// the one before it runs, once, past steps it skips; never in a dry run,
// never for a step already done.
func TestPrepareNextStep(t *testing.T) {
	f := newFixture(t, "one", "two", "three", "four", "five")
	f.plan.Steps[1].When = "no"
	var calls []string
	for _, i := range []int{2, 3, 4} {
		f.plan.Steps[i].Spec = &prepSpec{testSpec: f.spec(i), calls: &calls}
	}
	f.w.files["b:/four"] = "v1 four" // done already: prepared all the same (its check decides)
	f.plan.Steps[2].Spec.(*prepSpec).FailN = 1
	f.redigest()
	if _, err := f.runner(Options{}).Plan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 0 {
		t.Fatalf("a dry run prepared: %q", calls)
	}
	if _, err := f.apply(Options{}); err == nil {
		t.Fatal("step three did not fail")
	}
	// Step three (i = 2) failed: four had been prepared while it ran.
	if want := []string{"three after [] prepared=true", "four after [one] prepared=true"}; !slices.Equal(calls, want) {
		t.Fatalf("prepared:\n%q\nwant\n%q", calls, want)
	}
	// A resumed apply prepares what follows the step it resumes at.
	calls = nil
	if _, err := f.apply(Options{Resume: true}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"four after [one] prepared=true", "five after [one three] prepared=true"}; !slices.Equal(calls, want) {
		t.Fatalf("resumed, prepared:\n%q\nwant\n%q", calls, want)
	}
}

// saveJournal writes j as the journal of name in store, as an apply that
// ended would have left it.
func saveJournal(t *testing.T, store Store, name string, j *Journal) {
	t.Helper()
	ctx := context.Background()
	lk, err := store.Lock(ctx, name, Holder{PID: os.Getpid(), Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := lk.Release(true); err != nil {
		t.Fatal(err)
	}
}

func TestFileStoreHeldBy(t *testing.T) {
	ctx := context.Background()
	store := FileStore{Dir: filepath.Join(t.TempDir(), "state")}
	if h, err := store.HeldBy(ctx, "p"); h != "" || err != nil {
		t.Fatalf("HeldBy before any lock = %q, %v; want free", h, err)
	}
	lk, err := store.Lock(ctx, "p", Holder{PID: 4242, Workstation: "ws-a", Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := store.HeldBy(ctx, "p"); !strings.Contains(h, "pid 4242 on ws-a") || err != nil {
		t.Fatalf("HeldBy while locked = %q, %v; want the holder", h, err)
	}
	if h, _ := store.HeldBy(ctx, "other"); h != "" {
		t.Fatalf("another plan's lock is held by %q", h)
	}
	lk.Release(true)
	if err := lk.Release(false); err != nil {
		t.Fatalf("a second Release = %v, want nothing done", err)
	}
	if h, err := store.HeldBy(ctx, "p"); h != "" || err != nil {
		t.Fatalf("HeldBy after the release = %q, %v; want free", h, err)
	}
}
