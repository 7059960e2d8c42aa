package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
)

// PostgreSQL kinds talk to the server through psql run on the database
// host, as the `postgres` OS user by default, with SQL on stdin: peer
// authentication over the local socket needs no password, and nothing
// secret ever reaches argv. Shared here so every pg_* kind quotes, runs and
// parses the same way.

// pgTarget says how psql reaches the server from the host it runs on.
type pgTarget struct {
	OSUser   string // run psql as this user (become); default "postgres"
	Host     string // psql -h: socket directory or host name; empty = default socket
	Port     int    // psql -p; 0 = default
	User     string // psql -U; empty = the OS user's name
	Database string // psql -d; empty = "postgres"
}

// psqlArgv is the psql command line for t. -X ignores ~/.psqlrc so a
// user's settings cannot change the output; ON_ERROR_STOP makes the first
// failing statement fail the run; -A -t with a unit-separator field
// separator gives output that cannot be confused with data.
func (t pgTarget) psqlArgv() []string {
	db := t.Database
	if db == "" {
		db = "postgres"
	}
	argv := []string{"psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-d", db}
	return append(argv, t.connArgv()...)
}

func (t pgTarget) osUser() string {
	if t.OSUser == "" {
		return "postgres"
	}
	return t.OSUser
}

// psqlCommand builds the command that runs sql (revealed: it may carry a
// password for ALTER ROLE, and it only ever travels on stdin).
func (t pgTarget) psqlCommand(sql string, readOnly bool) executors.Command {
	cmd := executors.Command{
		Argv:     t.psqlArgv(),
		Stdin:    strings.NewReader(sql),
		Become:   t.osUser(),
		ReadOnly: readOnly,
		// Messages the kinds parse are in English whatever the host's locale.
		Env: map[string]string{"LC_MESSAGES": "C", "PGOPTIONS": "-c lc_messages=C"},
	}
	if readOnly {
		cmd.Fact = "postgresql " + t.String() + ": " + sqlSummary(sql)
	}
	return cmd
}

// psqlAction is how a dry run shows SQL that psql runs on host, on one
// line: "run on db as postgres: psql ... <<< CREATE ROLE ...".
func psqlAction(host string, t pgTarget, sql string) string {
	return fmt.Sprintf("run on %s as %s: %s <<< %s", host, t.osUser(), executors.QuoteArgv(t.psqlArgv()),
		strings.ReplaceAll(strings.TrimSuffix(sql, "\n"), "\n", " "))
}

// String names the server and database for people: "database engine on
// 10.0.0.12:5432", "database postgres (local socket)".
func (t pgTarget) String() string {
	db := t.Database
	if db == "" {
		db = "postgres"
	}
	where := "local socket"
	if t.Host != "" {
		where = t.Host
	}
	if t.Port != 0 {
		where += ":" + strconv.Itoa(t.Port)
	}
	return "database " + db + " (" + where + ")"
}

// sqlSummary is a query on one line, shortened, for naming what a probe
// reads. Probes' SQL holds identifiers from the plan, never secrets.
func sqlSummary(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// pgQuery runs a read-only query and returns its rows, split into fields.
func pgQuery(ctx context.Context, e executors.Executor, t pgTarget, sql string) ([][]string, error) {
	return pgProbe(ctx, e, t, sql, "")
}

// pgProbe is pgQuery for a query whose answer is not to be fingerprinted
// in a reviewed plan; unstable says why (see executors.Command.Unstable).
func pgProbe(ctx context.Context, e executors.Executor, t pgTarget, sql, unstable string) ([][]string, error) {
	cmd := t.psqlCommand(sql, true)
	cmd.Unstable = unstable
	// The Result keeps only a tail of the output: the rows are read whole.
	var out bytes.Buffer
	cmd.Stdout = &out
	if _, err := e.Run(ctx, cmd); err != nil {
		return nil, fmt.Errorf("%s: psql: %w", e.Name(), err)
	}
	return parseRows(out.Bytes()), nil
}

// pgExec runs statements that change the server. sql is the revealed text.
func pgExec(ctx context.Context, e executors.Executor, t pgTarget, sql string) (executors.Result, error) {
	return runPsql(ctx, e, t.psqlCommand(sql, false))
}

// pgExecSecret is pgExec for statements that hold a secret (a password).
func pgExecSecret(ctx context.Context, e executors.Executor, t pgTarget, sql string) (executors.Result, error) {
	cmd := t.psqlCommand(sql, false)
	cmd.SecretStdin = true
	return runPsql(ctx, e, cmd)
}

func runPsql(ctx context.Context, e executors.Executor, cmd executors.Command) (executors.Result, error) {
	res, err := e.Run(ctx, cmd)
	if err != nil {
		return res, fmt.Errorf("%s: psql: %w", e.Name(), err)
	}
	return res, nil
}

func parseRows(out []byte) [][]string {
	var rows [][]string
	for _, line := range bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		rows = append(rows, strings.Split(string(line), "\x1f"))
	}
	return rows
}

