package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/pg"
)

func TestSetConfParams(t *testing.T) {
	in := "# comment about max_connections\n" +
		"#listen_addresses = 'localhost'\t\t# what IP address(es) to listen on;\n" +
		"#max_connections = 100\t\t\t# (change requires restart)\n" +
		"work_mem = 4MB\n" +
		"work_mem = 6MB # later one wins\n" +
		"shared_buffers = 128MB"
	out, what, notes := setConfParams(in, map[string]string{
		"listen_addresses": "*", "max_connections": "150", "work_mem": "8MB",
		"shared_buffers": "128MB", "lc_messages": "en_US.UTF-8",
	})
	want := "# comment about max_connections\n" +
		"listen_addresses = '*'\t\t# what IP address(es) to listen on;\n" +
		"max_connections = 150\t\t\t# (change requires restart)\n" +
		"work_mem = 4MB\n" +
		"work_mem = 8MB # later one wins\n" +
		"shared_buffers = 128MB\n" +
		"lc_messages = 'en_US.UTF-8'\n"
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	if len(what) != 4 || len(notes) != 1 || !strings.Contains(notes[0], "lc_messages") {
		t.Fatalf("what %q notes %q", what, notes)
	}
	// Idempotent, and a value quoted in the plan is written as is.
	again, what, _ := setConfParams(out, map[string]string{"listen_addresses": "'*'", "work_mem": "8MB"})
	if again != out || len(what) != 0 {
		t.Fatalf("second edit changed %q:\n%s", what, again)
	}
	if v := confValues(out); v["work_mem"] != "8MB" || v["listen_addresses"] != "*" {
		t.Fatalf("values %q", v)
	}
}

func TestPgConfValueQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"150": "150", "0.01": "0.01", "8MB": "8MB", "on": "on", "*": "'*'",
		"'*'": "'*'", "it's": "'it''s'", "": "''", "en_US.UTF-8": "'en_US.UTF-8'",
	} {
		if got := pgConfValue(in); got != want {
			t.Errorf("pgConfValue(%q) = %s, want %s", in, got, want)
		}
		if got := pg.Unquote(pgConfValue(in)); got != strings.Trim(in, "'") && in != "it's" {
			t.Errorf("unquote(%s) = %q", pgConfValue(in), got)
		}
	}
	if n, ok := pg.Numeric("8MB", "kB"); !ok || n != 8192 {
		t.Errorf("8MB in kB = %v %v", n, ok)
	}
	if n, ok := pg.Numeric("1GB", "8kB"); !ok || n != 131072 {
		t.Errorf("1GB in 8kB = %v %v", n, ok)
	}
	if n, ok := pg.Numeric("1min", "s"); !ok || n != 60 {
		t.Errorf("1min in s = %v %v", n, ok)
	}
}

