package steps

import (
	"bytes"
	"context"
	"fmt"
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

func (t pgTarget) osUser() string {
	if t.OSUser == "" {
		return "postgres"
	}
	return t.OSUser
}

// psqlCommand builds the command that runs sql (revealed: it may carry a
// password for ALTER ROLE, and it only ever travels on stdin).
func (t pgTarget) psqlCommand(sql string, readOnly bool) executors.Command {
	return executors.Command{
		Argv:     t.psqlArgv(),
		Stdin:    strings.NewReader(sql),
		Become:   t.osUser(),
		ReadOnly: readOnly,
		// Messages the kinds parse are in English whatever the host's locale.
		Env: map[string]string{"LC_MESSAGES": "C", "PGOPTIONS": "-c lc_messages=C"},
	}
}

// pgQuery runs a read-only query and returns its rows, split into fields.
func pgQuery(ctx context.Context, e executors.Executor, t pgTarget, sql string) ([][]string, error) {
	res, err := e.Run(ctx, t.psqlCommand(sql, true))
	if err != nil {
		return nil, fmt.Errorf("%s: psql: %w", e.Name(), err)
	}
	return parseRows(res.Stdout), nil
}

// pgExec runs statements that change the server. sql is the revealed text.
func pgExec(ctx context.Context, e executors.Executor, t pgTarget, sql string) (executors.Result, error) {
	res, err := e.Run(ctx, t.psqlCommand(sql, false))
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
