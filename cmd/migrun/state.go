package main

import (
	"context"
	"strings"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
)

// stateEnv names the state database when --state is not given: set once
// on a workstation or CI runner, every command uses it.
const stateEnv = "MIGRUN_STATE"

// isDatabaseState tells a PostgreSQL connection string (URL or keyword =
// value) from anything else.
func isDatabaseState(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") || strings.Contains(s, "=")
}

// store opens where the journals and locks of plan p are kept: the
// PostgreSQL database of --state, else the directory of --state-dir, else
// $MIGRUN_STATE, else the workstation config file's state: block, else
// .migrun beside the plan. Opened once per command.
func (c *commonFlags) store(ctx context.Context, p *plan.Plan, e env) (runner.Store, error) {
	if c.opened != nil {
		return c.opened, nil
	}
	conn, dir := c.state, c.stateDir
	if conn == "" && dir == "" {
		conn = e.getenv(stateEnv)
	}
	if conn == "" && dir == "" {
		cfg, err := readConfig(e)
		if err != nil {
			return nil, err
		}
		conn, dir = cfg.State.Postgres, cfg.State.Dir
	}
	if conn == "" {
		if dir == "" {
			dir = runner.DefaultStateDir(p.File)
		}
		c.opened = runner.FileStore{Dir: dir}
		return c.opened, nil
	}
	if !isDatabaseState(conn) {
		return nil, usagef("--state: want a PostgreSQL connection string (postgres://USER@HOST/DB), got %q; for a directory use --state-dir", conn)
	}
	s, err := openStateAt(conn)
	if err != nil {
		return nil, err
	}
	c.opened = s
	return s, nil
}
