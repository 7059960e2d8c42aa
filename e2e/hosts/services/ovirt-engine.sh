# shellcheck shell=bash
# ovirt-engine: for now a placeholder process named ovirt-engine that only
# sleeps. Replace svc_start with the stand-in engine when there is one.
SVC_DESCRIPTION="oVirt Engine (migrun e2e placeholder)"

svc_start() { e2e_placeholder ovirt-engine; }
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
