#!/bin/bash
# initctl.sh — the test hosts' stand-in init system.
#
#   initctl.sh systemctl [OPTIONS] VERB [UNIT...]
#   initctl.sh service UNIT VERB
#
# Each host has /usr/local/sbin/systemctl and /usr/local/sbin/service (first
# on the PATH of SSH sessions) calling this with the host's environment
# (E2E_HOST_ENV). A service is one file, services/NAME.sh, defining
#   svc_start   start it; return when it is up (non-zero: failed)
#   svc_stop    stop it; return when it is down
#   svc_status  0 when it runs, 3 when it does not
# and optionally svc_reload and SVC_DESCRIPTION. `show -p MainPID` is the pid in
# $SVC_STATE/pid while the service runs (what e2e_placeholder and
# e2e_standin write), as systemd's is its main process. They run in a subshell with
# the host's environment (E2E_HOST, E2E_HOST_DIR, PGBIN, PGDATA ...), their
# own state dir SVC_STATE (pid files) and log file SVC_LOG, and the helpers
# e2e_daemon, e2e_placeholder, e2e_pidfile_alive, e2e_pidfile_stop below. Which services a
# host has: E2E_SERVICES in the host's env (lib.sh, MIGRUN_E2E_SERVICES_*).
set -uo pipefail
# shellcheck disable=SC1090
. "${E2E_HOST_ENV:?E2E_HOST_ENV is not set}"

enabled_dir=$E2E_HOST_DIR/state/enabled

# --- helpers for services/NAME.sh -----------------------------------------

# e2e_daemon PIDFILE CMD...: run CMD detached (own session, no terminal,
# output to $SVC_LOG), record its pid.
e2e_daemon() {
	local pidfile=$1
	shift
	setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$SVC_LOG" 2>&1
	local i
	for i in $(seq 50); do
		[ -s "$pidfile" ] && return 0
		sleep 0.1
	done
	return 1
}

# e2e_placeholder NAME: a detached process that only sleeps, whose command
# name (ps, pgrep -x) is NAME; its pid file is $SVC_STATE/pid.
e2e_placeholder() {
	ln -sfn "$(command -v sleep)" "$SVC_STATE/$1"
	e2e_daemon "$SVC_STATE/pid" "$SVC_STATE/$1" infinity
}

# e2e_standin ROLE [ARGS...]: one of the stand-in Manager's services
# (e2e/standin/engine, run under the service's own name, so ps and pgrep
# see it), detached; its pid file is $SVC_STATE/pid. Fails, as the real
# service does, when its configuration stops it at once.
e2e_standin() {
	local role=$1 i
	shift
	e2e_daemon "$SVC_STATE/pid" "$E2E_STANDIN_BIN/$role" "$@" || return 1
	for i in $(seq 5); do
		sleep 0.05
		e2e_pidfile_alive "$SVC_STATE/pid" || return 1
	done
}

# e2e_pidfile_alive PIDFILE
e2e_pidfile_alive() {
	local pid
	[ -s "$1" ] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null
}

# e2e_pidfile_stop PIDFILE [SECONDS]: TERM, then KILL after SECONDS (10).
e2e_pidfile_stop() {
	local pid i
	if ! e2e_pidfile_alive "$1"; then rm -f "$1"; return 0; fi
	pid=$(cat "$1")
	kill -TERM "$pid" 2>/dev/null || true
	# Every 10 ms: systemd's stop returns as the process exits (it waits
	# for SIGCHLD, not a poll); at 100 ms a stop took 120 or 220 ms by
	# luck, which the benchmark's downtime showed as noise.
	for i in $(seq $((${2:-10} * 100))); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
		sleep 0.01
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$1"
}

# --- units ------------------------------------------------------------------

unit_name() { local u=${1%.service}; echo "$u"; }
svc_file() { echo "$E2E_HOSTS_DIR/services/$1.sh"; }
known() { [[ " $E2E_SERVICES " == *" $1 "* ]] && [ -r "$(svc_file "$1")" ]; }

