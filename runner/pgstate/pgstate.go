// Package pgstate keeps migrun's journals and locks in a PostgreSQL
// database (apply --state postgres://...), so that a run started on one
// workstation can be resumed from another, and several workstations or CI
// runners share one view of what ran.
//
// A plan's lock is a session-level advisory lock, held by one connection
// for the run's lifetime: the server drops it when that session ends,
// whether migrun exits, is killed or its machine goes away (the session
// asks the server for TCP keepalives, so a vanished workstation's session
// ends within about a minute). Every write of the journal goes through
// that same connection, so a run whose session ended cannot write
// another's journal; it learns of the loss from its pings and stops.
//
// The journal is one row per plan (the snapshot, saved when a run starts
// and ends) and one row per transition since (appended as the run goes),
// in the same order and with the same durability as the file journal: a
// transition is committed before it is announced, and one that precedes
// a change to a host is committed synchronously (flushed to the server's
// disk); the others survive the death of migrun but not a crash of the
// database server, as the file journal's survive migrun but not the
// workstation. Secrets never reach it: the journal is redacted before any
// store sees it.
package pgstate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/migrun/migrun/runner"
)

// schemaVersion is the version of the tables below; Open creates them and
// refuses a database whose tables a newer migrun made.
const schemaVersion = 1

// schema is created in the state database on first use. Several migrun
// processes may open a new database at once: the DDL runs under a
// transaction-level advisory lock.
const schema = `
CREATE SCHEMA IF NOT EXISTS migrun;
CREATE TABLE IF NOT EXISTS migrun.schema_version (
	version integer NOT NULL
);
-- One row per plan run: the journal's snapshot.
CREATE TABLE IF NOT EXISTS migrun.journals (
	name     text PRIMARY KEY,
	snapshot jsonb NOT NULL,
	saved_at timestamptz NOT NULL DEFAULT now(),
	saved_by text NOT NULL
);
-- One row per transition since the snapshot was saved.
CREATE TABLE IF NOT EXISTS migrun.transitions (
	name  text NOT NULL REFERENCES migrun.journals (name) ON DELETE CASCADE,
	seq   bigint GENERATED ALWAYS AS IDENTITY,
	entry jsonb NOT NULL,
	at    timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (name, seq)
);
`

// Options tune a Store; the zero value is what migrun uses.
type Options struct {
	// PingEvery is how often a held lock's session is checked; default 5s.
	PingEvery time.Duration
	// Timeout bounds each statement of a held lock; default 30s.
	Timeout time.Duration
}

// Store is a runner.Store in a PostgreSQL database.
type Store struct {
	cfg   *pgx.ConnConfig
	where string
	opts  Options

	schemaMu sync.Mutex
	schemaOK bool // migrate succeeded
}

// ErrPasswordInConn refuses a connection string that holds a password.
var ErrPasswordInConn = errors.New("state: the connection string holds a password; give it in PGPASSWORD or ~/.pgpass instead (a command line is visible to every user of this machine)")

// passwordRE finds a password given in a keyword/value connection string.
var passwordRE = regexp.MustCompile(`(^|\s)password\s*=`)

// Open returns the store in the state database named by conn (a
// postgres:// URL or keyword/value string, with the PG* environment and
// ~/.pgpass as libpq reads them). It connects only when used; migrun's
// tables are created by the first Lock, so that reading (status, a dry
// run) writes nothing, not even them. A password written into conn is
// refused: command lines are visible to every user of the machine;
// PGPASSWORD or a password file keep it out of them.
func Open(conn string, opts Options) (*Store, error) {
	if hasPassword(conn) {
		return nil, ErrPasswordInConn
	}
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		// pgx's message can quote the string; it held no password.
		return nil, fmt.Errorf("state: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if opts.PingEvery == 0 {
		opts.PingEvery = 5 * time.Second
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	return &Store{cfg: cfg, opts: opts, where: fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)}, nil
}

func hasPassword(conn string) bool {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return strings.Contains(conn, "password")
		}
		_, set := u.User.Password()
		return set || u.Query().Has("password")
	}
	return passwordRE.MatchString(conn)
}

func (s *Store) String() string { return s.where }

// connect opens a connection named for what it is used for.
func (s *Store) connect(ctx context.Context, appName string) (*pgx.Conn, error) {
	cfg := s.cfg.Copy()
	cfg.RuntimeParams["application_name"] = appName
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.where, err)
	}
	return c, nil
}

