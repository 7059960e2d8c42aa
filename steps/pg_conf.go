package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
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
	ApplyWith string            `yaml:"apply_with" enum:"none|reload|restart" default:"none" doc:"none: edit the file and report what the server needs; reload: run SELECT pg_reload_conf() after the edit (parameters of context postmaster still need a restart); restart: restart service: when the running server does not use a value yet and a reload cannot bring it in (e.g. wal_level), reload when a reload is enough, and do neither when it already uses every value; fails if the server still needs a restart after it"`
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

// confLineRE matches a parameter line of postgresql.conf: indentation, an
// optional comment mark (a commented-out default), the name, = or blanks,
// the value (quoted, with ” or \' inside, or a bare word) and the rest (a
// trailing comment). A commented line counts only in the `name = value`
// form, so prose in comments is not taken for a parameter.
var confLineRE = regexp.MustCompile(`^(\s*)(#\s*)?([A-Za-z_][A-Za-z0-9_.]*)(\s*=\s*|\s+)('(?:[^'\\]|''|\\.)*'|[^\s#']*)(.*)$`)

// confLine is one parsed line.
type confLine struct {
	indent, name, value, rest string
	commented                 bool
}

func parseConfLine(body string) (confLine, bool) {
	m := confLineRE.FindStringSubmatch(body)
	if m == nil {
		return confLine{}, false
	}
	l := confLine{indent: m[1], commented: m[2] != "", name: m[3], value: m[5], rest: m[6]}
	if l.commented && !strings.Contains(m[4], "=") {
		return confLine{}, false
	}
	// What follows the value must be blank or a comment, or this is not a
	// line PostgreSQL would read as name = value.
	if r := strings.TrimSpace(l.rest); r != "" && !strings.HasPrefix(r, "#") {
		return confLine{}, false
	}
	return l, true
}

// confValues returns the value in force for each parameter the text sets
// (the last uncommented line wins, as in PostgreSQL), keyed by lower-case
// name, unquoted.
func confValues(text string) map[string]string {
	out := map[string]string{}
	for _, raw := range rawLines(text) {
		body, _ := lineBody(raw)
		if l, ok := parseConfLine(body); ok && !l.commented {
			out[strings.ToLower(l.name)] = pg.Unquote(l.value)
		}
	}
	return out
}

// setConfParams sets each parameter in text: on its last uncommented line,
// else on its first commented `#name = ...` line, else on a new line at
// the end. Trailing comments and indentation stay. what names the
// parameters changed, notes what the user should know.
func setConfParams(text string, settings map[string]string) (out string, what, notes []string) {
	lines := rawLines(text)
	eol := fileEOL(lines)
	var appended []string
	for _, name := range hostcmd.SortedKeys(settings) {
		want := settings[name]
		active, commented := -1, -1
		for i, raw := range lines {
			body, _ := lineBody(raw)
			l, ok := parseConfLine(body)
			if !ok || !strings.EqualFold(l.name, name) {
				continue
			}
			if !l.commented {
				active = i
			} else if commented < 0 {
				commented = i
			}
		}
		at := active
		if at < 0 {
			at = commented
		}
		if at < 0 {
			appended = append(appended, name+" = "+pgConfValue(want)+eol)
			what = append(what, "set "+name)
			notes = append(notes, "no line for "+name+": appending it at the end")
			continue
		}
		body, lineEOL := lineBody(lines[at])
		l, _ := parseConfLine(body)
		if !l.commented && pg.Unquote(l.value) == pg.Unquote(want) {
			continue
		}
		rest := l.rest
		if rest != "" && !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "\t") {
			rest = " " + rest
		}
		lines[at] = l.indent + name + " = " + pgConfValue(want) + rest + lineEOL
		if lineEOL == "" {
			// The edited line was the last one, without a newline; a line
			// appended below must not run into it.
			lines[at] += eol
		}
		what = append(what, "set "+name)
	}
	if len(appended) > 0 && len(lines) > 0 {
		if _, e := lineBody(lines[len(lines)-1]); e == "" {
			lines[len(lines)-1] += eol
		}
	}
	return strings.Join(append(lines, appended...), ""), what, notes
}

// pgConfBareRE is a value postgresql.conf reads the same without quotes:
// a number with an optional unit, or a plain word.
var pgConfBareRE = regexp.MustCompile(`^(-?[0-9]+(\.[0-9]+)?[A-Za-z]*|[A-Za-z_][A-Za-z0-9_]*)$`)

// pgConfValue renders v for postgresql.conf: as is when it is already
// single-quoted or needs no quotes, else quoted with ' doubled.
func pgConfValue(v string) string {
	if len(v) >= 2 && strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") {
		return v
	}
	if pgConfBareRE.MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
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
			svc := &Service{Name: c.service(), State: svcRestarted}
			sa, err := svc.Describe(ctx, rt)
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

// pgConfFileErrors keeps the pg_file_settings rows that are errors: a
// postmaster parameter whose file value differs from the running one is
// reported as "setting could not be applied", which is what a restart is
// for, not a fault in the file.
const pgConfFileErrors = "error <> 'setting could not be applied'"

