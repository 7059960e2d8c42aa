package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/plan"
)

// learnHosts connects the hosts and learns what a dry run and an apply
// find on them before any step: the detections' answers (recorded: those
// of the run being resumed), into r.detected, and then the host secrets
// the steps they select use.
//
// The hosts the probes ask are dialed first. Then every host a step that
// will run uses (its when: holds, the detections known) is dialed at once,
// so that a refused host key or a wrong password stops the run before
// anything changed; a host that only skipped steps use (the hosted
// engine's host, for a Manager that is none) is never contacted.
func (r *Runner) learnHosts(ctx context.Context, hosts *pool, recorded map[string]bool) error {
	probed := make([]string, 0, len(r.plan.Detect))
	for _, d := range r.plan.Detect {
		probed = append(probed, d.Host)
	}
	if err := connectAll(ctx, hosts, probed); err != nil {
		return err
	}
	var err error
	if r.detected, err = r.detect(ctx, hosts, recorded); err != nil {
		return err
	}
	running := r.runningSteps()
	if err := connectAll(ctx, hosts, hostsOf(running)); err != nil {
		return err
	}
	return r.hostSecrets(ctx, hosts, running)
}

// runningSteps are the steps and on_failure steps whose when: holds.
func (r *Runner) runningSteps() []plan.Step {
	var running []plan.Step
	for _, list := range [][]plan.Step{r.plan.Steps, r.plan.OnFailure} {
		for _, st := range list {
			if ok, _ := r.whenTrue(st); ok {
				running = append(running, st)
			}
		}
	}
	return running
}

// detect answers the plan's detections (its detect: section) on their
// hosts, read-only, before any step: a dry run shows, and an apply runs,
// the steps their `when:` selects. recorded holds the answers of the run
// being resumed; they stand, because the run's own steps may have changed
// what a probe would find now (the database it looks for has moved). The
// answers come back with what each one rests on, for people.
func (r *Runner) detect(ctx context.Context, hosts *pool, recorded map[string]bool) (map[string]bool, error) {
	if len(r.plan.Detect) == 0 {
		return nil, nil
	}
	found := make(map[string]bool, len(r.plan.Detect))
	var errs []error
	for _, d := range r.plan.Detect {
		if v, ok := recorded[d.Name]; ok {
			found[d.Name] = v
			r.emit(Event{Type: EventDetect, Step: d.Name, Host: d.Host, Status: strconv.FormatBool(v),
				Reason: d.Probe() + ": as the run's first apply found"})
			continue
		}
		v, err := probe(ctx, hosts, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("detect %s on %s: %w", d.Name, d.Host, err))
			continue
		}
		found[d.Name] = v
		r.emit(Event{Type: EventDetect, Step: d.Name, Host: d.Host, Status: strconv.FormatBool(v), Reason: d.Probe()})
	}
	return found, errors.Join(errs...)
}

// probe runs one detection's probe.
func probe(ctx context.Context, hosts *pool, d plan.Detection) (bool, error) {
	ex, err := hosts.get(ctx, d.Host)
	if err != nil {
		return false, err
	}
	cmd := executors.Command{ReadOnly: true}
	switch {
	case d.File != "":
		cmd.Script = "test -e " + executors.Quote(d.File)
	case d.PgDatabase != nil:
		pg := d.PgDatabase
		port, user := pg.Port, pg.OSUser
		if port == 0 {
			port = 5432
		}
		if user == "" {
			user = "postgres"
		}
		// The name travels on stdin, as a literal: no quoting through
		// the shell.
		var out bytes.Buffer
		cmd.Script = "exec psql -X -q -A -t -v ON_ERROR_STOP=1 -d postgres -p " + strconv.Itoa(port)
		cmd.Become = user
		cmd.Stdin = strings.NewReader("SELECT count(*) FROM pg_database WHERE datname = '" + strings.ReplaceAll(pg.Name, "'", "''") + "';\n")
		cmd.Stdout = &out
		if _, err := ex.Run(ctx, cmd); err != nil {
			return false, err
		}
		switch strings.TrimSpace(out.String()) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return false, fmt.Errorf("psql answered %q", strings.TrimSpace(out.String()))
	default:
		cmd.Script = d.Command
	}
	_, err = ex.Run(ctx, cmd)
	var exit *executors.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode == 1:
		return false, nil
	}
	return false, err
}

// whenVars are the values `when:` reads: the plan's vars and this run's
// detections.
func (r *Runner) whenVars() map[string]string {
	if len(r.detected) == 0 {
		return r.plan.Vars
	}
	vars := make(map[string]string, len(r.plan.Vars)+len(r.detected))
	for k, v := range r.plan.Vars {
		vars[k] = v
	}
	for k, v := range r.detected {
		vars[k] = strconv.FormatBool(v)
	}
	return vars
}
