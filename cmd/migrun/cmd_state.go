package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/runner/pgstate"
)

// stateOptions are the flags of `migrun state migrate`.
type stateOptions struct {
	from, to string
}

func (o *stateOptions) flagSet() *flag.FlagSet {
	fs := newFlagSet("state", "state migrate --from DIR|DB --to DIR|DB [PLAN_NAME...]")
	fs.StringVar(&o.from, "from", "", "where the journals are: a state `directory` or a PostgreSQL connection string")
	fs.StringVar(&o.to, "to", "", "where they go: a state `directory` or a PostgreSQL connection string")
	return fs
}

// runState is `migrun state migrate`: it copies journals between a state
// directory and a state database (either way, or between two of a kind),
// every plan's or the named ones', each under both locks.
func runState(ctx context.Context, args []string, e env) error {
	var o stateOptions
	pos, err := parseFlags(o.flagSet(), args, e)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "migrate" {
		return usagef("state: the one subcommand is migrate: migrun state migrate --from DIR|DB --to DIR|DB [PLAN_NAME...]")
	}
	names := pos[1:]
	if o.from == "" || o.to == "" {
		return usagef("state migrate: give both --from and --to")
	}
	if o.from == o.to {
		return usagef("state migrate: --from and --to are the same place")
	}
	from, err := openStateAt(o.from)
	if err != nil {
		return err
	}
	to, err := openStateAt(o.to)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		lister, ok := from.(runner.Lister)
		if !ok {
			return usagef("state migrate: name the plans to copy")
		}
		if names, err = lister.Names(ctx); err != nil {
			return err
		}
		if len(names) == 0 {
			return fmt.Errorf("%s holds no journal", from)
		}
	}
	var errs []error
	for _, name := range names {
		copied, err := runner.CopyJournal(ctx, from, to, name, runner.ThisProcess(time.Now))
		switch {
		case err != nil:
			fmt.Fprintf(e.stderr, "%s: not copied: %v\n", name, err)
			errs = append(errs, err)
		case copied:
			fmt.Fprintf(e.stdout, "%s: copied from %s to %s\n", name, from, to)
		default:
			fmt.Fprintf(e.stdout, "%s: %s already holds this journal\n", name, to)
		}
	}
	if len(errs) > 0 {
		return reported{errors.Join(errs...)}
	}
	return nil
}

// openStateAt opens a store named on the command line: a PostgreSQL
// connection string, or else a state directory.
func openStateAt(where string) (runner.Store, error) {
	if isDatabaseState(where) {
		s, err := pgstate.Open(where, pgstate.Options{})
		if errors.Is(err, pgstate.ErrPasswordInConn) {
			return nil, usageError{err.Error()}
		}
		return s, err
	}
	return runner.FileStore{Dir: where}, nil
}
