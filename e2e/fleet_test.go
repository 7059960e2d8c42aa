//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/pgtest"
)

// fleetPairs is how many pairs of hosts the fleet test brings up.
const fleetPairs = 4

// fleetPlan moves the database appdb from mN to dN: a role and database on
// dN, a dump, its copy between the hosts, the restore, a verification, the
// port opened to mN in dN's iptables, and mN's config pointed at dN.
const fleetPlan = `version: 1
name: fleet-move
vars:
  m_host: m.example.com
  d_host: d.example.com
secrets:
  app_pw: {env: FLEET_APP_PW}
hosts:
  m: {address: "${m_host}", user: root}
  d: {address: "${d_host}", user: root}
steps:
  - id: role
    host: d
    pg_role: {name: app, password: "${app_pw}"}
  - id: database
    host: d
    pg_database: {name: appdb, owner: app}
  - id: dump
    host: m
    pg_dump: {database: appdb, file: /var/tmp/appdb.dump}
  - id: copy
    copy: {from: "m:/var/tmp/appdb.dump", to: "d:/var/tmp/appdb.dump", mode: "0600", owner: postgres}
  - id: restore
    host: d
    pg_restore: {database: appdb, file: /var/tmp/appdb.dump}
  - id: verify
    pg_verify:
      source: {host: m, database: appdb}
      target: {host: d, database: appdb}
  - id: open-port
    host: d
    firewall: {port: 5432, source: "${m_host}/32", persist: false}
  - id: repoint
    host: m
    line: {file: /etc/fleet-app.conf, line: "db=${d_host}", regexp: "^db=", create: true}
`

func fleetIP(kind string, i int) string {
	base := 100
	if kind == "d" {
		base = 150
	}
	return env["MIGRUN_E2E_NET_PREFIX"] + "." + strconv.Itoa(base+i)
}

