package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
)

// pg_check's login: a connection made as the application will make it,
// its password in a passfile, never in argv.

func (c *PgCheck) loginPort() int {
	if c.Login.Port == 0 {
		return 5432
	}
	return c.Login.Port
}

func (c *PgCheck) loginDatabase() string {
	if c.Login.Database == "" {
		return c.Login.User
	}
	return c.Login.Database
}

func (c *PgCheck) loginWhere() string {
	return fmt.Sprintf("%s:%d/%s", c.Login.Host, c.loginPort(), c.loginDatabase())
}

// loginArgv is psql connecting as the application would; -w: never
// prompt, a missing or wrong password must fail, not hang.
func (c *PgCheck) loginArgv() []string {
	return []string{"psql", "-X", "-w", "-q", "-A", "-t", "-h", c.Login.Host, "-p", strconv.Itoa(c.loginPort()),
		"-U", c.Login.User, "-d", c.loginDatabase(), "-c", "SELECT current_setting('server_version_num')"}
}

// passfileEscape escapes a .pgpass field: \ and : are special there.
func passfileEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

// login tries the login with the password in a 0600 PGPASSFILE owned by
// the user psql runs as, removed afterwards. bad is the failure to report
// (a login refused is a violation, not an error of the step); serverNum
// the server's server_version_num, read through the login.
func (c *PgCheck) login(ctx context.Context, rt *Runtime, ex executors.Executor) (bad string, serverNum int, err error) {
	password, err := rt.Secrets.Reveal(c.Login.Password)
	if err != nil {
		return "", 0, fmt.Errorf("login.password: %w", err)
	}
	l := c.Login
	entry := strings.Join([]string{passfileEscape(l.Host), strconv.Itoa(c.loginPort()), passfileEscape(c.loginDatabase()),
		passfileEscape(l.User), passfileEscape(password)}, ":") + "\n"
	osUser := c.target("").RunAs()
	file, err := writeSecretFile(ctx, ex, entry, osUser, ".pgpass")
	if err != nil {
		return "", 0, err
	}
	defer removeSecretFile(ctx, ex, file)
	res, err := ex.Run(ctx, executors.Command{
		Argv:     c.loginArgv(),
		Become:   osUser,
		ReadOnly: true,
		Env:      map[string]string{"PGPASSFILE": file, "LC_MESSAGES": "C", "PGCONNECT_TIMEOUT": "15"},
	})
	var exit *executors.ExitError
	if errors.As(err, &exit) {
		return fmt.Sprintf("login as %s to %s fails: %s", l.User, c.loginWhere(), rt.Secrets.Redact(strings.Join(strings.Fields(exit.Stderr), " "))), 0, nil
	} else if err != nil {
		return "", 0, err
	}
	out := strings.TrimSpace(string(res.Stdout))
	if serverNum, err = strconv.Atoi(out); err != nil {
		return "", 0, fmt.Errorf("%s: the login's server_version_num: unexpected psql output %q", ex.Name(), out)
	}
	return "", serverNum, nil
}
