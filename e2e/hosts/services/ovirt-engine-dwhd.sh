# shellcheck shell=bash
# ovirt-engine-dwhd: for now a placeholder process named ovirt-engine-dwhd.
SVC_DESCRIPTION="oVirt Engine Data Warehouse (migrun e2e placeholder)"

svc_start() { e2e_placeholder ovirt-engine-dwhd; }
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
