//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The headline plan, plans/ovirt-engine-remote-db.yaml, run for real
// against the two test hosts. A migration is one-shot, so every test
// starts from a fresh pair of hosts.

// resetHosts rebuilds both hosts from scratch (about 10 s).
func resetHosts(t *testing.T) {
	t.Helper()
	if err := script("down.sh"); err != nil {
		t.Fatalf("down.sh: %v", err)
	}
	if err := script("up.sh"); err != nil {
		t.Fatalf("up.sh: %v", err)
	}
}

func headlinePlan() string { return filepath.Join(repoRoot, "plans", "ovirt-engine-remote-db.yaml") }

// headlineVars point the plan at the test hosts: PostgreSQL is installed
// already (Debian's layout), the Manager is engine, the new server db.
func headlineVars() []string {
	return []string{
		"--var", "engine_host=" + ip("engine"),
		"--var", "db_host=" + ip("db"),
		"--var", "engine_ip=" + ip("engine"),
		"--var", "pg_data=" + env["MIGRUN_E2E_PGDATA"],
		"--var", "install_packages=false",
	}
}

// engineDBOnly leaves the DWH's and Keycloak's databases where they are:
// for the tests of what concerns the engine database's move alone (a
// shorter run; the others' moves are tested by TestHeadlineApplyMigrates,
// TestHeadlineCrashResume and TestHeadlineStreamMode).
var engineDBOnly = []string{"--var", "move_dwh_db=false", "--var", "move_keycloak_db=false"}

