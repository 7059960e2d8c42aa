#!/bin/bash
# down.sh — take the e2e test hosts down and leave nothing behind: the hosts'
# processes, namespaces, veths, the bridge, the FORWARD rule if up.sh added
# one, the dirs it created and $MIGRUN_E2E_ROOT. Idempotent. Root only.
# The stand-in engine's build cache stays unless MIGRUN_E2E_PURGE=1.
# Only this set's hosts (the names in env.sh / $MIGRUN_E2E_ROOT/hosts.env):
# while another set is up, the dirs this one made outside its state dir
# (/run/sshd, mount points ...), which that set uses too, are handed over
# to it (appended to its created-paths) instead of being removed.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
export LC_ALL=C

# wait_gone PID SECONDS
wait_gone() {
	local i
	for i in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# PID 1 of a host stops its services and sshd on SIGTERM; when it exits
# the kernel kills the rest of the host's PID namespace. Both at once.
for h in $MIGRUN_E2E_HOSTS; do
	hd=$(host_dir "$h")
	if pid_alive "$hd/init.pid"; then
		log "stopping $h (init pid $(cat "$hd/init.pid"))"
		kill -TERM "$(cat "$hd/init.pid")" 2>/dev/null || true
	fi
done
for h in $MIGRUN_E2E_HOSTS; do
	hd=$(host_dir "$h") ns=$(host_ns "$h")
	if pid_alive "$hd/init.pid"; then
		ipid=$(cat "$hd/init.pid")
		wait_gone "$ipid" 60 || { log "$h: init did not stop, killing the host"; kill -KILL "$ipid" 2>/dev/null || true; }
	fi
	if pid_alive "$hd/unshare.pid"; then
		upid=$(cat "$hd/unshare.pid")
		wait_gone "$upid" 5 || kill -KILL "$upid" 2>/dev/null || true
	fi
	# Anything still in the host's network namespace (a lost pid file, a
	# process someone started with ip netns exec).
	if ip netns list | grep -qE "^$ns( |$)"; then
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		if [ -n "$pids" ]; then
			log "$h: killing leftover processes $(echo $pids)"
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null || true
			for p in $pids; do wait_gone "$p" 5 || true; done
		fi
		ip netns del "$ns"
	fi
	veth=$(host_veth "$h")
	# ip netns del removes the pair asynchronously: it may vanish between
	# the show and the del.
	if ip link show "$veth" >/dev/null 2>&1 && ! ip link del "$veth" 2>/dev/null; then
		if ip link show "$veth" >/dev/null 2>&1; then ip link del "$veth"; fi
	fi
done
if ip link show "$MIGRUN_E2E_BRIDGE" >/dev/null 2>&1; then
	ip link del "$MIGRUN_E2E_BRIDGE"
fi
if [ -e "$MIGRUN_E2E_ROOT/forward-rule" ]; then
	iptables -D FORWARD -i "$MIGRUN_E2E_BRIDGE" -o "$MIGRUN_E2E_BRIDGE" -m comment --comment migrun-e2e -j ACCEPT 2>/dev/null || true
fi

if [ -d "$MIGRUN_E2E_ROOT" ]; then
	# The hosts' mounts lived in their own mount namespaces; should one
	# have leaked here, unmount it rather than delete through it.
	{ findmnt -rn -o TARGET | grep -E "^$MIGRUN_E2E_ROOT(/|$)" || true; } | sort -r | while read -r m; do
		log "unmounting leftover $m"
		umount -l "$m" || true
	done
	heir=$(other_roots | head -n 1 || true)
	if [ -s "$MIGRUN_E2E_ROOT/created-paths" ] && [ -n "$heir" ] && [ -w "$heir/created-paths" ]; then
		log "another set of test hosts ($heir) uses the dirs this one made: handing them over"
		cat "$MIGRUN_E2E_ROOT/created-paths" >>"$heir/created-paths"
	elif [ -r "$MIGRUN_E2E_ROOT/created-paths" ]; then
		tac "$MIGRUN_E2E_ROOT/created-paths" | while read -r d; do
			[ -n "$d" ] || continue
			if [ "$d" = /run/netns ]; then
				# ip netns add made it a mount point; leave it if in use.
				if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
					while mountpoint -q /run/netns; do umount /run/netns || break; done
					rmdir /run/netns 2>/dev/null || true
				fi
			else
				rmdir "$d" 2>/dev/null || true
			fi
		done
	fi
	rm -rf "$MIGRUN_E2E_ROOT"
fi
if [ "${MIGRUN_E2E_PURGE:-}" = 1 ] && [ -d "$E2E_STANDIN_CACHE" ]; then
	log "removing the stand-in build cache $E2E_STANDIN_CACHE"
	rm -rf "$E2E_STANDIN_CACHE"
fi
log "down"
