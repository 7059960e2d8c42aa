# shellcheck shell=bash
# ovirt-engine-dwhd: the stand-in Data Warehouse daemon (e2e/standin/engine
# as ovirt-engine-dwhd). Like the real one it reads
# /etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/*.conf and refuses to start
# without ENGINE_DB_URL and DWH_DB_URL there; it holds a connection to
# each database and every 500 ms writes a sample into its own and its
# heartbeat into dwh_history_timekeeping (no primary key) in the engine's.
SVC_DESCRIPTION="oVirt Engine Data Warehouse (migrun e2e stand-in)"

svc_start() { e2e_standin ovirt-engine-dwhd; }
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
