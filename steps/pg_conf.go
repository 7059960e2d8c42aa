package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
	"github.com/migrun/migrun/steps/internal/svcctl"
)

var pgConfKind = Kind{
	Name:      "pg_conf",
	Summary:   "set parameters in postgresql.conf; report, or reload or restart the server when it does not yet use them",
	NeedsHost: true,
	New:       func() Spec { return new(PgConf) },
}

var _ Spec = (*PgConf)(nil)

// PgConf sets parameters in postgresql.conf. It edits the line that is in
// force (the last uncommented one for the parameter), or else uncomments
// the stock `#name = default` line, so the file never collects duplicates;
// only a parameter with no line at all is appended.
//
// The file is what the step owns; the running server is reported on:
// Check and Apply say for each parameter whether the server already uses
// the value, or needs a reload (context sighup, user, ...) or a restart
// (context postmaster). The step reloads only with apply_with: reload or
// restart, and restarts only with apply_with: restart and only when the
// running server does not use a value yet (pg_settings, pending_restart):
// a restart is an outage, so re-running a plan must not cause another.
type PgConf struct {
	Settings  map[string]string `yaml:"settings" required:"true" doc:"parameter name -> value, e.g. {max_connections: \"150\", listen_addresses: \"*\"}; values are quoted in the file when they need it (a value already in single quotes is written as is)"`
	File      string            `yaml:"file" doc:"absolute path of postgresql.conf (default: the server's SHOW config_file)"`
	ApplyWith string            `yaml:"apply_with" enum:"none|reload|restart" default:"none" doc:"none: edit the file and report what the server needs; reload: run SELECT pg_reload_conf() after the edit (parameters of context postmaster still need a restart); restart: restart service: when the running server does not use a value yet and a reload cannot bring it in (e.g. wal_level), after a CHECKPOINT (the restart's own checkpoint is outage), reload when a reload is enough, and do neither when it already uses every value; fails if the server still needs a restart after it"`
	Service   string            `yaml:"service" default:"postgresql" doc:"with apply_with: restart, the service that runs this server (systemd unit or SysV init script, e.g. postgresql-15 or postgresql@15-main), restarted as the service kind does: systemctl where the host has it, else the service command"`

	PgConnection `yaml:",inline"`
}

// Validate checks what the tags cannot.
func (c *PgConf) Validate() []Problem {
	var ps []Problem
	if len(c.Settings) == 0 {
		ps = append(ps, Problem{"settings", "give at least one parameter"})
	}
	for _, k := range hostcmd.SortedKeys(c.Settings) {
		if !pg.ParamNameRE.MatchString(k) {
			ps = append(ps, Problem{"settings", fmt.Sprintf("%q is not a parameter name", k)})
		}
		if strings.ContainsAny(c.Settings[k], "\n\r") {
			ps = append(ps, Problem{"settings", fmt.Sprintf("the value of %s spans lines", k)})
		}
	}
	if c.File != "" {
		ps = append(ps, validateFile("file", c.File)...)
	}
	// The name goes on a systemctl or service command line: the service
	// kind's rules, so a name that passes here passes there.
	if c.Service != "" && !hostcmd.ServiceNameRE.MatchString(c.Service) {
		ps = append(ps, Problem{"service", fmt.Sprintf("%q is not a service name (letters, digits and _@.:-\\, not starting with -)", c.Service)})
	}
	return append(ps, c.PgConnection.validate("")...)
}

// service is the service apply_with: restart restarts.
func (c *PgConf) service() string {
	if c.Service == "" {
		return "postgresql"
	}
	return c.Service
}

// Hosts is the step's host: the database server.
func (c *PgConf) Hosts(stepHost string) []string { return []string{stepHost} }

// file returns the file to edit: file:, or the server's config_file.
// ok is false when the server cannot tell yet (dry run before it exists).
func (c *PgConf) file(ctx context.Context, ex executors.Executor) (string, bool, error) {
	if c.File != "" {
		return c.File, true, nil
	}
	return pg.ShowFile(ctx, ex, c.PgConnection.target(""), "config_file")
}

