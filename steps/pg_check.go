package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgCheckKind = Kind{
	Name:      "pg_check",
	Summary:   "assert facts about a PostgreSQL server before the downtime (settings, extensions, versions, an empty database, a login); changes nothing",
	NeedsHost: true,
	New:       func() Spec { return new(PgCheck) },
}

var _ Spec = (*PgCheck)(nil)

// PgCheck asserts what a migration needs of the target server, so that a
// wrong setting is found before the source is stopped, not halfway through
// the downtime. It never changes the server. Apply runs every assertion
// and fails with the list of all that do not hold.
//
// settings is a map of conditions, since the plan schema has no maps of
// objects: ">=150", "<=0.01", ">8", "<8", "=en_US.UTF-8", "!=off", or a
// bare value meaning "=". Numbers compare in the setting's base unit from
// pg_settings (work_mem in kB: ">=8192" or ">=8MB"). Values are those a
// new session of os_user in database sees, database-level settings (ALTER
// DATABASE ... SET lc_messages) included.
//
// engine-setup's requirements for a remote database read:
//
//	settings: {max_connections: ">=150", work_mem: ">=8192", maintenance_work_mem: ">=65536",
//	  autovacuum_vacuum_scale_factor: "<=0.01", autovacuum_analyze_scale_factor: "<=0.075",
//	  autovacuum_max_workers: ">=6", lc_messages: "=en_US.UTF-8", server_encoding: "=UTF8"}
//	extensions: [uuid-ossp]
type PgCheck struct {
	Database                   string            `yaml:"database" default:"postgres" doc:"database whose settings and extensions are checked, e.g. engine"`
	Settings                   map[string]string `yaml:"settings" doc:"parameter -> condition: \">=150\", \"<=0.01\", \"=en_US.UTF-8\", \"!=off\" (a bare value means =); numbers in the setting's unit or with one (\">=8MB\")"`
	Extensions                 []string          `yaml:"extensions" doc:"extensions that must be created in database, e.g. [uuid-ossp]"`
	ClientVersionAtLeastServer bool              `yaml:"client_version_at_least_server" default:"false" doc:"psql and pg_dump on the step's host (or client_host) are of the server's major version or newer (pg_dump refuses a server of a newer major version); the server is login's when login is given (checked with it, on apply), else the step's. Found already in the check, it refuses: before the first change of an apply"`
	ClientHost                 string            `yaml:"client_host" doc:"with client_version_at_least_server: the plan host whose psql and pg_dump are compared with this server (e.g. the Manager, which will back the server up), read-only"`
	DatabaseEmpty              string            `yaml:"database_empty" doc:"a database that must exist and hold no user tables, views or sequences (the restore target)"`
	Login                      PgCheckLogin      `yaml:"login" doc:"a password login that must succeed from the step's host (as the application will log in)"`
	DatabasesOnly              []string          `yaml:"databases_only" doc:"the only databases the server may hold besides postgres and the templates (a server about to be retired: any other database would be lost with it); another refuses, found already in the check: before the first change of an apply"`
	ClientsOnlyFrom            []string          `yaml:"clients_only_from" doc:"services (systemd units) on the step's host, the database server's, whose processes may be connected to database: every other client (a process of another service or of none, a login's psql, a connection from another host) refuses, found already in the check: before the first change of an apply. List the services the plan stops before it takes the data"`

	PgConnection `yaml:",inline"`
}

// PgCheckLogin is a login to try with psql, the password in a 0600
// PGPASSFILE (never in argv or the environment).
type PgCheckLogin struct {
	Host     string `yaml:"host" doc:"server host name or address as the application uses it (psql -h); required to check a login"`
	Port     int    `yaml:"port" default:"5432" doc:"server port"`
	User     string `yaml:"user" doc:"role to log in as"`
	Password string `yaml:"password" secret:"allowed" doc:"its password, normally \"${secret}\""`
	Database string `yaml:"database" doc:"database to connect to (default: user's name)"`
}

// Validate checks what the tags cannot.
func (c *PgCheck) Validate() []Problem {
	var ps []Problem
	for _, k := range hostcmd.SortedKeys(c.Settings) {
		if !pg.ParamNameRE.MatchString(k) {
			ps = append(ps, Problem{"settings", fmt.Sprintf("%q is not a parameter name", k)})
			continue
		}
		op, v := parseCond(c.Settings[k])
		if v == "" {
			ps = append(ps, Problem{"settings", fmt.Sprintf("%s: condition %q has no value", k, c.Settings[k])})
		}
		if op != "=" && op != "!=" {
			if _, ok := pg.Numeric(v, "kB"); !ok {
				ps = append(ps, Problem{"settings", fmt.Sprintf("%s: %s needs a number, not %q", k, op, v)})
			}
		}
	}
	l := c.Login
	if l != (PgCheckLogin{}) {
		if l.Host == "" {
			ps = append(ps, Problem{"login.host", "give the host to log in to"})
		}
		if l.User == "" {
			ps = append(ps, Problem{"login.user", "give the role to log in as"})
		}
		if l.Port < 0 || l.Port > 65535 {
			ps = append(ps, Problem{"login.port", fmt.Sprintf("port %d is out of range", l.Port)})
		}
		if strings.ContainsAny(l.Host+l.User+l.Database, "\n\r") {
			ps = append(ps, Problem{"login", "host, user and database must be one line each"})
		}
	}
	if c.ClientHost != "" && (!c.ClientVersionAtLeastServer || l != (PgCheckLogin{})) {
		ps = append(ps, Problem{"client_host", "goes with client_version_at_least_server, without login (a login checks the tools of the step's own host)"})
	}
	for _, u := range c.ClientsOnlyFrom {
		if !hostcmd.ServiceNameRE.MatchString(u) {
			ps = append(ps, Problem{"clients_only_from", fmt.Sprintf("%q is not a service name (letters, digits and _@.:-\\, not starting with -)", u)})
		}
	}
	for _, d := range c.DatabasesOnly {
		if d == "" || strings.ContainsAny(d, "\n\r") {
			ps = append(ps, Problem{"databases_only", fmt.Sprintf("%q is not a database name", d)})
		}
	}
	if len(c.Settings) == 0 && len(c.Extensions) == 0 && !c.ClientVersionAtLeastServer && c.DatabaseEmpty == "" && l == (PgCheckLogin{}) && len(c.ClientsOnlyFrom) == 0 && c.DatabasesOnly == nil {
		ps = append(ps, Problem{"", "nothing to check: give settings, extensions, client_version_at_least_server, database_empty, login, databases_only or clients_only_from"})
	}
	return append(ps, c.PgConnection.validate("")...)
}

