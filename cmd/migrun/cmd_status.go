package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
)

// statusFlagSet is status's flags.
func statusFlagSet(c *commonFlags, f *fleetFlags) *flag.FlagSet {
	fs := newFlagSet("status", "status [flags] PLAN")
	c.add(fs)
	f.add(fs)
	return fs
}

func runStatus(ctx context.Context, args []string, e env) error {
	var (
		c commonFlags
		f fleetFlags
	)
	files, err := parseFlags(statusFlagSet(&c, &f), args, e)
	if err != nil {
		return err
	}
	if err := oneFile("status", files); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if f.inventory != "" || f.limit != "" || f.hostVar != "" {
		fl, err := loadFleet(files[0], f, &c, e)
		if err != nil {
			return err
		}
		return statusFleet(ctx, fl, &c, e)
	}
	p, err := loadPlan(files[0], &c, e)
	if err != nil {
		return err
	}
	path, j, err := readJournalOf(ctx, p, &c, e)
	if err != nil {
		return err
	}
	if c.output == "json" {
		if j == nil {
			// An object like a journal's, not null: a script reads
			// .status either way.
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]string{"plan": p.Name, "status": "never_applied", "journal": path})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	if j == nil {
		fmt.Fprintf(e.stdout, "Plan %s has never been applied (no journal at %s).\n", p.Name, path)
		return nil
	}
	fmt.Fprintf(e.stdout, "Plan %s: %s (run %s by %s on %s, started %s)\n",
		j.Plan, j.Status, j.RunID, j.User, j.Workstation, j.Started.Local().Format(time.DateTime))
	if j.Reviewed != nil {
		fmt.Fprintf(e.stdout, "Applied from the reviewed plan %s (sha256 %s)\n", j.Reviewed.File, j.Reviewed.SHA256)
	}
	if line := detectedLine(j); line != "" {
		fmt.Fprintln(e.stdout, line)
	}
	if j.PlanDigest != p.Digest {
		fmt.Fprintln(e.stdout, "The plan file has changed since this run.")
	}
	if j.FailedStep != "" {
		fmt.Fprintf(e.stdout, "Failed step: %s: %s\n", j.FailedStep, j.Error)
	}
	if line := lockLine(ctx, p, j, &c, e); line != "" {
		fmt.Fprintln(e.stdout, line)
	}
	if next := runner.NextAction(j); next != "" {
		fmt.Fprintln(e.stdout, next)
	}
	fmt.Fprintln(e.stdout)
	printRecords(e, j.Steps, c.verbose)
	if len(j.OnFailure) > 0 {
		fmt.Fprintln(e.stdout, "\non_failure:")
		printRecords(e, j.OnFailure, c.verbose)
	}
	fmt.Fprintf(e.stdout, "\nHistory:\n")
	for _, h := range j.History {
		line := fmt.Sprintf("  %s  %-8s %-12s %s@%s", h.Started.Local().Format(time.DateTime), h.Mode, h.Status, h.User, h.From)
		if h.Reviewed != nil {
			line += "  reviewed " + h.Reviewed.SHA256[:min(12, len(h.Reviewed.SHA256))]
		}
		fmt.Fprintln(e.stdout, line)
	}
	return nil
}

func printRecords(e env, recs []*runner.StepRecord, verbose bool) {
	for _, s := range recs {
		dur := ""
		if !s.Ended.IsZero() && !s.Started.IsZero() {
			dur = round(s.Ended.Sub(s.Started))
		}
		status := s.Status
		if s.Status == runner.StatusDone && s.Changed {
			status = "done (changed)"
		}
		fmt.Fprintf(e.stdout, "  %-28s %-14s %-15s %s\n", s.ID, s.Host, status, dur)
		if s.Error != "" {
			fmt.Fprintf(e.stdout, "      error: %s\n", s.Error)
		} else if s.Reason != "" {
			fmt.Fprintf(e.stdout, "      %s\n", s.Reason)
		}
		if verbose {
			for _, r := range s.Ran {
				fmt.Fprintf(e.stdout, "      ran %s\n", r)
			}
		}
	}
}

// detectedLine names the run's answers to the plan's detections, which a
// resume goes on with; "" when the plan has none.
func detectedLine(j *runner.Journal) string {
	if len(j.Detected) == 0 {
		return ""
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(j.Detected)) {
		parts = append(parts, fmt.Sprintf("%s = %t", name, j.Detected[name]))
	}
	return "Detected when the run started (a resume goes on with these): " + strings.Join(parts, ", ")
}

// readJournalOf reads the journal of plan p from its store (see
// commonFlags.store); where names it for messages, and j is nil when the
// plan never ran.
func readJournalOf(ctx context.Context, p *plan.Plan, c *commonFlags, e env) (where string, j *runner.Journal, err error) {
	store, err := c.store(ctx, p, e)
	if err != nil {
		return "", nil, err
	}
	if fs, ok := store.(runner.FileStore); ok {
		where = runner.JournalPath(fs.Dir, p.Name)
	} else {
		where = store.String() + " (" + p.Name + ")"
	}
	j, err = store.Read(ctx, p.Name)
	return where, j, err
}

// lockLine says, for a journal that shows a run in progress, whether an
// apply holds the plan's lock now (it runs) or nobody does (the run was
// killed, or its workstation died: --resume continues it).
func lockLine(ctx context.Context, p *plan.Plan, j *runner.Journal, c *commonFlags, e env) string {
	if j.Status != runner.StatusRunning {
		return ""
	}
	store, err := c.store(ctx, p, e)
	if err != nil {
		return ""
	}
	prober, ok := store.(runner.LockProber)
	if !ok {
		return ""
	}
	held, err := prober.HeldBy(ctx, p.Name)
	switch {
	case err != nil:
		return "Lock: unknown (" + err.Error() + ")"
	case held != "":
		return "Lock: held by " + held + ": that apply is running."
	}
	return "Lock: free: the apply that wrote this journal is gone (killed, or its workstation died)."
}