// enginePassword reads the engine user's password and puts it where the
// plan's secret reads it.
func enginePassword(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(env["MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(string(b))
	t.Setenv("ENGINE_DB_PASSWORD", pw)
	return pw
}

// psqlOn runs SQL as postgres on a host's local server and returns the
// rows (-At output).
func psqlOn(t *testing.T, host, db, sql string) string {
	t.Helper()
	// One line: psql reads a newline inside -c as the end of a command.
	sql = strings.Join(strings.Fields(sql), " ")
	return sshOut(t, host, fmt.Sprintf("cd / && runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d %s -c %q", db, sql))
}

// fingerprint is everything the headline plan could touch on both hosts:
// the files it edits, the PostgreSQL catalogs, the firewall, the services.
// Heartbeat rows change by themselves and are left out.
func fingerprint(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, h := range []string{"engine", "db"} {
		fmt.Fprintf(&b, "== %s\n", h)
		b.WriteString(sshOut(t, h, `
			for f in /etc/ovirt-engine/engine.conf.d/*.conf /etc/ovirt-engine/aaa/internal.properties \
			         /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/*.conf \
			         `+env["MIGRUN_E2E_PGDATA"]+`/postgresql.conf `+env["MIGRUN_E2E_PGDATA"]+`/pg_hba.conf; do
				[ -e "$f" ] && sha256sum "$f" && stat -c '%n %a %u:%g' "$f"
			done
			ls -la /var/tmp /etc/ovirt-engine/engine.conf.d 2>&1
			iptables -S
			for s in postgresql ovirt-engine ovirt-engine-dwhd ovirt-engine-notifier ovirt-fence-kdump-listener; do echo "$s $(systemctl is-active $s 2>&1)"; done
			cd / && runuser -u postgres -- psql -X -At -c "select datname, pg_get_userbyid(datdba), encoding, datcollate from pg_database order by 1" \
				-c "select rolname, rolcanlogin, coalesce(rolpassword,'') from pg_authid order by 1" \
				-c "select name, setting from pg_settings where source not in ('default','override') order by 1"
		`))
		b.WriteString("\n")
	}
	return b.String()
}

// tableCounts returns "table count" lines for the engine database's tables
// and sequences, without those the Manager's clients write all the time
// (clientTables, audit_log_seq, heartbeat's): their own -verify checks
// those.
func tableCounts(t *testing.T, host string) string {
	t.Helper()
	return psqlOn(t, host, "engine", `
		select string_agg(format('%s %s', c.relname,
		       (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text), E'\n' order by c.relname)
		from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where c.relkind = 'r' and n.nspname = 'public' and c.relname <> all (array['`+strings.Join(clientTables, "','")+`'])`) + "\n" +
		psqlOn(t, host, "engine", `select string_agg(format('%s %s', sequencename, coalesce(last_value, 0)), E'\n' order by sequencename) from pg_sequences where sequencename not like 'heartbeat%' and sequencename <> 'audit_log_seq'`)
}

// heartbeats counts the stand-in engine's heartbeat rows on a host.
func heartbeats(t *testing.T, host string) int {
	t.Helper()
	out, err := sshRun(host, `cd / && runuser -u postgres -- psql -X -At -d engine -c "select count(*) from heartbeat"`)
	if err != nil {
		return 0 // no table yet
	}
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// growing reports whether host's heartbeat count grows within a second.
func growing(t *testing.T, host string) bool {
	t.Helper()
	before := heartbeats(t, host)
	time.Sleep(1200 * time.Millisecond)
	return heartbeats(t, host) > before
}

func journalOf(t *testing.T, stateDir string) map[string]any {
	t.Helper()
	return planJournal(t, stateDir, "ovirt-engine-remote-db")
}

// failedRecords lists the journal's records of steps that did not end
// done or skipped, with their errors and output: what a failed round of a
// test that kills and resumes needs to be diagnosed after the fact.
func failedRecords(t *testing.T, stateDir string) string {
	t.Helper()
	j := journalOf(t, stateDir)
	var b strings.Builder
	for _, list := range []string{"steps", "on_failure"} {
		recs, _ := j[list].([]any)
		for _, r := range recs {
			rec, _ := r.(map[string]any)
			switch rec["status"] {
			case "done", "skipped", "pending", nil:
				continue
			}
			fmt.Fprintf(&b, "  %s %v: %v: %v\n    output: %v\n    ran: %v\n", list, rec["id"], rec["status"], rec["error"], rec["output"], rec["ran"])
		}
	}
	return b.String()
}

// assertMigrated checks the end state of a successful migration.
func assertMigrated(t *testing.T, stateDir, before string) {
	t.Helper()
	if got := tableCounts(t, "db"); got != before {
		t.Errorf("db's engine database differs from the source:\n%s\nwant\n%s", got, before)
	}
	conf := sshOut(t, "engine", "cat /etc/ovirt-engine/engine.conf.d/10-setup-database.conf")
	if !strings.Contains(conf, `ENGINE_DB_HOST="`+ip("db")+`"`) || !strings.Contains(conf, "jdbc:postgresql://"+ip("db")+":5432/engine") {
		t.Errorf("10-setup-database.conf does not point at db:\n%s", conf)
	}
	if !growing(t, "db") {
		t.Error("the engine's heartbeats do not land in the new database")
	}
	if growing(t, "engine") {
		t.Error("heartbeats still land in the old database")
	}
	if got := sshOut(t, "engine", "curl -s -o /dev/null -w '%{http_code}' http://localhost/ovirt-engine/services/health"); got != "200" {
		t.Errorf("health: %s", got)
	}
	if got := psqlOn(t, "db", "postgres", "show listen_addresses"); got != "*" {
		t.Errorf("listen_addresses = %q", got)
	}
	hba := sshOut(t, "db", "grep -n '^host' "+env["MIGRUN_E2E_PGDATA"]+"/pg_hba.conf")
	if !strings.HasPrefix(hba, "") || !strings.Contains(hba, ip("engine")+"/32") {
		t.Errorf("pg_hba.conf lacks the Manager's rule:\n%s", hba)
	}
	// 5432 is open to the Manager only.
	sshOut(t, "db", "iptables -C INPUT -p tcp -s "+ip("engine")+"/32 --dport 5432 -j ACCEPT")
	if c, err := net.DialTimeout("tcp", ip("db")+":5432", 2*time.Second); err == nil {
		c.Close()
		t.Error("the workstation reaches db:5432; only the Manager should")
	}
	if j := journalOf(t, stateDir); j["status"] != "completed" {
		t.Errorf("journal status %v", j["status"])
	}
	assertNoReplication(t)
	if got := psqlOn(t, "engine", "postgres", "select rolreplication from pg_roles where rolname = 'engine'"); got != "f" {
		t.Errorf("the engine role keeps REPLICATION on the old server: %q", got)
	}
}

// assertNoReplication: no slot or publication on the old server, no
// subscription on the new one (a forgotten slot fills the old disk).
func assertNoReplication(t *testing.T) {
	t.Helper()
	if got := psqlOn(t, "engine", "engine", "select (select count(*) from pg_replication_slots) || '/' || (select count(*) from pg_publication)"); got != "0/0" {
		t.Errorf("slots/publications left on the old server: %s", got)
	}
	if got := psqlOn(t, "db", "postgres", "select count(*) from pg_subscription"); got != "0" {
		t.Errorf("subscriptions left on the new server: %s", got)
	}
}

func TestHeadlineDryRunChangesNothing(t *testing.T) {
	resetHosts(t)
	enginePassword(t)
	before := fingerprint(t)
	state := t.TempDir()
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"plan", "--state-dir", state}, headlineVars()...)...)
	if res.code != 0 {
		t.Fatalf("plan: exit %d", res.code)
	}
	for _, id := range []string{"db-settings", "db-hba", "db-firewall", "db-role", "db-database", "stop-engine", "dump", "copy-dump", "restore", "verify", "repoint-engine", "repoint-aaa", "start-engine", "wait-engine", "start-engine-on-old-db"} {
		if !strings.Contains(res.out, " "+id+" ") {
			t.Errorf("the dry run does not show step %s", id)
		}
	}
	if strings.Contains(res.out, enginePassword(t)) {
		t.Error("the dry run printed the password")
	}
	if after := fingerprint(t); after != before {
		t.Errorf("the dry run changed the hosts:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("the dry run wrote into the state dir: %v", entries)
	}
}

// watchSecrets scans every process's argv and environment on this
// machine (the hosts' processes included: their PID namespaces are
// children of ours) for the secret until stop is closed. skip are pids
// allowed to hold it in their environment (migrun itself reads it there).
func watchSecrets(secretValue string, skip func(pid int) bool, stop <-chan struct{}) <-chan string {
	found := make(chan string, 1)
	ourNet, _ := os.Readlink("/proc/self/ns/net")
	go func() {
		defer close(found)
		for {
			select {
			case <-stop:
				return
			default:
			}
			procs, _ := filepath.Glob("/proc/[0-9]*")
			for _, p := range procs {
				pid, _ := strconv.Atoi(filepath.Base(p))
				if pid == os.Getpid() || skip(pid) {
					continue
				}
				// Everyone's argv; the environment of the hosts' processes
				// (the workstation's migruns read the secret from theirs).
				files := []string{"cmdline"}
				if ns, err := os.Readlink(filepath.Join(p, "ns", "net")); err == nil && ns != ourNet {
					files = append(files, "environ")
				}
				for _, f := range files {
					b, err := os.ReadFile(filepath.Join(p, f))
					if err == nil && bytes.Contains(b, []byte(secretValue)) {
						found <- fmt.Sprintf("pid %d %s: %q", pid, f, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
						return
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return found
}

// startMigrun starts an apply in the background with JSON events on a
// channel.
func startMigrun(t *testing.T, args ...string) (*exec.Cmd, <-chan map[string]any, *bytes.Buffer) {
	t.Helper()
	return startMigrunAs(t, nil, args...)
}

// startMigrunAs is startMigrun through a command prefix (see asWorkstation).
func startMigrunAs(t *testing.T, prefix []string, args ...string) (*exec.Cmd, <-chan map[string]any, *bytes.Buffer) {
	t.Helper()
	argv := append(append(append(append([]string{}, prefix...), migrun), args...),
		"--output", "json",
		"--known-hosts", env["MIGRUN_E2E_KNOWN_HOSTS"], "--identity", env["MIGRUN_E2E_IDENTITY"],
		"--ssh-config", "none", headlinePlan())
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan map[string]any, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
	}()
	return cmd, events, &stderr
}

// TestHeadlineApplyMigrates moves the engine database of the faithful
// stand-in Manager (tables without a primary key updated all the time, four
// clients writing) both ways: by logical replication with PostgreSQL 13's
// defaults (passwords stored as md5 on both servers), and with pg_dump and
// pg_restore. No client's transaction may fail outside the planned
// windows, no write may be lost, every client ends on the new server, and
// the old database's replica identities are as they were.
//
// The third run follows a rehearsal: what the first left in db's /var/tmp
// is put back on fresh hosts, a cluster initialised again as after a
// rehearsal, where the new engine database gets the same OID. Its markers
// are another run's and another server's: the run copies everything.
func TestHeadlineApplyMigrates(t *testing.T) {
	var rehearsal map[string][]byte
	t.Run("replicate, md5", func(t *testing.T) {
		t.Setenv("MIGRUN_E2E_PASSWORD_ENCRYPTION", "md5")
		applyMigrates(t, migration{method: "replicate=true", restart: "old-db-logical-wal"})
		rehearsal = markersOn(t, "db")
	})
	t.Run("dump, hosted engine", func(t *testing.T) { applyMigrates(t, migration{method: "replicate=false", hostedEngine: true}) })
	t.Run("replicate after a rehearsal, old server retired", func(t *testing.T) {
		if len(rehearsal) == 0 {
			t.Fatal("the rehearsal left no marker on db")
		}
		applyMigrates(t, migration{method: "replicate=true", restart: "old-db-logical-wal", leftover: rehearsal, retire: true})
		after := markersOn(t, "db")
		for name, old := range rehearsal {
			var was, now struct {
				RunID string `json:"run_id"`
				OID   int64  `json:"database_oid"`
			}
			_ = json.Unmarshal(old, &was)
			_ = json.Unmarshal(after[name], &now)
			if now.RunID == "" || now.RunID == was.RunID {
				t.Errorf("%s: run %q after the rehearsal's %q", name, now.RunID, was.RunID)
			}
			t.Logf("%s: the rehearsal's target had OID %d, this run's %d", name, was.OID, now.OID)
		}
	})
}

// markersOn reads the migrun markers in host's /var/tmp.
func markersOn(t *testing.T, host string) map[string][]byte {
	t.Helper()
	dir := filepath.Join(env["MIGRUN_E2E_"+strings.ToUpper(host)+"_DIR"], "fs/var/tmp")
	files, _ := filepath.Glob(filepath.Join(dir, "migrun-pg_*"))
	m := map[string][]byte{}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			m[filepath.Base(f)] = b
		}
	}
	return m
}

// migration is one run of applyMigrates.
type migration struct {
	method string // "replicate=true" or "replicate=false"
	// restart names the step whose restart of the old server is a planned
	// window of client failures ("" for none).
	restart      string
	leftover     map[string][]byte // files put in db's /var/tmp first
	hostedEngine bool              // the Manager is a hosted engine
	retire       bool              // retire_old_db=true
}

// applyMigrates runs the headline plan on fresh hosts as m says.
func applyMigrates(t *testing.T, m migration) {
	method, restart, leftover, hostedEngine := m.method, m.restart, m.leftover, m.hostedEngine
	resetHosts(t)
	vars := headlineVars()
	if hostedEngine {
		vars = append(vars, deployHostedEngine(t)...)
	}
	if m.retire {
		vars = append(vars, "--var", "retire_old_db=true")
	}
	for name, b := range leftover {
		if err := os.WriteFile(filepath.Join(env["MIGRUN_E2E_DB_DIR"], "fs/var/tmp", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pw := enginePassword(t)
	if !growing(t, "engine") {
		t.Fatal("the stand-in engine does not write heartbeats before the migration")
	}
	identitiesBefore := replicaIdentities(t, "engine")
	since := time.Now()
	state := t.TempDir()
	var migrunPID int
	var mu sync.Mutex
	stop := make(chan struct{})
	leaks := watchSecrets(pw, func(pid int) bool { mu.Lock(); defer mu.Unlock(); return pid == migrunPID }, stop)

	cmd, events, stderr := startMigrun(t, append([]string{"apply", "--yes", "--state-dir", state, "--var", method}, vars...)...)
	mu.Lock()
	migrunPID = cmd.Process.Pid
	mu.Unlock()

	// A second apply of the same plan while the first runs is refused.
	var out bytes.Buffer
	for e := range events {
		b, _ := json.Marshal(e)
		out.Write(append(b, '\n'))
		if e["type"] == "step_start" && e["step"] == "db-settings" {
			res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"apply", "--yes", "--state-dir", state}, vars...)...)
			if res.code != 3 || !strings.Contains(res.out, "another migrun is running") {
				t.Errorf("concurrent apply: exit %d, want 3 and the lock named", res.code)
			}
		}
	}
	err := cmd.Wait()
	close(stop)
	if leak := <-leaks; leak != "" {
		t.Errorf("the password appeared in a process list: %s", leak)
	}
	t.Logf("apply events:\n%s%s", indent(out.String()), indent(stderr.String()))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if strings.Contains(out.String()+stderr.String(), pw) {
		t.Error("migrun's output holds the password")
	}
	if b, _ := os.ReadFile(filepath.Join(state, "ovirt-engine-remote-db.journal.json")); bytes.Contains(b, []byte(pw)) {
		t.Error("the journal holds the password")
	}
	// The DWH's and Keycloak's passwords, which migrun read on the Manager.
	journal, _ := os.ReadFile(filepath.Join(state, "ovirt-engine-remote-db.journal.json"))
	for _, f := range []string{"MIGRUN_E2E_DWH_DB_PASSWORD_FILE", "MIGRUN_E2E_KEYCLOAK_DB_PASSWORD_FILE", "MIGRUN_E2E_GRAFANA_DB_PASSWORD_FILE"} {
		b, err := os.ReadFile(env[f])
		if p := strings.TrimSpace(string(b)); err != nil || p == "" {
			t.Errorf("%s: %v", f, err)
		} else if strings.Contains(out.String()+stderr.String()+string(journal), p) {
			t.Errorf("migrun's output or journal holds the password in %s", env[f])
		}
	}

	if m.retire {
		// Stopped and disabled; its data kept: started again for the
		// comparisons below.
		if got := sshOut(t, "engine", "systemctl is-active postgresql; systemctl is-enabled postgresql; true"); got != "inactive\ndisabled" {
			t.Errorf("the old server after retire_old_db: %q, want inactive and disabled", got)
		}
		sshOut(t, "engine", "systemctl start postgresql")
	}
	before := tableCounts(t, "engine")
	assertMigrated(t, state, before)

	// The Manager as a whole moved, and nothing any client wrote was lost.
	var planned []window
	if restart != "" {
		planned = append(planned, stepWindow(t, state, restart))
	}
	assertNoClientFailures(t, since, planned...)
	if hostedEngine {
		assertGlobalMaintenance(t, since)
	}
	assertClientsOn(t, "db")
	verifyClients(t)
	if got := replicaIdentities(t, "engine"); got != identitiesBefore {
		t.Errorf("replica identities on the old server after the move:\n%s\nwant as before:\n%s", got, identitiesBefore)
	}
	if got := replicaIdentities(t, "db"); got != identitiesBefore {
		t.Errorf("replica identities on the new server:\n%s\nwant as on the old:\n%s", got, identitiesBefore)
	}
	if os.Getenv("MIGRUN_E2E_PASSWORD_ENCRYPTION") == "md5" {
		if got := psqlOn(t, "db", "postgres", "select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = 'engine'"); got != "t" {
			t.Error("the engine role's password on the new server (password_encryption md5) is not stored as scram-sha-256, which its pg_hba rule asks for")
		}
	}

	// One-shot: a second apply is refused and changes nothing.
	fp := fingerprint(t)
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"apply", "--yes", "--state-dir", state, "--var", method}, vars...)...)
	if res.code != 3 || !strings.Contains(res.out, "already completed") {
		t.Errorf("second apply: exit %d, want 3", res.code)
	}
	if after := fingerprint(t); after != fp {
		t.Errorf("the refused apply changed the hosts")
	}

	// The run's report: the engine's downtime on the timeline, and none of
	// the passwords.
	page := filepath.Join(state, "report.html")
	res = runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"report", "--state-dir", state, "--out", page, "--var", method}, vars...)...)
	html, _ := os.ReadFile(page)
	if res.code != 0 || !bytes.Contains(html, []byte(`<svg id="timeline"`)) || !bytes.Contains(html, []byte("downtime of ovirt-engine on engine: ")) {
		t.Errorf("report: exit %d, want the timeline with the engine's downtime (%d bytes)", res.code, len(html))
	}
	if bytes.Contains(html, []byte(pw)) {
		t.Error("the report holds the password")
	}
}

