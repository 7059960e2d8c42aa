# shellcheck shell=bash
# ovirt-engine-notifier: the stand-in event notifier (e2e/standin/engine as
# ovirt-engine-notifier). Like the real one it takes the engine database
# from /etc/ovirt-engine/engine.conf.d and refuses to start without
# MAIL_SERVER in /etc/ovirt-engine/notifier/notifier.conf.d/*.conf; it
# holds a connection and every 500 ms records a sent notification in
# event_notification_hist (no primary key) and deletes old ones.
SVC_DESCRIPTION="oVirt Engine Notifier (migrun e2e stand-in)"

svc_start() { e2e_standin ovirt-engine-notifier; }
svc_stop() { e2e_pidfile_stop "$SVC_STATE/pid" 10; }
svc_status() { e2e_pidfile_alive "$SVC_STATE/pid" || return 3; }
