package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
	"github.com/migrun/migrun/steps/internal/svcctl"
)

// pg_conf's restart: the edited file checked first (pg_file_settings),
// the service restarted as the service kind does, then the server waited
// for until it answers and uses every value.

// pgConfFileErrors keeps the pg_file_settings rows that are errors: a
// postmaster parameter whose file value differs from the running one is
// reported as "setting could not be applied", which is what a restart is
// for, not a fault in the file.
const pgConfFileErrors = "error <> 'setting could not be applied'"

// How long apply_with: restart waits for the restarted server to answer,
// and how often it asks. A server recovering after a crash can take a
// while; systemd's own start timeout is 90 s by default.
const (
	pgRestartWait = 60 * time.Second
	pgRestartPoll = 200 * time.Millisecond
)

// pgCheckpointSQL is what a restart is preceded by.
const pgCheckpointSQL = "CHECKPOINT;"

// applyRestart is Apply for apply_with: restart, after the edit (out). It
// asks the server what it needs: nothing, a reload, or a restart, which
// also covers reloads. The question is asked whether or not the file
// changed just now, so a run that edited the file and then failed before
// the restart is completed by the next run.
func (c *PgConf) applyRestart(ctx context.Context, rt *Runtime, ex executors.Executor, out Outcome) (Outcome, error) {
	needs, err := c.server(ctx, ex)
	if err != nil {
		return out, fmt.Errorf("%s: %w", rt.Host, err)
	}
	restartFor := needing(needs, "restart")
	svcOut := "" // what the restart printed, for the journal, after the report
	switch {
	case len(restartFor) > 0:
		// A restart with a file the server cannot read is a server that
		// does not come back: check first, as a reload does.
		if msgs, err := pg.FileProblems(ctx, ex, c.PgConnection.target(""), "pg_file_settings", pgConfFileErrors); err != nil {
			return out, fmt.Errorf("%s: check the file before restarting: %w", rt.Host, err)
		} else if len(msgs) > 0 {
			return out, fmt.Errorf("%s: the server would not start with the edited file (pg_file_settings): %s; not restarted", rt.Host, strings.Join(msgs, "; "))
		}
		// The restart's own checkpoint, at shutdown, is outage: one now,
		// while the clients still work, leaves it little to write. On
		// the faithful stand-in at 4 GB the shutdown checkpoint took
		// 0.65 s (an fsync of files still being written back) of a
		// 1.0 s outage. It only saves time: a refusal (a role without
		// pg_checkpoint) restarts all the same.
		if _, err := pg.Exec(ctx, ex, c.PgConnection.target(""), pgCheckpointSQL); err != nil {
			out.Output += "; no checkpoint before the restart (" + hostcmd.FirstLine(err) + ")"
		}
		// svcctl does the restart as it does the service kind's, so
		// systemctl or service is chosen, run and waited for in one place.
		so, err := applyService(ctx, rt, svcctl.Want{Name: c.service(), State: svcctl.Restarted}, nil)
		out.Changed = true
		if err != nil {
			return out, fmt.Errorf("restart for %s: %w", strings.Join(restartFor, ", "), err)
		}
		out.Output += fmt.Sprintf("; restarted service %s for %s", c.service(), strings.Join(restartFor, ", "))
		if o := strings.TrimSpace(so.Output); o != "" {
			svcOut = "\nrestart of service " + c.service() + ":\n" + o
		}
		if needs, err = c.waitUp(ctx, ex); err != nil {
			return out, fmt.Errorf("%s: after restarting service %s: %w", rt.Host, c.service(), err)
		}
		if still := needing(needs, "restart"); len(still) > 0 {
			// The unit restarted is not this server's, or the server does
			// not read this file.
			return out, fmt.Errorf("%s: %s still needs a restart after service %s was restarted: is %s the service of the server on %s, and is the file its config_file?",
				rt.Host, strings.Join(still, ", "), c.service(), c.service(), c.socketName())
		}
	case len(needing(needs, "reload")) > 0:
		if err := pg.Reload(ctx, ex, c.PgConnection.target(""), "pg_file_settings", pgConfFileErrors); err != nil {
			return out, err
		}
		out.Changed = true
		out.Output += "; reloaded (no restart needed)"
		if needs, err = c.waitApplied(ctx, ex, true); err != nil {
			return out, fmt.Errorf("%s: %w", rt.Host, err)
		}
	default:
		out.Output += "; no restart"
	}
	out.Output += "; " + summarizeNeeds(needs) + svcOut
	return out, nil
}

// socketName says which server the step talks to, for messages.
func (c *PgConf) socketName() string {
	dir := c.SocketDir
	if dir == "" {
		dir = "the default socket directory"
	}
	port := c.Port
	if port == 0 {
		port = 5432
	}
	return fmt.Sprintf("%s, port %d", dir, port)
}

// pgStartingRE matches the server refusing a connection while it starts
// up or shuts down (SQLSTATE 57P03). systemctl may return before the
// server accepts connections, depending on the unit's Type.
var pgStartingRE = regexp.MustCompile(`FATAL: +the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)`)

// waitUp polls the server after a restart until it answers, for at most
// pgRestartWait, and returns what it then needs.
func (c *PgConf) waitUp(ctx context.Context, ex executors.Executor) (map[string]string, error) {
	deadline := time.Now().Add(pgRestartWait)
	for {
		needs, err := c.server(ctx, ex)
		var exit *executors.ExitError
		down := pg.NotReady(err) || errors.As(err, &exit) && pgStartingRE.MatchString(exit.Stderr)
		if !down {
			return needs, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the server does not answer %s later: %w", pgRestartWait, err)
		}
		if err := hostcmd.Sleep(ctx, pgRestartPoll); err != nil {
			return nil, fmt.Errorf("waiting for the server: %w", err)
		}
	}
}

// waitApplied reads what the server needs. After a reload the postmaster
// re-reads the file asynchronously, so a new session may briefly still
// see old values: poll for a few seconds before reporting "reload needed".
func (c *PgConf) waitApplied(ctx context.Context, ex executors.Executor, reloaded bool) (map[string]string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		needs, err := c.server(ctx, ex)
		if err != nil || !reloaded || time.Now().After(deadline) {
			return needs, err
		}
		pending := false
		for _, n := range needs {
			pending = pending || n == "reload"
		}
		if !pending {
			return needs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