// pgIdent quotes an SQL identifier: "name", doubling inner quotes.
func pgIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// pgLiteral quotes an SQL string literal. Standard-conforming strings are
// on by default since PostgreSQL 9.1, so only quotes need doubling; the E'...'
// form is avoided on purpose so a backslash stays a backslash.
func pgLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// PgConnection is how a PostgreSQL kind's client programs (psql, pg_dump,
// pg_restore) reach the server from the host they run on. Kinds inline it
// so every pg_* step spells these keys the same way; they map one to one
// onto pgTarget.
type PgConnection struct {
	OSUser    string `yaml:"os_user" default:"postgres" doc:"OS user the PostgreSQL client programs run as (peer authentication on the local socket); the step's become is not used"`
	SocketDir string `yaml:"socket_dir" doc:"absolute directory of the server's unix socket (default: the client's built-in one, /var/run/postgresql on Debian and RHEL)"`
	Port      int    `yaml:"port" default:"5432" doc:"the server's port, which also names its socket file"`
}

// target is the pgTarget for database on this connection.
func (c PgConnection) target(database string) pgTarget {
	return pgTarget{OSUser: c.OSUser, Host: c.SocketDir, Port: c.Port, Database: database}
}

// validate checks the connection keys; prefix is "" for inlined keys or
// "source." for a nested object, so problems name the key's full path.
func (c PgConnection) validate(prefix string) []Problem {
	var ps []Problem
	if c.SocketDir != "" && !path.IsAbs(c.SocketDir) {
		// psql takes a -h without a leading slash for a TCP host name:
		// a relative directory would silently become a network address.
		ps = append(ps, Problem{prefix + "socket_dir", fmt.Sprintf("%q is not an absolute path", c.SocketDir)})
	}
	if c.Port < 0 || c.Port > 65535 {
		ps = append(ps, Problem{prefix + "port", fmt.Sprintf("port %d is out of range", c.Port)})
	}
	if c.OSUser != "" && strings.ContainsAny(c.OSUser, " \t\n/:") {
		ps = append(ps, Problem{prefix + "os_user", fmt.Sprintf("%q is not a user name", c.OSUser)})
	}
	return ps
}

// connArgv is the -h/-p/-U options shared by psql, pg_dump and pg_restore.
func (t pgTarget) connArgv() []string {
	var argv []string
	if t.Host != "" {
		argv = append(argv, "-h", t.Host)
	}
	if t.Port != 0 {
		argv = append(argv, "-p", strconv.Itoa(t.Port))
	}
	if t.User != "" {
		argv = append(argv, "-U", t.User)
	}
	return argv
}

// clientCommand runs a PostgreSQL client program (pg_dump, pg_restore) as
// the target's OS user, with messages in English like psqlCommand so the
// kinds can parse them. serverOptions are extra "-c name=value" settings
// for the server session, added to PGOPTIONS.
func (t pgTarget) clientCommand(argv []string, readOnly bool, serverOptions ...string) executors.Command {
	opts := append([]string{"-c lc_messages=C"}, serverOptions...)
	return executors.Command{
		Argv:     argv,
		Become:   t.osUser(),
		ReadOnly: readOnly,
		Env:      map[string]string{"LC_MESSAGES": "C", "PGOPTIONS": strings.Join(opts, " ")},
	}
}

