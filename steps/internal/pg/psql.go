// Package pg is how the pg_* step kinds talk to PostgreSQL: through psql
// and the other client programs run on the database host, as the
// `postgres` OS user by default, with SQL on stdin. Peer authentication
// over the local socket needs no password, and nothing secret ever
// reaches argv. Every pg_* kind quotes, runs and parses the same way
// through it; it knows executors, never a kind.
package pg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
)

// Target says how psql reaches the server from the host it runs on.
type Target struct {
	OSUser   string // run psql as this user (become); default "postgres"
	Host     string // psql -h: socket directory or host name; empty = default socket
	Port     int    // psql -p; 0 = default
	User     string // psql -U; empty = the OS user's name
	Database string // psql -d; empty = "postgres"
}

// On is t connected to database instead.
func (t Target) On(database string) Target {
	t.Database = database
	return t
}

// PsqlArgv is the psql command line for t. -X ignores ~/.psqlrc so a
// user's settings cannot change the output; ON_ERROR_STOP makes the first
// failing statement fail the run; -A -t with a unit-separator field
// separator gives output that cannot be confused with data.
func (t Target) PsqlArgv() []string {
	db := t.Database
	if db == "" {
		db = "postgres"
	}
	argv := []string{"psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-d", db}
	return append(argv, t.ConnArgv()...)
}

func (t Target) RunAs() string {
	if t.OSUser == "" {
		return "postgres"
	}
	return t.OSUser
}

// PsqlCommand builds the command that runs sql (revealed: it may carry a
// password for ALTER ROLE, and it only ever travels on stdin).
func (t Target) PsqlCommand(sql string, readOnly bool) executors.Command {
	cmd := executors.Command{
		Argv:     t.PsqlArgv(),
		Stdin:    strings.NewReader(sql),
		Become:   t.RunAs(),
		ReadOnly: readOnly,
		// Messages the kinds parse are in English whatever the host's locale.
		Env: map[string]string{"LC_MESSAGES": "C", "PGOPTIONS": "-c lc_messages=C"},
	}
	if readOnly {
		cmd.Fact = "postgresql " + t.String() + ": " + sqlSummary(sql)
	}
	return cmd
}

// Action is how a dry run shows SQL that psql runs on host, on one
// line: "run on db as postgres: psql ... <<< CREATE ROLE ...".
func Action(host string, t Target, sql string) string {
	return fmt.Sprintf("run on %s as %s: %s <<< %s", host, t.RunAs(), executors.QuoteArgv(t.PsqlArgv()),
		strings.ReplaceAll(strings.TrimSuffix(sql, "\n"), "\n", " "))
}

