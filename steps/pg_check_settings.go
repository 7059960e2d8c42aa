package steps

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_check's settings: the server's values (pg_settings) held against the
// conditions the plan gives (">=6", "<=0.01", "=UTF8"), units and all.

// pgCondRE splits a condition into operator and value.
var pgCondRE = regexp.MustCompile(`^\s*(>=|<=|!=|=|>|<)?\s*(.*?)\s*$`)

func parseCond(s string) (op, value string) {
	m := pgCondRE.FindStringSubmatch(s)
	op = m[1]
	if op == "" {
		op = "="
	}
	return op, m[2]
}

// assertions runs every read-only assertion and returns what holds and
// what does not; fatal are the violations among them that no earlier step
// of a plan is there to fix (client tools older than the server), which
// the check refuses at once. Login needs a password file, a write, so it
// is left to evaluate (with withLogin) by Apply only.
func (c *PgCheck) assertions(ctx context.Context, rt *Runtime, ex executors.Executor, withLogin bool) (ok, violated, fatal []string, err error) {
	pass := func(cond bool, good, bad string) {
		if cond {
			ok = append(ok, good)
		} else {
			violated = append(violated, bad)
		}
	}
	// First: it reads only server_version_num, which the server answers
	// before the database the other assertions read exists.
	loginServer := c.Login != (PgCheckLogin{})
	if c.ClientVersionAtLeastServer && !loginServer {
		tools := ex
		if c.ClientHost != "" {
			if tools, err = rt.Executor(ctx, c.ClientHost); err != nil {
				return nil, nil, nil, err
			}
		}
		good, bad, err := c.clientVersion(ctx, ex, tools, 0)
		if err != nil {
			return nil, nil, nil, err
		}
		pass(bad == "", good, bad)
		if bad != "" && !withLogin {
			// The check refuses on this alone, whatever the rest says
			// (or could not read yet).
			return ok, violated, []string{bad}, nil
		}
	}
	if len(c.Settings) > 0 {
		have, err := pg.Settings(ctx, ex, c.PgConnection.target(""), c.database(), hostcmd.SortedKeys(c.Settings))
		if err != nil {
			return nil, nil, nil, err
		}
		for _, k := range hostcmd.SortedKeys(c.Settings) {
			s, found := have[strings.ToLower(k)]
			if !found {
				violated = append(violated, k+": no such parameter on the server")
				continue
			}
			op, want := parseCond(c.Settings[k])
			shown := s.Value + unitSuffix(s)
			pass(condHolds(s, op, want), fmt.Sprintf("%s = %s (%s %s)", k, shown, op, want),
				fmt.Sprintf("%s is %s, want %s %s", k, shown, op, want))
		}
	}
	if len(c.Extensions) > 0 {
		rows, err := pg.Query(ctx, ex, c.target(c.database()), "SELECT extname FROM pg_extension;\n")
		if err != nil {
			return nil, nil, nil, err
		}
		have := map[string]bool{}
		for _, r := range rows {
			have[r[0]] = true
		}
		for _, e := range c.Extensions {
			pass(have[e], "extension "+e+" exists in "+c.database(), "extension "+e+" is not created in database "+c.database())
		}
	}
	if c.DatabaseEmpty != "" {
		good, bad, err := c.databaseEmpty(ctx, ex)
		if err != nil {
			return nil, nil, nil, err
		}
		pass(bad == "", good, bad)
	}
	if c.DatabasesOnly != nil {
		good, bad, err := c.databasesOnly(ctx, ex)
		if err != nil {
			return nil, nil, nil, err
		}
		pass(bad == "", good, bad)
		if bad != "" {
			// No step of a plan drops a database it does not know.
			fatal = append(fatal, bad)
		}
	}
	if len(c.ClientsOnlyFrom) > 0 {
		good, bad, err := c.clients(ctx, rt, ex)
		if err != nil {
			return nil, nil, nil, err
		}
		pass(bad == "", good, bad)
		if bad != "" {
			// Nothing in a plan before its downtime makes such a client
			// go away: refuse now, not halfway through.
			fatal = append(fatal, bad)
		}
	}
	if withLogin && loginServer {
		bad, serverNum, err := c.login(ctx, rt, ex)
		if err != nil {
			return nil, nil, nil, err
		}
		pass(bad == "", "login as "+c.Login.User+" to "+c.loginWhere()+" works", bad)
		if c.ClientVersionAtLeastServer && bad == "" {
			good, bad, err := c.clientVersion(ctx, ex, ex, serverNum)
			if err != nil {
				return nil, nil, nil, err
			}
			pass(bad == "", good, bad)
		}
	}
	return ok, violated, fatal, nil
}

// unitSuffix is how a setting's unit follows its value for people.
func unitSuffix(s pg.Setting) string {
	if s.Unit == "" {
		return ""
	}
	if s.Unit[0] >= '0' && s.Unit[0] <= '9' {
		return " × " + s.Unit
	}
	return s.Unit
}

// condHolds compares a setting with a condition: numerically in the
// setting's unit for numbers, else as pg.ValueEquals does.
func condHolds(s pg.Setting, op, want string) bool {
	if op == "=" || op == "!=" {
		eq := pg.ValueEquals(s, want)
		return eq == (op == "=")
	}
	w, ok1 := pg.Numeric(want, s.Unit)
	h, ok2 := pg.Numeric(s.Value, s.Unit)
	if !ok1 || !ok2 {
		return false
	}
	switch op {
	case ">=":
		return h >= w
	case "<=":
		return h <= w
	case ">":
		return h > w
	}
	return h < w
}
