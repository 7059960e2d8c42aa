// Package report renders a run of a plan, from its journal, as one
// self-contained HTML page: what an administrator attaches to a change
// ticket. The page holds a timeline (a Gantt chart of the steps on one
// lane per host, with the downtime of each service the plan stopped and
// started again), each step's verdict, what it ran and, from the reviewed
// plan when the run applied one, the diffs it was approved with; who ran
// it, where and when, and the reviewed plan's sha256. No script, font or
// style is fetched: the page opens offline.
package report

import (
	"cmp"
	"embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/steps"
)

//go:embed report.html.tmpl
var files embed.FS

var page = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"dur":   duration,
	"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"add":   func(a, b int) int { return a + b },
	"sub":   func(a, b int) int { return a - b },
	"lines": diffLines,
}).ParseFS(files, "report.html.tmpl"))

// Input is what a report is made of.
type Input struct {
	Plan    *plan.Plan
	Journal *runner.Journal
	// Reviewed is the reviewed plan the run applied, when it is at hand:
	// its actions and diffs are shown beside each step.
	Reviewed    *runner.Reviewed
	JournalPath string
	Generated   time.Time
	Migrun      string // the version writing the report
}

// Write renders the report of in to w.
func Write(w io.Writer, in Input) error {
	if in.Journal == nil {
		return fmt.Errorf("report: no journal: plan %s has not been applied", in.Plan.Name)
	}
	return page.Execute(w, build(in))
}

// view is what the template shows.
type view struct {
	Input
	Title     string
	Duration  time.Duration
	Steps     []stepView
	OnFailure []stepView
	Downtimes []downtime
	Chart     chart
}

type stepView struct {
	*runner.StepRecord
	Description string
	Lane        string
	Verdict     string // done, changed, failed, skipped, unknown, pending, running
	Duration    time.Duration
	Actions     []runner.ReviewedAction
	Rollback    bool
}

// downtime is a service stopped by one step and started again by a later
// one: from the stop's start to the start's end.
type downtime struct {
	Service, Host   string
	From, To        time.Time
	StopID, StartID string
}

func (d downtime) Length() time.Duration { return d.To.Sub(d.From) }

func build(in Input) view {
	j := in.Journal
	v := view{Input: in, Title: "migrun report: " + j.Plan}
	if !j.Ended.IsZero() {
		v.Duration = j.Ended.Sub(j.Started)
	}
	actions := map[string][]runner.ReviewedAction{}
	if in.Reviewed != nil {
		for _, s := range append(append([]runner.ReviewedStep(nil), in.Reviewed.Steps...), in.Reviewed.OnFailure...) {
			actions[s.ID] = s.Actions
		}
	}
	planSteps := map[string]plan.Step{}
	for _, st := range append(append([]plan.Step(nil), in.Plan.Steps...), in.Plan.OnFailure...) {
		planSteps[st.ID] = st
	}
	for _, list := range []struct {
		recs     []*runner.StepRecord
		out      *[]stepView
		rollback bool
	}{{j.Steps, &v.Steps, false}, {j.OnFailure, &v.OnFailure, true}} {
		for _, rec := range list.recs {
			st := planSteps[rec.ID]
			sv := stepView{StepRecord: rec, Description: st.Description, Lane: lane(rec, st), Verdict: verdict(rec),
				Actions: actions[rec.ID], Rollback: list.rollback}
			if !rec.Started.IsZero() && !rec.Ended.IsZero() {
				sv.Duration = rec.Ended.Sub(rec.Started)
			}
			*list.out = append(*list.out, sv)
		}
	}
	v.Downtimes = downtimes(in.Plan, j)
	v.Chart = layout(v)
	return v
}

// lane is the host a step ran on; a copy runs between two, "a → b".
func lane(rec *runner.StepRecord, st plan.Step) string {
	if rec.Host != "" {
		return rec.Host
	}
	if st.Spec != nil {
		if hs := st.Spec.Hosts(""); len(hs) > 0 {
			return strings.Join(hs, " → ")
		}
	}
	return "workstation"
}

func verdict(rec *runner.StepRecord) string {
	switch {
	case rec.Status == runner.StatusDone && rec.Changed:
		return "changed"
	case rec.Status == runner.StatusDone:
		return "ok"
	}
	return rec.Status
}

// downtimes pairs each service step that stopped a service with the next
// step that started the same service on the same host, both done.
func downtimes(p *plan.Plan, j *runner.Journal) []downtime {
	recs := map[string]*runner.StepRecord{}
	for _, r := range j.Steps {
		recs[r.ID] = r
	}
	var out []downtime
	for i, st := range p.Steps {
		stop, ok := st.Spec.(*steps.Service)
		r := recs[st.ID]
		if !ok || stop.State != "stopped" || r == nil || r.Status != runner.StatusDone || !r.Changed {
			continue
		}
		for _, later := range p.Steps[i+1:] {
			start, ok := later.Spec.(*steps.Service)
			if !ok || start.Name != stop.Name || later.Host != st.Host || (start.State != "started" && start.State != "restarted") {
				continue
			}
			if lr := recs[later.ID]; lr != nil && lr.Status == runner.StatusDone && !lr.Ended.IsZero() {
				out = append(out, downtime{Service: stop.Name, Host: st.Host, From: r.Started, To: lr.Ended, StopID: st.ID, StartID: later.ID})
			}
			break
		}
	}
	slices.SortFunc(out, func(a, b downtime) int { return cmp.Compare(b.Length(), a.Length()) })
	return out
}

// duration renders 1.234s as "1.2 s", 83s as "1 min 23 s".
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// diffLine is one line of a unified diff with its class for colour.
type diffLine struct{ Class, Text string }

func diffLines(d string) []diffLine {
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(d, "\n"), "\n") {
		class := ""
		switch {
		case strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++"):
			class = "add"
		case strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---"):
			class = "del"
		}
		out = append(out, diffLine{class, l})
	}
	return out
}
