package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/migrun/migrun/runner"
)

var errNotConfirmed = errors.New("apply not confirmed; nothing was changed")

// applyOptions are apply's flags.
type applyOptions struct {
	c               commonFlags
	sel             selection
	yes             bool
	resume, restart bool
	expect          string
	trace           string
	fleet           fleetFlags
	parallel        int
}

func (o *applyOptions) flagSet() *flag.FlagSet {
	fs := newFlagSet("apply", "apply [flags] PLAN")
	o.c.add(fs)
	o.sel.add(fs)
	fs.BoolVar(&o.yes, "yes", false, "do not ask for confirmation on a terminal")
	fs.BoolVar(&o.resume, "resume", false, "continue an interrupted or failed run: skip steps recorded done, re-check the one in progress")
	fs.BoolVar(&o.restart, "restart", false, "start over even though the journal records an earlier run")
	fs.StringVar(&o.expect, "expect-sha256", "", "apply the reviewed plan FILE only if its sha256 is `SHA` (the one an approval quotes)")
	fs.StringVar(&o.trace, "trace", "", "write every lock, journal write, connection and host operation, timed, to `FILE` (tab-separated; no secrets)")
	o.fleet.add(fs)
	fs.IntVar(&o.parallel, "parallel", 1, "with --inventory: run at most `K` sets at once")
	return fs
}

func runApply(ctx context.Context, args []string, e env) error {
	var o applyOptions
	files, err := parseFlags(o.flagSet(), args, e)
	if err != nil {
		return err
	}
	c, sel, yes, resume, restart, expect := o.c, o.sel, o.yes, o.resume, o.restart, o.expect
	if err := oneFile("apply", files); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if resume && restart {
		return usagef("--resume and --restart exclude each other")
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	if o.fleet.inventory != "" || o.fleet.limit != "" || o.fleet.hostVar != "" || o.parallel != 1 {
		switch {
		case runner.IsReviewed(data):
			return usagef("--inventory applies a plan to many sets; a reviewed plan was reviewed for one")
		case o.parallel < 1:
			return usagef("--parallel: want at least 1, got %d", o.parallel)
		case o.fleet.inventory == "" && o.parallel != 1:
			return usagef("--parallel runs the sets of an --inventory at once")
		case o.trace != "":
			return usagef("--trace follows one run; it cannot be given with --inventory")
		}
		fl, err := loadFleet(files[0], o.fleet, &c, e)
		if err != nil {
			return err
		}
		return applyFleet(ctx, fl, &o, e)
	}
	if runner.IsReviewed(data) {
		if sel.from != "" || sel.only() != nil {
			return usagef("--from and --only cannot change a reviewed plan: it runs the steps that were reviewed")
		}
		return applyReviewed(ctx, files[0], data, reviewedApply{flags: &c, expect: expect, resume: resume, restart: restart, trace: o.trace}, e)
	}
	if expect != "" {
		return usagef("--expect-sha256 applies to a reviewed plan (migrun plan --out FILE), not to %s", files[0])
	}
	p, err := loadPlan(files[0], &c, e)
	if err != nil {
		return err
	}
	sec, err := resolveSecrets(p, e)
	if err != nil {
		return err
	}
	opts := runner.Options{Resume: resume, Restart: restart, From: sel.from, Only: sel.only()}

	// On a terminal, show the dry run and ask, as terraform apply does.
	if !yes && isTerminal(e.stdin) && isTerminal(e.stdout) {
		preview, pr, err := newRunner(p, &c, sec, e, opts)
		if err != nil {
			return err
		}
		if _, err := preview.Plan(ctx); err != nil {
			return pr.shown(err)
		}
		fmt.Fprintf(e.stdout, "\nApply plan %s to its hosts? Only 'yes' is accepted: ", p.Name)
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return errNotConfirmed
		}
		fmt.Fprintln(e.stdout)
	}
	closeTrace, err := openTrace(o.trace, &opts)
	if err != nil {
		return err
	}
	defer closeTrace()
	r, pr, err := newRunner(p, &c, sec, e, opts)
	if err != nil {
		return err
	}
	_, err = r.Apply(ctx)
	return pr.shown(err)
}

// openTrace creates --trace's file at path, before anything changes, and
// sets it as opts' trace; the function returned closes it. No path, no
// trace.
func openTrace(path string, opts *runner.Options) (close func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, usagef("--trace: %v", err)
	}
	opts.Trace = f
	return func() { f.Close() }, nil
}