// TestFleetTwoWorkstations: an inventory of four pairs of hosts, pair 3
// made to fail (its source grants to a role its target lacks). Two migruns
// ("ws-a" and "ws-b"), given the same inventory and state database, two
// sets at a time each, run every pair exactly once between them; the three
// others end migrated, the failed one is reported failed by the one that
// ran it and unfinished by status.
func TestFleetTwoWorkstations(t *testing.T) {
	if err := script("down.sh"); err != nil {
		t.Fatalf("down.sh: %v", err)
	}
	t.Setenv("MIGRUN_E2E_FLEET_PAIRS", strconv.Itoa(fleetPairs))
	if err := script("up.sh"); err != nil {
		t.Fatalf("up.sh with %d fleet pairs: %v", fleetPairs, err)
	}
	var err error
	if env, err = loadEnv(); err != nil {
		t.Fatal(err)
	}
	// engine and db are fresh and untouched by this test: the pairs stay up
	// beside them until the next resetHosts or the final down.sh (hosts.env
	// names them), which bring up the usual two only.

	var inv strings.Builder
	inv.WriteString("version: 1\nsets:\n")
	for i := 1; i <= fleetPairs; i++ {
		m := fmt.Sprintf("m%d", i)
		psqlOn(t, m, "postgres", "create role app login")
		psqlOn(t, m, "postgres", "create database appdb owner app")
		psqlOn(t, m, "appdb", `set role app;
			create table events (at timestamptz default now(), what text);
			insert into events (what) select 'e' || g from generate_series(1, 1000 * `+strconv.Itoa(i)+`) g;
			create table hosts (id serial primary key, name text);
			insert into hosts (name) select 'h' || g from generate_series(1, 50) g`)
		if i == 3 {
			psqlOn(t, m, "appdb", "create role reader; grant select on events to reader")
		}
		fmt.Fprintf(&inv, "  - {name: pair%d, vars: {m_host: %q, d_host: %q}}\n", i, fleetIP("m", i), fleetIP("d", i))
	}
	dir := t.TempDir()
	invFile, planFile := filepath.Join(dir, "fleet.yaml"), filepath.Join(dir, "plan.yaml")
	os.WriteFile(invFile, []byte(inv.String()), 0o644)
	os.WriteFile(planFile, []byte(fleetPlan), 0o644)
	t.Setenv("FLEET_APP_PW", "fleet-"+uniq(t))

	srv := pgtest.Start(t)
	state := srv.OwnDatabase(t, "migrun_state")

	type worker struct {
		cmd *exec.Cmd
		out strings.Builder
	}
	var workers []*worker
	for _, ws := range []string{"ws-a", "ws-b"} {
		w := &worker{}
		argv := append(asWorkstation(ws), migrun, "apply", "--yes", "--inventory", invFile, "--parallel", "2",
			"--state", state, "--output", "json",
			"--known-hosts", env["MIGRUN_E2E_KNOWN_HOSTS"], "--identity", env["MIGRUN_E2E_IDENTITY"], "--ssh-config", "none", planFile)
		w.cmd = exec.Command(argv[0], argv[1:]...)
		w.cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
		w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
	}
	ranBy := map[string][]string{}
	for i, w := range workers {
		err := w.cmd.Wait()
		code := exitCode(err)
		for _, line := range strings.Split(w.out.String(), "\n") {
			var l struct{ Type, Set, Outcome, Error string }
			if json.Unmarshal([]byte(line), &l) != nil || l.Type != "set_end" {
				continue
			}
			t.Logf("worker %d: %s %s %s", i, l.Set, l.Outcome, firstLineOf(l.Error))
			switch l.Outcome {
			case "completed", "failed":
				ranBy[l.Set] = append(ranBy[l.Set], l.Outcome)
			case "taken", "done before", "unfinished":
			default:
				t.Errorf("worker %d: set %s %s: %s", i, l.Set, l.Outcome, l.Error)
			}
		}
		if code != 0 && code != 1 && code != 3 {
			t.Errorf("worker %d: exit %d\n%s", i, code, w.out.String())
		}
	}
	for i := 1; i <= fleetPairs; i++ {
		set := fmt.Sprintf("pair%d", i)
		want := "completed"
		if i == 3 {
			want = "failed"
		}
		if got := ranBy[set]; len(got) != 1 || got[0] != want {
			t.Errorf("%s was run %d time(s) with outcomes %v, want once, %s", set, len(got), got, want)
		}
		if i == 3 {
			continue
		}
		m, d := fmt.Sprintf("m%d", i), fmt.Sprintf("d%d", i)
		count := "select (select count(*) from events) || '/' || (select count(*) from hosts)"
		if src, dst := psqlOn(t, m, "appdb", count), psqlOn(t, d, "appdb", count); src != dst || src != fmt.Sprintf("%d/50", 1000*i) {
			t.Errorf("%s: rows %s on %s, %s on %s", set, src, m, dst, d)
		}
		if got := sshOut(t, m, "cat /etc/fleet-app.conf"); got != "db="+fleetIP("d", i) {
			t.Errorf("%s: %s's config %q", set, m, got)
		}
		sshOut(t, d, "iptables -C INPUT -p tcp -s "+fleetIP("m", i)+"/32 --dport 5432 -j ACCEPT")
	}

	status := runMigrunAs(t, nil, env["MIGRUN_E2E_KNOWN_HOSTS"], planFile, "status", "--inventory", invFile, "--state", state, "--output", "json")
	var st struct {
		Sets []struct {
			Set, Status, Workstation string
			FailedStep               string `json:"failed_step"`
		} `json:"sets"`
	}
	if err := json.Unmarshal([]byte(status.out), &st); err != nil {
		t.Fatalf("status --inventory --output json: %v\n%s", err, status.out)
	}
	var got []string
	for _, s := range st.Sets {
		got = append(got, s.Set+"="+s.Status+"@"+s.FailedStep)
		if s.Workstation != "ws-a" && s.Workstation != "ws-b" {
			t.Errorf("%s ran on %q, want ws-a or ws-b", s.Set, s.Workstation)
		}
	}
	if strings.Join(got, " ") != "pair1=completed@ pair2=completed@ pair3=failed@restore pair4=completed@" {
		t.Errorf("status --inventory: %v", got)
	}
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