// padEngineDB adds about mb MiB of incompressible rows, so the dump is big
// enough to interrupt its copy midway.
func padEngineDB(t *testing.T, mb int) {
	t.Helper()
	psqlOn(t, "engine", "engine", fmt.Sprintf(`
		create table pad (id serial primary key, b bytea);
		alter table pad owner to engine;
		insert into pad (b) select (select decode(string_agg(md5(random()::text || g::text || i::text), ''), 'hex') from generate_series(1, 65536) i) from generate_series(1, %d) g`, mb))
}

// TestHeadlineCrashResume kills migrun with SIGKILL right after every step
// boundary, in both ways the plan moves the data: by logical replication
// (the default), and by dump, copy and restore, where it also kills once
// in the middle of the copy. Each time apply --resume carries on, and the
// end state is that of an uninterrupted run.
func TestHeadlineCrashResume(t *testing.T) {
	t.Run("replicate", func(t *testing.T) { crashResume(t, "replicate=true") })
	t.Run("dump", func(t *testing.T) { crashResume(t, "replicate=false") })
}

func crashResume(t *testing.T, method string) {
	resetHosts(t)
	enginePassword(t)
	viaCopy := method == "replicate=false"
	padEngineDB(t, 48)
	state := t.TempDir()
	// The dump is a directory archive: it is copied as one stream into
	// engine.dump.migrun-part, which becomes engine.dump at the end.
	parts := filepath.Join(env["MIGRUN_E2E_DB_DIR"], "fs", "var", "tmp", "engine.dump.migrun-part", "*")
	var before string
	lastKill := "nothing"
	killedMidCopy := false
	for round := 0; round < 60; round++ {
		args := []string{"apply", "--yes", "--state-dir", state}
		if round > 0 {
			args = append(args, "--resume")
		}
		cmd, events, stderr := startMigrun(t, append(append(args, "--var", method), headlineVars()...)...)
		var killedAt string
		done := false
		for e := range events {
			switch {
			case viaCopy && e["type"] == "step_start" && e["step"] == "copy-dump" && !killedMidCopy && killedAt == "":
				// Kill once the part file holds a few MiB (the check
				// before the copy hashes the source first).
				deadline := time.Now().Add(60 * time.Second)
				for {
					if partBytes(parts) > 4<<20 {
						break
					}
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						t.Fatalf("the copy never wrote 4 MiB into %s", parts)
					}
					time.Sleep(5 * time.Millisecond)
				}
				cmd.Process.Signal(syscall.SIGKILL)
				killedMidCopy, killedAt = true, "copy-dump (midway)"
			case !viaCopy && e["type"] == "step_start" && e["step"] == "replicate-start" && !killedMidCopy && killedAt == "":
				// Kill once the subscription exists: during the initial
				// copy, which the resumed run waits for again.
				deadline := time.Now().Add(60 * time.Second)
				for psqlOn(t, "db", "postgres", "select count(*) from pg_subscription") != "1" {
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						t.Fatal("the subscription never appeared on db")
					}
					time.Sleep(5 * time.Millisecond)
				}
				cmd.Process.Signal(syscall.SIGKILL)
				killedMidCopy, killedAt = true, "replicate-start (subscribed, initial copy running)"
			case e["type"] == "step_end" && killedAt == "" && crashPoint(fmt.Sprint(e["step"])):
				if e["step"] == "stop-engine" {
					before = tableCounts(t, "engine") // the engine is stopped: the source is final
				}
				cmd.Process.Signal(syscall.SIGKILL)
				killedAt = fmt.Sprint(e["step"])
			case e["type"] == "run_end":
				done = e["status"] == "completed"
				if !done {
					cmd.Wait()
					t.Fatalf("round %d (resumed after a kill after %s): run ended %v: %v\n%s\nthe journal's failed steps:\n%s",
						round, lastKill, e["status"], e["error"], stderr, failedRecords(t, state))
				}
			}
		}
		werr := cmd.Wait()
		if done {
			t.Logf("completed after %d kills", round)
			break
		}
		if killedAt == "" {
			t.Fatalf("round %d: migrun exited (%v) without finishing or being killed\n%s", round, werr, stderr)
		}
		t.Logf("round %d: killed after %s", round, killedAt)
		lastKill = killedAt
	}
	if !killedMidCopy {
		t.Fatal("never killed during the copy")
	}
	j := journalOf(t, state)
	for _, s := range j["steps"].([]any) {
		rec := s.(map[string]any)
		if viaCopy && rec["id"] == "copy-dump" && !strings.Contains(fmt.Sprint(rec["output"]), "resumed from") && !strings.Contains(fmt.Sprint(rec["reason"]), "already done") {
			t.Errorf("the copy did not resume from the bytes already there: %v", rec)
		}
	}
	if before == "" {
		before = tableCounts(t, "engine")
	}
	assertMigrated(t, state, before)
}

