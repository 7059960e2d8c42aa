#!/usr/bin/env bash
# e2e/run.sh — what `make e2e` runs: bring the test hosts up, run the
# end-to-end tests with an explicit time limit, and take the hosts down
# again however the tests end: passed, failed, timed out (go test kills its
# binary, so the tests' own clean-up never runs), or this script killed by
# SIGINT/SIGTERM/SIGHUP (CI cancelling the job). Only SIGKILL escapes the
# trap; the next up.sh clears what it left.
#
#   MIGRUN_E2E_TIMEOUT   go test -timeout for the suite [37m]
#   MIGRUN_E2E_RUN       go test -run pattern []
#   MIGRUN_E2E_HOSTS_UP=1  the hosts are up already: leave them up
#   MIGRUN_E2E_KEEP=1      leave the hosts up after the tests
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
timeout=${MIGRUN_E2E_TIMEOUT:-37m}

tests=
down() {
	local rc=$?
	trap - EXIT INT TERM HUP
	# Signalled while the tests run: end them (and what they started) first.
	if [ -n "$tests" ] && kill -0 "$tests" 2>/dev/null; then
		pkill -TERM -P "$tests" 2>/dev/null || true
		kill -TERM "$tests" 2>/dev/null || true
		wait "$tests" 2>/dev/null || true
	fi
	if [ "${MIGRUN_E2E_HOSTS_UP:-}" != 1 ] && [ "${MIGRUN_E2E_KEEP:-}" != 1 ]; then
		e2e/hosts/down.sh || rc=1
	fi
	# The state databases some tests start on this machine (internal/pgtest).
	scripts/stop-test-clusters.sh || rc=1
	exit "$rc"
}
if [ "${MIGRUN_E2E_HOSTS_UP:-}" != 1 ]; then
	trap down EXIT
	# A signal ends the script through the EXIT trap, with the status a
	# shell killed by it would have.
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	e2e/hosts/up.sh
fi
args=(-tags e2e -count=1 -v -timeout "$timeout")
[ -z "${MIGRUN_E2E_RUN:-}" ] || args+=(-run "$MIGRUN_E2E_RUN")
# The tests bring nothing up or down themselves: this script owns the hosts.
# In the background, so that a signal reaches the trap at once (bash runs
# traps only between foreground commands).
MIGRUN_E2E_HOSTS_UP=1 "$GO" test "${args[@]}" ./e2e/... &
tests=$!
wait "$tests"
