# shellcheck shell=bash
# grafana-server: the stand-in Grafana (e2e/standin/engine as grafana-server).
# Like the real one with oVirt's provisioning, it reads the DWH history
# database as ovirt_engine_history_grafana, with the data source of
# /etc/grafana/conf/provisioning/datasources/ovirt-dwh.yaml (url, user,
# database, secureJsonData.password); a dashboard refresh every second.
SVC_DESCRIPTION="Grafana instance (migrun e2e stand-in)"

svc_start() { e2e_standin grafana-server; }
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
