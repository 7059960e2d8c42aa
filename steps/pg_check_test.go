package steps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/pg"
)

func TestPgCheckConditions(t *testing.T) {
	workMem := pg.Setting{Name: "work_mem", Value: "4096", Unit: "kB", Vartype: "integer"}
	for cond, want := range map[string]bool{">=4096": true, ">=8192": false, ">=4MB": true, "<4MB": false, "=4MB": true, "4096": true, "!=4MB": false} {
		op, v := parseCond(cond)
		if got := condHolds(workMem, op, v); got != want {
			t.Errorf("work_mem 4096kB %s: %v, want %v", cond, got, want)
		}
	}
	sf := pg.Setting{Name: "autovacuum_vacuum_scale_factor", Value: "0.2", Vartype: "real"}
	if condHolds(sf, "<=", "0.01") || !condHolds(sf, "<=", "0.2") {
		t.Error("real comparison")
	}
	lc := pg.Setting{Name: "lc_messages", Value: "en_US.utf8", Vartype: "string"}
	if !condHolds(lc, "=", "en_US.UTF-8") {
		t.Error("locale spellings")
	}
	if ps := (&PgCheck{Settings: map[string]string{"work_mem": ">=lots"}}).Validate(); len(ps) != 1 {
		t.Errorf("problems %v", ps)
	}
	if ps := (&PgCheck{}).Validate(); len(ps) != 1 {
		t.Errorf("empty check: %v", ps)
	}
	if ps := (&PgCheck{ClientsOnlyFrom: []string{"ovirt-engine", "x'; rm -rf /"}}).Validate(); len(ps) != 1 || ps[0].Field != "clients_only_from" {
		t.Errorf("a service name that is not one: %v", ps)
	}
}

// engineRequirements are engine-setup's checks of a remote database.
func engineRequirements(locale string) map[string]string {
	return map[string]string{
		"max_connections": ">=150", "work_mem": ">=8192", "maintenance_work_mem": ">=65536",
		"autovacuum_vacuum_scale_factor": "<=0.01", "autovacuum_analyze_scale_factor": "<=0.075",
		"autovacuum_max_workers": ">=6", "lc_messages": "=" + locale, "server_encoding": "=UTF8",
	}
}