func (c *PgConf) textEdit(path string) *textEdit {
	return &textEdit{
		path: path,
		edit: func(old string) (editResult, error) {
			text, what, notes := setConfParams(old, c.Settings)
			return editResult{text: text, oldShow: old, newShow: text, what: what, notes: notes}, nil
		},
		verify: func(written string) error {
			have := confValues(written)
			for _, k := range hostcmd.SortedKeys(c.Settings) {
				if v, ok := have[strings.ToLower(k)]; !ok || v != pg.Unquote(c.Settings[k]) {
					return fmt.Errorf("%s reads back as %q, want %q", k, v, pg.Unquote(c.Settings[k]))
				}
			}
			return nil
		},
	}
}

// serverNeeds tells, per parameter, what the running server needs to use
// the wanted value: "" (it already does), "reload" or "restart".
func (c *PgConf) serverNeeds(have map[string]pg.Setting) (map[string]string, error) {
	needs := map[string]string{}
	var unknown []string
	for _, k := range hostcmd.SortedKeys(c.Settings) {
		s, ok := have[strings.ToLower(k)]
		switch {
		case !ok && !strings.Contains(k, "."):
			unknown = append(unknown, k)
		case !ok:
			needs[k] = "reload" // a custom parameter its module has not defined yet
		case s.Context == "internal":
			return nil, fmt.Errorf("%s cannot be set in postgresql.conf (context internal)", k)
		case s.PendingRestart || s.Context == "postmaster" && !pg.ValueEquals(s, c.Settings[k]):
			needs[k] = "restart"
		case !pg.ValueEquals(s, c.Settings[k]):
			needs[k] = "reload"
		default:
			needs[k] = ""
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown parameter %s (not in pg_settings)", strings.Join(unknown, ", "))
	}
	return needs, nil
}

// summarizeNeeds renders the report: "reload needed for a, b; restart
// needed for c", or that the server already runs with the values.
func summarizeNeeds(needs map[string]string) string {
	var reload, restart []string
	for _, k := range hostcmd.SortedKeys(needs) {
		switch needs[k] {
		case "reload":
			reload = append(reload, k)
		case "restart":
			restart = append(restart, k)
		}
	}
	var parts []string
	if len(reload) > 0 {
		parts = append(parts, "reload needed for "+strings.Join(reload, ", "))
	}
	if len(restart) > 0 {
		parts = append(parts, "restart needed for "+strings.Join(restart, ", ")+" (context postmaster)")
	}
	if len(parts) == 0 {
		return "the running server already uses these values"
	}
	return strings.Join(parts, "; ")
}

// server asks the running server about the parameters.
func (c *PgConf) server(ctx context.Context, ex executors.Executor) (map[string]string, error) {
	have, err := pg.Settings(ctx, ex, c.PgConnection.target(""), "postgres", hostcmd.SortedKeys(c.Settings))
	if err != nil {
		return nil, err
	}
	return c.serverNeeds(have)
}

// Check is done when the file has every value and, with apply_with:
// reload, the server runs with every value a reload can bring in; with
// apply_with: restart, with every value.
func (c *PgConf) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	file, ok, err := c.file(ctx, ex)
	if err != nil {
		return Check{}, err
	}
	if !ok {
		return Check{Unknown: true, Reason: "the server is not reachable yet to tell its config_file"}, nil
	}
	fc, err := c.textEdit(file).check(ctx, rt)
	if err != nil || fc.Unknown {
		return fc, err
	}
	needs, err := c.server(ctx, ex)
	if pg.NotReady(err) {
		return fc, nil
	}
	if err != nil {
		return Check{}, fmt.Errorf("%s: %w", rt.Host, err)
	}
	fc.Reason += "; " + summarizeNeeds(needs)
	for _, n := range needs {
		switch {
		case c.ApplyWith == "reload" && n == "reload", c.ApplyWith == "restart" && n != "":
			fc.Done = false
		}
	}
	return fc, nil
}

