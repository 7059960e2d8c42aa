package runner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
)

// ReviewedFormat names the reviewed-plan file format and its version.
const ReviewedFormat = "migrun.reviewed-plan/1"

// Reviewed is a saved dry run: what a reviewer saw and approved. `migrun
// apply FILE` runs exactly its plan and refuses when the plan, a variable
// or any host's state differs from what it records. It holds no secret
// value and no hash of one: secrets appear by name only.
type Reviewed struct {
	Format  string         `json:"format"`
	Plan    ReviewedSource `json:"plan"`
	Created ReviewedBy     `json:"created"`
	// Vars are the resolved variables; Secrets the names of the secrets
	// the plan uses (values are asked for again at apply time).
	Vars    map[string]string `json:"vars"`
	Secrets []string          `json:"secrets,omitempty"`
	// Hosts are the plan's hosts as they resolved: user@address:port.
	Hosts map[string]string `json:"hosts"`
	// Detected are the answers to the plan's detections ("true" or
	// "false") the steps were reviewed with.
	Detected map[string]string `json:"detected,omitempty"`
	// From and Only are the dry run's step selection; apply keeps it.
	From string   `json:"from,omitempty"`
	Only []string `json:"only,omitempty"`
	// Pending counts the steps that would change something.
	Pending   int            `json:"pending"`
	Steps     []ReviewedStep `json:"steps"`
	OnFailure []ReviewedStep `json:"on_failure,omitempty"`
}

// ReviewedSource is the plan as it was reviewed: its text travels with
// the review, so apply runs what was read even if the checkout moved on.
type ReviewedSource struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Digest string `json:"digest"`
	Source string `json:"source"`
}

// ReviewedBy says who made the dry run, where and when.
type ReviewedBy struct {
	At          time.Time `json:"at"`
	User        string    `json:"user,omitempty"`
	Workstation string    `json:"workstation,omitempty"`
	Migrun      string    `json:"migrun,omitempty"`
}

