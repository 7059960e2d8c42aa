//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The other shipped plans (plans/*.yaml), each applied for real against the
// test hosts as far as the hosts allow: engine-backup, engine-cleanup and
// engine-setup are the stand-ins of e2e/standin.

func shippedPlan(name string) string { return filepath.Join(repoRoot, "plans", name+".yaml") }

// applyPlan runs `migrun apply --yes` of a shipped plan with state in
// state; vars are name=value (--var), or flags such as --resume.
func applyPlan(t *testing.T, name, state string, vars ...string) runResult {
	t.Helper()
	args := []string{"apply", "--yes", "--state-dir", state}
	for _, v := range vars {
		if strings.HasPrefix(v, "--") {
			args = append(args, v) // a flag, e.g. --resume
			continue
		}
		args = append(args, "--var", v)
	}
	return runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], shippedPlan(name), args...)
}

// planJournal reads a plan's journal in state.
func planJournal(t *testing.T, state, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, name+".journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]any
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

func assertCompleted(t *testing.T, state, name string) {
	t.Helper()
	if j := planJournal(t, state, name); j["status"] != "completed" {
		t.Errorf("%s: journal status %v, want completed", name, j["status"])
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// backupToWorkstation applies plans/ovirt-engine-backup.yaml and returns
// the local copy of the archive.
func backupToWorkstation(t *testing.T) string {
	t.Helper()
	local := filepath.Join(t.TempDir(), "engine-backup.tar")
	state := t.TempDir()
	if res := applyPlan(t, "ovirt-engine-backup", state, "engine_host="+ip("engine"), "local_copy="+local); res.code != 0 {
		t.Fatalf("backup plan: exit %d", res.code)
	}
	assertCompleted(t, state, "ovirt-engine-backup")
	return local
}

// engineRunsOn checks that the engine answers its health URL and that its
// heartbeats land in the engine database on host.
func engineRunsOn(t *testing.T, host string) {
	t.Helper()
	waitHealth(t, "200")
	if !growing(t, host) {
		t.Errorf("the engine's heartbeats do not land in %s's engine database", host)
	}
}

func TestPlanEngineBackup(t *testing.T) {
	resetHosts(t)
	local := filepath.Join(t.TempDir(), "copy", "engine-backup.tar")
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	res := applyPlan(t, "ovirt-engine-backup", state, "engine_host="+ip("engine"), "local_copy="+local)
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	const archive = "/var/lib/ovirt-engine-backup/engine-backup.tar"
	list := "\n" + sshOut(t, "engine", "tar -tf "+archive) + "\n"
	for _, m := range []string{"./version", "./files", "./db/engine_backup.db", "./db/dwh_backup.db", "./db/keycloak_backup.db"} {
		if !strings.Contains(list, "\n"+m+"\n") {
			t.Errorf("the archive on engine lacks %s:%s", m, list)
		}
	}
	remote, _, _ := strings.Cut(sshOut(t, "engine", "sha256sum "+archive), " ")
	if got := fileSHA256(t, local); got != remote {
		t.Errorf("local copy sha256 %s, engine's archive %s", got, remote)
	}
	if fi, err := os.Stat(local); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("local copy mode %v, want 0600", fi.Mode().Perm())
	}
	assertCompleted(t, state, "ovirt-engine-backup")
	// The engine was never stopped.
	engineRunsOn(t, "engine")
}

func TestPlanRestoreOverwrite(t *testing.T) {
	resetHosts(t)
	local := backupToWorkstation(t)
	// A change after the backup, which the restore must undo.
	psqlOn(t, "engine", "engine", "insert into vm_static (vm_name, mem_size_mb, num_of_cpus, description) values ('after-backup', 512, 1, 'not in the backup')")
	if got := psqlOn(t, "engine", "engine", "select count(*) from vm_static"); got != "201" {
		t.Fatalf("vm_static rows after the insert: %s", got)
	}
	psqlOn(t, "engine", "ovirt_engine_keycloak", afterBackupUser)
	state := t.TempDir()
	res := applyPlan(t, "ovirt-restore-overwrite", state, "engine_host="+ip("engine"), "local_archive="+local)
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	if got := psqlOn(t, "engine", "engine", "select count(*) from vm_static"); got != "200" {
		t.Errorf("vm_static rows after the restore: %s, want 200 (the backup's)", got)
	}
	if got := psqlOn(t, "engine", "engine", "select count(*) from vm_static where vm_name = 'after-backup'"); got != "0" {
		t.Errorf("the row inserted after the backup survived the restore")
	}
	// The stand-in engine adds events of its own all the time.
	if got := psqlOn(t, "engine", "engine", "select count(*) from audit_log where message not like 'stand-in engine transaction %'"); got != "20000" {
		t.Errorf("audit_log rows after the restore, the stand-in engine's left out: %s, want 20000", got)
	}
	if got := psqlOn(t, "engine", "engine", "select tableowner from pg_tables where tablename = 'vm_static'"); got != "engine" {
		t.Errorf("vm_static owner %q after --restore-permissions, want engine", got)
	}
	assertKeycloakRestored(t, "ovirt_engine_keycloak")
	engineRunsOn(t, "engine")
	assertCompleted(t, state, "ovirt-restore-overwrite")
}

// afterBackupUser is a Keycloak user made after the backup, which a restore
// must undo.
const afterBackupUser = "insert into user_entity (id, enabled, username, realm_id) values ('after-backup', true, 'after-backup', 'ovirt-internal')"

// assertKeycloakRestored: Keycloak's database holds the backup's users,
// owned by owner (--restore-permissions or a provisioned database).
func assertKeycloakRestored(t *testing.T, owner string) {
	t.Helper()
	if got := psqlOn(t, "engine", "ovirt_engine_keycloak", "select count(*), count(*) filter (where username = 'after-backup') from user_entity"); got != "201|0" {
		t.Errorf("Keycloak's users after the restore (all, made after the backup): %s, want 201|0", got)
	}
	if got := psqlOn(t, "engine", "ovirt_engine_keycloak", "select tableowner from pg_tables where tablename = 'user_entity'"); got != owner {
		t.Errorf("user_entity owner %q, want %s", got, owner)
	}
}

// connectedAs lists "database user" of the client connections on engine's
// server.
func connectedAs(t *testing.T) string {
	t.Helper()
	return psqlOn(t, "engine", "postgres", "select string_agg(distinct datname || ' ' || usename, ', ' order by datname || ' ' || usename) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()")
}

// TestPlanRestoreNewCredentials restores onto a Manager whose three
// databases' owners (and Grafana's role) have passwords other than the backup's (its own
// configuration says which): the restore is given every database's, the
// engine's copy of the DWH settings is repointed, and every client logs in.
// An installed engine-backup older than Keycloak's options (4.5.0) is
// refused before any change.
func TestPlanRestoreNewCredentials(t *testing.T) {
	resetHosts(t)
	local := backupToWorkstation(t)
	psqlOn(t, "engine", "engine", "insert into vm_static (vm_name, mem_size_mb, num_of_cpus) values ('after-backup', 512, 1)")
	// New credentials for the same local database: the owner gets a new
	// password, which the restore writes into the engine's config.
	newPW := "n3w:pw$" + uniq(t)
	t.Setenv("ENGINE_DB_PASSWORD", newPW)
	vars := []string{"engine_host=" + ip("engine"), "db_host=localhost", "db_admin_host=" + ip("engine"),
		"local_archive=" + local, "set_password=true"}
	state := t.TempDir()

	// The installed system's DWH and Keycloak owners have passwords of
	// their own, in its configuration; the backup's files carry others.
	dwhPW, kcPW, grafanaPW := "dwh-"+uniq(t), "kc-"+uniq(t), "gr-"+uniq(t)
	psqlOn(t, "engine", "postgres", "alter role ovirt_engine_history password '"+dwhPW+"'")
	psqlOn(t, "engine", "postgres", "alter role ovirt_engine_keycloak password '"+kcPW+"'")
	psqlOn(t, "engine", "postgres", "alter role ovirt_engine_history_grafana password '"+grafanaPW+"'")
	sshOut(t, "engine", `sed -i 's/^GRAFANA_DB_PASSWORD=.*/GRAFANA_DB_PASSWORD="`+grafanaPW+`"/' /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-grafana-database.conf && `+
		`sed -i "s/^    password: .*/    password: '`+grafanaPW+`'/" /etc/grafana/conf/provisioning/datasources/ovirt-dwh.yaml`)
	sshOut(t, "engine", `sed -i 's/^DWH_DB_PASSWORD=.*/DWH_DB_PASSWORD="`+dwhPW+`"/' /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-database.conf /etc/ovirt-engine/engine.conf.d/10-setup-dwh-database.conf && `+
		`sed -i 's/^KEYCLOAK_DB_PASSWORD=.*/KEYCLOAK_DB_PASSWORD="`+kcPW+`"/' /etc/ovirt-engine/engine.conf.d/12-setup-keycloak.conf`)
	psqlOn(t, "engine", "ovirt_engine_keycloak", afterBackupUser)

	// engine-backup 4.5.0 has no --keycloak-db-* options: refused before
	// any change.
	rpmDB := filepath.Join(env["MIGRUN_E2E_ENGINE_DIR"], "fs/usr/local/sbin/rpm-standin.db")
	rpmWas, err := os.ReadFile(rpmDB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rpmDB, []byte("ovirt-engine 4.5.0 1.el9 noarch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fp := fingerprint(t)
	res := applyPlan(t, "ovirt-restore-new-credentials", t.TempDir(), vars...)
	if res.code != 3 || !strings.Contains(res.out, "refused before any change") || !strings.Contains(res.out, "change_keycloak_db_credentials") || !strings.Contains(res.out, "4.5.1") {
		t.Errorf("apply with engine-backup 4.5.0: exit %d, want 3, refused naming change_keycloak_db_credentials and 4.5.1", res.code)
	}
	if got := fingerprint(t); got != fp {
		t.Errorf("the refused apply changed the hosts")
	}
	if err := os.WriteFile(rpmDB, rpmWas, 0o644); err != nil {
		t.Fatal(err)
	}

	// The files come back from the archive (scope all) before
	// engine-backup rewrites them: a missing aaa/internal.properties is
	// restored, then rewritten with the new credentials.
	sshOut(t, "engine", "rm /etc/ovirt-engine/aaa/internal.properties")
	res = applyPlan(t, "ovirt-restore-new-credentials", state, vars...)
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	for _, pw := range []string{newPW, dwhPW, kcPW, grafanaPW} {
		if strings.Contains(res.out, pw) {
			t.Errorf("migrun's output holds a password (%s...)", pw[:4])
		}
	}
	conf := sshOut(t, "engine", "cat /etc/ovirt-engine/engine.conf.d/10-setup-database.conf")
	esc := strings.ReplaceAll(newPW, "$", `\$`)
	for _, want := range []string{
		`ENGINE_DB_HOST="localhost"`,
		`ENGINE_DB_PORT="5432"`,
		`ENGINE_DB_USER="engine"`,
		`ENGINE_DB_DATABASE="engine"`,
		`ENGINE_DB_PASSWORD="` + esc + `"`,
		`ENGINE_DB_URL="jdbc:postgresql://localhost:5432/engine?sslfactory=org.postgresql.ssl.NonValidatingFactory"`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("10-setup-database.conf lacks %s:\n%s", want, conf)
		}
	}
	if got := sshOut(t, "engine", "grep '^config.datasource.dbpassword=' /etc/ovirt-engine/aaa/internal.properties"); got != "config.datasource.dbpassword="+newPW {
		t.Errorf("internal.properties: %q, want the new password", got)
	}
	if got := psqlOn(t, "engine", "engine", "select count(*) from vm_static"); got != "200" {
		t.Errorf("vm_static rows after the restore: %s, want 200", got)
	}
	// The DWH's and Keycloak's settings hold the installed system's
	// passwords again: the DWH's own (both keys), the engine's copy,
	// Keycloak's.
	for file, want := range map[string]string{
		"/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-database.conf":         `DWH_DB_PASSWORD="` + dwhPW + `"`,
		"/etc/ovirt-engine/engine.conf.d/10-setup-dwh-database.conf":                    `DWH_DB_PASSWORD="` + dwhPW + `"`,
		"/etc/ovirt-engine/engine.conf.d/12-setup-keycloak.conf":                        `KEYCLOAK_DB_PASSWORD="` + kcPW + `"`,
		"/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-grafana-database.conf": `GRAFANA_DB_PASSWORD="` + grafanaPW + `"`,
		"/etc/grafana/conf/provisioning/datasources/ovirt-dwh.yaml":                     `    password: '` + grafanaPW + `'`,
	} {
		if got := sshOut(t, "engine", "cat "+file); !strings.Contains(got, want) {
			t.Errorf("%s lacks %s:\n%s", file, want, got)
		}
	}
	if got := sshOut(t, "engine", "grep '^ENGINE_DB_PASSWORD=' /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-database.conf"); got != `ENGINE_DB_PASSWORD="`+esc+`"` {
		t.Errorf("the DWH's engine password: %q", got)
	}
	assertKeycloakRestored(t, "ovirt_engine_keycloak")
	// Every client logs in with the new passwords: the engine (its own
	// database, Keycloak's, the DWH's for its dashboards) and the DWH.
	engineRunsOn(t, "engine")
	deadline := time.Now().Add(20 * time.Second)
	want := "engine engine, ovirt_engine_history ovirt_engine_history, ovirt_engine_history ovirt_engine_history_grafana, ovirt_engine_keycloak ovirt_engine_keycloak"
	for got := connectedAs(t); got != want; got = connectedAs(t) {
		if time.Now().After(deadline) {
			t.Errorf("connected to engine's server: %q, want %q", got, want)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	assertCompleted(t, state, "ovirt-restore-new-credentials")
	// No passfile is left behind on engine.
	if out := sshOut(t, "engine", "ls /tmp | grep '^migrun-.*\\.pass$' || true"); out != "" {
		t.Errorf("passfiles left in engine's /tmp: %s", out)
	}
}

func TestPlanRestoreFreshInstall(t *testing.T) {
	resetHosts(t)
	local := backupToWorkstation(t)
	before := tableCounts(t, "engine")
	// The seeded samples: the stand-in DWH adds its own (host_id
	// md5('standin')) all the time.
	const seeded = "select count(*) from host_samples_history where host_id <> md5('standin')::uuid"
	dwhBefore := psqlOn(t, "engine", "ovirt_engine_history", seeded)
	// A Manager as the packages leave it before engine-setup: no databases,
	// no roles, no setup config.
	sshOut(t, "engine", "systemctl stop ovirt-engine ovirt-engine-dwhd")
	psqlOn(t, "engine", "postgres", "drop database engine with (force)")
	psqlOn(t, "engine", "postgres", "drop database ovirt_engine_history with (force)")
	psqlOn(t, "engine", "postgres", "drop database ovirt_engine_keycloak with (force)")
	psqlOn(t, "engine", "postgres", "drop role engine")
	psqlOn(t, "engine", "postgres", "drop role ovirt_engine_history")
	psqlOn(t, "engine", "postgres", "drop role ovirt_engine_keycloak")
	sshOut(t, "engine", "rm -f /etc/ovirt-engine/engine.conf.d/1[02]-setup-*.conf /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-database.conf")

	state := t.TempDir()
	res := applyPlan(t, "ovirt-restore-fresh-install", state, "engine_host="+ip("engine"), "local_archive="+local)
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	if got := tableCounts(t, "engine"); got != before {
		t.Errorf("the provisioned engine database differs from the backed-up one:\n%s\nwant\n%s", got, before)
	}
	if got := psqlOn(t, "engine", "postgres", "select pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) || ' ' || datcollate from pg_database where datname = 'engine'"); got != "engine UTF8 en_US.UTF-8" {
		t.Errorf("provisioned engine database: %q", got)
	}
	if got := psqlOn(t, "engine", "ovirt_engine_history", seeded); got != dwhBefore {
		t.Errorf("provisioned DWH database: %s host_samples_history rows, want %s", got, dwhBefore)
	}
	assertKeycloakRestored(t, "ovirt_engine_keycloak")
	sshOut(t, "engine", "test -e /etc/ovirt-engine/engine.conf.d/10-setup-database.conf")
	engineRunsOn(t, "engine")
	assertCompleted(t, state, "ovirt-restore-fresh-install")
}

// remotePostgresVars are headlineVars' values as the plan's vars.
func remotePostgresVars() []string {
	return []string{
		"engine_host=" + ip("engine"),
		"db_host=" + ip("db"),
		"engine_ip=" + ip("engine"),
		"pg_data=" + env["MIGRUN_E2E_PGDATA"],
		"install_packages=false",
	}
}

func TestPlanRemotePostgreSQL(t *testing.T) {
	resetHosts(t)
	enginePassword(t)
	state := t.TempDir()
	if res := applyPlan(t, "ovirt-remote-postgresql", state, remotePostgresVars()...); res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	assertRemotePostgres(t)
	assertCompleted(t, state, "ovirt-remote-postgresql")

	// One-shot: a second apply is refused and changes nothing.
	fp := fingerprint(t)
	res := applyPlan(t, "ovirt-remote-postgresql", state, remotePostgresVars()...)
	if res.code != 3 || !strings.Contains(res.out, "already completed") {
		t.Errorf("second apply: exit %d, want 3 (already completed)", res.code)
	}
	if after := fingerprint(t); after != fp {
		t.Error("the refused apply changed the hosts")
	}
}

// assertRemotePostgres checks db as plans/ovirt-remote-postgresql.yaml
// leaves it.
func assertRemotePostgres(t *testing.T) {
	t.Helper()
	if got := psqlOn(t, "db", "postgres", "select rolcanlogin from pg_roles where rolname = 'engine'"); got != "t" {
		t.Errorf("db: engine role login %q", got)
	}
	if got := psqlOn(t, "db", "postgres", "select pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) || ' ' || datcollate || ' ' || datctype from pg_database where datname = 'engine'"); got != "engine UTF8 en_US.UTF-8 en_US.UTF-8" {
		t.Errorf("db: engine database %q", got)
	}
	if got := psqlOn(t, "db", "engine", "select count(*) from pg_extension where extname = 'uuid-ossp'"); got != "1" {
		t.Errorf("db: uuid-ossp in engine: %s", got)
	}
	if got := psqlOn(t, "db", "engine", "show lc_messages"); got != "en_US.UTF-8" {
		t.Errorf("db: engine's lc_messages %q", got)
	}
	if got := psqlOn(t, "db", "postgres", "show listen_addresses"); got != "*" {
		t.Errorf("db: listen_addresses %q", got)
	}
	if got := psqlOn(t, "db", "postgres", "show max_connections"); got != "150" {
		t.Errorf("db: max_connections %q", got)
	}
	hba := sshOut(t, "db", "grep -E '^host[[:space:]]+engine[[:space:]]+engine[[:space:]]+"+strings.ReplaceAll(ip("engine"), ".", `\.`)+"/32[[:space:]]+scram-sha-256' "+env["MIGRUN_E2E_PGDATA"]+"/pg_hba.conf || true")
	if hba == "" {
		t.Errorf("db: pg_hba.conf lacks the Manager's rule:\n%s", sshOut(t, "db", "grep -v '^#' "+env["MIGRUN_E2E_PGDATA"]+"/pg_hba.conf | grep ."))
	}
	sshOut(t, "db", "iptables -C INPUT -p tcp -s "+ip("engine")+"/32 --dport 5432 -j ACCEPT")
	if got := sshOut(t, "db", "grep -c -- '-s "+ip("engine")+"/32 .*--dport 5432 -j ACCEPT' /etc/iptables/rules.v4 || true"); got == "0" || got == "" {
		t.Error("db: the ACCEPT rule is not saved in /etc/iptables/rules.v4")
	}
	// The Manager logs in over the network as the engine will.
	if got := sshOut(t, "engine", "cd / && read -r PGPASSWORD <<'EOF'\n"+readEnginePassword(t)+"\nEOF\nexport PGPASSWORD; psql -X -At -w -h "+ip("db")+" -U engine -d engine -c 'select 1'"); got != "1" {
		t.Errorf("engine's login to db as engine: %q", got)
	}
}

func readEnginePassword(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(env["MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestPlanPostgresMove(t *testing.T) {
	resetHosts(t)
	pw := enginePassword(t)
	// db as a fresh server neither listens on the network nor admits the
	// Manager: prepare it with the remote PostgreSQL plan first (it
	// creates the role and the empty database the move then finds).
	prep := t.TempDir()
	if res := applyPlan(t, "ovirt-remote-postgresql", prep, remotePostgresVars()...); res.code != 0 {
		t.Fatalf("ovirt-remote-postgresql: exit %d", res.code)
	}
	// The generic plan moves one application's database and stops that
	// application only: the Manager's other clients of it are not its
	// business (pg_verify would catch their writes after the dump).
	sshOut(t, "engine", "systemctl stop ovirt-engine-dwhd ovirt-engine-notifier ovirt-fence-kdump-listener")
	before := tableCounts(t, "engine")

	t.Setenv("APP_DB_PASSWORD", pw)
	const suffix = ":5432/engine?sslfactory=org.postgresql.ssl.NonValidatingFactory"
	conf := "/etc/ovirt-engine/engine.conf.d/10-setup-database.conf"
	state := t.TempDir()
	res := applyPlan(t, "postgres-move", state,
		"app_host="+ip("engine"), "db_host="+ip("db"),
		"app_service=ovirt-engine", "app_config="+conf,
		"app_config_regexp=^ENGINE_DB_URL=",
		`app_config_line=ENGINE_DB_URL="jdbc:postgresql://`+ip("db")+suffix+`"`,
		`old_config_line=ENGINE_DB_URL="jdbc:postgresql://localhost`+suffix+`"`,
		"db_name=engine", "db_owner=engine")
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	if strings.Contains(res.out, pw) {
		t.Error("migrun's output holds the password")
	}
	if got := tableCounts(t, "db"); got != before {
		t.Errorf("db's engine database differs from the source:\n%s\nwant\n%s", got, before)
	}
	if got := sshOut(t, "engine", "grep ^ENGINE_DB_URL= "+conf); got != `ENGINE_DB_URL="jdbc:postgresql://`+ip("db")+suffix+`"` {
		t.Errorf("%s: %s", conf, got)
	}
	if got := sshOut(t, "engine", "grep -c ^ENGINE_DB_URL= "+conf); got != "1" {
		t.Errorf("%s has %s ENGINE_DB_URL lines", conf, got)
	}
	engineRunsOn(t, "db")
	if growing(t, "engine") {
		t.Error("heartbeats still land in engine's own database")
	}
	if got := psqlOn(t, "db", "engine", "select tableowner from pg_tables where tablename = 'vm_static'"); got != "engine" {
		t.Errorf("db: vm_static owner %q, want engine", got)
	}
	assertCompleted(t, state, "postgres-move")
	// The old database is kept.
	if got := psqlOn(t, "engine", "engine", "select count(*) from vm_static"); got != "200" {
		t.Errorf("the old database's vm_static: %s rows", got)
	}
}
