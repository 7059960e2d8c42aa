package runner

import (
	"context"
	"maps"
	"os"
	"slices"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// The drift check of a reviewed plan before it is applied: the plan
// first (ReviewedPlan), then the hosts (HostDrift). Apply refuses on any
// drift, having changed nothing.

// ReviewedPlan loads the plan of rv, read from path, with the reviewed
// variables, and lists how the plan already differs from what was
// reviewed: its text no longer giving its recorded digest (edited by hand,
// or made by another migrun), a variable given now (vars) that differs, or
// the plan file on disk changed since (a reviewer approved the text the
// file held then, and a checkout that moved on makes the approval stale).
// An error is the reviewed text no longer loading.
func ReviewedPlan(rv *Reviewed, path string, reg *steps.Registry, vars map[string]string) (*plan.Plan, []Drift, error) {
	p, err := plan.Parse(rv.Plan.File, []byte(rv.Plan.Source), reg, rv.Vars)
	if err != nil {
		return nil, nil, err
	}
	var drift []Drift
	if p.Digest != rv.Plan.Digest {
		drift = append(drift, Drift{What: "the plan text in " + path + " does not give its recorded digest (edited by hand, or made by another migrun)",
			Was: short(rv.Plan.Digest), Now: short(p.Digest)})
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if rv.Vars[k] != vars[k] {
			drift = append(drift, Drift{What: "variable " + k + " (--var)", Was: rv.Vars[k], Now: vars[k]})
		}
	}
	return p, append(drift, planFileDrift(rv, reg)...), nil
}

// planFileDrift compares the plan file the review was made from, when it
// is still there, with the reviewed text; comments and layout do not
// count.
func planFileDrift(rv *Reviewed, reg *steps.Registry) []Drift {
	onDisk, err := os.ReadFile(rv.Plan.File)
	if err != nil {
		return nil // moved or not checked out here: the reviewed text is what runs
	}
	if string(onDisk) == rv.Plan.Source {
		return nil
	}
	p, err := plan.Parse(rv.Plan.File, onDisk, reg, rv.Vars)
	switch {
	case err != nil:
		return []Drift{{What: "plan file " + rv.Plan.File + " changed since the review and no longer loads"}}
	case p.Digest != rv.Plan.Digest:
		return []Drift{{What: "plan file " + rv.Plan.File + " changed since the review", Was: short(rv.Plan.Digest), Now: short(p.Digest)}}
	}
	return nil
}

// HostDrift runs a dry run of the reviewed selection and lists what the
// hosts, the steps' checks and the facts they read now say differently
// from the review.
func (r *Runner) HostDrift(ctx context.Context, rv *Reviewed, migrunVersion string) ([]Drift, error) {
	pv, err := r.Plan(ctx)
	if err != nil {
		return nil, err
	}
	return Compare(rv, r.Review(pv, migrunVersion)), nil
}
