//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The stand-in Manager's database clients (e2e/standin/engine): each
// keeps its own account of the transactions it committed and of every
// failure, and can compare the database its configuration names with it.

// managerClients are the services on engine that use its databases (all
// but Grafana write to the engine database), in the order they are stopped
// for a check.
var managerClients = []string{"ovirt-engine", "ovirt-engine-dwhd", "ovirt-engine-notifier", "ovirt-fence-kdump-listener", "grafana-server"}

// clientTables are the engine database's tables the clients write to
// (and its sequences they advance): left out of whole-database
// comparisons after a move, since the clients go on writing there. The
// clients' own -verify covers them.
var clientTables = []string{"heartbeat", "audit_log", "vm_guest_agent_interfaces", "vm_host_pinning_map",
	"async_tasks_entities", "event_notification_hist", "dwh_history_timekeeping", "external_variable"}

type clientFailure struct {
	At    time.Time `json:"at"`
	Seq   int64     `json:"seq"`
	Error string    `json:"error"`
}

type clientAccount struct {
	Role      string          `json:"role"`
	Committed int64           `json:"committed"`
	Failed    int64           `json:"failed"`
	Failures  []clientFailure `json:"failures"`
	Database  string          `json:"database"`
}

// accountOf reads a client's account from engine's private
// /var/lib/ovirt-standin, which the workstation sees directly.
func accountOf(t *testing.T, role string) clientAccount {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env["MIGRUN_E2E_ENGINE_DIR"], "fs/var/lib/ovirt-standin", role+".json"))
	if err != nil {
		t.Fatalf("%s's account: %v", role, err)
	}
	var a clientAccount
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s's account: %v", role, err)
	}
	return a
}

// window is a span of time in which client failures are planned.
type window struct {
	why        string
	from, till time.Time
}

// stepWindow is the time a journal step ran, with slack for the clients'
// retry back-off (up to 2 s) after it.
func stepWindow(t *testing.T, state, step string) window {
	t.Helper()
	for _, s := range journalOf(t, state)["steps"].([]any) {
		m := s.(map[string]any)
		if m["id"] != step {
			continue
		}
		from, _ := time.Parse(time.RFC3339Nano, m["started"].(string))
		till, _ := time.Parse(time.RFC3339Nano, m["ended"].(string))
		return window{why: "step " + step, from: from.Add(-time.Second), till: till.Add(3 * time.Second)}
	}
	t.Fatalf("no step %s in the journal", step)
	return window{}
}

// assertNoClientFailures: no client's transaction failed since since,
// other than inside the planned windows.
func assertNoClientFailures(t *testing.T, since time.Time, planned ...window) {
	t.Helper()
	for _, role := range managerClients {
		a := accountOf(t, role)
		inWindows := 0
	next:
		for _, f := range a.Failures {
			if f.At.Before(since) {
				continue
			}
			for _, w := range planned {
				if !f.At.Before(w.from) && !f.At.After(w.till) {
					inWindows++
					continue next
				}
			}
			t.Errorf("%s: transaction %d failed at %s, outside the planned windows %v: %s", role, f.Seq, f.At.Format(time.RFC3339Nano), planned, f.Error)
		}
		t.Logf("%s: %d transactions committed in all; %d failed since the run began inside the planned windows", role, a.Committed, inWindows)
	}
}

// managerDatabases are the Manager's databases and the services that
// are their clients: the engine database's four, the DWH history
// database's (the DWH, and the engine's dashboards), Keycloak's (the
// Keycloak inside the engine).
var managerDatabases = []struct{ name, clients string }{
	{"engine", "ovirt-engine,ovirt-engine-dwhd,ovirt-engine-notifier,ovirt-fence-kdump-listener"},
	{"ovirt_engine_history", "grafana-server,ovirt-engine,ovirt-engine-dwhd"},
	{"ovirt_engine_keycloak", "ovirt-engine"},
}