// ReviewedStep is one step as the dry run saw it.
type ReviewedStep struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Host        string `json:"host,omitempty"`
	Description string `json:"description,omitempty"`
	Digest      string `json:"digest"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
	Error       string `json:"error,omitempty"`
	// KnownAfter: an earlier step changes this step's host first, so its
	// actions are as of the review and the real ones known after apply.
	KnownAfter string `json:"known_after,omitempty"`
	// PointOfNoReturn: once done, a later failure does not run on_failure.
	PointOfNoReturn bool             `json:"point_of_no_return,omitempty"`
	Actions         []ReviewedAction `json:"actions,omitempty"`
	Facts           []executors.Fact `json:"facts,omitempty"`
}

// ReviewedAction is one thing a step would do.
type ReviewedAction struct {
	Host    string `json:"host,omitempty"`
	Summary string `json:"summary"`
	Diff    string `json:"diff,omitempty"`
}

// Review turns a dry run into a reviewed plan. migrunVersion names the
// binary that made it.
func (r *Runner) Review(pv *Preview, migrunVersion string) *Reviewed {
	who, ws := whoAmI()
	rv := &Reviewed{
		Format: ReviewedFormat,
		Plan: ReviewedSource{Name: r.plan.Name, File: r.plan.File, Digest: r.plan.Digest,
			Source: string(r.plan.Source)},
		Created: ReviewedBy{At: r.opts.Now().UTC().Truncate(time.Second), User: who, Workstation: ws, Migrun: migrunVersion},
		Vars:    map[string]string{},
		Secrets: r.plan.UsedSecrets(),
		Hosts:   map[string]string{},
		From:    r.opts.From,
		Only:    r.opts.Only,
		Pending: pv.Pending(),
	}
	for k, v := range r.plan.Vars {
		rv.Vars[k] = v
	}
	for name, h := range r.plan.Hosts {
		rv.Hosts[name] = hostString(h.Local, h.User, h.Address, h.Port)
	}
	for name, v := range pv.Detected {
		if rv.Detected == nil {
			rv.Detected = map[string]string{}
		}
		rv.Detected[name] = strconv.FormatBool(v)
	}
	for i := range pv.Steps {
		sp := &pv.Steps[i]
		rs := ReviewedStep{ID: sp.ID, Kind: sp.Kind, Host: sp.Host, Description: sp.Description,
			Digest: sp.Digest, Status: sp.Status(), Reason: r.clean(sp.Check.Reason),
			KnownAfter: sp.KnownAfter, PointOfNoReturn: sp.PointOfNoReturn, Facts: sp.Facts}
		if sp.Skipped != "" {
			rs.Reason = sp.Skipped
		}
		if sp.CheckErr != nil {
			rs.Error = r.clean(sp.CheckErr.Error())
		}
		for _, a := range sp.Actions {
			rs.Actions = append(rs.Actions, ReviewedAction{Host: a.Host, Summary: a.Summary, Diff: a.Diff})
		}
		if sp.Rollback {
			rv.OnFailure = append(rv.OnFailure, rs)
		} else {
			rv.Steps = append(rv.Steps, rs)
		}
	}
	return rv
}

func hostString(local bool, user, addr string, port int) string {
	if local {
		return "local"
	}
	s := addr
	if user != "" {
		s = user + "@" + s
	}
	if port != 0 {
		s += fmt.Sprintf(":%d", port)
	}
	return s
}

// Marshal renders rv as canonical JSON: fixed field order, sorted map
// keys, two-space indent, no HTML escaping (diffs stay readable), one
// trailing newline. The same review always gives the same bytes.
func (rv *Reviewed) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rv); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseReviewed reads a reviewed-plan file.
func ParseReviewed(data []byte) (*Reviewed, error) {
	var rv Reviewed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rv); err != nil {
		return nil, fmt.Errorf("not a reviewed plan: %w", err)
	}
	if rv.Format != ReviewedFormat {
		return nil, fmt.Errorf("reviewed plan format %q; this migrun reads %q", rv.Format, ReviewedFormat)
	}
	if rv.Plan.Source == "" {
		return nil, fmt.Errorf("reviewed plan has no plan source")
	}
	if b, err := hex.DecodeString(rv.Plan.Digest); err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("reviewed plan's digest %q is not a sha256", rv.Plan.Digest)
	}
	return &rv, nil
}

// IsReviewed tells a reviewed-plan file from a YAML plan by its first
// non-blank byte: YAML plans never start with "{".
func IsReviewed(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// Drift is one difference between a review and the hosts (or plan) now.
type Drift struct {
	Host  string   // "" for the plan itself
	Steps []string // the steps whose review it invalidates
	What  string
	Was   string
	Now   string
}

func (d Drift) String() string {
	where := d.Host
	if where == "" {
		where = "plan"
	}
	s := where + ": " + d.What
	if d.Was != "" || d.Now != "" {
		s += ": was " + orNone(d.Was) + ", now " + orNone(d.Now)
	}
	if len(d.Steps) > 0 {
		s += " (step " + strings.Join(d.Steps, ", ") + ")"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Compare lists every way now differs from the reviewed dry run: the
// plan, a variable, the hosts' addresses, each step's verdict and actions,
// and every fact the checks read. An empty result means the hosts are as
// the reviewer saw them. Facts are grouped: a file two steps read that
// changed is one drift naming both steps.
func Compare(reviewed, now *Reviewed) []Drift {
	var out []Drift
	if reviewed.Plan.Digest != now.Plan.Digest {
		out = append(out, Drift{What: "plan " + now.Plan.Name + " changed", Was: short(reviewed.Plan.Digest), Now: short(now.Plan.Digest)})
	}
	out = append(out, compareMaps("variable", reviewed.Vars, now.Vars)...)
	out = append(out, compareMaps("host", reviewed.Hosts, now.Hosts)...)
	out = append(out, compareMaps("detection", reviewed.Detected, now.Detected)...)

	facts := map[string]*Drift{}
	var factOrder []string
	factDrift := func(host, what, was, now, step string) {
		key := host + "\x00" + what
		d, ok := facts[key]
		if !ok {
			d = &Drift{Host: host, What: what, Was: was, Now: now}
			facts[key] = d
			factOrder = append(factOrder, key)
		}
		if len(d.Steps) == 0 || d.Steps[len(d.Steps)-1] != step {
			d.Steps = append(d.Steps, step)
		}
	}
	var stepDrifts []Drift
	compareSteps := func(was, is []ReviewedStep) {
		byID := map[string]*ReviewedStep{}
		for i := range is {
			byID[is[i].ID] = &is[i]
		}
		for i := range was {
			w := &was[i]
			n, ok := byID[w.ID]
			if !ok {
				stepDrifts = append(stepDrifts, Drift{What: "step " + w.ID + " is no longer in the plan"})
				continue
			}
			if w.Status != n.Status {
				stepDrifts = append(stepDrifts, Drift{Host: n.Host, Steps: []string{w.ID}, What: "verdict", Was: w.Status, Now: n.Status})
			} else if a, b := actionsText(w.Actions), actionsText(n.Actions); a != b {
				stepDrifts = append(stepDrifts, Drift{Host: n.Host, Steps: []string{w.ID}, What: "actions differ: " + firstDifference(a, b)})
			}
			nowFacts := map[string]executors.Fact{}
			for _, f := range n.Facts {
				nowFacts[f.Key()] = f
			}
			for _, f := range w.Facts {
				g, ok := nowFacts[f.Key()]
				delete(nowFacts, f.Key())
				switch {
				case !ok:
					factDrift(f.Host, f.What, "read", "not read any more", w.ID)
				case f.Unstable != "" || g.Unstable != "":
				case f.SHA256 != g.SHA256:
					factDrift(f.Host, f.What, factValue(f), factValue(g), w.ID)
				}
			}
			for _, g := range n.Facts {
				if _, extra := nowFacts[g.Key()]; extra {
					factDrift(g.Host, g.What, "not read", "read", w.ID)
				}
			}
		}
	}
	compareSteps(reviewed.Steps, now.Steps)
	compareSteps(reviewed.OnFailure, now.OnFailure)
	for _, k := range factOrder {
		out = append(out, *facts[k])
	}
	return append(out, stepDrifts...)
}

func compareMaps(what string, was, now map[string]string) []Drift {
	keys := map[string]bool{}
	for k := range was {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Drift
	for _, k := range names {
		w, wok := was[k]
		n, nok := now[k]
		if w != n || wok != nok {
			out = append(out, Drift{What: what + " " + k, Was: w, Now: n})
		}
	}
	return out
}

func factValue(f executors.Fact) string {
	if f.Value != "" {
		return f.Value + " [" + short(f.SHA256) + "]"
	}
	return "sha256 " + short(f.SHA256)
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func actionsText(acts []ReviewedAction) string {
	var b strings.Builder
	for _, a := range acts {
		fmt.Fprintf(&b, "%s: %s\n%s", a.Host, a.Summary, a.Diff)
	}
	return b.String()
}

// firstDifference shows the first line that differs, for a drift message.
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("reviewed %q, now %q", x, y)
		}
	}
	return "(whitespace)"
}
