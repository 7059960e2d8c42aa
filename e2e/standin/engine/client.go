package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrun/migrun/internal/ovirtconf"
)

// dbConfig is one database a role connects to, as its configuration
// names it.
type dbConfig struct {
	name                string // what it is to the role: engine, dwh, keycloak
	url, user, password string
	files               []string // the files it was read from
}

// pgxConfig turns the JDBC URL into a pgx connection config: TCP to
// HOST:PORT, TLS required with ssl=true, none otherwise.
func (c dbConfig) pgxConfig(app string) (*pgx.ConnConfig, error) {
	host, port, db, opts, err := ovirtconf.ParseJdbcURLOptions(c.url)
	if err != nil {
		return nil, err
	}
	if port == "" {
		port = "5432"
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("%s: port %q", c.url, port)
	}
	sslmode := "disable"
	if v, ok := opts["ssl"]; ok && v != "false" {
		sslmode = "require"
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("sslmode=%s connect_timeout=5", sslmode))
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Database, cfg.User, cfg.Password = host, db, c.user, c.password
	cfg.Port = uint16(p)
	cfg.RuntimeParams["application_name"] = app
	return cfg, nil
}

// session is a role's open connections, in the order of its databases.
type session struct {
	conns []*pgx.Conn
	named map[string]*pgx.Conn // by dbConfig.name
	where string               // the first database, host:port/db
	vars  map[string]any
}

func (s *session) close() {
	for _, c := range s.conns {
		c.Close(context.Background())
	}
}

// client runs one role: connect, one transaction per tick, reconnect
// after any error, and keep the account.
type client struct {
	role       *role
	log        *log.Logger
	acct       *account
	interval   time.Duration
	engineName string

	mu      sync.Mutex
	lastOK  time.Time
	lastErr string
}

func (c *client) healthy() (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.lastOK.IsZero() && time.Since(c.lastOK) < time.Second, c.lastErr
}

func (c *client) setState(ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.lastOK, c.lastErr = time.Now(), ""
	} else if err != nil {
		c.lastErr = err.Error()
	}
}

// run connects and writes until ctx ends.
func (c *client) run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		c.setState(false, err)
		c.log.Printf("ERROR database: %v; retrying", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

// connect reads the configuration (each time: after a failure the
// service picks up a changed file, but a running session keeps its
// database, as the real services do) and opens every connection.
func (c *client) connect(ctx context.Context) (*session, error) {
	dbs, err := c.role.databases(c.role)
	if err != nil {
		return nil, err
	}
	s := &session{vars: map[string]any{}, named: map[string]*pgx.Conn{}}
	for i, d := range dbs {
		cfg, err := d.pgxConfig(c.role.name)
		if err != nil {
			s.close()
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgx.ConnectConfig(cctx, cfg)
		cancel()
		if err != nil {
			s.close()
			return nil, fmt.Errorf("connect %s: %w", d.url, err)
		}
		s.conns = append(s.conns, conn)
		s.named[d.name] = conn
		where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
		if i == 0 {
			s.where = where
		}
		c.log.Printf("INFO connected to %s as %s (%s, from %v)", where, cfg.User, d.url, d.files)
	}
	if c.role.prepare != nil {
		if err := c.role.prepare(ctx, c, s); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// session writes one transaction per tick until an error. A failed
// attempt, to connect or to commit, is counted and logged with its time.
func (c *client) session(ctx context.Context) error {
	s, err := c.connect(ctx)
	if err != nil {
		c.account(c.acct.failed(c.acct.Committed+1, false, err))
		return err
	}
	defer s.close()
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		seq := c.acct.Committed + 1
		// Not cancelled by a stop: a transaction under way when SIGTERM
		// comes finishes and is counted, or the account would miss a
		// commit the database holds.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		err := c.role.write(wctx, c, s, seq)
		cancel()
		if err != nil {
			var amb *ambiguousError
			c.account(c.acct.failed(seq, errors.As(err, &amb), err))
			c.log.Printf("ERROR transaction %d failed: %v", seq, err)
			return fmt.Errorf("transaction %d: %w", seq, err)
		}
		c.account(c.acct.committed(s.where))
		c.setState(true, nil)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *client) account(err error) {
	if err != nil {
		c.log.Printf("ERROR account: %v", err)
	}
}

// ambiguousError is a COMMIT that got no answer.
type ambiguousError struct{ err error }

func (e *ambiguousError) Error() string { return "commit unanswered: " + e.err.Error() }
func (e *ambiguousError) Unwrap() error { return e.err }

// inTx runs stmts (each with its arguments) in one transaction on conn.
func inTx(ctx context.Context, conn *pgx.Conn, stmts ...stmt) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	for _, st := range stmts {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			_ = tx.Rollback(context.Background())
			return fmt.Errorf("%s: %w", firstWords(st.sql), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return &ambiguousError{err}
	}
	return nil
}

type stmt struct {
	sql  string
	args []any
}

func q(sql string, args ...any) stmt { return stmt{sql, args} }

func firstWords(sql string) string {
	f := strings.Fields(sql)
	if len(f) > 4 {
		f = f[:4]
	}
	return strings.Join(f, " ")
}