// assertClientsOn: every client of each of the Manager's databases is
// connected to it on host's server, and none to the other's.
func assertClientsOn(t *testing.T, host string) {
	t.Helper()
	other := map[string]string{"engine": "db", "db": "engine"}[host]
	for _, d := range managerDatabases {
		q := "select coalesce(string_agg(distinct application_name, ',' order by application_name), '') from pg_stat_activity where (application_name like 'ovirt-%' or application_name = 'grafana-server') and datname = '" + d.name + "'"
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := psqlOn(t, host, "postgres", q)
			if got == d.clients {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("clients of %s connected to %s's server: %q, want %q", d.name, host, got, d.clients)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := psqlOn(t, other, "postgres", q); got != "" {
			t.Errorf("clients of %s still connected to %s's server: %s", d.name, other, got)
		}
	}
}

// verifyClients stops every client, then has each compare the database
// its configuration names with its own account: nothing it committed
// lost, nothing doubled. The clients are started again after.
func verifyClients(t *testing.T) {
	t.Helper()
	sshOut(t, "engine", "systemctl stop "+strings.Join(managerClients, " "))
	defer sshOut(t, "engine", "systemctl start "+strings.Join(managerClients, " "))
	for _, role := range managerClients {
		out, err := sshRun("engine", env["MIGRUN_E2E_STANDIN_BIN"]+"/"+role+" -log - -verify")
		out = strings.TrimSpace(out)
		if err != nil || !strings.Contains(out, ": ok on ") {
			t.Errorf("%s -verify: %v\n%s", role, err, out)
			continue
		}
		t.Logf("%s", out)
	}
}

// replicaIdentities lists the replica identity of every table of the
// engine database on host that has no primary key.
func replicaIdentities(t *testing.T, host string) string {
	t.Helper()
	var all []string
	for _, d := range managerDatabases {
		all = append(all, d.name+": "+replicaIdentitiesIn(t, host, d.name))
	}
	return strings.Join(all, "\n")
}

func replicaIdentitiesIn(t *testing.T, host, db string) string {
	t.Helper()
	return psqlOn(t, host, db, `select string_agg(c.relname || ' ' || c.relreplident::text || coalesce(':' || (select ic.relname from pg_index i join pg_class ic on ic.oid = i.indexrelid where i.indrelid = c.oid and i.indisreplident), ''), ', ' order by c.relname)
		from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where c.relkind = 'r' and n.nspname = 'public' and not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)`)
}

// TestHeadlineRefusesBeforeChange: what can be known before the first
// change refuses there. For each, the dry run shows the refusal, apply
// refuses before its first step, and neither host changed.
func TestHeadlineRefusesBeforeChange(t *testing.T) {
	resetHosts(t)
	pw := enginePassword(t)
	cases := []struct {
		name        string
		host, db    string
		setup, undo []string  // SQL (psql) on host in db, or
		shell       [2]string // a setup and an undo command on host
		want        string
		// allDBs runs the plan on the Manager's every database; the
		// others leave the DWH's and Keycloak's in place (a shorter run).
		allDBs bool
		vars   []string // more --var
	}{
		{name: "an unlogged table", host: "engine", db: "engine",
			setup: []string{"create unlogged table scratch (id int primary key);", "alter table scratch owner to engine;"},
			undo:  []string{"drop table scratch;"}, want: "1 unlogged table"},
		{name: "a large object", host: "engine", db: "engine",
			setup: []string{"select lo_from_bytea(0, 'attachment');"},
			undo:  []string{"select lo_unlink(oid) from pg_largeobject_metadata;"}, want: "1 large object"},
		{name: "a target that is not empty", host: "db", db: "postgres",
			setup: []string{"drop database if exists engine;", "create database engine;", "\\connect engine", "create table leftover (id int);"},
			undo:  []string{"drop database engine;"}, want: "the target database is not empty"},
		// The Manager's pg_dump older than the new server: engine-backup
		// could not back it up (a stand-in pg_dump first on the PATH).
		{name: "a Manager's pg_dump older than the new server", host: "engine",
			shell: [2]string{`printf '#!/bin/sh\necho "pg_dump (PostgreSQL) 13.9"\n' >/usr/local/sbin/pg_dump && chmod 0755 /usr/local/sbin/pg_dump`,
				"rm -f /usr/local/sbin/pg_dump"},
			want: "pg_dump on engine is version 13.9, older than the server's major version"},
		// Clients of the engine database the plan does not stop: an
		// administrator's psql left open on the Manager, and a client on
		// another host (a report), which would go on using the old
		// database.
		{name: "a psql left open on the Manager", host: "engine",
			shell: [2]string{`cd / && setsid -f runuser -u postgres -- psql -X -d engine -c 'select pg_sleep(600) as migrun_e2e_stray' </dev/null >/dev/null 2>&1 && sleep 1`,
				`pkill -f 'migrun_e2e_[s]tray'; true`},
			want: `, over the local socket) of `},
		{name: "a client on another host", host: "db",
			shell: [2]string{`cd / && PGPASSWORD='` + pw + `' setsid -f psql -X -h ` + ip("engine") + ` -U engine -d engine -c 'select pg_sleep(600) as migrun_e2e_stray' </dev/null >/dev/null 2>&1 && sleep 1`,
				`pkill -f 'migrun_e2e_[s]tray'; true`},
			want: "a client at " + ip("db") + " port "},
		// A client of the DWH history database the plan does not stop
		// (a Grafana the plan does not handle).
		{name: "a client of the DWH database", host: "engine", allDBs: true,
			shell: [2]string{`cd / && PGAPPNAME=grafana setsid -f runuser -u postgres -- psql -X -d ovirt_engine_history -c 'select pg_sleep(600) as migrun_e2e_stray' </dev/null >/dev/null 2>&1 && sleep 1`,
				`pkill -f 'migrun_e2e_[s]tray'; true`},
			want: `step old-dwh-db-clients-check on engine: check: engine: database ovirt_engine_history has 1 client outside the services this plan stops (ovirt-engine, ovirt-engine-dwhd, grafana-server): psql (pid `},
		// Retiring the Manager's PostgreSQL while a database stays on it:
		// the DWH's (move_dwh_db=false), or one that is not the Manager's.
		{name: "retiring a server that keeps the DWH's database", vars: []string{"--var", "retire_old_db=true"},
			want: "step old-db-retire-check-dwh on engine: check: engine: the server holds 1 database ovirt_engine_history besides engine, ovirt_engine_keycloak"},
		{name: "retiring a server that holds another database", host: "engine", db: "postgres", allDBs: true, vars: []string{"--var", "retire_old_db=true"},
			setup: []string{"create database reports;"}, undo: []string{"drop database reports;"},
			want: "step old-db-retire-check on engine: check: engine: the server holds 1 database reports besides engine, ovirt_engine_history, ovirt_engine_keycloak"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.shell[0] != "" {
				sshOut(t, tc.host, tc.shell[0])
				defer func() {
					sshOut(t, tc.host, tc.shell[1])
					// A backend outlives its killed client until its
					// statement ends: end the stray clients' here.
					psqlScript(t, "engine", "postgres", []string{"select pg_terminate_backend(pid) from pg_stat_activity where query like '%migrun_e2e_stray%' and pid <> pg_backend_pid();"})
				}()
			} else if tc.setup != nil {
				psqlScript(t, tc.host, tc.db, tc.setup)
				defer psqlScript(t, tc.host, tc.db, tc.undo)
			}
			before := fingerprint(t)
			state := t.TempDir()
			vars := headlineVars()
			if !tc.allDBs {
				vars = append(vars, "--var", "move_dwh_db=false", "--var", "move_keycloak_db=false")
			}
			vars = append(vars, tc.vars...)
			res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"plan", "--state-dir", state}, vars...)...)
			if res.code == 0 || !strings.Contains(res.out, tc.want) {
				t.Errorf("plan: exit %d, want non-zero naming %q", res.code, tc.want)
			}
			res = runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], headlinePlan(), append([]string{"apply", "--yes", "--state-dir", state}, vars...)...)
			if res.code != 3 || !strings.Contains(res.out, "refused before any change") || !strings.Contains(res.out, tc.want) {
				t.Errorf("apply: exit %d, want 3, a refusal before any change naming %q", res.code, tc.want)
			}
			if after := fingerprint(t); after != before {
				t.Errorf("the refused apply changed the hosts:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if entries, _ := os.ReadDir(state); len(entries) > 0 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Logf("state dir after the refusal: %v", names)
			}
		})
	}
}

// psqlScript runs lines of SQL (psql meta-commands allowed) as postgres
// in db on host.
func psqlScript(t *testing.T, host, db string, lines []string) {
	t.Helper()
	sshOut(t, host, "cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d "+db+" <<'SQL'\n"+strings.Join(lines, "\n")+"\nSQL")
}

// clientPIDs lists the clients' process ids (from their services' pid
// files), to tell whether something restarted them.
func clientPIDs(t *testing.T) string {
	t.Helper()
	var pids []string
	for _, role := range managerClients {
		b, err := os.ReadFile(filepath.Join(env["MIGRUN_E2E_ENGINE_DIR"], "state", role, "pid"))
		if err != nil {
			t.Fatalf("%s's pid file: %v", role, err)
		}
		pids = append(pids, role+"="+strings.TrimSpace(string(b)))
	}
	return strings.Join(pids, " ")
}