// How long apply_with: restart waits for the restarted server to answer,
// and how often it asks. A server recovering after a crash can take a
// while; systemd's own start timeout is 90 s by default.
const (
	pgRestartWait = 60 * time.Second
	pgRestartPoll = 200 * time.Millisecond
)

// applyRestart is Apply for apply_with: restart, after the edit (out). It
// asks the server what it needs: nothing, a reload, or a restart, which
// also covers reloads. The question is asked whether or not the file
// changed just now, so a run that edited the file and then failed before
// the restart is completed by the next run.
func (c *PgConf) applyRestart(ctx context.Context, rt *Runtime, ex executors.Executor, out Outcome) (Outcome, error) {
	needs, err := c.server(ctx, ex)
	if err != nil {
		return out, fmt.Errorf("%s: %w", rt.Host, err)
	}
	restartFor := needing(needs, "restart")
	svcOut := "" // what the restart printed, for the journal, after the report
	switch {
	case len(restartFor) > 0:
		// A restart with a file the server cannot read is a server that
		// does not come back: check first, as a reload does.
		if msgs, err := pg.FileProblems(ctx, ex, c.PgConnection.target(""), "pg_file_settings", pgConfFileErrors); err != nil {
			return out, fmt.Errorf("%s: check the file before restarting: %w", rt.Host, err)
		} else if len(msgs) > 0 {
			return out, fmt.Errorf("%s: the server would not start with the edited file (pg_file_settings): %s; not restarted", rt.Host, strings.Join(msgs, "; "))
		}
		// The service kind does the restart, so systemctl or service is
		// chosen, run and waited for in one place.
		svc := &Service{Name: c.service(), State: svcRestarted}
		so, err := svc.Apply(ctx, rt)
		out.Changed = true
		if err != nil {
			return out, fmt.Errorf("restart for %s: %w", strings.Join(restartFor, ", "), err)
		}
		out.Output += fmt.Sprintf("; restarted service %s for %s", c.service(), strings.Join(restartFor, ", "))
		if o := strings.TrimSpace(so.Output); o != "" {
			svcOut = "\nrestart of service " + c.service() + ":\n" + o
		}
		if needs, err = c.waitUp(ctx, ex); err != nil {
			return out, fmt.Errorf("%s: after restarting service %s: %w", rt.Host, c.service(), err)
		}
		if still := needing(needs, "restart"); len(still) > 0 {
			// The unit restarted is not this server's, or the server does
			// not read this file.
			return out, fmt.Errorf("%s: %s still needs a restart after service %s was restarted: is %s the service of the server on %s, and is the file its config_file?",
				rt.Host, strings.Join(still, ", "), c.service(), c.service(), c.socketName())
		}
	case len(needing(needs, "reload")) > 0:
		if err := pg.Reload(ctx, ex, c.PgConnection.target(""), "pg_file_settings", pgConfFileErrors); err != nil {
			return out, err
		}
		out.Changed = true
		out.Output += "; reloaded (no restart needed)"
		if needs, err = c.waitApplied(ctx, ex, true); err != nil {
			return out, fmt.Errorf("%s: %w", rt.Host, err)
		}
	default:
		out.Output += "; no restart"
	}
	out.Output += "; " + summarizeNeeds(needs) + svcOut
	return out, nil
}

// socketName says which server the step talks to, for messages.
func (c *PgConf) socketName() string {
	dir := c.SocketDir
	if dir == "" {
		dir = "the default socket directory"
	}
	port := c.Port
	if port == 0 {
		port = 5432
	}
	return fmt.Sprintf("%s, port %d", dir, port)
}

// pgStartingRE matches the server refusing a connection while it starts
// up or shuts down (SQLSTATE 57P03). systemctl may return before the
// server accepts connections, depending on the unit's Type.
var pgStartingRE = regexp.MustCompile(`FATAL: +the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)`)

// waitUp polls the server after a restart until it answers, for at most
// pgRestartWait, and returns what it then needs.
func (c *PgConf) waitUp(ctx context.Context, ex executors.Executor) (map[string]string, error) {
	deadline := time.Now().Add(pgRestartWait)
	for {
		needs, err := c.server(ctx, ex)
		var exit *executors.ExitError
		down := pg.NotReady(err) || errors.As(err, &exit) && pgStartingRE.MatchString(exit.Stderr)
		if !down {
			return needs, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the server does not answer %s later: %w", pgRestartWait, err)
		}
		if err := hostcmd.Sleep(ctx, pgRestartPoll); err != nil {
			return nil, fmt.Errorf("waiting for the server: %w", err)
		}
	}
}

// waitApplied reads what the server needs. After a reload the postmaster
// re-reads the file asynchronously, so a new session may briefly still
// see old values: poll for a few seconds before reporting "reload needed".
func (c *PgConf) waitApplied(ctx context.Context, ex executors.Executor, reloaded bool) (map[string]string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		needs, err := c.server(ctx, ex)
		if err != nil || !reloaded || time.Now().After(deadline) {
			return needs, err
		}
		pending := false
		for _, n := range needs {
			pending = pending || n == "reload"
		}
		if !pending {
			return needs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
