package steps

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pg_replicate's start, its second half: the publication on the source,
// the subscription on the target (its connection string, the password on
// stdin only), the initial copy waited for, the target vacuumed after it.

// conninfo is the subscription's libpq connection string with password
// as given (revealed for the server, masked for the dry run). libpq
// quotes values in single quotes with backslash escapes.
func (r *PgReplicate) conninfo(password string) string {
	q := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	port := r.Publisher.Port
	if port == 0 {
		port = 5432
	}
	sslmode := r.Publisher.SSLMode
	if sslmode == "" {
		sslmode = "prefer"
	}
	s := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s application_name=%s",
		q(r.Publisher.Host), port, q(r.Source.Database), q(r.Publisher.User), sslmode, q(r.name()))
	if password != "" {
		s += " password=" + q(password)
	}
	return s
}

func (r *PgReplicate) maskedPassword() string {
	switch {
	case r.Publisher.Password == "":
		return ""
	case secret.Contains(r.Publisher.Password):
		return secret.Mask(r.Publisher.Password)
	}
	return hiddenValue
}

func (r *PgReplicate) publicationSQL() string {
	return "CREATE PUBLICATION " + pg.Ident(r.name()) + " FOR ALL TABLES;\n"
}

// subscriptionCreateSQL subscribes the target. Its apply worker commits
// with synchronous_commit = local, not the subscriptions' default off:
// the worker reports a change applied (and the source's slot moves past
// it) only once the target's WAL holds it on disk, which with off waits
// for the WAL writer's next round (wal_writer_delay, 200 ms) and the
// next exchange after it. finish's wait in the downtime is for exactly
// that report: measured on the faithful stand-in, a target 11 KiB behind
// when the engine stopped took 230-390 ms to catch up with off, 130-150
// ms when nothing was left. The cost is one WAL flush per replicated
// transaction on the target while the application runs.
func (r *PgReplicate) subscriptionCreateSQL(password string) string {
	return "CREATE SUBSCRIPTION " + pg.Ident(r.name()) + " CONNECTION " + pg.Literal(r.conninfo(password)) +
		" PUBLICATION " + pg.Ident(r.name()) + " WITH (synchronous_commit = 'local');\n"
}

// subscribe publishes the source and subscribes the target. A slot left
// by a CREATE SUBSCRIPTION that failed after making it is dropped first.
func (r *PgReplicate) subscribe(ctx context.Context, rt *Runtime, src, dst executors.Executor, st replState) error {
	if !st.publication {
		if _, err := pg.Exec(ctx, src, r.source(), r.publicationSQL()); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	if st.slot {
		if _, err := pg.Exec(ctx, src, r.source(), "SELECT pg_drop_replication_slot("+pg.Literal(r.name())+") FROM pg_replication_slots WHERE slot_name = "+pg.Literal(r.name())+" AND NOT active;\n"); err != nil {
			return fmt.Errorf("drop the slot a failed subscription left: %w", err)
		}
	}
	password, err := rt.Secrets.Reveal(r.Publisher.Password)
	if err != nil {
		return fmt.Errorf("publisher.password: %w", err)
	}
	if _, err := pg.ExecSecret(ctx, dst, r.target(), pg.QuietSessionSQL+r.subscriptionCreateSQL(password)); err != nil {
		msg := err.Error()
		if password != "" {
			// As given, and as quoted in the statement (conninfo, then
			// SQL literal), should a server message echo it.
			conn := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
			for _, form := range []string{strings.ReplaceAll(conn, "'", "''"), conn, strings.ReplaceAll(password, "'", "''"), password} {
				msg = strings.ReplaceAll(msg, form, hiddenValue)
			}
		}
		return fmt.Errorf("subscribe: %s", rt.Secrets.Redact(msg))
	}
	return nil
}

// waitInitialCopy waits until every table of the subscription is ready.
// settleTargetSQL runs once the initial copy is done. The copy inserted
// every row on the target: from PostgreSQL 13 on, that many inserts
// trigger autovacuum's first pass over each table (the insert threshold),
// which on a large database runs for minutes and would still be reading
// and writing every page when the downtime comes, slowing the comparison
// and the application's first queries on the new server. The application's
// planner also needs the statistics of the new tables from its first
// query. Doing both now, while the source is still in use, keeps them out
// of the downtime; a resumed start runs it again, which is cheap.
const settleTargetSQL = "VACUUM (ANALYZE);\n"

// The copy takes as long as the data does; it has no time limit, but a
// worker that fails (a table missing on the target, a lost connection)
// ends the wait with the server's word for it.
func (r *PgReplicate) waitInitialCopy(ctx context.Context, rt *Runtime, dst executors.Executor) (int, error) {
	var bar Bar
	defer func() {
		if bar != nil {
			bar.Done(nil)
		}
	}()
	var errors0 int64 = -1
	shown := 0
	every := 10 * r.pollEvery() // a second by default: a copy takes a while
	for {
		rows, err := pg.Probe(ctx, dst, r.target(), r.subscriptionSQL(), "the initial copy's progress changes on its own")
		if err != nil {
			return 0, err
		}
		if len(rows) != 1 || len(rows[0]) != 4 {
			return 0, fmt.Errorf("subscription %s is gone from %s", r.name(), r.Target.Host)
		}
		total, _ := strconv.Atoi(rows[0][1])
		ready, _ := strconv.Atoi(rows[0][2])
		errs, _ := strconv.ParseInt(rows[0][3], 10, 64)
		if bar == nil {
			bar = progressOf(rt).Start(Task{Label: "initial copy " + r.Source.Host + ":" + r.Source.Database + " -> " + r.Target.Host + ":" + r.Target.Database, Unit: UnitTables, Total: int64(total), Done: int64(ready)})
			shown = ready
		} else if ready > shown {
			bar.Add(int64(ready - shown))
			shown = ready
		}
		switch {
		case errors0 < 0:
			errors0 = errs
		case errs > errors0:
			return ready, fmt.Errorf("the subscription's workers on %s fail (%d errors; see its server log): %s",
				r.Target.Host, errs-errors0, r.lastWorkerError(ctx, dst))
		}
		if ready == total {
			return total, nil
		}
		if err := hostcmd.Sleep(ctx, every); err != nil {
			return ready, err
		}
	}
}

// lastWorkerError says where the workers' errors are: the target's
// current server log file when the server names it (logging_collector),
// else the log in general. The errors themselves are only in the log.
func (r *PgReplicate) lastWorkerError(ctx context.Context, dst executors.Executor) string {
	rows, err := pg.Query(ctx, dst, r.target(), `SELECT coalesce(pg_current_logfile(), '');
`)
	if err != nil || len(rows) != 1 || rows[0][0] == "" {
		return "look for \"logical replication\" in the server log"
	}
	return "look for \"logical replication\" in " + rows[0][0]
}
