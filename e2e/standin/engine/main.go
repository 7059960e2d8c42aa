// Command engine is the e2e test hosts' stand-in for the oVirt engine
// (ovirt-engine.service on the host `engine`; see e2e/hosts/README.md).
//
// It reads its database settings as the real engine does: the files
// /etc/ovirt-engine/engine.conf.d/*.conf in lexical order, later keys
// overriding earlier ones, and connects where ENGINE_DB_URL says with
// ENGINE_DB_USER and ENGINE_DB_PASSWORD. It never looks at
// ENGINE_DB_HOST, PORT or DATABASE: as with the real engine, editing only
// ENGINE_DB_HOST leaves it on the old database.
//
// Once connected it writes a row into heartbeat(id, at, engine) every
// 200 ms (creating the table as the engine user if missing), and answers
// GET /ovirt-engine/services/health with 200 "DB Up!Welcome to Health
// Status!" while its last write succeeded within the last second, 500
// otherwise. On database errors it keeps retrying, as the engine does.
// SIGTERM or SIGINT: a clean exit.
//
//	ovirt-engine [-confd DIR] [-listen ADDR] [-log FILE] [-interval D]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrun/migrun/internal/ovirtconf"
)

const healthOK = "DB Up!Welcome to Health Status!"

func main() {
	confd := flag.String("confd", "/etc/ovirt-engine/engine.conf.d", "the engine's conf.d directory")
	listen := flag.String("listen", ":80", "HTTP address for /ovirt-engine/services/health")
	logFile := flag.String("log", "/var/log/ovirt-engine/engine.log", "log file (- for stderr)")
	interval := flag.Duration("interval", 200*time.Millisecond, "heartbeat interval")
	name := flag.String("name", "", "the engine column of heartbeat rows (default: the host name)")
	flag.Parse()

	var out io.Writer = os.Stderr
	if *logFile != "-" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ovirt-engine:", err)
			os.Exit(1)
		}
		defer f.Close()
		out = f
	}
	lg := log.New(out, "", log.LstdFlags|log.Lmicroseconds)
	if *name == "" {
		*name, _ = os.Hostname()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	e := &engine{log: lg, name: *name, interval: *interval}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		lg.Printf("ERROR listen %s: %v", *listen, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: e.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Printf("ERROR http: %v", err)
		}
	}()
	lg.Printf("INFO started (pid %d), health on %s, reading %s", os.Getpid(), ln.Addr(), *confd)

	e.run(ctx, *confd)

	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	lg.Printf("INFO stopped")
}

type engine struct {
	log      *log.Logger
	name     string
	interval time.Duration

	mu      sync.Mutex
	lastOK  time.Time // last successful heartbeat write
	lastErr string
}

func (e *engine) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ovirt-engine/services/health", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		ok := !e.lastOK.IsZero() && time.Since(e.lastOK) < time.Second
		msg := e.lastErr
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		if ok {
			fmt.Fprint(w, healthOK)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		if msg == "" {
			msg = "not connected"
		}
		fmt.Fprintf(w, "DB Down!%s", msg)
	})
	return mux
}

func (e *engine) setState(ok bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ok {
		e.lastOK, e.lastErr = time.Now(), ""
	} else if err != nil {
		e.lastErr = err.Error()
	}
}

// dbConfig is what the engine connects with.
type dbConfig struct {
	url, user, password string
	files               []string
}

// readConfig reads conf.d as the engine does; only the URL, user and
// password count.
func readConfig(confd string) (dbConfig, error) {
	vals, files, err := ovirtconf.LoadDir(confd, nil)
	if err != nil {
		return dbConfig{}, err
	}
	c := dbConfig{url: vals["ENGINE_DB_URL"], user: vals["ENGINE_DB_USER"], password: vals["ENGINE_DB_PASSWORD"], files: files}
	if c.url == "" {
		return c, fmt.Errorf("ENGINE_DB_URL is not set in %s/*.conf", confd)
	}
	return c, nil
}

// pgxConfig turns the JDBC URL into a pgx connection config: TCP to
// HOST:PORT, TLS required with ssl=true, none otherwise.
func pgxConfig(c dbConfig) (*pgx.ConnConfig, error) {
	host, port, db, opts, err := ovirtconf.ParseJdbcURLOptions(c.url)
	if err != nil {
		return nil, err
	}
	if port == "" {
		port = "5432"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("ENGINE_DB_URL: port %q", port)
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
	p, _ := strconv.Atoi(port)
	cfg.Port = uint16(p)
	cfg.RuntimeParams["application_name"] = "ovirt-engine"
	return cfg, nil
}

// run connects and heartbeats until ctx ends, reconnecting after errors.
func (e *engine) run(ctx context.Context, confd string) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := e.session(ctx, confd)
		if ctx.Err() != nil {
			return
		}
		e.setState(false, err)
		e.log.Printf("ERROR database: %v; retrying", err)
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

// session reads the config (each time: a restart is not needed to pick up
// changes after a failure, but a running session keeps its database, as
// the engine does), connects and heartbeats until an error.
func (e *engine) session(ctx context.Context, confd string) error {
	c, err := readConfig(confd)
	if err != nil {
		return err
	}
	cfg, err := pgxConfig(c)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect %s: %w", c.url, err)
	}
	defer conn.Close(context.Background())
	e.log.Printf("INFO connected to %s:%d/%s as %s (ENGINE_DB_URL %s, from %v)", cfg.Host, cfg.Port, cfg.Database, cfg.User, c.url, c.files)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS heartbeat (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), engine text)`); err != nil {
		return fmt.Errorf("create table heartbeat: %w", err)
	}
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := conn.Exec(wctx, `INSERT INTO heartbeat (engine) VALUES ($1)`, e.name)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("heartbeat: %w", err)
		}
		e.setState(true, nil)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
