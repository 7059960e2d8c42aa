package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/migrun/migrun/inventory"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/steps"
)

// fleetFlags select the sets of an inventory a command covers.
type fleetFlags struct {
	inventory string
	limit     string
	hostVar   string
}

func (f *fleetFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.inventory, "inventory", "", "run the plan once per set of vars in `FILE`: migrun's inventory (sets:) or an Ansible inventory (INI or YAML; each host a set)")
	fs.StringVar(&f.limit, "limit", "", "only these sets of the --inventory: `SET,...` (with an Ansible inventory: hosts or groups)")
	fs.StringVar(&f.hostVar, "host-var", "", "with an Ansible inventory: the plan var that gets each host's address (ansible_host, else its name), e.g. engine_host")
}

func (f *fleetFlags) limits() []string {
	var out []string
	for _, l := range strings.Split(f.limit, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// errFleet: some sets of a fleet did not complete here.
var errFleet = errors.New("not every set completed")

// fleet is one plan over the sets of an inventory: each set's plan loaded
// with its vars, checked before any set runs.
type fleet struct {
	planFile string
	inv      *inventory.Inventory
	plans    map[string]*plan.Plan // by set name
	name     string                // the plan's name
}

// loadFleet reads the inventory and loads the plan once per set (the
// set's vars, then --var on top). Every problem of every set is reported
// before anything runs.
func loadFleet(planFile string, f fleetFlags, c *commonFlags, e env) (*fleet, error) {
	if f.limit != "" || f.hostVar != "" {
		if f.inventory == "" {
			return nil, usagef("--limit and --host-var select from an --inventory")
		}
	}
	// The plan is checked once per set, with the set's vars: its defaults
	// may be placeholders that only a set makes valid.
	declared, err := plan.DeclaredVars(planFile)
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Load(f.inventory, f.limits())
	if err != nil {
		return nil, usagef("%v", err)
	}
	if f.hostVar != "" {
		if !inv.Ansible {
			return nil, usagef("--host-var: %s is a migrun inventory, whose sets name their vars", f.inventory)
		}
		if !declared[f.hostVar] {
			return nil, usagef("--host-var %s: the plan has no var %q", f.hostVar, f.hostVar)
		}
	}
	fl := &fleet{planFile: planFile, inv: inv, plans: map[string]*plan.Plan{}}
	var problems []string
	for _, set := range inv.Sets {
		vars := map[string]string{}
		for k, v := range set.Vars {
			if declared[k] {
				vars[k] = v
			} else if !inv.Ansible {
				// An Ansible host carries every var the team keeps; a
				// migrun set names the plan's.
				problems = append(problems, fmt.Sprintf("%s: set %s: the plan has no var %q", f.inventory, set.Name, k))
			}
		}
		if f.hostVar != "" {
			vars[f.hostVar] = set.Address
		}
		maps.Copy(vars, c.vars)
		p, err := plan.Load(planFile, steps.Builtin(), vars)
		if err != nil {
			problems = append(problems, fmt.Sprintf("set %s:\n%v", set.Name, err))
			continue
		}
		fl.plans[set.Name], fl.name = p, p.Name
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(e.stderr, p)
		}
		fmt.Fprintf(e.stderr, "%s: %d problem(s) in the sets of %s; nothing was contacted or changed\n", planFile, len(problems), f.inventory)
		return nil, reported{usagef("invalid inventory")}
	}
	return fl, nil
}

func (fl *fleet) setNames() []string {
	names := make([]string, len(fl.inv.Sets))
	for i, s := range fl.inv.Sets {
		names[i] = s.Name
	}
	return names
}

// applyFleet applies the plan to every set, at most parallel at once, each
// set's output prefixed with its name, then prints a summary.
func applyFleet(ctx context.Context, fl *fleet, o *applyOptions, e env) error {
	if !o.yes && isTerminal(e.stdin) && isTerminal(e.stdout) {
		fmt.Fprintf(e.stdout, "Apply plan %s to %d set(s) of %s (%s), %d at a time? Only 'yes' is accepted: ",
			fl.name, len(fl.inv.Sets), fl.inv.File, strings.Join(fl.setNames(), ", "), o.parallel)
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return errNotConfirmed
		}
	}
	// One store for every set, opened before they run at once.
	if _, err := o.c.store(ctx, fl.plans[fl.inv.Sets[0].Name], e); err != nil {
		return err
	}
	var sink sync.Mutex
	results := runner.RunFleet(ctx, fl.setNames(), o.parallel, func(ctx context.Context, set string) (*runner.Journal, error) {
		setEnv := e
		if o.c.output == "text" {
			out := newLinePrefixer(e.stdout, &sink, "["+set+"] ")
			defer out.Flush()
			setEnv.stdout, setEnv.stderr = out, out
		} else {
			// JSON events carry the set; messages go to stderr.
			out, errOut := newLinePrefixer(e.stdout, &sink, ""), newLinePrefixer(e.stderr, &sink, "["+set+"] ")
			defer out.Flush()
			defer errOut.Flush()
			setEnv.stdout, setEnv.stderr = out, errOut
		}
		p := fl.plans[set]
		sec, err := resolveSecrets(p, setEnv)
		if err != nil {
			fmt.Fprintln(setEnv.stderr, "migrun:", err)
			return nil, err
		}
		opts := runner.Options{Resume: o.resume, Restart: o.restart, From: o.sel.from, Only: o.sel.only(), Set: set}
		r, pr, err := newRunner(p, &o.c, sec, setEnv, opts)
		if err != nil {
			fmt.Fprintln(setEnv.stderr, "migrun:", err)
			return nil, err
		}
		j, err := r.Apply(ctx)
		var rep reported
		if shown := pr.shown(err); shown != nil && !errors.As(shown, &rep) {
			fmt.Fprintln(setEnv.stderr, "migrun:", err)
		}
		return j, err
	})
	printFleetSummary(e.stdout, fl, results, o.c.output == "json")
	return fleetError(ctx, results)
}