// needing lists, sorted, the parameters that need what ("reload" or
// "restart").
func needing(needs map[string]string, what string) []string {
	var out []string
	for _, k := range hostcmd.SortedKeys(needs) {
		if needs[k] == what {
			out = append(out, k)
		}
	}
	return out
}

// Describe shows the diff, what the server needs, and the reload or the
// restart Apply would run.
func (c *PgConf) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return nil, err
	}
	file, ok, err := c.file(ctx, ex)
	if err != nil {
		return nil, err
	}
	if !ok {
		return []Action{{Host: rt.Host, Summary: "edit the server's config_file (server not reachable yet): set " + strings.Join(hostcmd.SortedKeys(c.Settings), ", ")}}, nil
	}
	acts, err := c.textEdit(file).describe(ctx, rt)
	if err != nil {
		return acts, err
	}
	needs, err := c.server(ctx, ex)
	switch {
	case err == nil:
		acts[0].Summary += "; " + summarizeNeeds(needs)
	case !pg.NotReady(err):
		return acts, fmt.Errorf("%s: %w", rt.Host, err)
	}
	reload := Action{Host: rt.Host, Summary: pg.Action(rt.Host, c.target("postgres"), "SELECT pg_reload_conf();")}
	switch c.ApplyWith {
	case "reload":
		acts = append(acts, reload)
	case "restart":
		switch {
		case needs == nil:
			// Not reachable now (a dry run before the server exists): Apply
			// asks again and restarts only if the server then needs it.
			acts = append(acts, Action{Host: rt.Host, Summary: fmt.Sprintf("restart service %s on %s if the server then does not use a value yet (it does not answer now)", c.service(), rt.Host)})
		case len(needing(needs, "restart")) > 0:
			acts = append(acts, Action{Host: rt.Host, Summary: pg.Action(rt.Host, c.target("postgres"), pgCheckpointSQL) +
				" (before the restart: its own checkpoint, in the outage, then has little left to write)"})
			sa, err := describeService(ctx, rt, svcctl.Want{Name: c.service(), State: svcctl.Restarted})
			why := fmt.Sprintf(" (restart service %s on %s: %s needs a restart)", c.service(), rt.Host, strings.Join(needing(needs, "restart"), ", "))
			if len(sa) > 0 {
				sa[0].Summary += why
			}
			acts = append(acts, sa...)
			if err != nil {
				return acts, err
			}
			acts = append(acts, Action{Host: rt.Host, Summary: fmt.Sprintf("then wait up to %s for the server to answer, and check it uses every value", pgRestartWait)})
		case len(needing(needs, "reload")) > 0:
			reload.Summary += " (a reload is enough: no restart)"
			acts = append(acts, reload)
		default:
			acts[0].Summary += "; nothing to reload or restart"
		}
	}
	return acts, nil
}

// Apply edits the file (backup, atomic write, mode and owner kept),
// reloads or restarts when asked (a restart only when the server needs
// one), and reports what the server still needs.
func (c *PgConf) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	file, ok, err := c.file(ctx, ex)
	if err != nil {
		return Outcome{}, err
	}
	if !ok {
		return Outcome{}, fmt.Errorf("%s: the server is not reachable to tell its config_file; start it or give file:", rt.Host)
	}
	out, err := c.textEdit(file).apply(ctx, rt)
	if err != nil {
		return out, err
	}
	if c.ApplyWith == "restart" {
		return c.applyRestart(ctx, rt, ex, out)
	}
	reloaded := false
	if c.ApplyWith == "reload" {
		if err := pg.Reload(ctx, ex, c.PgConnection.target(""), "pg_file_settings", pgConfFileErrors); err != nil {
			return out, err
		}
		out.Changed, reloaded = true, true
		out.Output += "; reloaded"
	}
	needs, err := c.waitApplied(ctx, ex, reloaded)
	if err != nil {
		return out, fmt.Errorf("%s: %w", rt.Host, err)
	}
	out.Output += "; " + summarizeNeeds(needs)
	return out, nil
}
