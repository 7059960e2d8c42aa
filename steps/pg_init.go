package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var pgInitKind = Kind{
	Name:      "pg_init",
	Summary:   "initialise a PostgreSQL cluster (postgresql-setup --initdb, service postgresql initdb or initdb) where none exists",
	NeedsHost: true,
	New:       func() Spec { return new(PgInit) },
}

var _ Spec = (*PgInit)(nil)

// PgInit creates the database cluster on a fresh server. It is done when
// DATA_DIR/PG_VERSION exists: initdb refuses a non-empty directory, and a
// cluster must never be initialised over one that holds data.
//
// method: auto picks what the host has, in the order the distributions
// document it: `postgresql-setup --initdb` (RHEL 8+), `postgresql-setup
// initdb` (RHEL 7), `service postgresql initdb` (RHEL 6), else initdb -D
// DATA_DIR as the os_user. The first three run as root and use the data
// directory of the postgresql service: data_dir must match it (Apply checks
// PG_VERSION appeared there). locale and encoding reach postgresql-setup
// through PGSETUP_INITDB_OPTIONS.
type PgInit struct {
	Method   string `yaml:"method" enum:"auto|postgresql-setup|service|initdb" default:"auto" doc:"how to initialise; auto: postgresql-setup if present, else service postgresql initdb, else initdb"`
	DataDir  string `yaml:"data_dir" default:"/var/lib/pgsql/data" doc:"the cluster's data directory (the service's PGDATA for postgresql-setup and service)"`
	Locale   string `yaml:"locale" doc:"initdb --locale, e.g. en_US.UTF-8 (default: the host's)"`
	Encoding string `yaml:"encoding" doc:"initdb --encoding, e.g. UTF8 (default: the locale's)"`

	// Only os_user is used: initdb runs as it. The server does not exist
	// yet, so socket_dir and port have nothing to reach.
	PgConnection `yaml:",inline"`
}

// Validate checks what the tags cannot.
func (i *PgInit) Validate() []Problem {
	var ps []Problem
	if i.DataDir != "" && (!path.IsAbs(i.DataDir) || path.Clean(i.DataDir) != i.DataDir || i.DataDir == "/") {
		ps = append(ps, Problem{"data_dir", fmt.Sprintf("%q is not a clean absolute directory", i.DataDir)})
	}
	for key, v := range map[string]string{"locale": i.Locale, "encoding": i.Encoding} {
		if strings.ContainsAny(v, " \t\n'\"") {
			ps = append(ps, Problem{key, fmt.Sprintf("%q is not a valid %s", v, key)})
		}
	}
	return append(ps, i.PgConnection.validate("")...)
}

// Hosts is the step's host.
func (i *PgInit) Hosts(stepHost string) []string { return []string{stepHost} }

func (i *PgInit) dataDir() string {
	if i.DataDir == "" {
		return "/var/lib/pgsql/data"
	}
	return i.DataDir
}

func (i *PgInit) versionFile() string { return path.Join(i.dataDir(), "PG_VERSION") }

// Check is done when PG_VERSION exists in the data directory.
func (i *PgInit) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	_, err = ex.Stat(ctx, i.versionFile())
	switch {
	case err == nil:
		return Check{Done: true, Reason: "a cluster exists: " + i.versionFile() + " is there"}, nil
	case errors.Is(err, fs.ErrNotExist):
		return Check{Reason: i.versionFile() + " does not exist"}, nil
	}
	return Check{}, fmt.Errorf("stat %s: %w", i.versionFile(), err)
}

// initdbOptions are the locale and encoding options for initdb.
func (i *PgInit) initdbOptions() []string {
	var opts []string
	if i.Locale != "" {
		opts = append(opts, "--locale="+i.Locale)
	}
	if i.Encoding != "" {
		opts = append(opts, "--encoding="+i.Encoding)
	}
	return opts
}