// fleetError is apply's outcome over the sets: nil when each completed,
// was done before or runs elsewhere; errFleet (exit 1) when one failed, was
// refused or interrupted here; a refusal (exit 3) when only unfinished
// earlier runs are left for a person.
func fleetError(ctx context.Context, results []runner.SetResult) error {
	count := map[string]int{}
	for _, r := range results {
		count[r.Outcome]++
	}
	switch {
	case ctx.Err() != nil:
		return reported{ctx.Err()}
	case count[runner.SetFailed]+count[runner.SetRefused]+count[runner.SetInterrupted] > 0:
		return reported{fmt.Errorf("%w: %d failed, %d refused, %d interrupted", errFleet, count[runner.SetFailed], count[runner.SetRefused], count[runner.SetInterrupted])}
	case count[runner.SetUnfinished] > 0:
		return reported{fmt.Errorf("%w: %d left unfinished by an earlier run (%w)", errFleet, count[runner.SetUnfinished], runner.ErrUnfinished)}
	}
	return nil
}

// fleetLine is one set's line of the summary, and its JSON.
type fleetLine struct {
	Type    string `json:"type"` // "set_end"
	Plan    string `json:"plan"`
	Set     string `json:"set"`
	Outcome string `json:"outcome"`
	RunID   string `json:"run_id,omitempty"`
	Steps   int    `json:"steps"`
	Changed int    `json:"changed"`
	TookNS  int64  `json:"duration_ns"`
	Error   string `json:"error,omitempty"`
}