// crashPoint tells whether crashResume kills migrun after step: after
// every step of the engine database's move, and of the DWH's and
// Keycloak's (the same kinds again) only after their replication's start
// and end, where a second database's state is in flight: a kill and a
// resume cost seconds, and the plan has 70 steps.
func crashPoint(step string) bool {
	switch step {
	case "replicate-start-dwh", "replicate-finish-keycloak", "restore-dwh", "stream-keycloak":
		return true
	}
	return !strings.HasSuffix(step, "-dwh") && !strings.HasSuffix(step, "-keycloak")
}

// partBytes is the size of the largest part file matching pattern.
func partBytes(pattern string) int64 {
	var most int64
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Size() > most {
			most = fi.Size()
		}
	}
	return most
}

// TestHeadlineFailureRollsBack: the copy of the schema fails (the target
// lacks a role the source grants to), in the restore of the dump or in
// the start of the replication; on_failure runs, the engine is back on
// the old database, writing heartbeats there, and no replication is left.
func TestHeadlineFailureRollsBack(t *testing.T) {
	t.Run("replicate", func(t *testing.T) { failureRollsBack(t, "replicate=true", "replicate-start") })
	t.Run("dump, hosted engine", func(t *testing.T) { failureRollsBack(t, "replicate=false", "restore") })
}

