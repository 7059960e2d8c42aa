# shellcheck shell=bash
# postgresql: the host's PostgreSQL 15 cluster, driven with pg_ctl
# (PGBIN, PGDATA, PGLOG come from the host's env; see env.sh).
SVC_DESCRIPTION="PostgreSQL 15 database server (migrun e2e, $PGDATA)"

pgctl() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" "$@"; }

svc_start() {
	# setsid: the postmaster must not belong to the caller's SSH session.
	runuser -u postgres -- setsid -w "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start </dev/null >>"$SVC_LOG" 2>&1
}
svc_stop() { pgctl -m fast -w -t 60 stop >>"$SVC_LOG" 2>&1; }
svc_reload() { pgctl reload >>"$SVC_LOG" 2>&1; }
svc_status() { pgctl status >/dev/null 2>&1 || return 3; }
