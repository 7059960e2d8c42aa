package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrun/migrun/internal/ovirtconf"
)

// role is one of the Manager's services.
type role struct {
	name     string
	log      string        // where the real service logs
	interval time.Duration // between transactions
	// engineConfd is where the engine's configuration is read from
	// (-confd overrides it).
	engineConfd string
	// precheck refuses a start as the real service does when its own
	// configuration is missing.
	precheck func() error
	// databases reads, from the service's configuration, the databases it
	// connects to; the first is the engine database.
	databases func(*role) ([]dbConfig, error)
	// prepare runs once per session, after connecting.
	prepare func(context.Context, *client, *session) error
	// write commits transaction seq.
	write func(context.Context, *client, *session, int64) error
	// verify compares the database with the account once the service is
	// stopped: "" when they agree.
	verify func(context.Context, *client, *session) (string, error)
}

const (
	engineConfd   = "/etc/ovirt-engine/engine.conf.d"
	dwhConfd      = "/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d"
	notifierConfd = "/etc/ovirt-engine/notifier/notifier.conf.d"
	kdumpConfd    = "/etc/ovirt-engine/ovirt-fence-kdump-listener.conf.d"
)

var roles = map[string]*role{
	"ovirt-engine": {
		name: "ovirt-engine", log: "/var/log/ovirt-engine/engine.log", interval: 200 * time.Millisecond,
		engineConfd: engineConfd, precheck: func() error { return nil },
		databases: engineDatabases, prepare: enginePrepare, write: engineWrite, verify: engineVerify,
	},
	"ovirt-engine-dwhd": {
		name: "ovirt-engine-dwhd", log: "/var/log/ovirt-engine-dwh/ovirt-engine-dwhd.log", interval: 500 * time.Millisecond,
		precheck:  func() error { _, err := dwhDatabases(nil); return err },
		databases: dwhDatabases, write: dwhWrite, verify: dwhVerify,
	},
	"ovirt-engine-notifier": {
		name: "ovirt-engine-notifier", log: "/var/log/ovirt-engine/notifier/notifier.log", interval: 500 * time.Millisecond,
		engineConfd: engineConfd, precheck: notifierPrecheck,
		databases: engineDatabase, write: notifierWrite, verify: notifierVerify,
	},
	"grafana-server": {
		name: "grafana-server", log: "/var/log/grafana/grafana.log", interval: time.Second,
		precheck:  func() error { _, err := grafanaDatabases(nil); return err },
		databases: grafanaDatabases, write: grafanaRead, verify: grafanaVerify,
	},
	"ovirt-fence-kdump-listener": {
		name: "ovirt-fence-kdump-listener", log: "/var/log/ovirt-engine/ovirt-fence-kdump-listener.log", interval: 500 * time.Millisecond,
		engineConfd: engineConfd, precheck: func() error { return nil },
		databases: engineDatabase, write: kdumpWrite, verify: kdumpVerify,
	},
}

