# shellcheck shell=bash
# lib.sh — shared by up.sh and down.sh (not for tests: they source env.sh).

E2E_HOSTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=env.sh
. "$E2E_HOSTS_DIR/env.sh"

# Services each host's stand-in init knows (one file each under services/),
# and the ones it starts at boot. Override with MIGRUN_E2E_SERVICES_ENGINE
# and friends before up.sh.
# engine has the Manager's database clients: the engine, the DWH, the
# notifier (configured and enabled here) and the fence_kdump listener
# (engine-setup enables it).
# Grafana (installed with the DWH since 4.4) reads the DWH's database.
E2E_SERVICES_engine=${MIGRUN_E2E_SERVICES_ENGINE:-postgresql ovirt-engine ovirt-engine-dwhd ovirt-engine-notifier ovirt-fence-kdump-listener grafana-server}
E2E_ENABLED_engine=${MIGRUN_E2E_ENABLED_ENGINE:-postgresql ovirt-engine ovirt-engine-dwhd ovirt-engine-notifier ovirt-fence-kdump-listener grafana-server}
# db has the HA agent of a hosted-engine host too, started by the tests that
# deploy a hosted engine (e2e/standin/ovirt-ha-agent).
E2E_SERVICES_db=${MIGRUN_E2E_SERVICES_DB:-postgresql ovirt-ha-agent}
E2E_ENABLED_db=${MIGRUN_E2E_ENABLED_DB:-postgresql}

# Directories each host has its own copy of (bind-mounted from
# $MIGRUN_E2E_ROOT/HOST/fs/PATH inside the host's mount namespace). /etc is
# a copy-on-write overlay of the workstation's /etc on top of that, so
# /etc/ovirt-engine, /etc/ovirt-engine-dwh, /etc/hosts ... are private too.
# Add more with MIGRUN_E2E_EXTRA_PRIVATE_DIRS="/var/log/ovirt-engine ...".
E2E_PRIVATE_DIRS="/tmp /var/tmp /root /run/postgresql /var/lib/postgresql /usr/local/sbin /etc/ovirt-engine /etc/ovirt-engine-dwh /var/log/ovirt-engine /var/log/ovirt-engine-dwh /var/lib/ovirt-engine-backup /var/lib/ovirt-standin /var/log/grafana ${MIGRUN_E2E_EXTRA_PRIVATE_DIRS:-}"

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

# A fleet pair's hosts (MIGRUN_E2E_FLEET_PAIRS): mN at .100+N, dN at .150+N.
host_ip() {
	case $1 in
	engine) echo "$MIGRUN_E2E_ENGINE_IP" ;;
	db) echo "$MIGRUN_E2E_DB_IP" ;;
	m[1-9] | m[1-4][0-9]) echo "$MIGRUN_E2E_NET_PREFIX.$((100 + ${1#m}))" ;;
	d[1-9] | d[1-4][0-9]) echo "$MIGRUN_E2E_NET_PREFIX.$((150 + ${1#d}))" ;;
	*) die "no host $1" ;;
	esac
}
host_ns() {
	case $1 in
	engine) echo "$MIGRUN_E2E_ENGINE_NS" ;;
	db) echo "$MIGRUN_E2E_DB_NS" ;;
	m[1-9] | m[1-4][0-9] | d[1-9] | d[1-4][0-9]) echo "$MIGRUN_E2E_ENGINE_NS-$1" ;;
	*) die "no host $1" ;;
	esac
}
host_dir() { echo "$MIGRUN_E2E_ROOT/$1"; }
# The root-namespace end of a host's veth pair (<= 15 characters), named
# after the host's namespace so that two sets of hosts never share one:
# migrun-engine -> mr-engine-br, migrun-bdb -> mr-bdb-br; a longer or
# differently prefixed name -> mr-<9 hex digits of its hash>-br.
host_veth() {
	local ns base
	ns=$(host_ns "$1")
	base=${ns#migrun-}
	if [ "$base" = "$ns" ] || [ ${#base} -gt 9 ] || ! [[ $base =~ ^[A-Za-z0-9_.-]+$ ]]; then
		base=$(printf '%s' "$ns" | sha256sum | cut -c1-9)
	fi
	echo "mr-$base-br"
}

# other_roots: the MIGRUN_E2E_ROOTs of the other sets of test hosts up on
# this machine, read from their PID 1s' command lines (hostinit.sh
# ROOT/HOST/host.env). They share what up.sh made outside the state dir
# (/run/sshd, /run/netns, mount points such as /var/log/ovirt-engine).
other_roots() {
	local self p f r
	self=$(readlink -m "$MIGRUN_E2E_ROOT")
	for p in $(pgrep -f '/hostinit\.sh ' 2>/dev/null || true); do
		f=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | tail -n 1) || continue
		case $f in /*/host.env) ;; *) continue ;; esac
		r=$(readlink -m "$(dirname "$(dirname "$f")")")
		[ "$r" != "$self" ] && [ -d "$r" ] && echo "$r"
	done | sort -u
}

# pid_alive PIDFILE: the process recorded there is running.
pid_alive() {
	local pid
	[ -r "$1" ] && pid=$(cat "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
