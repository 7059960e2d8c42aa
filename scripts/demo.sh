#!/usr/bin/env bash
# make demo: run the bundled local demo plan end to end in a throwaway
# directory: validate, dry run, apply, status, and a refused second apply.
set -euo pipefail
bin=${1:-bin/migrun}
work=$(mktemp -d /tmp/migrun-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
export DEMO_DB_PASSWORD="demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
plan=plans/demo-local.yaml
args=(--var "workdir=$work" --state-dir "$work/state")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "migrun validate $plan"
"$bin" validate "${args[@]}" "$plan"
say "migrun plan (dry run: nothing changes)"
"$bin" plan "${args[@]}" "$plan"
say "migrun apply --yes"
"$bin" apply --yes "${args[@]}" "$plan"
say "migrun status"
"$bin" status "${args[@]}" "$plan"
say "the new config"
cat "$work/new/app.conf"
say "a second apply is refused: a migration runs once (exit 3)"
set +e
"$bin" apply --yes "${args[@]}" "$plan"
rc=$?
set -e
echo "exit status $rc"
[ "$rc" -eq 3 ] || { echo "expected exit 3" >&2; exit 1; }
if grep -rq "$DEMO_DB_PASSWORD" "$work/state"; then
  echo "the secret leaked into the journal" >&2; exit 1
fi
say "done: the secret appears in neither the output nor the journal"
