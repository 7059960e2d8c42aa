#!/bin/sh
# stop-test-clusters.sh: stop the throwaway PostgreSQL clusters the tests
# start (internal/pgtest: $TMPDIR/migrun-srv-*) whose test process is gone,
# killed or timed out before its clean-up ran, and remove their files. A
# cluster whose test still runs (its pid in the directory's "owner" file is
# alive) is left alone.
for dir in "${TMPDIR:-/tmp}"/migrun-srv-*; do
	[ -d "$dir" ] || continue
	owner=$(cat "$dir/owner" 2>/dev/null || true)
	if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then
		continue
	fi
	# SIGQUIT is PostgreSQL's immediate shutdown: the postmaster ends its
	# children and exits.
	pkill -QUIT -f "postgres -D $dir/data" 2>/dev/null || true
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		pgrep -f "postgres -D $dir/data" >/dev/null 2>&1 || break
		sleep 0.5
	done
	pkill -KILL -f "postgres -D $dir/data" 2>/dev/null || true
	rm -rf "$dir"
	echo "stopped the test cluster left in $dir"
done