// Hosts is the step's host.
func (c *PgCheck) Hosts(stepHost string) []string {
	if c.ClientHost != "" && c.ClientHost != stepHost {
		return []string{stepHost, c.ClientHost}
	}
	return []string{stepHost}
}

func (c *PgCheck) database() string {
	if c.Database == "" {
		return "postgres"
	}
	return c.Database
}

// Check is done when every assertion holds. The login needs a password
// file, which a read-only check cannot write: with login given, the
// check leaves the step to Apply, which only reads too.
func (c *PgCheck) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	ok, violated, fatal, err := c.assertions(ctx, rt, ex, false)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the server is not reachable yet: " + err.Error()}, nil
	}
	if err != nil {
		return Check{}, fmt.Errorf("%s: %w", rt.Host, err)
	}
	if len(fatal) > 0 {
		return Check{}, fmt.Errorf("%s: %s", rt.Host, strings.Join(fatal, "; "))
	}
	if len(violated) > 0 {
		return Check{Reason: strings.Join(violated, "; ")}, nil
	}
	if c.Login != (PgCheckLogin{}) {
		return Check{Reason: fmt.Sprintf("%d assertions hold; the login is tried on apply", len(ok))}, nil
	}
	return Check{Done: true, Reason: fmt.Sprintf("all %d assertions hold", len(ok))}, nil
}

// Describe lists the assertions.
func (c *PgCheck) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	var items []string
	for _, k := range hostcmd.SortedKeys(c.Settings) {
		op, v := parseCond(c.Settings[k])
		items = append(items, k+" "+op+" "+v)
	}
	for _, e := range c.Extensions {
		items = append(items, "extension "+e+" in "+c.database())
	}
	if c.ClientVersionAtLeastServer {
		switch {
		case c.Login != (PgCheckLogin{}):
			items = append(items, "psql and pg_dump --version >= the login's server_version_num (on apply)")
		case c.ClientHost != "":
			items = append(items, "psql and pg_dump --version on "+c.ClientHost+" >= server_version_num")
		default:
			items = append(items, "psql and pg_dump --version >= server_version_num")
		}
	}
	if c.DatabaseEmpty != "" {
		items = append(items, "database "+c.DatabaseEmpty+" empty")
	}
	if c.DatabasesOnly != nil {
		items = append(items, "no database but "+orNone(c.DatabasesOnly)+" (and postgres, the templates)")
	}
	if len(c.ClientsOnlyFrom) > 0 {
		items = append(items, "every client of "+c.database()+" a process of "+strings.Join(c.ClientsOnlyFrom, ", "))
	}
	acts := []Action{{Host: rt.Host, Summary: fmt.Sprintf("check on %s (read-only): %s", rt.Host, strings.Join(items, "; "))}}
	if c.Login != (PgCheckLogin{}) {
		acts = append(acts, Action{Host: rt.Host, Summary: fmt.Sprintf("run on %s as %s: PGPASSFILE=%s.pgpass %s (password %s in the 0600 file, removed after)",
			rt.Host, c.target("").RunAs(), secretFilePattern, executors.QuoteArgv(c.loginArgv()), pgCheckMaskedSecret(c.Login.Password))})
	}
	return acts, nil
}

func pgCheckMaskedSecret(s string) string {
	if secret.Contains(s) {
		return secret.Mask(s)
	}
	return hiddenValue
}

// Apply runs every assertion and fails listing all that do not hold.
func (c *PgCheck) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	ok, violated, _, err := c.assertions(ctx, rt, ex, true)
	if err != nil {
		return Outcome{}, fmt.Errorf("%s: %w", rt.Host, err)
	}
	if len(violated) > 0 {
		return Outcome{Output: strings.Join(ok, "\n")}, fmt.Errorf("%s: %d of %d checks failed:\n  - %s",
			rt.Host, len(violated), len(ok)+len(violated), strings.Join(violated, "\n  - "))
	}
	return Outcome{Output: strings.Join(ok, "\n")}, nil
}

// VerifiesOnly: this kind changes no host (see Verifier).
func (*PgCheck) VerifiesOnly() {}
