package steps

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/pgclients"
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

var psqlVersionRE = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)(?:\.([0-9]+))?`)

// clientVersion compares the major versions of psql and pg_dump on tools'
// host with the server's: serverNum (server_version_num), or when 0 that
// of the step's own server, read on ex. Majors are what matter: pg_dump
// refuses a server of a newer major, and minor releases never change
// formats.
func (c *PgCheck) clientVersion(ctx context.Context, ex, tools executors.Executor, serverNum int) (good, bad string, err error) {
	if serverNum == 0 {
		rows, err := pg.Query(ctx, ex, c.target("postgres"), "SELECT current_setting('server_version_num');\n")
		if err != nil {
			return "", "", err
		}
		if len(rows) != 1 {
			return "", "", fmt.Errorf("%s: no server_version_num", ex.Name())
		}
		if serverNum, err = strconv.Atoi(rows[0][0]); err != nil {
			return "", "", fmt.Errorf("%s: server_version_num %q: %w", ex.Name(), rows[0][0], err)
		}
	}
	var goods, bads []string
	for _, tool := range []string{"psql", "pg_dump"} {
		res, err := tools.Run(ctx, executors.Command{Argv: []string{tool, "--version"}, Become: c.target("").RunAs(), ReadOnly: true})
		if err != nil {
			return "", "", fmt.Errorf("%s --version: %w", tool, err)
		}
		m := psqlVersionRE.FindStringSubmatch(string(res.Stdout))
		if m == nil {
			return "", "", fmt.Errorf("%s: cannot read the version in %s --version output %q", tools.Name(), tool, strings.TrimSpace(string(res.Stdout)))
		}
		client, _ := strconv.Atoi(m[1])
		server := serverNum / 10000
		if serverNum < 100000 {
			server = serverNum / 100 // 9.6 is 90600: compare 96 with a client's 9.6 below
			if m[2] != "" {
				minor, _ := strconv.Atoi(m[2])
				client = client*10 + minor
			}
		}
		version := strings.TrimPrefix(m[0], "(PostgreSQL) ")
		if client < server {
			bads = append(bads, fmt.Sprintf("%s on %s is version %s, older than the server's major version (server_version_num %d): it cannot dump (back up) that server; install the server's major version of the client there", tool, tools.Name(), version, serverNum))
		} else {
			goods = append(goods, tool+" "+version)
		}
	}
	if len(bads) > 0 {
		return "", strings.Join(bads, "; "), nil
	}
	return fmt.Sprintf("%s at least the server's version (%d)", strings.Join(goods, " and "), serverNum), "", nil
}

// databaseEmpty checks the restore target holds no user relations.
func (c *PgCheck) databaseEmpty(ctx context.Context, ex executors.Executor) (good, bad string, err error) {
	oid, err := pg.DatabaseOID(ctx, ex, c.PgConnection.target("postgres"), c.DatabaseEmpty)
	if err != nil {
		return "", "", err
	}
	if oid == 0 {
		return "", "database " + c.DatabaseEmpty + " does not exist", nil
	}
	rows, err := pg.Query(ctx, ex, c.target(c.DatabaseEmpty), `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND `+pg.UserSchemasSQL+" AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e');\n")
	if err != nil {
		return "", "", err
	}
	if len(rows) != 1 || rows[0][0] != "0" {
		n := "?"
		if len(rows) == 1 {
			n = rows[0][0]
		}
		return "", fmt.Sprintf("database %s is not empty: %s user tables, views or sequences", c.DatabaseEmpty, n), nil
	}
	return "database " + c.DatabaseEmpty + " is empty", "", nil
}

// databasesOnly checks the server holds no database but databases_only's,
// postgres and the templates.
func (c *PgCheck) databasesOnly(ctx context.Context, ex executors.Executor) (good, bad string, err error) {
	rows, err := pg.Query(ctx, ex, c.target("postgres"), "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1;\n")
	if err != nil {
		return "", "", err
	}
	listed := map[string]bool{}
	for _, d := range c.DatabasesOnly {
		listed[d] = true
	}
	var have, others []string
	for _, r := range rows {
		have = append(have, r[0])
		if !listed[r[0]] {
			others = append(others, r[0])
		}
	}
	if len(others) > 0 {
		return "", fmt.Sprintf("the server holds %s %s besides %s: retiring the server would take it along; move it first, or keep the server",
			hostcmd.Plural(len(others), "database", "databases"), strings.Join(others, ", "), orNone(c.DatabasesOnly)), nil
	}
	return "the server holds no database but " + orNone(have) + " (and postgres, the templates)", "", nil
}

// orNone joins names, "none" for none.
func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// clients checks that every client of the database is a process of one of
// clients_only_from's services on this host (see package pgclients).
func (c *PgCheck) clients(ctx context.Context, rt *Runtime, ex executors.Executor) (good, bad string, err error) {
	const unstable = "connections and the processes holding them come and go"
	rows, err := pg.Probe(ctx, ex, c.target(c.database()), pgclients.ListSQL, unstable)
	if err != nil {
		return "", "", err
	}
	conns, err := pgclients.ParseConns(rows)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", ex.Name(), err)
	}
	allowed := map[string]bool{}
	var services []string
	for _, u := range c.ClientsOnlyFrom {
		u = strings.TrimSuffix(u, ".service")
		allowed[u] = true
		services = append(services, u)
	}
	run := func(ctx context.Context, script string) (string, error) {
		var out bytes.Buffer // whole: a busy host's socket list can pass OutputTail
		_, err := ex.Run(ctx, executors.Command{Script: script, Become: rt.Become, ReadOnly: true, Stdout: &out, Unstable: unstable})
		return out.String(), err
	}
	clients, err := pgclients.Identify(ctx, run, conns, services)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", ex.Name(), err)
	}
	// A connection that ended between the looks has no process any
	// more: only those still there after it count.
	rows, err = pg.Probe(ctx, ex, c.target(c.database()), pgclients.ListSQL, unstable)
	if err != nil {
		return "", "", err
	}
	still := map[int]bool{}
	if again, err := pgclients.ParseConns(rows); err == nil {
		for _, cn := range again {
			still[cn.BackendPID] = true
		}
	}
	var others []string
	byUnit := map[string]int{}
	for _, cl := range clients {
		switch {
		case !still[cl.BackendPID]:
		case cl.PID != 0 && allowed[cl.Unit]:
			byUnit[cl.Unit]++
		default:
			others = append(others, cl.String())
		}
	}
	if len(others) > 0 {
		return "", fmt.Sprintf("database %s has %s outside the services this plan stops (%s): %s; it would go on using the old database after the data was taken (what it writes then is lost) or make the cut-over refuse in the middle of the downtime: stop it before the run, or stop its service in the plan and add it to clients_only_from",
			c.database(), hostcmd.Plural(len(others), "client", "clients"), strings.Join(services, ", "), strings.Join(others, "; ")), nil
	}
	var seen []string
	for _, u := range services {
		if byUnit[u] > 0 {
			seen = append(seen, fmt.Sprintf("%s (%s)", u, hostcmd.Plural(byUnit[u], "connection", "connections")))
		}
	}
	if len(seen) == 0 {
		return "no client of database " + c.database() + " but this check", "", nil
	}
	return "the clients of database " + c.database() + " are all of " + strings.Join(seen, ", "), "", nil
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