// migrate creates migrun's tables if they are missing, once per Store.
func (s *Store) migrate(ctx context.Context) error {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if s.schemaOK {
		return nil
	}
	c, err := s.connect(ctx, "migrun state")
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("\x00schema")); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return err
		}
		var v int
		err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM migrun.schema_version").Scan(&v)
		switch {
		case err != nil:
			return err
		case v == 0:
			_, err = tx.Exec(ctx, "INSERT INTO migrun.schema_version VALUES ($1)", schemaVersion)
			return err
		case v > schemaVersion:
			return fmt.Errorf("its tables are version %d; this migrun knows version %d (upgrade migrun)", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state %s: %w", s.where, err)
	}
	s.schemaOK = true
	return nil
}

// noTables tells the error of a database migrun never wrote to: its
// schema or tables are not there, so it holds no journal.
func noTables(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") // undefined_table, invalid_schema_name
}

// lockKey is the advisory lock key of the plan called name: 64 bits of
// its sha256, so that distinct names do not share a lock.
func lockKey(name string) int64 {
	sum := sha256.Sum256([]byte("migrun journal\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Read returns the journal of name with its transitions replayed, read
// in one snapshot of the database.
func (s *Store) Read(ctx context.Context, name string) (*runner.Journal, error) {
	c, err := s.connect(ctx, "migrun state")
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	return s.read(ctx, c, name)
}

func (s *Store) read(ctx context.Context, c *pgx.Conn, name string) (*runner.Journal, error) {
	var j *runner.Journal
	err := pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var snap []byte
		err := tx.QueryRow(ctx, "SELECT snapshot FROM migrun.journals WHERE name = $1", name).Scan(&snap)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if j, err = runner.DecodeJournal(snap, s.where+" "+name); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT entry FROM migrun.transitions WHERE name = $1 ORDER BY seq", name)
		if err != nil {
			return err
		}
		entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (runner.LogEntry, error) {
			var raw []byte
			var e runner.LogEntry
			if err := r.Scan(&raw); err != nil {
				return e, err
			}
			return e, json.Unmarshal(raw, &e)
		})
		if err != nil {
			return err
		}
		return j.Replay(entries)
	})
	if noTables(err) {
		return nil, nil // no Lock ever made migrun's tables: no journal
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: read journal %s: %w", s.where, name, err)
	}
	return j, nil
}

// Names lists the plans with a journal in the store.
func (s *Store) Names(ctx context.Context) ([]string, error) {
	c, err := s.connect(ctx, "migrun state")
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, "SELECT name FROM migrun.journals ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.where, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if noTables(err) {
		return nil, nil
	}
	return names, err
}

// holderName is the session's application_name: what another migrun
// that finds the lock taken reports (at most 63 bytes, the server's limit).
func holderName(h runner.Holder) string {
	n := fmt.Sprintf("migrun pid %d %s@%s", h.PID, h.User, h.Workstation)
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// Lock takes the plan's advisory lock on a connection of its own, kept
// for the run.
func (s *Store) Lock(ctx context.Context, name string, h runner.Holder) (runner.Lock, error) {
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	cfg := s.cfg.Copy()
	cfg.RuntimeParams["application_name"] = holderName(h)
	// The server, not migrun, ends a session whose workstation vanished:
	// after 30 s of silence, three probes 10 s apart.
	cfg.RuntimeParams["tcp_keepalives_idle"] = "30"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "10"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	// Transitions not marked sync are committed without waiting for the
	// server's disk; Append's sync ones wait, and with them every earlier.
	cfg.RuntimeParams["synchronous_commit"] = "off"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.where, err)
	}
	key := lockKey(name)
	var got bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("state %s: lock %s: %w", s.where, name, err)
	}
	if !got {
		holder, err := s.holder(ctx, c, key)
		if holder == "" || err != nil {
			// Released in between, or not readable: say what is known.
			holder = "another session"
		}
		c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%w (lock of %s in %s held by %s)", runner.ErrLocked, name, s.where, holder)
	}
	l := &lock{store: s, name: name, key: key, conn: c, by: fmt.Sprintf("%s@%s pid %d", h.User, h.Workstation, h.PID),
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, nil
}

// holder says which session holds the advisory lock key: its
// application_name (migrun's names its pid, user and workstation), client
// address and since when.
// "" when no session holds it. Another role's session may hide its
// address and start from this role.
func (s *Store) holder(ctx context.Context, c *pgx.Conn, key int64) (string, error) {
	// A bigint advisory lock shows as classid = high 32 bits, objid = low
	// 32 bits, objsubid = 1.
	u := uint64(key)
	var app, addr *string
	var since *time.Time
	err := c.QueryRow(ctx, `SELECT a.application_name, coalesce(host(a.client_addr), 'a local socket'), a.backend_start
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1`,
		int64(u>>32), int64(u&0xffffffff)).Scan(&app, &addr, &since)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil
	case err != nil:
		return "", err
	case app == nil || addr == nil || since == nil:
		return "another session (this role may not see whose)", nil
	}
	return fmt.Sprintf("%q from %s since %s", *app, *addr, since.UTC().Format(time.RFC3339)), nil
}