// pgMissingDatabaseRE matches the server refusing a connection to a
// database that does not exist.
var pgMissingDatabaseRE = regexp.MustCompile(`FATAL: +database ".*" does not exist`)

// pgNotReady reports whether err is psql failing because the server or
// the database is not there yet: psql missing (exit 127), no server on the
// socket, or no such database. In a dry run those are what earlier steps
// (install, initdb, start, createdb) provide, so a check answers
// "unknown"; under apply the step's own Apply then fails with the error.
func pgNotReady(err error) bool {
	var exit *executors.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	return exit.ExitCode == 127 || pgMissingDatabaseRE.MatchString(exit.Stderr) || pgNoServerRE.MatchString(exit.Stderr)
}

// pgNoServerRE matches libpq's "connection to server on socket
// \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory"
// (the server is not running) and the same refused over TCP.
var pgNoServerRE = regexp.MustCompile(`connection to server .* failed: (No such file or directory|Connection refused)`)

// pgDatabaseOID returns the OID of database name, or 0 when there is no
// such database. The OID tells a database from one dropped and recreated
// under the same name, which restore markers rely on.
func pgDatabaseOID(ctx context.Context, e executors.Executor, c PgConnection, name string) (int64, error) {
	rows, err := pgQuery(ctx, e, c.target("postgres"), "SELECT oid FROM pg_database WHERE datname = "+pgLiteral(name)+";\n")
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	oid, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: unexpected oid %q for database %s", e.Name(), rows[0][0], name)
	}
	return oid, nil
}

// pgDatabaseID identifies a database among all the servers a marker on
// a host may have seen: its OID tells it from one dropped and re-created
// under the same name, the system identifier (pg_control_system(),
// PostgreSQL 9.6 and later, readable by any role) tells the server from
// one re-initialised on the same host and port, whose first database of
// a name may well get the same OID again.
type pgDatabaseID struct {
	OID      int64  // 0: no such database
	SystemID string // the cluster's system_identifier, as text
}

// pgDatabaseIdentity reads database name's OID and the server's system
// identifier in one query: some of the kinds that need both run inside
// the application's downtime, where every psql connection counts.
func pgDatabaseIdentity(ctx context.Context, e executors.Executor, c PgConnection, name string) (pgDatabaseID, error) {
	rows, err := pgQuery(ctx, e, c.target("postgres"), "SELECT coalesce((SELECT oid FROM pg_database WHERE datname = "+pgLiteral(name)+
		"), 0), system_identifier FROM pg_control_system();\n")
	if err != nil {
		return pgDatabaseID{}, err
	}
	if len(rows) != 1 || len(rows[0]) != 2 || rows[0][1] == "" {
		return pgDatabaseID{}, fmt.Errorf("%s: unexpected psql output %q for the identity of database %s", e.Name(), rows, name)
	}
	oid, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		return pgDatabaseID{}, fmt.Errorf("%s: unexpected oid %q for database %s", e.Name(), rows[0][0], name)
	}
	return pgDatabaseID{OID: oid, SystemID: rows[0][1]}, nil
}

// pgUserSchemasSQL is the WHERE condition, on pg_namespace n, that keeps
// the schemas a dump holds: not the catalogs, not TOAST or temporary ones.
const pgUserSchemasSQL = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// normLocale brings a locale name to the form `locale -a` lists, the way
// glibc normalises codesets: en_US.UTF-8, en_US.utf8 and en_US.UTF8 are the
// same locale. The codeset is lowercased with punctuation dropped; the
// language and any @modifier are kept as written.
func normLocale(name string) string {
	lang, rest, ok := strings.Cut(name, ".")
	if !ok {
		return name
	}
	codeset, modifier, hasMod := strings.Cut(rest, "@")
	var b strings.Builder
	for _, r := range strings.ToLower(codeset) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	out := lang + "." + b.String()
	if hasMod {
		out += "@" + modifier
	}
	return out
}
