package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/runner"
)

// eventPrinter renders runner events as text for people or as JSON lines
// for CI. It is the only place that formats events.
type eventPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	total int // steps in the plan, for [n/total]
	n     int
	ended bool // a run_end event was shown: the outcome is on screen
	// progress is the terminal's progress line, nil when stderr is not a
	// terminal.
	progress *termProgress
}

// shown wraps err as already reported when the run's end was printed.
func (p *eventPrinter) shown(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.ended {
		return reported{err}
	}
	return err
}

func (p *eventPrinter) event(e runner.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Type == runner.EventRunEnd {
		p.ended = true
	}
	if p.json {
		b, _ := json.Marshal(e)
		p.w.Write(append(b, '\n'))
		return
	}
	switch e.Type {
	case runner.EventProgress:
		return // drawn by the bar itself
	case runner.EventStepRunning:
		if p.progress != nil {
			p.progress.running(e.Step, e.Duration)
		}
		return
	}
	if p.progress != nil {
		p.progress.clear()
	}
	switch e.Type {
	case runner.EventRunStart:
		if e.Mode == "plan" {
			fmt.Fprintf(p.w, "Plan %s (dry run: nothing is changed)\n\n", e.Plan)
		} else {
			fmt.Fprintf(p.w, "Applying %s (%s run)\n", e.Plan, e.Mode)
		}
	case runner.EventDetect:
		fmt.Fprintf(p.w, "detected %s = %s (%s)\n", e.Step, e.Status, e.Reason)
	case runner.EventStepPlan:
		p.planStep(e)
	case runner.EventStepRetry:
		fmt.Fprintf(p.w, "        retrying %s (attempt %d): %s\n", e.Step, e.Attempt, e.Error)
	case runner.EventStepEnd:
		p.stepEnd(e)
	case runner.EventRollbackStart:
		fmt.Fprintf(p.w, "\nRunning on_failure steps (%s)\n", e.Reason)
	case runner.EventRollbackSkipped:
		fmt.Fprintf(p.w, "\nNot running on_failure: %s\n", e.Reason)
	case runner.EventRunEnd:
		p.runEnd(e)
	}
}

func (p *eventPrinter) planStep(e runner.Event) {
	head := e.Step
	if e.Rollback {
		head = "on_failure " + head
	}
	fmt.Fprintf(p.w, "%s %s [%s] on %s: %s\n", bullet(e.Status), head, e.Kind, e.Host, e.Status)
	if e.Description != "" {
		fmt.Fprintf(p.w, "    # %s\n", e.Description)
	}
	if e.Reason != "" {
		fmt.Fprintf(p.w, "    %s\n", e.Reason)
	}
	if e.PointOfNoReturn {
		fmt.Fprintf(p.w, "    %s\n", pointOfNoReturnNote)
	}
	if e.KnownAfter != "" && e.Status == runner.PreviewLater {
		fmt.Fprintf(p.w, "    (known after %s, which changes this host first: shown as of now)\n", e.KnownAfter)
	}
	for _, a := range e.Actions {
		fmt.Fprintf(p.w, "    %s\n", a.Summary)
		if a.Diff != "" {
			for _, l := range strings.Split(strings.TrimRight(a.Diff, "\n"), "\n") {
				fmt.Fprintf(p.w, "      %s\n", l)
			}
		}
	}
	if e.Error != "" {
		fmt.Fprintf(p.w, "    error: %s\n", e.Error)
	}
	fmt.Fprintln(p.w)
}

// pointOfNoReturnNote marks a point_of_no_return step in dry runs and
// reviews: the reviewer must know where rolling back stops.
const pointOfNoReturnNote = "point of no return: once this step is done, a later failure does not run on_failure"

func bullet(status string) string {
	switch status {
	case "would change":
		return "~"
	case "already done":
		return "="
	case runner.StatusSkipped:
		return "-"
	case "error":
		return "!"
	case "not checked (offline)":
		return "~"
	}
	return "?"
}

func (p *eventPrinter) stepEnd(e runner.Event) {
	result := e.Status
	switch {
	case e.Status == runner.StatusDone && e.Changed:
		result = "changed"
	case e.Status == runner.StatusDone && strings.HasPrefix(e.Reason, "already done"):
		result = "already done"
	case e.Status == runner.StatusDone:
		result = "ok"
	}
	prefix := "  "
	if e.Rollback {
		prefix = "  on_failure "
	} else {
		p.n++
	}
	counter := ""
	if !e.Rollback && p.total > 0 {
		counter = fmt.Sprintf("[%d/%d] ", p.n, p.total)
	}
	fmt.Fprintf(p.w, "%s%s%-28s %-14s %-13s %s\n", prefix, counter, e.Step, e.Host, result, round(e.Duration))
	if e.Error != "" {
		fmt.Fprintf(p.w, "      error: %s\n", e.Error)
	}
}

func (p *eventPrinter) runEnd(e runner.Event) {
	switch {
	case e.Mode == "plan":
		if e.Status == "error" {
			fmt.Fprintf(p.w, "Dry run found problems: %s\n", e.Error)
		} else {
			fmt.Fprintf(p.w, "%s.\n", capitalize(e.Reason))
		}
	case e.Status == runner.StatusCompleted:
		fmt.Fprintf(p.w, "Plan %s completed.\n", e.Plan)
	case e.Status == runner.StatusInterrupted:
		fmt.Fprintf(p.w, "Interrupted; the journal is saved. Continue with: migrun apply --resume\n")
	default:
		fmt.Fprintf(p.w, "Plan %s %s: %s\n", e.Plan, e.Status, e.Error)
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func round(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}
