# shellcheck shell=bash
# ovirt-ha-agent: the stand-in HA agent of a hosted-engine host
# (e2e/standin/ovirt-ha-agent on db). It refuses to start before the hosted
# engine is deployed (/etc/ovirt-hosted-engine/hosted-engine.conf), then
# watches the engine's health and records the engine VM restarts a real
# agent would do outside global maintenance.
SVC_DESCRIPTION="oVirt Hosted Engine High Availability Monitoring Agent (migrun e2e stand-in)"

svc_start() {
	[ -r /etc/ovirt-hosted-engine/hosted-engine.conf ] || {
		echo "ovirt-ha-agent: /etc/ovirt-hosted-engine/hosted-engine.conf is missing: the hosted engine is not deployed" >&2
		return 1
	}
	e2e_daemon "$SVC_STATE/pid" /usr/local/sbin/ovirt-ha-agent
}
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