func TestPgConfServer(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	before, err := os.ReadFile(srv.ConfFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &PgConf{Settings: map[string]string{"max_connections": "150", "work_mem": "8MB"}, PgConnection: srv.pgConn()}
	if ps := c.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}

	// Dry run: a diff, the report, and the file untouched.
	dry := pgStepRuntime(secret.Values{}, true)
	acts, err := c.Describe(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(acts[0].Diff, "+max_connections = 150") || !strings.Contains(acts[0].Summary, "restart needed for max_connections") ||
		!strings.Contains(acts[0].Summary, "reload needed for work_mem") {
		t.Fatalf("describe: %s\n%s", acts[0].Summary, acts[0].Diff)
	}
	if ck, err := c.Check(ctx, dry); err != nil || ck.Done {
		t.Fatalf("check before: %+v %v", ck, err)
	}

	rt := pgStepRuntime(secret.Values{}, false)
	out, err := applyShown(ctx, t, c, dry, rt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Output, "reload needed for work_mem") || !strings.Contains(out.Output, "restart needed for max_connections") {
		t.Fatalf("apply output: %s", out.Output)
	}
	after, _ := os.ReadFile(srv.ConfFile)
	if strings.Count(string(after), "max_connections =") != 1 || len(strings.Split(string(after), "\n")) != len(strings.Split(string(before), "\n")) {
		t.Fatalf("the edit added lines instead of replacing them")
	}
	if fi, _ := os.Stat(srv.ConfFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode now %v", fi.Mode())
	}
	ck, err := c.Check(ctx, dry)
	if err != nil || !ck.Done || !strings.Contains(ck.Reason, "reload needed") {
		t.Fatalf("check after edit: %+v %v", ck, err)
	}

	// apply_with: reload: work_mem is in force after, max_connections
	// still waits for a restart.
	c.ApplyWith = "reload"
	if ck, _ := c.Check(ctx, dry); ck.Done {
		t.Fatalf("check with reload pending: %+v", ck)
	}
	out, err = c.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.Output, "reload needed") || !strings.Contains(out.Output, "restart needed for max_connections") {
		t.Fatalf("apply with reload: %s", out.Output)
	}
	if got := srv.psql(t, "SHOW work_mem"); got != "8MB" {
		t.Fatalf("work_mem after reload: %s", got)
	}
	srv.restart(t)
	if ck, err := c.Check(ctx, dry); err != nil || !ck.Done || !strings.Contains(ck.Reason, "already uses") {
		t.Fatalf("check after restart: %+v %v", ck, err)
	}

	// A typo is an error, not a silent new line.
	bad := &PgConf{Settings: map[string]string{"max_conections": "150"}, PgConnection: srv.pgConn()}
	if _, err := bad.Check(ctx, dry); err == nil || !strings.Contains(err.Error(), "unknown parameter max_conections") {
		t.Fatalf("typo: %v", err)
	}
}

// pgFakeSystemctl puts a systemctl first on the PATH, so the service kind
// (which pg_conf's apply_with: restart runs) finds it: "postgresql" is
// the test cluster, restarted for real with pg_ctl as a unit would, and
// "other" is a unit that restarts without error but is not this server.
// Each call is logged; calls returns them. The test must not be parallel
// (t.Setenv refuses that), so no other test sees the fake.
func pgFakeSystemctl(t *testing.T, srv *testPG) (calls func() []string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	pgCtl := "runuser -u postgres -- " + filepath.Join(pgBinDir, "pg_ctl")
	script := "#!/bin/sh\n" +
		"echo \"$*\" >> '" + log + "'\n" +
		"case \"$1 $2\" in\n" +
		"'restart postgresql') exec " + pgCtl + " restart -w -t 60 -m fast -D '" + srv.DataDir + "' -l '" + srv.LogFile + "' ;;\n" +
		"'is-active postgresql') if " + pgCtl + " status -D '" + srv.DataDir + "' >/dev/null; then echo active; else echo inactive; exit 3; fi ;;\n" +
		"'restart other') exit 0 ;;\n" +
		"'is-active other') echo active ;;\n" +
		"*) echo \"fake systemctl: unexpected: $*\" >&2; exit 1 ;;\n" +
		"esac\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return func() []string {
		data, err := os.ReadFile(log)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
}

// pgRestarts counts the restarts among the fake systemctl's calls.
func pgRestarts(calls []string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, "restart ") {
			n++
		}
	}
	return n
}

// pgStartTime is when the postmaster started: it changes with a restart
// and only then.
func pgStartTime(t *testing.T, srv *testPG) string {
	return srv.psql(t, "SELECT pg_postmaster_start_time()")
}

