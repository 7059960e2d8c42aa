package steps

import (
	"fmt"
	"path"
	"strings"

	"github.com/migrun/migrun/steps/internal/pg"
)

// PgConnection is how a PostgreSQL kind's client programs (psql, pg_dump,
// pg_restore) reach the server from the host they run on. Kinds inline it
// so every pg_* step spells these keys the same way; they map one to one
// onto pg.Target.
type PgConnection struct {
	OSUser    string `yaml:"os_user" default:"postgres" doc:"OS user the PostgreSQL client programs run as (peer authentication on the local socket); the step's become is not used"`
	SocketDir string `yaml:"socket_dir" doc:"absolute directory of the server's unix socket (default: the client's built-in one, /var/run/postgresql on Debian and RHEL)"`
	Port      int    `yaml:"port" default:"5432" doc:"the server's port, which also names its socket file"`
}

// target is the pg.Target for database on this connection.
func (c PgConnection) target(database string) pg.Target {
	return pg.Target{OSUser: c.OSUser, Host: c.SocketDir, Port: c.Port, Database: database}
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
