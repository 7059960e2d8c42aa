# shellcheck shell=bash
# ovirt-fence-kdump-listener: the stand-in fence_kdump listener
# (e2e/standin/engine as ovirt-fence-kdump-listener), which engine-setup
# enables. It takes the engine database from /etc/ovirt-engine/engine.conf.d,
# holds a connection and every 500 ms UPDATEs its heartbeat in
# external_variable.
SVC_DESCRIPTION="oVirt Engine fence_kdump Listener (migrun e2e stand-in)"

svc_start() { e2e_standin ovirt-fence-kdump-listener; }
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