// failureRollsBack: with dump, in the downtime, the Manager is a hosted
// engine: its global maintenance is cleared by the rollback too.
func failureRollsBack(t *testing.T, method, failing string) {
	resetHosts(t)
	enginePassword(t)
	vars := headlineVars()
	hostedEngine := method == "replicate=false"
	if hostedEngine {
		vars = append(vars, deployHostedEngine(t)...)
	}
	psqlOn(t, "engine", "engine", "create role engine_reader; grant select on vm_static to engine_reader")
	pids := clientPIDs(t)
	state := t.TempDir()
	since := time.Now()
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"apply", "--yes", "--state-dir", state, "--var", method}, vars...)...)
	if res.code != 1 {
		t.Fatalf("apply: exit %d, want 1", res.code)
	}
	if !strings.Contains(res.out, "engine_reader") {
		t.Errorf("the failure does not name the missing role")
	}
	if hostedEngine {
		assertGlobalMaintenance(t, since)
	}
	j := journalOf(t, state)
	if j["failed_step"] != failing || j["status"] != "failed" {
		t.Errorf("journal: failed_step %v status %v, want %s", j["failed_step"], j["status"], failing)
	}
	assertNoReplication(t)
	conf := sshOut(t, "engine", "cat /etc/ovirt-engine/engine.conf.d/10-setup-database.conf")
	if !strings.Contains(conf, "jdbc:postgresql://localhost:5432/engine") {
		t.Errorf("the engine is not pointed at the old database:\n%s", conf)
	}
	if method == "replicate=true" {
		// The failure came before the downtime: the rollback leaves the
		// running clients alone (no restart, no outage).
		if got := clientPIDs(t); got != pids {
			t.Errorf("the rollback restarted clients that were running: pids %s, before %s", got, pids)
		}
	}
	// The rollback restarted the engine on the old database after "stop
	// engine" and "dump" were done: resuming past them is refused.
	res = runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"apply", "--yes", "--resume", "--state-dir", state, "--var", method}, vars...)...)
	if res.code != 3 || !strings.Contains(res.out, "--restart") {
		t.Errorf("resume after a rollback: exit %d, want 3 pointing at --restart", res.code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil && !growing(t, "engine") {
	}
	if ctx.Err() != nil {
		t.Error("no heartbeats land in the old database after the rollback")
	}
}

// TestHeadlinePointOfNoReturn: a step that fails after start-engine (here
// the DWH, whose config lacks DWH_DB_URL) leaves the engine on the new
// database, writing to it, instead of pointing it back at the old one and
// losing those writes; once the cause is fixed, --resume finishes the move.
func TestHeadlinePointOfNoReturn(t *testing.T) {
	resetHosts(t)
	enginePassword(t)
	conf := sshOut(t, "engine", "grep -l '^DWH_DB_URL=' /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/*.conf | head -1")
	line := sshOut(t, "engine", "grep '^DWH_DB_URL=' "+conf)
	sshOut(t, "engine", "sed -i '/^DWH_DB_URL=/d' "+conf)
	state := t.TempDir()
	// The DWH's history database stays where it is: moving it would
	// rewrite the DWH_DB_* keys and repair the configuration.
	args := append([]string{"apply", "--yes", "--state-dir", state, "--var", "move_dwh_db=false"}, headlineVars()...)
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), args...)
	if res.code != 1 {
		t.Fatalf("apply: exit %d, want 1", res.code)
	}
	if !strings.Contains(res.out, "Not running on_failure") || !strings.Contains(res.out, "--resume") {
		t.Errorf("the output does not say on_failure was skipped past the point of no return")
	}
	j := journalOf(t, state)
	if j["failed_step"] != "start-dwhd" || j["on_failure"] != nil {
		t.Errorf("journal: failed_step %v, on_failure %v; want start-dwhd and no rollback", j["failed_step"], j["on_failure"])
	}
	if !growing(t, "db") || growing(t, "engine") {
		t.Error("the engine does not keep writing to the new database after the failure")
	}
	st := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"status", "--state-dir", state, "--var", "move_dwh_db=false"}, headlineVars()...)...)
	if !strings.Contains(st.out, "past start-engine, the point of no return") || !strings.Contains(st.out, "--resume") {
		t.Errorf("status does not say why on_failure did not run and what comes next")
	}

	sshOut(t, "engine", "echo "+base64.StdEncoding.EncodeToString([]byte(line+"\n"))+" | base64 -d >> "+conf)
	res = runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append(args, "--resume")...)
	if res.code != 0 {
		t.Fatalf("resume after fixing the DWH config: exit %d", res.code)
	}
	if got := sshOut(t, "engine", "systemctl is-active ovirt-engine-dwhd"); got != "active" {
		t.Errorf("ovirt-engine-dwhd is %s after the resume", got)
	}
	assertMigrated(t, state, tableCounts(t, "engine"))
}