# call UNIT FUNCTION: run a service function in a subshell.
call() {
	(
		set -euo pipefail
		SVC_NAME=$1
		SVC_STATE=$E2E_HOST_DIR/state/$1
		SVC_LOG=$E2E_HOST_DIR/log/$1.log
		mkdir -p "$SVC_STATE"
		# shellcheck disable=SC1090
		. "$(svc_file "$1")"
		if ! declare -F "$2" >/dev/null; then exit 99; fi
		"$2"
	)
}
running() { call "$1" svc_status >/dev/null 2>&1; }
description() { (. "$(svc_file "$1")" && echo "${SVC_DESCRIPTION:-$1}"); }
is_enabled() { [ -e "$enabled_dir/$1" ]; }
has_fn() { (. "$(svc_file "$1")" && declare -F "$2" >/dev/null); }

not_found() { # VERB UNIT
	case $1 in
	status) echo "Unit $2.service could not be found." >&2; return 4 ;;
	is-active | is-failed) [ "$quiet" = 1 ] || echo inactive; return 3 ;;
	is-enabled) echo "Failed to get unit file state for $2.service: No such file or directory" >&2; return 1 ;;
	enable | disable) echo "Failed to $1 unit: Unit file $2.service does not exist." >&2; return 1 ;;
	*) echo "Failed to $1 $2.service: Unit $2.service not found." >&2; return 5 ;;
	esac
}

job_failed() { # VERB UNIT
	echo "Job for $2.service failed because the control process exited with error code." >&2
	echo "See \"systemctl status $2.service\" and \"journalctl -xeu $2.service\" for details." >&2
	return 1
}

do_start() { running "$1" && return 0; call "$1" svc_start || job_failed start "$1"; }
do_stop() { running "$1" || return 0; call "$1" svc_stop || job_failed stop "$1"; }
do_reload() {
	if ! running "$1"; then
		echo "$1.service is not active, cannot reload." >&2
		return 1
	fi
	call "$1" svc_reload
	case $? in
	0) return 0 ;;
	99) echo "Failed to reload $1.service: Job type reload is not applicable for unit $1.service." >&2; return 1 ;;
	*) job_failed reload "$1" ;;
	esac
}

do_status() {
	local u=$1 active=inactive sub=dead en=disabled rc=3
	if running "$u"; then active=active sub=running rc=0; fi
	is_enabled "$u" && en=enabled
	echo "● $u.service - $(description "$u")"
	echo "     Loaded: loaded ($E2E_HOSTS_DIR/services/$u.sh; $en; preset: enabled)"
	echo "     Active: $active ($sub)"
	if [ -r "$E2E_HOST_DIR/log/$u.log" ] && [ "$lines" != 0 ]; then
		echo
		tail -n "$lines" "$E2E_HOST_DIR/log/$u.log" | sed 's/^/    /'
	fi
	return $rc
}

