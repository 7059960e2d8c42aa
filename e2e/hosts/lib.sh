# shellcheck shell=bash
# lib.sh — shared by up.sh and down.sh (not for tests: they source env.sh).

E2E_HOSTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=env.sh
. "$E2E_HOSTS_DIR/env.sh"

# Services each host's stand-in init knows (one file each under services/),
# and the ones it starts at boot. Override with MIGRUN_E2E_SERVICES_ENGINE
# and friends before up.sh.
E2E_SERVICES_engine=${MIGRUN_E2E_SERVICES_ENGINE:-postgresql ovirt-engine ovirt-engine-dwhd}
E2E_ENABLED_engine=${MIGRUN_E2E_ENABLED_ENGINE:-postgresql ovirt-engine ovirt-engine-dwhd}
E2E_SERVICES_db=${MIGRUN_E2E_SERVICES_DB:-postgresql}
E2E_ENABLED_db=${MIGRUN_E2E_ENABLED_DB:-postgresql}

# Directories each host has its own copy of (bind-mounted from
# $MIGRUN_E2E_ROOT/HOST/fs/PATH inside the host's mount namespace). /etc is
# a copy-on-write overlay of the workstation's /etc on top of that, so
# /etc/ovirt-engine, /etc/ovirt-engine-dwh, /etc/hosts ... are private too.
# Add more with MIGRUN_E2E_EXTRA_PRIVATE_DIRS="/var/log/ovirt-engine ...".
E2E_PRIVATE_DIRS="/tmp /var/tmp /root /run/postgresql /var/lib/postgresql /usr/local/sbin /etc/ovirt-engine /etc/ovirt-engine-dwh /var/log/ovirt-engine /var/lib/ovirt-engine-backup ${MIGRUN_E2E_EXTRA_PRIVATE_DIRS:-}"

# The stand-ins' binaries (e2e/standin/engine), built by up.sh and cached
# across up/down by the hash of their sources: the one thing down.sh
# keeps (MIGRUN_E2E_PURGE=1 down.sh removes it too).
E2E_STANDIN_CACHE=${MIGRUN_E2E_CACHE:-/var/cache/migrun-e2e}
E2E_REPO_DIR=$(cd "$E2E_HOSTS_DIR/../.." && pwd)

log() { printf '[e2e-hosts %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'e2e-hosts: %s\n' "$*" >&2; exit 1; }

require_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (network and mount namespaces, iptables, apt-get): try sudo $0"
}

host_ip() { case $1 in engine) echo "$MIGRUN_E2E_ENGINE_IP" ;; db) echo "$MIGRUN_E2E_DB_IP" ;; *) die "no host $1" ;; esac; }
host_ns() { echo "migrun-$1"; }
host_dir() { echo "$MIGRUN_E2E_ROOT/$1"; }
# The root-namespace end of a host's veth pair (<= 15 characters).
host_veth() { echo "mr-$1-br"; }

# pid_alive PIDFILE: the process recorded there is running.
pid_alive() {
	local pid
	[ -r "$1" ] && pid=$(cat "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
