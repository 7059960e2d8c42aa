package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/steps"
)

var (
	// errDrift: the hosts or the plan differ from the review (exit 3).
	errDrift = errors.New("the hosts or the plan differ from what was reviewed; nothing was changed")
	// errReviewMismatch: --expect-sha256 names another file (exit 3).
	errReviewMismatch = errors.New("the reviewed plan is not the approved one; nothing was changed")
)

type reviewedApply struct {
	flags           *commonFlags
	expect          string
	resume, restart bool
	trace           string // --trace's file
}

// applyReviewed runs exactly the plan a reviewer saw: the plan text, the
// variables and the step selection come from the file; before anything
// changes, a fresh dry run must find every host as the review recorded it.
func applyReviewed(ctx context.Context, path string, data []byte, o reviewedApply, e env) error {
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	if o.expect != "" && !strings.EqualFold(strings.TrimSpace(o.expect), sha) {
		return fmt.Errorf("%s has sha256 %s, not %s: %w", path, sha, o.expect, errReviewMismatch)
	}
	rv, err := runner.ParseReviewed(data)
	if err != nil {
		return usagef("%s: %v", path, err)
	}
	p, drift, err := runner.ReviewedPlan(rv, path, steps.Builtin(), o.flags.vars)
	if err != nil {
		return fmt.Errorf("%s: the reviewed plan's text no longer loads: %w", path, err)
	}

	sec, err := resolveSecrets(p, e)
	if err != nil {
		return err
	}
	opts := runner.Options{Resume: o.resume, Restart: o.restart, From: rv.From, Only: rv.Only,
		Reviewed: &runner.ReviewRef{SHA256: sha, File: path}}

	// A resume continues a run this review started: the hosts have moved
	// on from the reviewed state by design, and the journal must name the
	// same reviewed file (the runner checks).
	if !o.resume {
		fmt.Fprintf(e.stderr, "Checking the hosts against the reviewed plan %s (sha256 %s)...\n", path, sha[:12])
		conn, err := newConnector(o.flags, e)
		if err != nil {
			return err
		}
		store, err := o.flags.store(ctx, p, e)
		if err != nil {
			return err
		}
		check := runner.New(p, conn.connect, sec, runner.Options{State: store, From: rv.From, Only: rv.Only})
		hostDrift, err := check.HostDrift(ctx, rv, version)
		if err != nil {
			return fmt.Errorf("dry run before applying %s: %w", path, err)
		}
		drift = append(drift, hostDrift...)
	}
	if len(drift) > 0 {
		fmt.Fprintf(e.stderr, "Refusing to apply %s: %d difference(s) from what was reviewed:\n", path, len(drift))
		printDrift(e, drift)
		fmt.Fprintln(e.stderr, "Nothing was changed. Review the plan again (migrun plan --out) if the new state is intended.")
		return reported{errDrift}
	}
	if !o.resume {
		fmt.Fprintf(e.stderr, "The hosts are as reviewed: applying %d pending step(s).\n", rv.Pending)
	}
	closeTrace, err := openTrace(o.trace, &opts)
	if err != nil {
		return err
	}
	defer closeTrace()
	r, pr, err := newRunner(p, o.flags, sec, e, opts)
	if err != nil {
		return err
	}
	_, err = r.Apply(ctx)
	return pr.shown(err)
}

// printDrift lists drift host by host, the plan first.
func printDrift(e env, drift []runner.Drift) {
	var hosts []string
	byHost := map[string][]runner.Drift{}
	for _, d := range drift {
		if _, ok := byHost[d.Host]; !ok {
			hosts = append(hosts, d.Host)
		}
		byHost[d.Host] = append(byHost[d.Host], d)
	}
	for _, h := range hosts {
		name := h
		if name == "" {
			name = "plan"
		}
		fmt.Fprintf(e.stderr, "  %s:\n", name)
		for _, d := range byHost[h] {
			line := d.String()
			line = strings.TrimPrefix(line, name+": ")
			fmt.Fprintf(e.stderr, "    - %s\n", line)
		}
	}
}
