# shellcheck shell=bash
# ovirt-engine: the stand-in engine (e2e/standin/engine, built by up.sh into
# $E2E_STANDIN_BIN). It reads /etc/ovirt-engine/engine.conf.d/*.conf as the
# engine does, connects where ENGINE_DB_URL says, commits every 200 ms a
# transaction with its heartbeat and DELETE/INSERT on tables without a
# primary key, and answers http://localhost/ovirt-engine/services/health.
# Its log: /var/log/ovirt-engine/engine.log (stdout/stderr: SVC_LOG).
SVC_DESCRIPTION="oVirt Engine (migrun e2e stand-in)"

svc_start() {
	install -d -m 0755 /var/log/ovirt-engine
	e2e_daemon "$SVC_STATE/pid" "$E2E_STANDIN_BIN/ovirt-engine" -listen :80
	# Up once the HTTP port answers (the database may still be down: the
	# engine keeps trying, and health says 500 meanwhile).
	local i
	for i in $(seq 50); do
		e2e_pidfile_alive "$SVC_STATE/pid" || return 1
		if (exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