verb_unit() { # VERB UNIT: one unit
	local verb=$1 u
	u=$(unit_name "$2")
	if ! known "$u" && [ "$verb" = show ]; then
		# As systemd: an unknown unit shows as not-found, exit 0.
		local p v
		for p in ${props//,/ }; do
			case $p in
			LoadState) v=not-found ;; ActiveState) v=inactive ;; SubState) v=dead ;; Id) v=$u.service ;; MainPID) v=0 ;; *) v= ;;
			esac
			if [ "$value" = 1 ]; then echo "$v"; else echo "$p=$v"; fi
		done
		[ -n "$props" ] || { echo "Id=$u.service"; echo "LoadState=not-found"; echo "ActiveState=inactive"; echo "SubState=dead"; }
		return 0
	fi
	if ! known "$u"; then not_found "$verb" "$u"; return; fi
	case $verb in
	start) do_start "$u" ;;
	stop) do_stop "$u" ;;
	restart) do_stop "$u" && call "$u" svc_start || job_failed restart "$u" ;;
	try-restart | condrestart) if running "$u"; then do_stop "$u" && do_start "$u"; fi ;;
	reload) do_reload "$u" ;;
	reload-or-restart | force-reload)
		if running "$u" && has_fn "$u" svc_reload; then
			do_reload "$u"
		else
			do_stop "$u" && do_start "$u"
		fi ;;
	status) do_status "$u" ;;
	is-active)
		if running "$u"; then [ "$quiet" = 1 ] || echo active; return 0; fi
		[ "$quiet" = 1 ] || echo inactive
		return 3 ;;
	is-failed) [ "$quiet" = 1 ] || { running "$u" && echo active || echo inactive; }; return 1 ;;
	is-enabled)
		if is_enabled "$u"; then [ "$quiet" = 1 ] || echo enabled; return 0; fi
		[ "$quiet" = 1 ] || echo disabled
		return 1 ;;
	enable)
		mkdir -p "$enabled_dir"
		is_enabled "$u" || { : >"$enabled_dir/$u"; [ "$quiet" = 1 ] || echo "Created symlink /etc/systemd/system/multi-user.target.wants/$u.service → /usr/lib/systemd/system/$u.service."; }
		[ "$now" = 1 ] && do_start "$u"
		return 0 ;;
	disable)
		if is_enabled "$u"; then rm -f "$enabled_dir/$u"; [ "$quiet" = 1 ] || echo "Removed \"/etc/systemd/system/multi-user.target.wants/$u.service\"."; fi
		[ "$now" = 1 ] && do_stop "$u"
		return 0 ;;
	show)
		local a=inactive s=dead
		running "$u" && a=active s=running
		if [ -n "$props" ]; then
			local p v
			for p in ${props//,/ }; do
				case $p in
				ActiveState) v=$a ;; SubState) v=$s ;; LoadState) v=loaded ;;
				UnitFileState) v=disabled; is_enabled "$u" && v=enabled ;;
				Id) v=$u.service ;; Description) v=$(description "$u") ;;
				MainPID) v=0; [ "$a" = active ] && [ -s "$E2E_HOST_DIR/state/$u/pid" ] && v=$(cat "$E2E_HOST_DIR/state/$u/pid") ;;
				*) v= ;;
				esac
				if [ "$value" = 1 ]; then echo "$v"; else echo "$p=$v"; fi
			done
		else
			echo "Id=$u.service"; echo "LoadState=loaded"; echo "ActiveState=$a"; echo "SubState=$s"
		fi ;;
	*) echo "Unknown command verb $verb." >&2; return 1 ;;
	esac
}

list_units() {
	local u a en
	printf '%-28s %-10s %-10s\n' UNIT ACTIVE ENABLED
	for u in $E2E_SERVICES; do
		known "$u" || continue
		a=inactive; running "$u" && a=active
		en=disabled; is_enabled "$u" && en=enabled
		printf '%-28s %-10s %-10s\n' "$u.service" "$a" "$en"
	done
}

mode=${1:-}
shift || true
quiet=0 now=0 value=0 lines=10 props=""
args=()
if [ "$mode" = service ]; then
	# service UNIT VERB | service --status-all
	case ${1:-} in
	--status-all) list_units; exit 0 ;;
	"" | -*) echo "Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]" >&2; exit 1 ;;
	esac
	u=$1 verb=${2:-}
	[ -n "$verb" ] || { echo "Usage: service $u {start|stop|restart|reload|status}" >&2; exit 1; }
	[ "$verb" = --full-restart ] && verb=restart
	verb_unit "$verb" "$u"
	exit
fi

while [ $# -gt 0 ]; do
	case $1 in
	-q | --quiet) quiet=1 ;;
	--now) now=1 ;;
	--value) value=1 ;;
	--no-pager | --no-block | --no-legend | --no-ask-password | -l | --full | --system | -a | --all | --no-reload | --force) ;;
	-n | --lines) lines=$2; shift ;;
	--lines=* | -n*) lines=${1#*=}; lines=${lines#-n} ;;
	-p | --property) props="$props${props:+,}$2"; shift ;;
	--property=*) props="$props${props:+,}${1#*=}" ;;
	-t | --type | -o | --output | --state) shift ;;
	--type=* | --output=* | --state=*) ;;
	-*) echo "systemctl (migrun e2e stand-in): unknown option $1" >&2; exit 1 ;;
	*) args+=("$1") ;;
	esac
	shift
done
[ ${#args[@]} -gt 0 ] || { list_units; exit 0; }
verb=${args[0]}
units=("${args[@]:1}")
case $verb in
daemon-reload | daemon-reexec | reset-failed) exit 0 ;;
list-units | list-unit-files) list_units; exit 0 ;;
is-system-running) echo running; exit 0 ;;
esac
[ ${#units[@]} -gt 0 ] || { echo "Too few arguments." >&2; exit 1; }
rc=0
for u in "${units[@]}"; do
	verb_unit "$verb" "$u" || { r=$?; [ $rc = 0 ] && rc=$r; }
done
exit $rc