func TestPgCheckServer(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	srv.psql(t, "CREATE ROLE engine LOGIN PASSWORD 'engine-pw'")
	srv.psql(t, "CREATE DATABASE engine OWNER engine TEMPLATE template0 ENCODING 'UTF8'")
	// The server's own lc_messages is right; the database's overrides it,
	// and that is what the engine's sessions get.
	srv.psql(t, "ALTER DATABASE engine SET lc_messages = 'C'")
	c := &PgCheck{Database: "engine", Settings: engineRequirements(srv.Locale), Extensions: []string{"uuid-ossp"},
		ClientVersionAtLeastServer: true, DatabaseEmpty: "engine", PgConnection: srv.pgConn()}
	if ps := c.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	dry := pgStepRuntime(secret.Values{}, true)
	rt := pgStepRuntime(secret.Values{}, false)

	// A stock server fails every requirement but the encoding: all listed.
	if ck, err := c.Check(ctx, dry); err != nil || ck.Done {
		t.Fatalf("check on stock server: %+v %v", ck, err)
	}
	_, err := c.Apply(ctx, rt)
	if err == nil {
		t.Fatal("stock server passed")
	}
	for _, w := range []string{"max_connections is 100, want >= 150", "work_mem is 4096kB, want >= 8192",
		"autovacuum_vacuum_scale_factor is 0.2, want <= 0.01", "autovacuum_analyze_scale_factor is 0.1", "autovacuum_max_workers is 3",
		"lc_messages is C, want = " + srv.Locale, "extension uuid-ossp is not created in database engine", "7 of 11 checks failed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "server_encoding is") || strings.Contains(err.Error(), "not empty") || strings.Contains(err.Error(), "maintenance_work_mem") {
		t.Errorf("holding assertions reported as violated:\n%v", err)
	}

	// Meet them (maintenance_work_mem is 64MB by default: it holds).
	conf := "max_connections = 150\nwork_mem = 8MB\nautovacuum_vacuum_scale_factor = 0.01\n" +
		"autovacuum_analyze_scale_factor = 0.075\nautovacuum_max_workers = 6\n"
	// Rewriting the existing file keeps its postgres owner.
	if err := os.WriteFile(filepath.Join(srv.DataDir, "postgresql.auto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.restart(t)
	srv.psql(t, "ALTER DATABASE engine SET lc_messages = '"+srv.Locale+"'")
	srv.psql(t, `CREATE EXTENSION "uuid-ossp"`, "engine")
	if ck, err := c.Check(ctx, dry); err != nil || !ck.Done {
		t.Fatalf("check after meeting the requirements: %+v %v", ck, err)
	}
	// A check changes nothing: applyShown fails on any command or file
	// change the dry run did not show.
	if out, err := applyShown(ctx, t, c, dry, rt); err != nil || !strings.Contains(out.Output, "max_connections = 150") {
		t.Fatalf("apply: %+v %v", out, err)
	}

	// database_empty fails once the database holds a table.
	srv.psql(t, "CREATE TABLE t (id int)", "engine")
	if ck, _ := c.Check(ctx, dry); ck.Done || !strings.Contains(ck.Reason, "database engine is not empty: 1") {
		t.Fatalf("not empty: %+v", ck)
	}
	srv.psql(t, "DROP TABLE t", "engine")

	// databases_only: a server to retire holds nothing else; another
	// database refuses in the check already (before any change).
	only := &PgCheck{DatabasesOnly: []string{"engine", "ovirt_engine_history"}, PgConnection: srv.pgConn()}
	if ck, err := only.Check(ctx, dry); err != nil || !ck.Done {
		t.Fatalf("databases_only, engine alone: %+v %v", ck, err)
	}
	if out, err := only.Apply(ctx, rt); err != nil || !strings.Contains(out.Output, "no database but engine (and postgres, the templates)") {
		t.Fatalf("databases_only, engine alone: %+v %v", out, err)
	}
	srv.psql(t, "CREATE DATABASE reports")
	if _, err := only.Check(ctx, dry); err == nil || !strings.Contains(err.Error(), "the server holds 1 database reports besides engine, ovirt_engine_history") {
		t.Fatalf("databases_only with another database: %v", err)
	}
	if _, err := (&PgCheck{DatabasesOnly: []string{}, PgConnection: srv.pgConn()}).Check(ctx, dry); err == nil || !strings.Contains(err.Error(), "2 databases engine, reports besides none") {
		t.Fatalf("databases_only: []: %v", err)
	}
	srv.psql(t, "DROP DATABASE reports")

	// A password login over the socket, with a scram rule placed by pg_hba.
	h := &PgHba{Type: "local", Database: "engine", User: "engine", Method: "scram-sha-256", Reload: true, PgConnection: srv.pgConn()}
	if _, err := h.Apply(ctx, rt); err != nil {
		t.Fatal(err)
	}
	login := &PgCheck{Login: PgCheckLogin{Host: srv.SocketDir, Port: srv.Port, User: "engine", Password: secret.Token("pw"), Database: "engine"},
		PgConnection: srv.pgConn()}
	if ps := login.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	if ck, err := login.Check(ctx, pgStepRuntime(secret.Values{"pw": "engine-pw"}, true)); err != nil || ck.Done {
		t.Fatalf("login check: %+v %v", ck, err)
	}
	if _, err := login.Apply(ctx, pgStepRuntime(secret.Values{"pw": "engine-pw"}, false)); err != nil {
		t.Fatalf("right password: %v", err)
	}
	// The client tools against the login's server, read through the login.
	login.ClientVersionAtLeastServer = true
	out, err := login.Apply(ctx, pgStepRuntime(secret.Values{"pw": "engine-pw"}, false))
	if err != nil || !regexp.MustCompile(`psql [0-9.]+ and pg_dump [0-9.]+ at least the server's version \([0-9]{6}\)`).MatchString(out.Output) {
		t.Fatalf("client versions against the login's server: %+v %v", out, err)
	}
	login.ClientVersionAtLeastServer = false
	_, err = login.Apply(ctx, pgStepRuntime(secret.Values{"pw": "wrong-pw"}, false))
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("wrong password: %v", err)
	}
	if left, _ := filepath.Glob("/tmp/migrun-*.pgpass"); len(left) > 0 {
		t.Fatalf("password files left behind: %v", left)
	}
}

// namedHost is a scripted host under another name.
type namedHost struct {
	*scriptedHost
	name string
}

func (h namedHost) Name() string { return h.name }

// client_host: the tools of another plan host (the Manager) against this
// server. Older ones refuse in the check already, before any change.
func TestPgCheckClientHost(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	major := strings.SplitN(srv.psql(t, "SHOW server_version"), ".", 2)[0]
	for _, tt := range []struct {
		name, client string
		refuse       bool
	}{
		{"same major", major + ".2", false},
		{"newer", "99.1", false},
		{"older", "13.9", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			engine := namedHost{newScriptedHost(t,
				replyOK("psql --version", "psql (PostgreSQL) "+tt.client+"\n"),
				replyOK("pg_dump --version", "pg_dump (PostgreSQL) "+tt.client+"\n")), "engine"}
			rt := testRuntime(hosts{"db": executors.ReadOnly(executors.NewLocal("db")), "engine": engine}, secret.Values{}, nil)
			c := &PgCheck{ClientVersionAtLeastServer: true, ClientHost: "engine", PgConnection: srv.pgConn()}
			if ps := c.Validate(); len(ps) > 0 {
				t.Fatal(ps)
			}
			if got := c.Hosts("db"); !reflect.DeepEqual(got, []string{"db", "engine"}) {
				t.Errorf("hosts %v", got)
			}
			ck, err := c.Check(ctx, rt)
			switch {
			case tt.refuse && (err == nil || !strings.Contains(err.Error(), "pg_dump on engine is version 13.9, older than the server's major version")):
				t.Fatalf("check: %+v %v, want a refusal", ck, err)
			case !tt.refuse && (err != nil || !ck.Done):
				t.Fatalf("check: %+v %v", ck, err)
			}
			for _, l := range engine.lines() {
				if !strings.HasPrefix(l, "? ") {
					t.Errorf("a command that is not read-only ran on engine: %s", l)
				}
			}
		})
	}
	if ps := (&PgCheck{ClientHost: "engine", Extensions: []string{"x"}}).Validate(); len(ps) != 1 || ps[0].Field != "client_host" {
		t.Errorf("client_host without client_version_at_least_server: %v", ps)
	}
}

