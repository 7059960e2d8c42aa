// Command engine is the e2e test hosts' stand-in for the oVirt Manager's
// database clients (see e2e/hosts/README.md): one binary that behaves as
// the service it is started as, by the name it runs under (argv[0], a
// symlink) or -role:
//
//	ovirt-engine                the engine: heartbeat, guest-agent NICs, host
//	                            pinning, async tasks, audit log (every 200 ms)
//	ovirt-engine-dwhd           the Data Warehouse: dwh_history_timekeeping in
//	                            the engine database and samples in its own
//	ovirt-engine-notifier       the notifier: event_notification_hist
//	ovirt-fence-kdump-listener  the fence_kdump listener: its heartbeat in
//	                            external_variable
//
// Each reads its configuration where the real service does and connects
// where the JDBC URL in it says (never ENGINE_DB_HOST: editing only the
// host leaves it on the old database, as in reality). Each holds its
// connections open and commits one transaction per tick; the statements
// are the kinds the real service runs, on the tables it runs them on,
// several of which have no primary key (UPDATE and DELETE on those fail
// under a publication without a replica identity).
//
// Each keeps its own account in a state file (-state): the number of
// transactions committed, the number that failed, and when each failure
// happened. Every transaction carries its sequence number into the
// database, so a test can check that what the database holds is exactly
// what the client committed: nothing lost, nothing doubled.
//
// The engine also answers GET /ovirt-engine/services/health with 200
// "DB Up!Welcome to Health Status!" while its last commit is under a
// second old, else 500. On database errors every role keeps retrying,
// re-reading its configuration; SIGTERM or SIGINT: a clean exit.
//
//	ovirt-engine [-role R] [-confd DIR] [-listen ADDR] [-log FILE] [-state FILE] [-interval D]
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
	"path/filepath"
	"syscall"
	"time"
)

const healthOK = "DB Up!Welcome to Health Status!"

func main() {
	role := flag.String("role", filepath.Base(os.Args[0]), "which service: "+roleNames())
	confd := flag.String("confd", "", "the engine's conf.d directory (default: where the role's real service reads it)")
	listen := flag.String("listen", ":80", "HTTP address for /ovirt-engine/services/health (engine only)")
	logFile := flag.String("log", "", "log file (- for stderr; default: the role's real log)")
	stateFile := flag.String("state", "", "where the committed and failed transactions are counted (default /var/lib/ovirt-standin/ROLE.json)")
	interval := flag.Duration("interval", 0, "time between transactions (default: 200ms for the engine, 500ms for the others)")
	name := flag.String("name", "", "the engine column of heartbeat rows (default: the host name)")
	verify := flag.Bool("verify", false, "compare the database the configuration names with the account (run with the service stopped), print the verdict, exit 1 on a mismatch")
	flag.Parse()

	r, ok := roles[*role]
	if !ok {
		fmt.Fprintf(os.Stderr, "ovirt-engine: unknown role %q (%s)\n", *role, roleNames())
		os.Exit(2)
	}
	if *confd != "" {
		r.engineConfd = *confd
	}
	if *logFile == "" {
		*logFile = r.log
	}
	if *stateFile == "" {
		*stateFile = "/var/lib/ovirt-standin/" + r.name + ".json"
	}
	if *interval == 0 {
		*interval = r.interval
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}

	var out io.Writer = os.Stderr
	if *logFile != "-" {
		_ = os.MkdirAll(filepath.Dir(*logFile), 0o755)
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, r.name+":", err)
			os.Exit(1)
		}
		defer f.Close()
		out = f
	}
	lg := log.New(out, "", log.LstdFlags|log.Lmicroseconds)

	acct, err := openAccount(*stateFile, r.name)
	if err != nil {
		lg.Printf("ERROR %v", err)
		os.Exit(1)
	}
	if err := r.precheck(); err != nil {
		// As the real services do: a missing configuration stops the start.
		lg.Printf("ERROR %v", err)
		fmt.Fprintln(os.Stderr, r.name+":", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	c := &client{role: r, log: lg, acct: acct, interval: *interval, engineName: *name}
	if *verify {
		os.Exit(c.verify(ctx))
	}
	if r.name == "ovirt-engine" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			lg.Printf("ERROR listen %s: %v", *listen, err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: c.healthHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				lg.Printf("ERROR http: %v", err)
			}
		}()
		defer func() {
			shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutCtx)
		}()
		lg.Printf("INFO health on %s", ln.Addr())
	}
	lg.Printf("INFO %s started (pid %d), state %s, %d committed and %d failed so far", r.name, os.Getpid(), *stateFile, acct.Committed, acct.Failed)
	c.run(ctx)
	lg.Printf("INFO stopped: %d committed, %d failed", acct.Committed, acct.Failed)
}

// verify prints whether the database holds what the account says was
// committed, and returns the exit status.
func (c *client) verify(ctx context.Context) int {
	s, err := c.connect(ctx)
	if err != nil {
		fmt.Printf("%s: cannot verify: %v\n", c.role.name, err)
		return 2
	}
	defer s.close()
	bad, err := c.role.verify(ctx, c, s)
	if err != nil {
		fmt.Printf("%s: cannot verify: %v\n", c.role.name, err)
		return 2
	}
	if bad != "" {
		fmt.Printf("%s: MISMATCH on %s: %s\n", c.role.name, s.where, bad)
		return 1
	}
	fmt.Printf("%s: ok on %s: %d committed, %d failed\n", c.role.name, s.where, c.acct.Committed, c.acct.Failed)
	return 0
}

func (c *client) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ovirt-engine/services/health", func(w http.ResponseWriter, r *http.Request) {
		ok, msg := c.healthy()
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