func roleNames() string {
	var n []string
	for k := range roles {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// prefixed reads PREFIX_URL, _USER and _PASSWORD from vals.
func prefixed(vals map[string]string, files []string, prefix, where string) (dbConfig, error) {
	name := map[string]string{"ENGINE_DB": "engine", "DWH_DB": "dwh", "KEYCLOAK_DB": "keycloak"}[prefix]
	d := dbConfig{name: name, url: vals[prefix+"_URL"], user: vals[prefix+"_USER"], password: vals[prefix+"_PASSWORD"], files: files}
	if d.url == "" {
		return d, fmt.Errorf("%s_URL is not set in %s", prefix, where)
	}
	return d, nil
}

// engineDatabase: the engine, the notifier and the fence_kdump listener
// all take the engine database from the engine's conf.d (the notifier and
// the listener load the engine's configuration before their own).
func engineDatabase(r *role) ([]dbConfig, error) {
	vals, files, err := ovirtconf.LoadDir(r.engineConfd, nil)
	if err != nil {
		return nil, err
	}
	d, err := prefixed(vals, files, "ENGINE_DB", r.engineConfd+"/*.conf")
	return []dbConfig{d}, err
}

// engineDatabases: the engine's own database, and where engine-setup
// configured them, the DWH's (its dashboards read it;
// 10-setup-dwh-database.conf) and Keycloak's (the Keycloak running in the
// engine's WildFly; 12-setup-keycloak.conf).
func engineDatabases(r *role) ([]dbConfig, error) {
	vals, files, err := ovirtconf.LoadDir(r.engineConfd, nil)
	if err != nil {
		return nil, err
	}
	e, err := prefixed(vals, files, "ENGINE_DB", r.engineConfd+"/*.conf")
	if err != nil {
		return nil, err
	}
	dbs := []dbConfig{e}
	for _, prefix := range []string{"DWH_DB", "KEYCLOAK_DB"} {
		if vals[prefix+"_URL"] == "" {
			continue
		}
		d, err := prefixed(vals, files, prefix, r.engineConfd+"/*.conf")
		if err != nil {
			return nil, err
		}
		dbs = append(dbs, d)
	}
	return dbs, nil
}

// dwhDatabases: the DWH keeps its own copy of both databases' settings.
func dwhDatabases(*role) ([]dbConfig, error) {
	vals, files, err := ovirtconf.LoadDir(dwhConfd, nil)
	if err != nil {
		return nil, err
	}
	e, err := prefixed(vals, files, "ENGINE_DB", dwhConfd+"/*.conf")
	if err != nil {
		return nil, err
	}
	h, err := prefixed(vals, files, "DWH_DB", dwhConfd+"/*.conf")
	return []dbConfig{e, h}, err
}

// notifierPrecheck: the real notifier refuses to start without a mail
// server (or SNMP) configured.
func notifierPrecheck() error {
	vals, _, err := ovirtconf.LoadDir(notifierConfd, nil)
	if err != nil {
		return err
	}
	if vals["MAIL_SERVER"] == "" && vals["SNMP_MANAGERS"] == "" {
		return fmt.Errorf("MAIL_SERVER is not defined in %s/*.conf", notifierConfd)
	}
	return nil
}

// --- the engine -------------------------------------------------------------

// The engine's write set: its heartbeat, and what a guest agent report, a
// host pinning change, an async task and an audit event do: DELETE and
// INSERT on tables without a primary key.
const guestAgentVMs = 50

func enginePrepare(ctx context.Context, c *client, s *session) error {
	conn := s.conns[0]
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS heartbeat (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), engine text, seq bigint)`); err != nil {
		return fmt.Errorf("create table heartbeat: %w", err)
	}
	var vms, hosts, tasks []string
	for _, q := range []struct {
		sql string
		out *[]string
	}{
		{`SELECT vm_guid::text FROM vm_static ORDER BY vm_name COLLATE "C" LIMIT ` + fmt.Sprint(guestAgentVMs), &vms},
		{`SELECT vds_id::text FROM vds_static ORDER BY vds_name COLLATE "C"`, &hosts},
		{`SELECT a.task_id::text FROM async_tasks a ORDER BY a.task_id LIMIT 5`, &tasks}, // by the key, not its text: an index scan
	} {
		rows, err := conn.Query(ctx, q.sql)
		if err != nil {
			return fmt.Errorf("%s: %w", q.sql, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		*q.out = ids
	}
	if len(vms) == 0 || len(hosts) == 0 {
		return fmt.Errorf("the engine database has no VMs or hosts")
	}
	s.vars["vms"], s.vars["hosts"], s.vars["tasks"] = vms, hosts, tasks
	return nil
}

func engineWrite(ctx context.Context, c *client, s *session, seq int64) error {
	// Keycloak first, in its own database: a token refresh of the
	// engine's offline session and the event it logs.
	if kc := s.named["keycloak"]; kc != nil {
		if err := inTx(ctx, kc,
			q(`UPDATE offline_user_session SET last_session_refresh = $1 WHERE user_session_id = 'standin'`, seq),
			q(`INSERT INTO event_entity (id, client_id, realm_id, event_time, type, user_id)
			   VALUES ('standin-' || $1::bigint, 'ovirt-engine-internal', 'ovirt-internal', $1::bigint, 'REFRESH_TOKEN', 'standin')
			   ON CONFLICT (id) DO NOTHING`, seq)); err != nil {
			return fmt.Errorf("keycloak: %w", err)
		}
		c.acct.committedIn("keycloak", seq)
	}
	// The dashboard reads the DWH's database now and then.
	if dwh := s.named["dwh"]; dwh != nil && seq%10 == 0 {
		var n int64
		if err := dwh.QueryRow(ctx, `SELECT count(*) FROM host_samples_history WHERE history_datetime > now() - interval '5 minutes'`).Scan(&n); err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
	}
	vms, hosts, tasks := s.vars["vms"].([]string), s.vars["hosts"].([]string), s.vars["tasks"].([]string)
	vm := vms[int(seq)%len(vms)]
	host := hosts[int(seq)%len(hosts)]
	gen := fmt.Sprintf("gen-%d", seq)
	stmts := []stmt{
		q(`INSERT INTO heartbeat (engine, seq) VALUES ($1, $2)`, c.engineName, seq),
		// A guest agent report replaces the VM's NICs.
		q(`DELETE FROM vm_guest_agent_interfaces WHERE vm_id = $1`, vm),
		q(`INSERT INTO vm_guest_agent_interfaces (vm_id, interface_name, mac_address, ipv4_addresses, ipv6_addresses)
		   VALUES ($1, 'eth0', $2, ARRAY['10.1.0.' || ($3 % 250 + 1)], ARRAY['fe80::1']), ($1, 'eth1', $2, NULL, NULL)`, vm, gen, seq),
		// Host pinning replaced.
		q(`DELETE FROM vm_host_pinning_map WHERE vm_id = $1`, vm),
		q(`INSERT INTO vm_host_pinning_map (vm_id, vds_id) VALUES ($1, $2)`, vm, host),
		q(`INSERT INTO audit_log (log_time, severity, message, vm_id) VALUES (now(), 0, $1, $2)`, "stand-in engine transaction "+fmt.Sprint(seq), vm),
	}
	if len(tasks) > 0 {
		task := tasks[int(seq)%len(tasks)]
		// An async task's entities: one added, the task's older ones gone.
		stmts = append(stmts,
			q(`DELETE FROM async_tasks_entities WHERE async_task_id = $1 AND entity_type = 'standin'`, task),
			q(`INSERT INTO async_tasks_entities (async_task_id, entity_id, entity_type) VALUES ($1, $2, 'standin')`, task, vm))
	}
	return inTx(ctx, s.conns[0], stmts...)
}

func engineVerify(ctx context.Context, c *client, s *session) (string, error) {
	var distinct, max, nics, nicVMs, maxGen int64
	err := s.conns[0].QueryRow(ctx, `SELECT count(DISTINCT seq), coalesce(max(seq), 0) FROM heartbeat WHERE engine = $1`, c.engineName).Scan(&distinct, &max)
	if err != nil {
		return "", err
	}
	err = s.conns[0].QueryRow(ctx, `SELECT count(*), count(DISTINCT vm_id),
	    coalesce(max(substr(mac_address, 5)::bigint) FILTER (WHERE mac_address LIKE 'gen-%'), 0)
	  FROM vm_guest_agent_interfaces WHERE vm_id = ANY ($1::uuid[])`, s.vars["vms"]).Scan(&nics, &nicVMs, &maxGen)
	if err != nil {
		return "", err
	}
	var bad []string
	if distinct != c.acct.Committed || max != c.acct.Committed {
		bad = append(bad, fmt.Sprintf("heartbeat holds %d distinct transactions up to %d, the engine committed %d", distinct, max, c.acct.Committed))
	}
	if c.acct.Committed >= int64(len(s.vars["vms"].([]string))) && maxGen != c.acct.Committed {
		bad = append(bad, fmt.Sprintf("vm_guest_agent_interfaces: newest report %d, the engine committed %d", maxGen, c.acct.Committed))
	}
	if nics != 2*nicVMs {
		bad = append(bad, fmt.Sprintf("vm_guest_agent_interfaces: %d rows for %d VMs (replaced NICs left behind: a DELETE lost)", nics, nicVMs))
	}
	if kc := s.named["keycloak"]; kc != nil {
		var refresh, events int64
		if err := kc.QueryRow(ctx, `SELECT last_session_refresh, (SELECT count(*) FROM event_entity WHERE id LIKE 'standin-%')
		    FROM offline_user_session WHERE user_session_id = 'standin'`).Scan(&refresh, &events); err != nil {
			return "", fmt.Errorf("keycloak: %w", err)
		}
		if m := matchAlso("keycloak offline_user_session refresh", refresh, "keycloak", c.acct); m != "" {
			bad = append(bad, m)
		}
		if events != refresh {
			bad = append(bad, fmt.Sprintf("keycloak event_entity holds %d of the engine's refresh events, its session was refreshed %d times", events, refresh))
		}
	}
	return strings.Join(bad, "; "), nil
}

// --- the DWH ----------------------------------------------------------------

func dwhWrite(ctx context.Context, c *client, s *session, seq int64) error {
	// A sample and its aggregation mark into its own database, then its
	// heartbeat in the engine's.
	if err := inTx(ctx, s.named["dwh"],
		q(`INSERT INTO host_samples_history (history_datetime, host_id, cpu_usage_percent, memory_usage_percent)
		   VALUES (now(), md5('standin')::uuid, $1 % 100, $1 % 97)`, seq),
		q(`UPDATE history_configuration SET var_value = $1, var_datetime = now() WHERE var_name = 'lastHourAggr'`, fmt.Sprint(seq))); err != nil {
		return fmt.Errorf("history database: %w", err)
	}
	c.acct.committedIn("dwh", seq)
	return inTx(ctx, s.conns[0],
		q(`UPDATE dwh_history_timekeeping SET var_value = $1, var_datetime = now() WHERE var_name = 'heartBeat'`, fmt.Sprint(seq)),
		q(`UPDATE dwh_history_timekeeping SET var_datetime = now() WHERE var_name = 'lastSync'`))
}

func dwhVerify(ctx context.Context, c *client, s *session) (string, error) {
	var v string
	if err := s.conns[0].QueryRow(ctx, `SELECT coalesce(var_value, '') FROM dwh_history_timekeeping WHERE var_name = 'heartBeat'`).Scan(&v); err != nil {
		return "", err
	}
	bad := matchLast("dwh_history_timekeeping heartBeat", v, c.acct)
	var last int64
	if err := s.named["dwh"].QueryRow(ctx, `SELECT coalesce(var_value, '0')::bigint FROM history_configuration WHERE var_name = 'lastHourAggr'`).Scan(&last); err != nil {
		return "", fmt.Errorf("history database: %w", err)
	}
	if m := matchAlso("history_configuration lastHourAggr", last, "dwh", c.acct); m != "" {
		bad = strings.TrimPrefix(bad+"; "+m, "; ")
	}
	return bad, nil
}

// matchAlso compares what a client's transaction in another database
// left (its sequence number) with the account of that database (or the
// one after it, if a COMMIT went unanswered).
func matchAlso(what string, got int64, db string, a *account) string {
	want := a.Also[db]
	if got == want || a.Ambiguous > 0 && got == want+1 {
		return ""
	}
	return fmt.Sprintf("%s is %d, the client committed %d there", what, got, want)
}

// matchLast compares the value an UPDATE-only client left with its last
// committed sequence number (or the one after it, if a COMMIT went
// unanswered and may have committed).
func matchLast(what, got string, a *account) string {
	want := fmt.Sprint(a.Committed)
	if got == want || a.Ambiguous > 0 && got == fmt.Sprint(a.Committed+1) {
		return ""
	}
	return fmt.Sprintf("%s is %q, the client committed %s", what, got, want)
}

// --- the notifier -----------------------------------------------------------

const notifierKeep = 10

func notifierWrite(ctx context.Context, c *client, s *session, seq int64) error {
	// audit_log_id names an event the engine logged (a foreign key); the
	// transaction's number goes into reason.
	return inTx(ctx, s.conns[0],
		q(`INSERT INTO event_notification_hist (event_name, audit_log_id, method_type, sent_at, status, reason)
		   VALUES ('standin-notifier', (SELECT max(audit_log_id) FROM audit_log), 'smtp', now(), true, $1)`, fmt.Sprintf("seq %d", seq)),
		// The notifier's housekeeping deletes old history.
		q(`DELETE FROM event_notification_hist WHERE event_name = 'standin-notifier' AND rtrim(reason) IN (SELECT 'seq ' || g FROM generate_series($1::bigint - 2 * $2::bigint, $1::bigint - $2::bigint) g)`, seq, int64(notifierKeep)))
}

func notifierVerify(ctx context.Context, c *client, s *session) (string, error) {
	var n, max int64
	if err := s.conns[0].QueryRow(ctx, `SELECT count(*), coalesce(max(substr(rtrim(reason), 5)::bigint), 0) FROM event_notification_hist WHERE event_name = 'standin-notifier'`).Scan(&n, &max); err != nil {
		return "", err
	}
	want := min(c.acct.Committed, notifierKeep)
	if max != c.acct.Committed && !(c.acct.Ambiguous > 0 && max == c.acct.Committed+1) || n != want && !(c.acct.Ambiguous > 0 && n == want+1) {
		return fmt.Sprintf("event_notification_hist holds %d rows up to %d, the notifier committed %d (keeping the last %d)", n, max, c.acct.Committed, notifierKeep), nil
	}
	return "", nil
}

// --- the fence_kdump listener ----------------------------------------------

func kdumpWrite(ctx context.Context, c *client, s *session, seq int64) error {
	return inTx(ctx, s.conns[0],
		q(`UPDATE external_variable SET var_value = $1, _update_date = now() WHERE var_name = 'fence-kdump-listener-heartbeat'`, fmt.Sprint(seq)))
}

func kdumpVerify(ctx context.Context, c *client, s *session) (string, error) {
	var v string
	if err := s.conns[0].QueryRow(ctx, `SELECT coalesce(var_value, '') FROM external_variable WHERE var_name = 'fence-kdump-listener-heartbeat'`).Scan(&v); err != nil {
		return "", err
	}
	return matchLast("external_variable fence-kdump-listener-heartbeat", v, c.acct), nil
}