// String names the server and database for people: "database engine on
// 10.0.0.12:5432", "database postgres (local socket)".
func (t Target) String() string {
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

// Query runs a read-only query and returns its rows, split into fields.
func Query(ctx context.Context, e executors.Executor, t Target, sql string) ([][]string, error) {
	return Probe(ctx, e, t, sql, "")
}

// Probe is Query for a query whose answer is not to be fingerprinted
// in a reviewed plan; unstable says why (see executors.Command.Unstable).
func Probe(ctx context.Context, e executors.Executor, t Target, sql, unstable string) ([][]string, error) {
	cmd := t.PsqlCommand(sql, true)
	cmd.Unstable = unstable
	// The Result keeps only a tail of the output: the rows are read whole.
	var out bytes.Buffer
	cmd.Stdout = &out
	if _, err := e.Run(ctx, cmd); err != nil {
		return nil, fmt.Errorf("%s: psql: %w", e.Name(), err)
	}
	return ParseRows(out.Bytes()), nil
}

// Exec runs statements that change the server. sql is the revealed text.
func Exec(ctx context.Context, e executors.Executor, t Target, sql string) (executors.Result, error) {
	return runPsql(ctx, e, t.PsqlCommand(sql, false))
}

// ExecSecret is Exec for statements that hold a secret (a password).
func ExecSecret(ctx context.Context, e executors.Executor, t Target, sql string) (executors.Result, error) {
	cmd := t.PsqlCommand(sql, false)
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

func ParseRows(out []byte) [][]string {
	var rows [][]string
	for _, line := range bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		rows = append(rows, strings.Split(string(line), "\x1f"))
	}
	return rows
}

// Ident quotes an SQL identifier: "name", doubling inner quotes.
func Ident(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Literal quotes an SQL string literal. Standard-conforming strings are
// on by default since PostgreSQL 9.1, so only quotes need doubling; the E'...'
// form is avoided on purpose so a backslash stays a backslash.
func Literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ConnArgv is the -h/-p/-U options shared by psql, pg_dump and pg_restore.
func (t Target) ConnArgv() []string {
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

// ClientCommand runs a PostgreSQL client program (pg_dump, pg_restore) as
// the target's OS user, with messages in English like PsqlCommand so the
// kinds can parse them. serverOptions are extra "-c name=value" settings
// for the server session, added to PGOPTIONS.
func (t Target) ClientCommand(argv []string, readOnly bool, serverOptions ...string) executors.Command {
	opts := append([]string{"-c lc_messages=C"}, serverOptions...)
	return executors.Command{
		Argv:     argv,
		Become:   t.RunAs(),
		ReadOnly: readOnly,
		Env:      map[string]string{"LC_MESSAGES": "C", "PGOPTIONS": strings.Join(opts, " ")},
	}
}

// pgMissingDatabaseRE matches the server refusing a connection to a
// database that does not exist.
var pgMissingDatabaseRE = regexp.MustCompile(`FATAL: +database ".*" does not exist`)

// NotReady reports whether err is psql failing because the server or
// the database is not there yet: psql missing (exit 127), no server on the
// socket, or no such database. In a dry run those are what earlier steps
// (install, initdb, start, createdb) provide, so a check answers
// "unknown"; under apply the step's own Apply then fails with the error.
func NotReady(err error) bool {
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

// DatabaseOID returns the OID of database name, or 0 when there is no
// such database. The OID tells a database from one dropped and recreated
// under the same name, which restore markers rely on.
func DatabaseOID(ctx context.Context, e executors.Executor, server Target, name string) (int64, error) {
	rows, err := Query(ctx, e, server.On("postgres"), "SELECT oid FROM pg_database WHERE datname = "+Literal(name)+";\n")
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

// DatabaseID identifies a database among all the servers a marker on
// a host may have seen: its OID tells it from one dropped and re-created
// under the same name, the system identifier (pg_control_system(),
// PostgreSQL 9.6 and later, readable by any role) tells the server from
// one re-initialised on the same host and port, whose first database of
// a name may well get the same OID again.
type DatabaseID struct {
	OID      int64  // 0: no such database
	SystemID string // the cluster's system_identifier, as text
}

// DatabaseIdentity reads database name's OID and the server's system
// identifier in one query: some of the kinds that need both run inside
// the application's downtime, where every psql connection counts.
func DatabaseIdentity(ctx context.Context, e executors.Executor, server Target, name string) (DatabaseID, error) {
	rows, err := Query(ctx, e, server.On("postgres"), "SELECT coalesce((SELECT oid FROM pg_database WHERE datname = "+Literal(name)+
		"), 0), system_identifier FROM pg_control_system();\n")
	if err != nil {
		return DatabaseID{}, err
	}
	id, err := identityOf(rows)
	if err != nil {
		return DatabaseID{}, fmt.Errorf("%s: database %s: %w", e.Name(), name, err)
	}
	return id, nil
}

// Identity reads the identity of the database s is connected to.
func (s *Session) Identity(ctx context.Context) (DatabaseID, error) {
	rows, err := s.Run(ctx, "SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), system_identifier FROM pg_control_system();\n")
	if err != nil {
		return DatabaseID{}, err
	}
	return identityOf(rows)
}

// identityOf reads one row of OID and system identifier.
func identityOf(rows [][]string) (DatabaseID, error) {
	if len(rows) != 1 || len(rows[0]) != 2 || rows[0][1] == "" {
		return DatabaseID{}, fmt.Errorf("unexpected psql output %q for an identity", rows)
	}
	oid, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		return DatabaseID{}, fmt.Errorf("unexpected oid %q", rows[0][0])
	}
	return DatabaseID{OID: oid, SystemID: rows[0][1]}, nil
}

// UserSchemasSQL is the WHERE condition, on pg_namespace n, that keeps
// the schemas a dump holds: not the catalogs, not TOAST or temporary ones.
const UserSchemasSQL = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// NormLocale brings a locale name to the form `locale -a` lists, the way
// glibc normalises codesets: en_US.UTF-8, en_US.utf8 and en_US.UTF8 are the
// same locale. The codeset is lowercased with punctuation dropped; the
// language and any @modifier are kept as written.
func NormLocale(name string) string {
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

// QuietSessionSQL keeps the statements that follow out of the server
// log and the statistics views: they carry a password.
const QuietSessionSQL = "SET log_statement = 'none';\nSET log_min_duration_statement = -1;\nSET log_min_error_statement = panic;\n" +
	// pg_stat_statements keeps the text of utility statements (ALTER
	// ROLE, CREATE SUBSCRIPTION) when loaded; a placeholder otherwise.
	"SET pg_stat_statements.track_utility = off;\n"

// ParamNameRE is a parameter name, custom ones (module.name) included.
var ParamNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)
