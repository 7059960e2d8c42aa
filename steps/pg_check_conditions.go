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
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_check's conditions that read more than a setting: the client
// programs' version, an empty database, the databases present, the
// clients connected.

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