// command resolves the method to the command to run. With method auto it
// probes the host (read-only) for postgresql-setup and service.
func (i *PgInit) command(ctx context.Context, ex executors.Executor) (executors.Command, error) {
	method := i.Method
	if method == "" || method == "auto" {
		var err error
		if method, err = i.detect(ctx, ex); err != nil {
			return executors.Command{}, err
		}
	}
	var env map[string]string
	if opts := i.initdbOptions(); len(opts) > 0 {
		env = map[string]string{"PGSETUP_INITDB_OPTIONS": strings.Join(opts, " ")}
	}
	switch method {
	case "postgresql-setup":
		// RHEL 8's postgresql-setup takes --initdb; RHEL 7's the word.
		argv := []string{"postgresql-setup", "--initdb"}
		if legacy, err := i.legacySetup(ctx, ex); err != nil {
			return executors.Command{}, err
		} else if legacy {
			argv = []string{"postgresql-setup", "initdb"}
		}
		return executors.Command{Argv: argv, Env: env}, nil
	case "service":
		return executors.Command{Argv: []string{"service", "postgresql", "initdb"}, Env: env}, nil
	}
	argv := append([]string{"initdb", "-D", i.dataDir()}, i.initdbOptions()...)
	return executors.Command{Argv: argv, Become: i.target("").RunAs()}, nil
}

// detect answers method: auto.
func (i *PgInit) detect(ctx context.Context, ex executors.Executor) (string, error) {
	for _, c := range []struct{ method, probe string }{
		{"postgresql-setup", "command -v postgresql-setup"},
		// Debian ships /etc/init.d/postgresql too, without initdb: only a
		// script that handles initdb (RHEL 6) qualifies.
		{"service", "test -x /etc/init.d/postgresql && grep -q initdb /etc/init.d/postgresql && command -v service"},
	} {
		_, err := ex.Run(ctx, executors.Command{Script: c.probe, ReadOnly: true})
		var exit *executors.ExitError
		switch {
		case err == nil:
			return c.method, nil
		case !errors.As(err, &exit):
			return "", fmt.Errorf("probe %s: %w", c.method, err)
		}
	}
	return "initdb", nil
}

// legacySetup tells RHEL 7's postgresql-setup ("{initdb|upgrade}") from
// the newer one, whose usage lists --initdb.
func (i *PgInit) legacySetup(ctx context.Context, ex executors.Executor) (bool, error) {
	res, err := ex.Run(ctx, executors.Command{Script: "postgresql-setup --help 2>&1 || true", ReadOnly: true})
	if err != nil {
		return false, fmt.Errorf("postgresql-setup --help: %w", err)
	}
	return !strings.Contains(string(res.Stdout), "--initdb"), nil
}

func pgInitSummary(host string, cmd executors.Command) string {
	line := executors.QuoteArgv(cmd.Argv)
	for _, k := range hostcmd.SortedKeys(cmd.Env) {
		line = k + "=" + executors.Quote(cmd.Env[k]) + " " + line
	}
	where := "run on " + host
	if cmd.Become != "" {
		where += " as " + cmd.Become
	}
	return where + ": " + line
}

// Describe shows the command the method resolves to.
func (i *PgInit) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return nil, err
	}
	cmd, err := i.command(ctx, ex)
	if err != nil {
		return nil, err
	}
	return []Action{{Host: rt.Host, Summary: pgInitSummary(rt.Host, cmd) + " (creates " + i.versionFile() + ")"}}, nil
}

// Apply initialises the cluster and checks it landed in data_dir.
func (i *PgInit) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	// Never initialise over a cluster, even when forced to re-run.
	if _, err := ex.Stat(ctx, i.versionFile()); err == nil {
		return Outcome{Output: "a cluster already exists in " + i.dataDir()}, nil
	}
	cmd, err := i.command(ctx, ex)
	if err != nil {
		return Outcome{}, err
	}
	res, err := ex.Run(ctx, cmd)
	out := Outcome{Changed: true, Output: executors.LastBytes(strings.TrimSpace(string(res.Stdout)+"\n"+string(res.Stderr)), outputTail)}
	if err != nil {
		return out, fmt.Errorf("initialise the cluster: %w", err)
	}
	if _, err := ex.Stat(ctx, i.versionFile()); err != nil {
		return out, fmt.Errorf("%s: %s ran but %s is missing: does data_dir match the service's PGDATA? %w",
			ex.Name(), cmd.Argv[0], i.versionFile(), err)
	}
	return out, nil
}
