# shellcheck shell=bash
# ovirt-engine-dwhd: a placeholder process named ovirt-engine-dwhd that
# only sleeps; it checks at start that its config
# (/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/*.conf) reads as the
# engine's rules read it and names both databases.
SVC_DESCRIPTION="oVirt Engine Data Warehouse (migrun e2e placeholder)"

svc_start() {
	local f ok=0
	for f in /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/*.conf; do
		[ -e "$f" ] || continue
		grep -q '^DWH_DB_URL=' "$f" && grep -q '^ENGINE_DB_URL=' "$f" && ok=1
	done
	if [ "$ok" != 1 ]; then
		echo "ovirt-engine-dwhd: no ENGINE_DB_URL and DWH_DB_URL in /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/*.conf" >>"$SVC_LOG"
		return 1
	fi
	e2e_placeholder ovirt-engine-dwhd
}
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
