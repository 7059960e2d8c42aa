package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
	"github.com/migrun/migrun/steps/internal/textedit"
)

var pgHbaKind = Kind{
	Name:      "pg_hba",
	Summary:   "ensure a client authentication rule in pg_hba.conf, in a position where it takes effect",
	NeedsHost: true,
	New:       func() Spec { return new(PgHba) },
}

var _ Spec = (*PgHba)(nil)

// PgHba ensures one rule line in pg_hba.conf.
//
// pg_hba.conf is first-match: a rule appended at the end is dead when an
// earlier catch-all matches first, so the line is never appended. A
// `local` rule goes right above the first `local` rule (the stock
// `local all all peer` would otherwise win); any other rule goes right
// below the last `local` rule before the first host rule, that is at the
// top of the host rules (comments above them stay with them). An
// existing rule with the same fields (whitespace aside) means done.
type PgHba struct {
	Type     string `yaml:"type" required:"true" enum:"local|host|hostssl|hostnossl|hostgssenc|hostnogssenc" doc:"connection type"`
	Database string `yaml:"database" required:"true" doc:"database(s) the rule matches: a name, all, sameuser, replication, or a comma list"`
	User     string `yaml:"user" required:"true" doc:"role(s) the rule matches: a name, all, +group, or a comma list"`
	Address  string `yaml:"address" doc:"client address in CIDR form, e.g. 192.0.2.10/32 or 0.0.0.0/0 (required unless type is local)"`
	Method   string `yaml:"method" required:"true" enum:"scram-sha-256|md5|password|trust|reject|peer|ident|gss|sspi|ldap|radius|cert|pam|bsd" doc:"authentication method"`
	Options  string `yaml:"options" doc:"auth options after the method, e.g. clientcert=verify-full"`
	File     string `yaml:"file" doc:"absolute path of pg_hba.conf (default: the server's SHOW hba_file)"`
	Reload   bool   `yaml:"reload" default:"false" doc:"after the edit, check the file parses (pg_hba_file_rules) and SELECT pg_reload_conf()"`

	PgConnection `yaml:",inline"`
}

// Validate checks what the tags cannot.
func (h *PgHba) Validate() []Problem {
	var ps []Problem
	switch {
	case h.Type == "local" && h.Address != "":
		ps = append(ps, Problem{"address", "a local rule has no address"})
	case h.Type != "local" && h.Type != "" && h.Address == "":
		ps = append(ps, Problem{"address", "give the client address (CIDR) for a " + h.Type + " rule"})
	}
	for key, v := range map[string]string{"database": h.Database, "user": h.User, "address": h.Address, "options": h.Options} {
		if strings.ContainsAny(v, "\n\r#") || key != "options" && strings.ContainsAny(v, " \t") {
			ps = append(ps, Problem{key, fmt.Sprintf("%q cannot be one pg_hba.conf field (blanks, # or line breaks)", v)})
		}
	}
	if h.File != "" {
		ps = append(ps, validateFile("file", h.File)...)
	}
	return append(ps, h.PgConnection.validate("")...)
}

// Hosts is the step's host: the database server.
func (h *PgHba) Hosts(stepHost string) []string { return []string{stepHost} }

// fields is the rule as pg_hba.conf fields.
func (h *PgHba) fields() []string {
	f := []string{h.Type, h.Database, h.User}
	if h.Type != "local" {
		f = append(f, h.Address)
	}
	f = append(f, h.Method)
	if h.Options != "" {
		f = append(f, strings.Fields(h.Options)...)
	}
	return f
}

// line renders the rule in the stock file's column layout.
func (h *PgHba) line() string {
	f := h.fields()
	widths := []int{8, 16, 16, 24}
	if h.Type == "local" {
		// The stock file leaves the address column blank for local rules.
		f = append(f[:3], append([]string{""}, f[3:]...)...)
	}
	var b strings.Builder
	for i, v := range f {
		if i < len(widths) && i < len(f)-1 {
			b.WriteString(v)
			b.WriteString(strings.Repeat(" ", max(1, widths[i]-len(v))))
			continue
		}
		b.WriteString(v + " ")
	}
	return strings.TrimRight(b.String(), " ")
}

