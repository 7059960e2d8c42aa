package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// validateFlagSet is validate's flags.
func validateFlagSet(c *commonFlags) *flag.FlagSet {
	fs := newFlagSet("validate", "validate [flags] PLAN|DIR...")
	c.add(fs)
	return fs
}

// runValidate checks plan files, and the plans under directories, without
// contacting any host. Every file is checked before it returns; the
// returned plan.Errors holds every problem of every file (exit status 2).
func runValidate(ctx context.Context, args []string, e env) error {
	var c commonFlags
	paths, err := parseFlags(validateFlagSet(&c), args, e)
	if err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("validate: no plan file or directory given")
	}
	out := validateOutput{stdout: e.stdout, stderr: e.stderr, json: c.output == "json"}
	reg := steps.Builtin()
	var all plan.Errors
	seen := map[string]bool{}
	for _, path := range paths {
		files, errs := planFiles(path)
		for _, pe := range errs {
			out.problems(pe.File, plan.Errors{pe}, false)
		}
		all = append(all, errs...)
		for _, f := range files {
			if seen[filepath.Clean(f)] {
				continue
			}
			seen[filepath.Clean(f)] = true
			p, errs, loaded := validateFile(f, reg, c.vars)
			if len(errs) > 0 {
				out.problems(f, errs, loaded)
				all = append(all, errs...)
				continue
			}
			out.valid(f, p)
		}
	}
	if len(all) > 0 {
		return reported{all}
	}
	return nil
}

// planFiles lists the files path stands for: itself when it is not a
// directory (whatever its name: it was asked for), else the *.yaml and
// *.yml files under it, sorted. Names starting with "." are skipped under
// a directory, so a repository's .git and .github are not read as plans.
// Problems reading path are returned as plan errors of their own.
func planFiles(path string) ([]string, plan.Errors) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, plan.Errors{readError(path, err)}
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	var files []string
	var errs plan.Errors
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, readError(p, err))
			return nil // WalkDir skips what it could not read
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, readError(path, err))
	}
	if len(files) == 0 && len(errs) == 0 {
		errs = append(errs, &plan.Error{File: path, Msg: "no plans here: a directory is searched for *.yaml and *.yml files"})
	}
	slices.Sort(files)
	return files, errs
}

// validateFile loads one plan. loaded is false when the file could not be
// read at all, so there is no plan to count problems in.
func validateFile(file string, reg *steps.Registry, vars map[string]string) (p *plan.Plan, errs plan.Errors, loaded bool) {
	p, err := plan.Load(file, reg, vars)
	if err == nil {
		return p, nil, true
	}
	if errors.As(err, &errs) {
		return nil, errs, true
	}
	return nil, plan.Errors{readError(file, err)}, false
}

// readError turns a file system error into a problem of file, without
// repeating the path the error already names.
func readError(file string, err error) *plan.Error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &plan.Error{File: file, Msg: "cannot read: " + err.Error()}
}

// validateOutput writes validate's results: in text, problems on stderr
// (file:line:col: step "id": message) and valid plans on stdout; in JSON,
// one object a line on stdout, one per problem and one per valid plan.
type validateOutput struct {
	stdout, stderr io.Writer
	json           bool
}

// validProblem is a problem as a JSON line.
type validProblem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Step     string `json:"step"`
	Field    string `json:"field"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// validPlan is a valid plan as a JSON line.
type validPlan struct {
	File      string   `json:"file"`
	Plan      string   `json:"plan"`
	OK        bool     `json:"ok"`
	Steps     int      `json:"steps"`
	OnFailure int      `json:"on_failure"`
	Hosts     []string `json:"hosts"`
}

// problems reports the problems of file; summary adds the count line of
// a plan that was read.
func (o validateOutput) problems(file string, errs plan.Errors, summary bool) {
	if !o.json {
		for _, pe := range errs {
			fmt.Fprintln(o.stderr, pe)
		}
		if summary {
			fmt.Fprintf(o.stderr, "%s: %d problem(s); nothing was contacted or changed\n", file, len(errs))
		}
		return
	}
	for _, pe := range errs {
		o.writeJSON(validProblem{
			File: pe.File, Line: pe.Line, Column: pe.Column, Step: pe.Step,
			Field: pe.Field, Message: pe.Msg, Severity: "error",
		})
	}
}

func (o validateOutput) valid(file string, p *plan.Plan) {
	hosts := make([]string, 0, len(p.Hosts))
	for h := range p.Hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	if o.json {
		o.writeJSON(validPlan{File: file, Plan: p.Name, OK: true, Steps: len(p.Steps), OnFailure: len(p.OnFailure), Hosts: hosts})
		return
	}
	fmt.Fprintf(o.stdout, "%s: ok: plan %s, %d step(s), %d on_failure, hosts %s\n",
		file, p.Name, len(p.Steps), len(p.OnFailure), strings.Join(hosts, ", "))
}

func (o validateOutput) writeJSON(v any) {
	enc := json.NewEncoder(o.stdout)
	// Messages quote YAML ("merge keys (<<)"); keep them readable.
	enc.SetEscapeHTML(false)
	enc.Encode(v) // a value of these types always encodes
}