// TestPgConfRestart: wal_level (context postmaster) replica -> logical
// with apply_with: restart restarts the server once, through the service
// kind, and a second run restarts nothing.
func TestPgConfRestart(t *testing.T) {
	srv := startPostgres(t)
	calls := pgFakeSystemctl(t, srv)
	ctx := context.Background()
	if got := srv.psql(t, "SHOW wal_level"); got != "replica" {
		t.Fatalf("the test cluster starts with wal_level %s, the test wants replica", got)
	}
	c := &PgConf{Settings: map[string]string{"wal_level": "logical"}, ApplyWith: "restart", Service: "postgresql", PgConnection: srv.pgConn()}
	if ps := c.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	dry := pgStepRuntime(secret.Values{}, true)
	rt := pgStepRuntime(secret.Values{}, false)

	if ck, err := c.Check(ctx, dry); err != nil || ck.Done || !strings.Contains(ck.Reason, "restart needed for wal_level") {
		t.Fatalf("check before: %+v %v", ck, err)
	}
	acts, err := c.Describe(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	sum := summaries(acts)
	if !strings.Contains(acts[0].Diff, "+wal_level = logical") || !strings.Contains(sum, "run on db: systemctl restart postgresql (restart service postgresql on db: wal_level needs a restart)") ||
		!strings.Contains(sum, "<<< CHECKPOINT; (before the restart") {
		t.Fatalf("describe:\n%s\n%s", sum, acts[0].Diff)
	}
	if n := len(calls()); n != 0 {
		t.Fatalf("check and describe ran systemctl: %q", calls())
	}

	started := pgStartTime(t, srv)
	out, err := applyShown(ctx, t, c, dry, rt)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Changed || !strings.Contains(out.Output, "set wal_level") || !strings.Contains(out.Output, "restarted service postgresql for wal_level") ||
		!strings.Contains(out.Output, "already uses these values") {
		t.Fatalf("apply: %+v", out)
	}
	if n := pgRestarts(calls()); n != 1 {
		t.Fatalf("%d restarts, want 1: %q", n, calls())
	}
	if got := srv.psql(t, "SHOW wal_level"); got != "logical" {
		t.Fatalf("wal_level after apply: %s", got)
	}
	if pgStartTime(t, srv) == started {
		t.Fatal("the server was not restarted")
	}
	// A checkpoint while the server still ran, then the restart (whose
	// own checkpoint then has little to write).
	log, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	stop := strings.LastIndex(string(log), "received fast shutdown request")
	if cp := strings.LastIndex(string(log[:max(stop, 0)]), "checkpoint starting: immediate force wait"); stop < 0 || cp < 0 {
		t.Fatalf("no CHECKPOINT before the restart in the server's log:\n%s", log)
	}
	if ck, err := c.Check(ctx, dry); err != nil || !ck.Done || !strings.Contains(ck.Reason, "already uses") {
		t.Fatalf("check after: %+v %v", ck, err)
	}
	acts, err = c.Describe(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if sum := summaries(acts); len(acts) != 1 || strings.Contains(sum, "systemctl") || !strings.Contains(sum, "nothing to reload or restart") {
		t.Fatalf("describe when done:\n%s", sum)
	}

	// Re-running the plan is no outage.
	started = pgStartTime(t, srv)
	out, err = c.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if out.Changed || !strings.Contains(out.Output, "no restart") {
		t.Fatalf("second apply: %+v", out)
	}
	if n := pgRestarts(calls()); n != 1 {
		t.Fatalf("second apply restarted: %q", calls())
	}
	if pgStartTime(t, srv) != started {
		t.Fatal("the second apply restarted the server")
	}

	// A run that edited the file but stopped before the restart (here:
	// apply_with none): the next run finds the file right and restarts.
	back := &PgConf{Settings: map[string]string{"wal_level": "replica"}, PgConnection: srv.pgConn()}
	if _, err := back.Apply(ctx, rt); err != nil {
		t.Fatal(err)
	}
	back.ApplyWith = "restart"
	if ck, err := back.Check(ctx, dry); err != nil || ck.Done || !strings.Contains(ck.Reason, "already as wanted") {
		t.Fatalf("check with only the restart pending: %+v %v", ck, err)
	}
	out, err = back.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Changed || !strings.Contains(out.Output, "already as wanted") || !strings.Contains(out.Output, "restarted service postgresql for wal_level") {
		t.Fatalf("restart only: %+v", out)
	}
	if n := pgRestarts(calls()); n != 2 {
		t.Fatalf("%d restarts, want 2: %q", n, calls())
	}
	if got := srv.psql(t, "SHOW wal_level"); got != "replica" {
		t.Fatalf("wal_level after the restart-only apply: %s", got)
	}

	// A service that is not this server's: the restart "works" and the
	// value is still not in force, which must fail, naming both.
	wrong := &PgConf{Settings: map[string]string{"max_connections": "150"}, ApplyWith: "restart", Service: "other", PgConnection: srv.pgConn()}
	_, err = wrong.Apply(ctx, rt)
	if err == nil || !strings.Contains(err.Error(), "db: max_connections still needs a restart after service other was restarted") {
		t.Fatalf("wrong service: %v", err)
	}
	if got := srv.psql(t, "SHOW max_connections"); got == "150" {
		t.Fatal("max_connections in force without a restart of the server")
	}
}

// TestPgConfRestartReloadOnly: with apply_with: restart, a parameter a
// reload brings in is reloaded, not restarted for; with one that needs a
// restart as well, the one restart brings in both.
func TestPgConfRestartReloadOnly(t *testing.T) {
	srv := startPostgres(t)
	calls := pgFakeSystemctl(t, srv)
	ctx := context.Background()
	dry := pgStepRuntime(secret.Values{}, true)
	rt := pgStepRuntime(secret.Values{}, false)

	c := &PgConf{Settings: map[string]string{"work_mem": "8MB"}, ApplyWith: "restart", PgConnection: srv.pgConn()}
	if ck, err := c.Check(ctx, dry); err != nil || ck.Done {
		t.Fatalf("check before: %+v %v", ck, err)
	}
	acts, err := c.Describe(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if sum := summaries(acts); strings.Contains(sum, "systemctl") || !strings.Contains(sum, "pg_reload_conf(); (a reload is enough: no restart)") {
		t.Fatalf("describe:\n%s", sum)
	}
	started := pgStartTime(t, srv)
	out, err := c.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Changed || !strings.Contains(out.Output, "reloaded (no restart needed)") || !strings.Contains(out.Output, "already uses") {
		t.Fatalf("apply: %+v", out)
	}
	if got := srv.psql(t, "SHOW work_mem"); got != "8MB" {
		t.Fatalf("work_mem after apply: %s", got)
	}
	if len(calls()) != 0 || pgStartTime(t, srv) != started {
		t.Fatalf("restarted for a reload-only parameter: %q", calls())
	}
	if ck, err := c.Check(ctx, dry); err != nil || !ck.Done {
		t.Fatalf("check after: %+v %v", ck, err)
	}

	both := &PgConf{Settings: map[string]string{"work_mem": "16MB", "max_connections": "150"}, ApplyWith: "restart", PgConnection: srv.pgConn()}
	out, err = both.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Output, "restarted service postgresql for max_connections") || strings.Contains(out.Output, "reloaded") {
		t.Fatalf("apply of both: %+v", out)
	}
	if got := srv.psql(t, "SHOW work_mem; SHOW max_connections"); got != "16MB\n150" {
		t.Fatalf("after the restart: %q", got)
	}
	if n := pgRestarts(calls()); n != 1 {
		t.Fatalf("%d restarts, want 1: %q", n, calls())
	}
}

func TestPgConfValidateService(t *testing.T) {
	for name, ok := range map[string]bool{
		"postgresql": true, "postgresql-15": true, "postgresql@15-main.service": true, "": true,
		"-postgresql": false, "postgresql; reboot": false, "pg sql": false, "../postgresql": false,
	} {
		c := &PgConf{Settings: map[string]string{"wal_level": "logical"}, ApplyWith: "restart", Service: name}
		ps := c.Validate()
		if got := len(ps) == 0; got != ok {
			t.Errorf("service %q: problems %v, want ok=%v", name, ps, ok)
		}
		for _, p := range ps {
			if p.Field != "service" || !strings.Contains(p.Message, "is not a service name") {
				t.Errorf("service %q: problem %+v", name, p)
			}
		}
	}
}
