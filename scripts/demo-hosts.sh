#!/usr/bin/env bash
# make demo: the headline migration on two throwaway hosts on this machine.
# Builds nothing itself (make does), brings the test hosts engine and db up
# (network + mount namespaces, real sshd, PostgreSQL 15, iptables, a
# stand-in oVirt engine), shows the dry run of plans/ovirt-engine-remote-db
# .yaml, applies it, shows the engine writing to the new database, and
# takes the hosts down again.
set -euo pipefail
bin=${1:-bin/migrun}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(uname -s)" != Linux ] || [ "$(id -u)" != 0 ]; then
	echo "make demo needs root on Linux: it creates two test hosts with network and mount namespaces." >&2
	echo "Run it as root (e.g. sudo make demo), or try the local demo: scripts/demo.sh $bin" >&2
	exit 2
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
hosts=$here/e2e/hosts
cleanup() { say "taking the test hosts down"; "$hosts/down.sh" >/dev/null 2>&1 || true; rm -rf "$state"; }
state=$(mktemp -d /tmp/migrun-demo-state.XXXXXX)
trap cleanup EXIT

say "bringing up the test hosts engine and db"
"$hosts/up.sh"
# shellcheck disable=SC1091
. "$hosts/env.sh"
export ENGINE_DB_PASSWORD
ENGINE_DB_PASSWORD=$(cat "$MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE")
ssh_=(ssh -F "$MIGRUN_E2E_SSH_CONFIG")
beats() { "${ssh_[@]}" "$1" "cd / && runuser -u postgres -- psql -X -At -d engine -c 'select count(*) from heartbeat'" 2>/dev/null || echo 0; }

plan=$here/plans/ovirt-engine-remote-db.yaml
args=(--known-hosts "$MIGRUN_E2E_KNOWN_HOSTS" --identity "$MIGRUN_E2E_IDENTITY" --ssh-config none
	--state-dir "$state"
	--var "engine_host=$MIGRUN_E2E_ENGINE_IP" --var "db_host=$MIGRUN_E2E_DB_IP" --var "engine_ip=$MIGRUN_E2E_ENGINE_IP"
	--var "pg_data=$MIGRUN_E2E_PGDATA" --var install_packages=false)

say "before: the engine writes its heartbeats to its local database"
echo "heartbeats on engine: $(beats engine); on db: $(beats db)"
"${ssh_[@]}" engine "grep -E '^ENGINE_DB_(HOST|URL)=' /etc/ovirt-engine/engine.conf.d/10-setup-database.conf"

say "migrun plan: the dry run (changes nothing)"
"$bin" plan "${args[@]}" "$plan"

say "migrun apply"
"$bin" apply --yes "${args[@]}" "$plan"

say "after: the engine writes to the new database on db"
"${ssh_[@]}" engine "grep -E '^ENGINE_DB_(HOST|URL)=' /etc/ovirt-engine/engine.conf.d/10-setup-database.conf"
a_e=$(beats engine) a_d=$(beats db)
sleep 2
b_e=$(beats engine) b_d=$(beats db)
echo "heartbeats in 2 s: on engine (old) $a_e -> $b_e; on db (new) $a_d -> $b_d"
[ "$b_d" -gt "$a_d" ] && [ "$b_e" -eq "$a_e" ] || { echo "the engine is not writing to the new database" >&2; exit 1; }
"${ssh_[@]}" engine "curl -s http://localhost/ovirt-engine/services/health; echo"

say "migrun status"
"$bin" status "${args[@]}" "$plan"
