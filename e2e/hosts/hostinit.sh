#!/bin/bash
# hostinit.sh HOST_ENV — PID 1 of one test host.
#
# up.sh starts it as
#   ip netns exec NETNS unshare --mount --propagation private --uts --ipc \
#       --pid --fork --mount-proc --kill-child=SIGTERM hostinit.sh HOST_ENV
# so that it and everything it starts (sshd, then every SSH session, and the
# services: postgres ...) share the host's network, mount, UTS, IPC and PID
# namespaces. It gives the host its private directories, its hostname and
# /etc, starts sshd and the enabled services, then waits. SIGTERM stops the
# services and sshd; when it exits the kernel kills what is left in the host.
set -euo pipefail
# shellcheck disable=SC1090
. "$1"
hd=$E2E_HOST_DIR

say() { printf '[%s init %s] %s\n' "$E2E_HOST" "$(date +%H:%M:%S)" "$*"; }

# --- the host's filesystem view --------------------------------------------
hostname "$E2E_HOST"
# /etc: copy-on-write over the workstation's; changes land in $hd/etc-upper.
mount -t overlay "migrun-$E2E_HOST-etc" \
	-o "lowerdir=/etc,upperdir=$hd/etc-upper,workdir=$hd/etc-work" /etc
printf '%s\n' "$E2E_HOST" >/etc/hostname
{
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n'
	printf '%s\t%s.e2e.test %s\n' "$E2E_ENGINE_IP" engine engine "$E2E_DB_IP" db db \
		"$E2E_GATEWAY_IP" workstation workstation
	# Its own name (a fleet pair's host), which sudo looks up: unresolved,
	# every sudo would wait on DNS.
	case $E2E_HOST in engine | db) ;; *) printf '%s\t%s.e2e.test %s\n' "$E2E_HOST_IP" "$E2E_HOST" "$E2E_HOST" ;; esac
} >/etc/hosts
for d in $E2E_PRIVATE_DIRS; do
	mkdir -p "$d" # under /etc: in the overlay; elsewhere up.sh made it
	mount --bind "$hd/fs$d" "$d"
done

# --- sshd -------------------------------------------------------------------
# The host's sshd reads /etc/ssh/sshd_config as a real host's does, so that
# `sshd -T` on the host reports what the running sshd does.
install -m 0644 "$hd/sshd_config" /etc/ssh/sshd_config
/usr/sbin/sshd -D -f /etc/ssh/sshd_config -E "$hd/log/sshd.log" &
sshd_pid=$!
say "sshd pid $sshd_pid"

export E2E_HOST_ENV=$1
initctl() { "$E2E_HOSTS_DIR/initctl.sh" systemctl "$@"; }

stopping=0
shutdown() {
	[ "$stopping" = 1 ] && return
	stopping=1
	say "stopping"
	local s order=""
	for s in $E2E_SERVICES; do order="$s $order"; done
	for s in $order; do
		initctl stop "$s" || say "stop $s failed"
	done
	kill -TERM "$sshd_pid" 2>/dev/null || true
	wait "$sshd_pid" 2>/dev/null || true
	say "stopped"
	exit 0
}
trap shutdown TERM INT

# --- services enabled at boot -----------------------------------------------
for s in $E2E_SERVICES; do
	if initctl -q is-enabled "$s"; then
		if initctl start "$s"; then say "started $s"; else say "start $s FAILED"; fi
	fi
done

: >"$hd/ready"
say "ready"
# Wait for signals; `wait` also reaps the orphans re-parented to PID 1.
while :; do
	sleep 3600 &
	wait $! || true
done
