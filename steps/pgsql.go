package steps

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
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

// PgEndpoint is a database on a plan host that a kind reads or writes (a
// comparison's source or target, a stream's, a replication's): the plan
// host psql runs on and how it reaches the server there.
type PgEndpoint struct {
	Host     string `yaml:"host" required:"true" doc:"plan host the database's psql runs on"`
	Database string `yaml:"database" required:"true" doc:"database name"`

	PgConnection `yaml:",inline"`
}

// validateAllowErrors checks that every allow_errors pattern compiles.
func validateAllowErrors(allow []string) []Problem {
	var ps []Problem
	for i, re := range allow {
		if _, err := regexp.Compile(re); err != nil {
			ps = append(ps, Problem{fmt.Sprintf("allow_errors[%d]", i), err.Error()})
		}
	}
	return ps
}

// The kinds that move one database into another (pg_stream,
// pg_replicate) keep their progress in a marker on the target host.

// pgSourceID names a source database in a marker.
func pgSourceID(src PgEndpoint) string { return src.Host + ": " + src.target(src.Database).String() }

// targetMarkerPath is a kind's marker on the target host, one per cluster
// port and database name (escaped, so any name makes one file name), in
// dir ("" is /var/tmp: writable by the login user, kept across reboots).
func targetMarkerPath(dir, kind string, target PgEndpoint) string {
	if dir == "" {
		dir = "/var/tmp"
	}
	port := target.Port
	if port == 0 {
		port = 5432
	}
	return path.Join(dir, "migrun-"+kind+"."+strconv.Itoa(port)+"."+url.PathEscape(target.Database))
}

// markerIsOurs reports whether m records a move from source into the
// target database that now has identity id (a database dropped and
// re-created under the same name has another OID, a re-initialised
// server another system identifier), written by run runID.
func markerIsOurs(m *pg.Marker, source, target PgEndpoint, id pg.DatabaseID, runID string) bool {
	return m != nil && m.OwnedBy(id, runID) && m.Source == pgSourceID(source) && m.Database == target.Database &&
		m.SocketDir == target.SocketDir && m.Port == target.Port
}

// foreignMarkerNote is what a refusal adds about a marker at path that is
// not this run's, m not nil: "" when m is ours.
func foreignMarkerNote(m *pg.Marker, path string, id pg.DatabaseID, runID string) string {
	if m == nil || m.OwnedBy(id, runID) {
		return ""
	}
	return "; " + path + " was left by " + m.Whose(id, runID) + " and is not this run's record of this database"
}

// validateArchivePath refuses paths the kinds would write beside or
// remove: relative ones, unclean ones and the root.
func validateArchivePath(key, p string) []Problem {
	switch {
	case p == "":
		return nil // required:"true" reports it
	case !path.IsAbs(p):
		return []Problem{{key, fmt.Sprintf("%q is not an absolute path", p)}}
	case path.Clean(p) != p || p == "/":
		return []Problem{{key, fmt.Sprintf("%q is not a clean path to a file (write %q)", p, path.Clean(p))}}
	}
	return nil
}