// HeldBy says who holds the lock of the plan called name now, without
// taking it; "" when nobody does.
func (s *Store) HeldBy(ctx context.Context, name string) (string, error) {
	c, err := s.connect(ctx, "migrun state")
	if err != nil {
		return "", err
	}
	defer c.Close(context.WithoutCancel(ctx))
	return s.holder(ctx, c, lockKey(name))
}

// lock is a held plan lock: its session, the only one that writes the
// plan's journal.
type lock struct {
	store *Store
	name  string
	key   int64
	by    string

	mu   sync.Mutex // the connection is used by one goroutine at a time
	conn *pgx.Conn

	lost     chan struct{} // closed when the session is gone
	lostOnce sync.Once
	stop     chan struct{} // closed by Release
	done     chan struct{} // closed when watch returns
}

// watch pings the session until Release; a failed ping means the session,
// and with it the lock, may be gone.
func (l *lock) watch() {
	defer close(l.done)
	t := time.NewTicker(l.store.opts.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		err := l.ping()
		l.mu.Unlock()
		if err != nil {
			l.markLost()
			return
		}
	}
}

func (l *lock) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.store.opts.Timeout)
	defer cancel()
	return l.conn.Ping(ctx)
}

func (l *lock) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

func (l *lock) Lost() <-chan struct{} { return l.lost }

// do runs f on the lock's session with the statement timeout; an error
// that closed the connection loses the lock.
func (l *lock) do(ctx context.Context, f func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, l.store.opts.Timeout)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	err := f(ctx, l.conn)
	if err != nil && !l.conn.IsClosed() && l.conn.PgConn().TxStatus() != 'I' {
		// A batch that failed inside its BEGIN leaves the session in the
		// aborted transaction; the next write must not inherit it.
		_, rerr := l.conn.Exec(ctx, "ROLLBACK")
		err = errors.Join(err, rerr)
	}
	if err != nil && l.conn.IsClosed() {
		l.markLost()
		return fmt.Errorf("state %s: %w: %w", l.store.where, runner.ErrLockLost, err)
	}
	if err != nil {
		return fmt.Errorf("state %s: %w", l.store.where, err)
	}
	return nil
}

func (l *lock) Read(ctx context.Context) (*runner.Journal, error) {
	var j *runner.Journal
	err := l.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var err error
		j, err = l.store.read(ctx, c, l.name)
		return err
	})
	return j, err
}

// Save replaces the snapshot and drops the transitions it now holds, in
// one synchronously committed transaction, sent in one round trip.
func (l *lock) Save(ctx context.Context, j *runner.Journal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return l.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("SET LOCAL synchronous_commit = on")
		b.Queue(`INSERT INTO migrun.journals (name, snapshot, saved_at, saved_by) VALUES ($1, $2, now(), $3)
ON CONFLICT (name) DO UPDATE SET snapshot = excluded.snapshot, saved_at = excluded.saved_at, saved_by = excluded.saved_by`, l.name, data, l.by)
		b.Queue("DELETE FROM migrun.transitions WHERE name = $1", l.name)
		b.Queue("COMMIT")
		return c.SendBatch(ctx, b).Close()
	})
}

// Append inserts one transition. A sync one is committed synchronously in
// one round trip (BEGIN, SET LOCAL, INSERT, COMMIT in a batch).
func (l *lock) Append(ctx context.Context, e runner.LogEntry, sync bool) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	const insert = "INSERT INTO migrun.transitions (name, entry) VALUES ($1, $2)"
	return l.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
		if !sync {
			_, err := c.Exec(ctx, insert, l.name, data)
			return err
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("SET LOCAL synchronous_commit = on")
		b.Queue(insert, l.name, data)
		b.Queue("COMMIT")
		return c.SendBatch(ctx, b).Close()
	})
}

// Release unlocks and closes the session. The transitions need no
// clean-up: the last Save dropped those it holds.
func (l *lock) Release(final bool) error {
	select {
	case <-l.stop:
		return nil // released already
	default:
	}
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), l.store.opts.Timeout)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if !l.conn.IsClosed() {
		_, err = l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", l.key)
	}
	return errors.Join(err, l.conn.Close(ctx))
}

var (
	_ runner.Store      = (*Store)(nil)
	_ runner.Lister     = (*Store)(nil)
	_ runner.LockProber = (*Store)(nil)
)