// TestPgCheckClients holds a connection open from a psql started by
// hand (no service) and then from the "main pid" of a service (a
// systemctl first on the PATH says so): the first refuses in the check,
// naming the process; the second passes.
func TestPgCheckClients(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	srv.psql(t, "CREATE DATABASE engine")
	c := &PgCheck{Database: "engine", ClientsOnlyFrom: []string{"ovirt-engine", "ovirt-engine-dwhd.service"}, PgConnection: srv.pgConn()}
	if ps := c.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	dry := pgStepRuntime(secret.Values{}, true)

	ck, err := c.Check(ctx, dry)
	if err != nil || !ck.Done || !strings.Contains(ck.Reason, "all 1 assertions hold") {
		t.Fatalf("no client: %+v %v", ck, err)
	}

	hold := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(pgBinDir, "psql"), "-X", "-q",
		"-h", srv.SocketDir, "-p", strconv.Itoa(srv.Port), "-d", "engine", "-c", "SELECT pg_sleep(120)")
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Process.Kill(); hold.Wait() })
	// psql is runuser's child: wait for its backend.
	var psqlPID string
	for i := 0; i < 100 && psqlPID == ""; i++ {
		time.Sleep(50 * time.Millisecond)
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(hold.Process.Pid), "-x", "psql").Output()
		if srv.psql(t, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'engine'") == "1" {
			psqlPID = strings.TrimSpace(string(out))
		}
	}
	if psqlPID == "" {
		t.Fatal("the psql holding a connection did not connect")
	}

	_, err = c.Check(ctx, dry)
	for _, want := range []string{"database engine has 1 client outside the services this plan stops (ovirt-engine, ovirt-engine-dwhd)",
		"psql (pid " + psqlPID + ", uid ", ", over the local socket) of ", `[role postgres, application "psql"]`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check with a psql connected: %v, want an error naming %q", err, want)
		}
	}
	if _, err := c.Apply(ctx, pgStepRuntime(secret.Values{}, false)); err == nil || !strings.Contains(err.Error(), "psql (pid "+psqlPID) {
		t.Errorf("apply with a psql connected: %v", err)
	}

	// runuser, psql's parent, is ovirt-engine-dwhd's main pid.
	bin := t.TempDir()
	script := "#!/bin/sh\ncase \"$*\" in *ovirt-engine-dwhd.service*) echo " + strconv.Itoa(hold.Process.Pid) + ";; *) echo 0;; esac\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	ck, err = c.Check(ctx, dry)
	if err != nil || !ck.Done {
		t.Fatalf("the client a service's: %+v %v", ck, err)
	}
	out, err := c.Apply(ctx, pgStepRuntime(secret.Values{}, false))
	if err != nil || !strings.Contains(out.Output, "the clients of database engine are all of ovirt-engine-dwhd (1 connection)") {
		t.Errorf("apply, the client a service's: %q %v", out.Output, err)
	}
}
