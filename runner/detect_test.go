package runner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/plan"
)

// Run answers the detections' file probes ("test -e '/path'") from the
// world's files, and counts them.
func (f *fakeExec) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	path, ok := strings.CutPrefix(cmd.Script, "test -e ")
	if !ok || !cmd.ReadOnly {
		return executors.Result{}, errors.New("fakeExec runs read-only file probes only, not " + cmd.Script)
	}
	path = strings.Trim(path, "'")
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.dials["probe "+f.name+":"+path]++
	if _, ok := f.w.files[f.name+":"+path]; ok {
		return executors.Result{}, nil
	}
	return executors.Result{ExitCode: 1}, &executors.ExitError{Host: f.name, Command: cmd.Script, ExitCode: 1}
}

// TestDetectionsDecideWhenAndStandOnResume: a detection selects steps as a
// var does; a dry run and an apply find it on the host; the journal keeps
// the first apply's answer, which a resume goes on with although the host
// now answers otherwise.
func TestDetectionsDecideWhenAndStandOnResume(t *testing.T) {
	f := newFixture(t, "one", "two", "three", "four")
	f.plan.Detect = []plan.Detection{{Name: "has_dwh", Host: "a", File: "/etc/dwh.conf"}}
	f.plan.Steps[1].When = "has_dwh"
	f.plan.Steps[2].When = "!has_dwh && yes"
	f.spec(3).FailN = 1 // the first apply fails at four: resumable

	pv, err := f.runner(Options{}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pv.Detected["has_dwh"] || pv.Steps[1].Skipped == "" || pv.Steps[2].Skipped != "" {
		t.Fatalf("dry run without the file: detected %v, two skipped %q, three skipped %q", pv.Detected, pv.Steps[1].Skipped, pv.Steps[2].Skipped)
	}
	var detectEvents []string
	for _, e := range f.events {
		if e.Type == EventDetect {
			detectEvents = append(detectEvents, e.Step+"="+e.Status+" "+e.Reason)
		}
	}
	if len(detectEvents) != 1 || detectEvents[0] != "has_dwh=false file /etc/dwh.conf exists on a" {
		t.Errorf("detect events: %q", detectEvents)
	}

	f.w.files["a:/etc/dwh.conf"] = "x"
	if _, err := f.apply(Options{}); err == nil {
		t.Fatal("four was to fail once")
	}
	if got := f.w.log(); got != "one,two" {
		t.Fatalf("applied %q, want one,two (has_dwh found true)", got)
	}
	if j := f.journal(); !j.Detected["has_dwh"] {
		t.Fatalf("journal detected %v", j.Detected)
	}
	// The run's own steps (say) moved what the probe looks for.
	delete(f.w.files, "a:/etc/dwh.conf")
	probes := f.w.dials["probe a:/etc/dwh.conf"]
	pv, err = f.runner(Options{Resume: true}).Plan(context.Background())
	if err != nil || !pv.Detected["has_dwh"] {
		t.Fatalf("dry run of the resume: %v %v", pv.Detected, err)
	}
	if _, err := f.apply(Options{Resume: true}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if n := f.w.dials["probe a:/etc/dwh.conf"]; n != probes {
		t.Fatalf("the resume probed the host again (%d probes, had %d)", n, probes)
	}
	// three's when is false on the recorded answer: still skipped.
	if got := statuses(f.journal().Steps); got != "one=done,two=done,three=skipped,four=done" {
		t.Fatalf("after the resume: %s", got)
	}

	// A restart asks the host again.
	if _, err := f.apply(Options{Restart: true}); err != nil {
		t.Fatal(err)
	}
	if j := f.journal(); j.Detected["has_dwh"] || statuses(j.Steps) != "one=done,two=skipped,three=done,four=done" {
		t.Fatalf("after the restart: %v %s", j.Detected, statuses(j.Steps))
	}
}

// A probe that fails (neither 0 nor 1) stops the apply before any step,
// and no journal is written.
func TestDetectionFailureChangesNothing(t *testing.T) {
	f := newFixture(t, "one")
	f.plan.Detect = []plan.Detection{{Name: "odd", Host: "b", Command: "exit 2"}}
	f.plan.Steps[0].When = "odd"
	_, err := f.apply(Options{})
	if err == nil || !strings.Contains(err.Error(), "detect odd on b") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("apply: %v", err)
	}
	if f.w.log() != "" {
		t.Fatalf("applied %q", f.w.log())
	}
	if j, _ := ReadJournal(JournalPath(f.dir+"/state", f.plan.Name)); j != nil {
		t.Fatalf("a journal was written: %+v", j)
	}
}

// Offline, nothing is probed: the dry run says so and shows the steps a
// detection selects as if it held.
func TestDetectionsOffline(t *testing.T) {
	f := newFixture(t, "one")
	f.plan.Detect = []plan.Detection{{Name: "has_dwh", Host: "a", File: "/etc/dwh.conf"}}
	f.plan.Steps[0].When = "has_dwh"
	pv, err := f.runner(Options{Offline: true}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if pv.Steps[0].Skipped != "" || len(pv.Detected) != 0 || f.w.dials["probe a:/etc/dwh.conf"] != 0 {
		t.Fatalf("offline: skipped %q, detected %v, probes %v", pv.Steps[0].Skipped, pv.Detected, f.w.dials)
	}
	var unknown bool
	for _, e := range f.events {
		unknown = unknown || e.Type == EventDetect && e.Step == "has_dwh" && e.Status == "unknown"
	}
	if !unknown {
		t.Errorf("no detect event says has_dwh is unknown offline: %+v", f.events)
	}
}

// A host that only skipped steps use is never dialed, neither by the dry
// run nor by the apply: the hosted engine's host of a plan run on a
// Manager that is no hosted engine may not even exist.
func TestHostOfSkippedStepsNotContacted(t *testing.T) {
	f := newFixture(t, "one", "two")
	f.plan.Hosts["he"] = plan.Host{Name: "he"}
	f.plan.Detect = []plan.Detection{{Name: "hosted_engine", Host: "a", File: "/etc/he"}}
	f.plan.Steps[1] = f.step("two", "he")
	f.plan.Steps[1].When = "hosted_engine"
	f.plan.OnFailure = []plan.Step{f.step("undo", "he")}
	f.plan.OnFailure[0].When = "hosted_engine && yes"
	f.redigest()

	if _, err := f.runner(Options{}).Plan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	if n := f.w.dials["he"]; n != 0 {
		t.Fatalf("he was dialed %d times although only skipped steps use it", n)
	}
	if got := statuses(f.journal().Steps); got != "one=done,two=skipped" {
		t.Fatalf("journal: %s", got)
	}

	// Once the detection holds, he is dialed like any other host.
	f.w.files["a:/etc/he"] = "x"
	if _, err := f.apply(Options{Restart: true}); err != nil {
		t.Fatal(err)
	}
	if n := f.w.dials["he"]; n != 1 {
		t.Fatalf("he dialed %d times, want 1", n)
	}
}