// TestHeadlineStreamMode: with stream=true the dump is piped into
// pg_restore on db (pg_stream) instead of dumped, copied and restored; the
// end state is the same, and no archive is left on either host.
func TestHeadlineStreamMode(t *testing.T) {
	resetHosts(t)
	enginePassword(t)
	state := t.TempDir()
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(),
		append([]string{"apply", "--yes", "--state-dir", state, "--var", "replicate=false", "--var", "stream=true"}, headlineVars()...)...)
	if res.code != 0 {
		t.Fatalf("apply with stream=true: exit %d", res.code)
	}
	for _, id := range []string{"dump", "copy-dump", "restore"} {
		if !strings.Contains(res.out, id) {
			t.Errorf("step %s not shown", id)
		}
	}
	before := tableCounts(t, "engine")
	assertMigrated(t, state, before)
	for _, h := range []string{"engine", "db"} {
		if out := sshOut(t, h, "ls /var/tmp/engine.dump 2>&1 || true"); !strings.Contains(out, "No such file") {
			t.Errorf("%s has an archive after a streamed move: %s", h, out)
		}
	}
}

// TestHeadlineCapture: with replicate=false capture=true the copy is made
// while the engine runs, its changes logged by triggers, and the downtime
// applies only those: every client's committed writes are on the new
// server, and no capture is left on either.
func TestHeadlineCapture(t *testing.T) {
	resetHosts(t)
	enginePassword(t)
	state := t.TempDir()
	since := psqlOn(t, "engine", "engine", "select now()")
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(),
		append([]string{"apply", "--yes", "--state-dir", state, "--var", "replicate=false", "--var", "capture=true"}, headlineVars()...)...)
	if res.code != 0 {
		t.Fatalf("apply with capture=true: exit %d", res.code)
	}
	// The engine went on writing to the old database while the capture
	// logged its changes and the copy was made (its role may not touch
	// the capture's schema: the trigger must not make it fail).
	gap := psqlOn(t, "engine", "engine", `select coalesce(max(d), 0) from (select extract(epoch from at - lag(at) over (order by at)) d
		from heartbeat where at > '`+since+`') g`)
	if g, err := strconv.ParseFloat(gap, 64); err != nil || g > 3 {
		t.Errorf("the engine's longest pause on the old database during the run: %s s, want under 3 (writes failing while captured?)", gap)
	}
	for _, s := range journalOf(t, state)["steps"].([]any) {
		rec := s.(map[string]any)
		if rec["id"] != "stop-engine" {
			continue
		}
		stop, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["started"]))
		last, perr := strconv.ParseFloat(psqlOn(t, "engine", "engine", "select extract(epoch from max(at)) from heartbeat"), 64)
		if err != nil || perr != nil {
			t.Fatalf("stop-engine started %v (%v), last heartbeat %v", rec["started"], err, perr)
		}
		if behind := stop.Sub(time.Unix(0, int64(last*1e9))); behind > 2*time.Second {
			t.Errorf("the engine's last write to the old database came %s before it was stopped (writes failing while captured?)", behind)
		}
	}
	for _, id := range []string{"capture-start", "copy-early", "capture-apply"} {
		if !strings.Contains(res.out, id) {
			t.Errorf("step %s not shown", id)
		}
	}
	for _, s := range journalOf(t, state)["steps"].([]any) {
		if rec := s.(map[string]any); rec["id"] == "capture-apply" && !strings.Contains(fmt.Sprint(rec["output"]), "logged changes applied to") {
			t.Errorf("capture-apply applied no logged change (the engine writes all the time): %v", rec["output"])
		}
	}
	before := tableCounts(t, "engine")
	assertMigrated(t, state, before)
	verifyClients(t)
	for _, h := range []string{"engine", "db"} {
		q := "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'migrun\\_capture\\_%'"
		if n := psqlOn(t, h, env["MIGRUN_E2E_ENGINE_DB_NAME"], q); n != "0" {
			t.Errorf("%s: %s capture schemas left", h, n)
		}
	}
}

// TestHeadlineBulkLoad: with bulk_load=true the new server restores with
// wal_level=minimal and ends on wal_level=replica, the engine writing to it
// after the second restart.
func TestHeadlineBulkLoad(t *testing.T) {
	resetHosts(t)
	enginePassword(t)
	state := t.TempDir()
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(),
		append(append([]string{"apply", "--yes", "--state-dir", state, "--var", "replicate=false", "--var", "bulk_load=true"}, engineDBOnly...), headlineVars()...)...)
	if res.code != 0 {
		t.Fatalf("apply with bulk_load=true: exit %d", res.code)
	}
	if !strings.Contains(res.out, "db-bulk-load") || !strings.Contains(res.out, "db-restart-replica-wal") {
		t.Error("the bulk-load steps did not run")
	}
	if got := psqlOn(t, "db", "postgres", "show wal_level"); got != "replica" {
		t.Errorf("wal_level after the move = %q, want replica", got)
	}
	before := tableCounts(t, "engine")
	assertMigrated(t, state, before)
}