func printFleetSummary(w io.Writer, fl *fleet, results []runner.SetResult, asJSON bool) {
	lines := make([]fleetLine, len(results))
	for i, r := range results {
		l := fleetLine{Type: "set_end", Plan: fl.name, Set: r.Set, Outcome: r.Outcome, TookNS: int64(r.Took)}
		if r.Err != nil {
			l.Error = r.Err.Error()
		}
		if r.Journal != nil {
			l.RunID = r.Journal.RunID
			for _, s := range r.Journal.Steps {
				if s.Status == runner.StatusDone {
					l.Steps++
					if s.Changed {
						l.Changed++
					}
				}
			}
		}
		lines[i] = l
	}
	if asJSON {
		for _, l := range lines {
			b, _ := json.Marshal(l)
			w.Write(append(b, '\n'))
		}
		return
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "\nPlan %s over %d set(s) of %s:\n", fl.name, len(results), fl.inv.File)
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SET\tOUTCOME\tSTEPS DONE\tCHANGED\tTOOK\tERROR")
	for _, l := range lines {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\n", l.Set, l.Outcome, l.Steps, l.Changed,
			time.Duration(l.TookNS).Round(10*time.Millisecond), firstLine(l.Error))
	}
	tw.Flush()
	w.Write(buf.Bytes())
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// statusFleet prints the journal of every set: where each one is.
func statusFleet(ctx context.Context, fl *fleet, c *commonFlags, e env) error {
	type setStatus struct {
		Set         string    `json:"set"`
		Status      string    `json:"status"`
		RunID       string    `json:"run_id,omitempty"`
		User        string    `json:"user,omitempty"`
		Workstation string    `json:"workstation,omitempty"`
		Updated     time.Time `json:"updated,omitzero"`
		FailedStep  string    `json:"failed_step,omitempty"`
		Error       string    `json:"error,omitempty"`
	}
	var all []setStatus
	for _, name := range fl.setNames() {
		store, err := c.store(ctx, fl.plans[name], e)
		if err != nil {
			return err
		}
		j, err := store.Read(ctx, runner.JournalName(fl.name, name))
		if err != nil {
			return err
		}
		s := setStatus{Set: name, Status: "never_applied"}
		if j != nil {
			s = setStatus{Set: name, Status: j.Status, RunID: j.RunID, User: j.User, Workstation: j.Workstation,
				Updated: j.Updated, FailedStep: j.FailedStep, Error: j.Error}
		}
		all = append(all, s)
	}
	if c.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"plan": fl.name, "inventory": fl.inv.File, "sets": all})
	}
	fmt.Fprintf(e.stdout, "Plan %s over %d set(s) of %s:\n", fl.name, len(all), fl.inv.File)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SET\tSTATUS\tRUN\tBY\tUPDATED\tFAILED STEP")
	for _, s := range all {
		by, updated := "", ""
		if s.User != "" || s.Workstation != "" {
			by = s.User + "@" + s.Workstation
		}
		if !s.Updated.IsZero() {
			updated = s.Updated.Local().Format(time.DateTime)
		}
		failed := s.FailedStep
		if failed != "" && s.Error != "" {
			failed += ": " + strings.TrimPrefix(firstLine(s.Error), "step "+s.FailedStep+": ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", s.Set, s.Status, s.RunID, by, updated, failed)
	}
	return tw.Flush()
}

// linePrefixer writes whole lines, each with a prefix, so that the output
// of sets running at once interleaves line by line, never within one: the
// prefixers of one output share sink, the lock of its writes.
type linePrefixer struct {
	mu     sync.Mutex // buf: a set's events and its commands' output
	sink   *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func newLinePrefixer(w io.Writer, sink *sync.Mutex, prefix string) *linePrefixer {
	return &linePrefixer{w: w, sink: sink, prefix: prefix}
}

func (l *linePrefixer) write(b []byte) error {
	l.sink.Lock()
	defer l.sink.Unlock()
	_, err := l.w.Write(b)
	return err
}

func (l *linePrefixer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		out.WriteString(l.prefix)
		out.Write(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	if out.Len() > 0 {
		if err := l.write(out.Bytes()); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Flush writes a last line without a newline.
func (l *linePrefixer) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.write([]byte(l.prefix + string(l.buf) + "\n"))
		l.buf = nil
	}
}