// hbaFields splits a pg_hba.conf line into fields, dropping a comment.
// A quoted field may hold blanks; "" means a comment or blank line.
func hbaFields(body string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range body {
		switch {
		case r == '"':
			inQuote = !inQuote
			cur.WriteRune(r)
			have = true
		case r == '#' && !inQuote:
			if have {
				out = append(out, cur.String())
			}
			return out
		case (r == ' ' || r == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// hbaSameRule compares two rules field by field; keywords (type, method)
// ignore case.
func hbaSameRule(a, b []string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	method := 4
	if strings.EqualFold(a[0], "local") {
		method = 3
	}
	for i := range a {
		keyword := i == 0 || i == method
		if keyword && !strings.EqualFold(a[i], b[i]) || !keyword && a[i] != b[i] {
			return false
		}
	}
	return true
}

// insertHbaRule adds line to text unless an equivalent rule is there
// (see PgHba for where). changed is false when the rule exists.
func insertHbaRule(text, line string, want []string) (out string, changed bool) {
	lines := textedit.RawLines(text)
	eol := textedit.FileEOL(lines)
	firstLocal, lastLocal, firstRule, firstHost := -1, -1, -1, -1
	for i, raw := range lines {
		body, _ := textedit.LineBody(raw)
		f := hbaFields(body)
		if len(f) == 0 {
			continue
		}
		if hbaSameRule(f, want) {
			return text, false
		}
		if firstRule < 0 {
			firstRule = i
		}
		if f[0] == "local" {
			if firstLocal < 0 {
				firstLocal = i
			}
			// Only the local rules above the first host rule count: the
			// stock file has `local replication` further down, and a host
			// rule placed below that would follow the catch-all host rules.
			if firstHost < 0 {
				lastLocal = i
			}
		} else if firstHost < 0 {
			firstHost = i
		}
	}
	var at int
	switch {
	case want[0] == "local" && firstLocal >= 0:
		at = firstLocal
	case want[0] == "local" && firstRule >= 0:
		at = firstRule
	case lastLocal >= 0:
		at = lastLocal + 1
	case firstHost >= 0:
		at = firstHost
	default:
		at = len(lines) // no rules at all: the end is the top of the rules
	}
	if at == len(lines) && at > 0 {
		if _, e := textedit.LineBody(lines[at-1]); e == "" {
			lines[at-1] += eol
		}
	}
	out = strings.Join(lines[:at], "") + line + eol + strings.Join(lines[at:], "")
	return out, true
}

// file returns the file to edit: file:, or the server's hba_file.
func (h *PgHba) file(ctx context.Context, ex executors.Executor) (string, bool, error) {
	if h.File != "" {
		return h.File, true, nil
	}
	return pg.ShowFile(ctx, ex, h.PgConnection.target(""), "hba_file")
}

func (h *PgHba) textEdit(path string) *textEdit {
	line := h.line()
	return &textEdit{
		path: path,
		edit: func(old string) (editResult, error) {
			text, changed := insertHbaRule(old, line, h.fields())
			r := editResult{text: text, oldShow: old, newShow: text}
			if changed {
				r.what = []string{"add rule `" + strings.Join(h.fields(), " ") + "`"}
			}
			return r, nil
		},
		verify: func(written string) error {
			if _, changed := insertHbaRule(written, line, h.fields()); changed {
				return fmt.Errorf("the rule is not in the file")
			}
			return nil
		},
	}
}

// Check is done when the file holds the rule.
func (h *PgHba) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	file, ok, err := h.file(ctx, ex)
	if err != nil {
		return Check{}, err
	}
	if !ok {
		return Check{Unknown: true, Reason: "the server is not reachable yet to tell its hba_file"}, nil
	}
	return h.textEdit(file).check(ctx, rt)
}

// Describe is the diff, and the reload when asked.
func (h *PgHba) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return nil, err
	}
	file, ok, err := h.file(ctx, ex)
	if err != nil {
		return nil, err
	}
	if !ok {
		return []Action{{Host: rt.Host, Summary: "add `" + h.line() + "` to the server's hba_file (server not reachable yet)"}}, nil
	}
	acts, err := h.textEdit(file).describe(ctx, rt)
	if err != nil {
		return acts, err
	}
	if h.Reload {
		acts = append(acts, Action{Host: rt.Host, Summary: fmt.Sprintf(
			"run on %s as %s: %s <<< SELECT ... FROM pg_hba_file_rules WHERE error IS NOT NULL; SELECT pg_reload_conf();",
			rt.Host, h.target("").RunAs(), executors.QuoteArgv(h.target("postgres").PsqlArgv()))})
	}
	return acts, nil
}

// Apply inserts the rule, then, with reload, checks the file parses and
// reloads the server.
func (h *PgHba) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	file, ok, err := h.file(ctx, ex)
	if err != nil {
		return Outcome{}, err
	}
	if !ok {
		return Outcome{}, fmt.Errorf("%s: the server is not reachable to tell its hba_file; start it or give file:", rt.Host)
	}
	out, err := h.textEdit(file).apply(ctx, rt)
	if err != nil || !h.Reload {
		return out, err
	}
	// pg_hba_file_rules reads the server's hba_file: it can vouch for a
	// file: only when that is the same file.
	served, _, err := pg.ShowFile(ctx, ex, h.PgConnection.target(""), "hba_file")
	if err != nil {
		return out, err
	}
	if served != file {
		return out, fmt.Errorf("%s: reload: the server reads %s, not %s; not reloaded", rt.Host, served, file)
	}
	if err := pg.Reload(ctx, ex, h.PgConnection.target(""), "pg_hba_file_rules", ""); err != nil {
		return out, err
	}
	out.Changed = true
	out.Output += "; checked pg_hba_file_rules and reloaded"
	return out, nil
}
