package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/migrun/migrun/internal/report"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/steps"
)

// reportFlagSet is report's flags.
func reportFlagSet(c *commonFlags, out *string) *flag.FlagSet {
	fs := newFlagSet("report", "report [flags] PLAN|FILE")
	c.add(fs)
	fs.StringVar(out, "out", "", "write the HTML report to `file` (default migrun-report-PLAN-RUN.html here)")
	return fs
}

// runReport writes the HTML report of the plan's last run, from its
// journal: for a plan file, or for a reviewed plan (whose actions and
// diffs are then shown beside each step).
func runReport(ctx context.Context, args []string, e env) error {
	var (
		c   commonFlags
		out string
	)
	files, err := parseFlags(reportFlagSet(&c, &out), args, e)
	if err != nil {
		return err
	}
	if err := oneFile("report", files); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	var (
		p  *plan.Plan
		rv *runner.Reviewed
	)
	if runner.IsReviewed(data) {
		if rv, err = runner.ParseReviewed(data); err != nil {
			return usagef("%s: %v", files[0], err)
		}
		if p, err = plan.Parse(rv.Plan.File, []byte(rv.Plan.Source), steps.Builtin(), rv.Vars); err != nil {
			return fmt.Errorf("%s: the reviewed plan's text no longer loads: %w", files[0], err)
		}
	} else if p, err = loadPlan(files[0], &c, e); err != nil {
		return err
	}
	path, j, err := readJournalOf(ctx, p, &c, e)
	if err != nil {
		return err
	}
	if j == nil {
		return fmt.Errorf("plan %s has never been applied (no journal at %s): nothing to report", p.Name, path)
	}
	if rv == nil {
		rv = reviewedOf(j)
	}
	var buf bytes.Buffer
	err = report.Write(&buf, report.Input{Plan: p, Journal: j, Reviewed: rv, JournalPath: path,
		Generated: time.Now(), Migrun: versionString(version, readBuildInfo())})
	if err != nil {
		return err
	}
	if out == "" {
		out = fmt.Sprintf("migrun-report-%s-%s.html", p.Name, j.RunID)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Wrote the report of %s (run %s, %s) to %s\n", p.Name, j.RunID, j.Status, out)
	return nil
}

// reviewedOf loads the reviewed plan the journal's run applied, when the
// file is still where it was and still the one approved (same sha256).
func reviewedOf(j *runner.Journal) *runner.Reviewed {
	if j.Reviewed == nil || j.Reviewed.File == "" {
		return nil
	}
	file := j.Reviewed.File
	if !filepath.IsAbs(file) && j.PlanFile != "" {
		if _, err := os.Stat(file); err != nil {
			file = filepath.Join(filepath.Dir(j.PlanFile), file)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(data)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), j.Reviewed.SHA256) {
		return nil
	}
	rv, err := runner.ParseReviewed(data)
	if err != nil {
		return nil
	}
	return rv
}
