# shellcheck shell=bash
# env.sh — the e2e test hosts' addresses, key and file paths.
#
#   . e2e/hosts/env.sh        # from bash or sh; defines MIGRUN_E2E_* (exported)
#
# While the hosts are up, the values up.sh used are recorded in
# $MIGRUN_E2E_ROOT/hosts.env and win over the defaults below, so tests and
# down.sh see what is really there even when up.sh ran with overrides.
#
# Overridable before up.sh (and, for a second set of hosts side by side,
# give it its own value of every one of them; down.sh needs the same ROOT):
#   MIGRUN_E2E_SUBNET     a /24 for the test network (default 10.231.0.0/24):
#                         .1 is the workstation (bridge), .11 engine, .12 db
#   MIGRUN_E2E_ROOT       state directory (default /run/migrun-e2e)
#   MIGRUN_E2E_BRIDGE     the bridge in the root namespace (default migrun-br0)
#   MIGRUN_E2E_ENGINE_NS  engine's network namespace (default migrun-engine)
#   MIGRUN_E2E_DB_NS      db's network namespace (default migrun-db)
#   MIGRUN_E2E_FLEET_PAIRS  more pairs of hosts for the fleet tests (default
#                         0): mN (.100+N) and dN (.150+N), each with sshd
#                         and PostgreSQL 15 only, namespaces ENGINE_NS-mN ...
# e.g. the benchmark's set (bench/run.sh):
#   MIGRUN_E2E_ROOT=/run/migrun-bench MIGRUN_E2E_SUBNET=10.232.0.0/24 \
#   MIGRUN_E2E_BRIDGE=migrun-bbr0 MIGRUN_E2E_ENGINE_NS=migrun-bengine \
#   MIGRUN_E2E_DB_NS=migrun-bdb e2e/hosts/up.sh

MIGRUN_E2E_ROOT=${MIGRUN_E2E_ROOT:-/run/migrun-e2e}
if [ -r "$MIGRUN_E2E_ROOT/hosts.env" ]; then
	# shellcheck disable=SC1091
	. "$MIGRUN_E2E_ROOT/hosts.env"
fi

MIGRUN_E2E_SUBNET=${MIGRUN_E2E_SUBNET:-10.231.0.0/24}
MIGRUN_E2E_NET_PREFIX=${MIGRUN_E2E_SUBNET%.*}   # 10.231.0
MIGRUN_E2E_BRIDGE=${MIGRUN_E2E_BRIDGE:-migrun-br0}
MIGRUN_E2E_GATEWAY_IP=$MIGRUN_E2E_NET_PREFIX.1
MIGRUN_E2E_ENGINE_IP=$MIGRUN_E2E_NET_PREFIX.11
MIGRUN_E2E_DB_IP=$MIGRUN_E2E_NET_PREFIX.12
MIGRUN_E2E_ENGINE_NS=${MIGRUN_E2E_ENGINE_NS:-migrun-engine}
MIGRUN_E2E_DB_NS=${MIGRUN_E2E_DB_NS:-migrun-db}
MIGRUN_E2E_FLEET_PAIRS=${MIGRUN_E2E_FLEET_PAIRS:-0}
MIGRUN_E2E_HOSTS="engine db"
for _i in $(seq 1 "$MIGRUN_E2E_FLEET_PAIRS"); do
	MIGRUN_E2E_HOSTS="$MIGRUN_E2E_HOSTS m$_i d$_i"
done
unset _i

# Client side (the workstation = the root namespace).
MIGRUN_E2E_CLIENT_DIR=$MIGRUN_E2E_ROOT/client
MIGRUN_E2E_IDENTITY=$MIGRUN_E2E_CLIENT_DIR/id_ed25519
MIGRUN_E2E_KNOWN_HOSTS=$MIGRUN_E2E_CLIENT_DIR/known_hosts
MIGRUN_E2E_SSH_CONFIG=$MIGRUN_E2E_CLIENT_DIR/ssh_config
MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE=$MIGRUN_E2E_CLIENT_DIR/engine_db_password
MIGRUN_E2E_DWH_DB_PASSWORD_FILE=$MIGRUN_E2E_CLIENT_DIR/dwh_db_password
MIGRUN_E2E_KEYCLOAK_DB_PASSWORD_FILE=$MIGRUN_E2E_CLIENT_DIR/keycloak_db_password
MIGRUN_E2E_GRAFANA_DB_PASSWORD_FILE=$MIGRUN_E2E_CLIENT_DIR/grafana_db_password

# Each host's private filesystem view is mirrored under
# $MIGRUN_E2E_ROOT/HOST/fs: e.g. db's /tmp/x is $MIGRUN_E2E_ROOT/db/fs/tmp/x.
MIGRUN_E2E_ENGINE_DIR=$MIGRUN_E2E_ROOT/engine
MIGRUN_E2E_DB_DIR=$MIGRUN_E2E_ROOT/db

# PostgreSQL, as seen inside a host.
MIGRUN_E2E_PGBIN=/usr/lib/postgresql/15/bin
MIGRUN_E2E_PGDATA=/var/lib/postgresql/15/main     # postgresql.conf, pg_hba.conf are in here
MIGRUN_E2E_PGLOG=/var/lib/postgresql/15/postgresql.log
MIGRUN_E2E_PGSOCKET_DIR=/var/run/postgresql
MIGRUN_E2E_PGPORT=5432
MIGRUN_E2E_ENGINE_DB_NAME=engine
MIGRUN_E2E_ENGINE_DB_USER=engine
MIGRUN_E2E_DWH_DB_NAME=ovirt_engine_history
MIGRUN_E2E_DWH_DB_USER=ovirt_engine_history
MIGRUN_E2E_KEYCLOAK_DB_NAME=ovirt_engine_keycloak
MIGRUN_E2E_KEYCLOAK_DB_USER=ovirt_engine_keycloak
# The stand-ins on engine: the engine binary (run by ovirt-engine.service),
# and the version the stand-in rpm reports for ovirt-engine.
MIGRUN_E2E_STANDIN_BIN=$MIGRUN_E2E_ROOT/bin
MIGRUN_E2E_ENGINE_VERSION=${MIGRUN_E2E_ENGINE_VERSION:-4.5.6}
# How both clusters store passwords: scram-sha-256 (PostgreSQL 14 and
# later's default) or md5 (PostgreSQL 13's, which oVirt 4.5 on EL8 runs;
# db's initdb then also uses md5 for host lines, as --auth-host=md5 does).
MIGRUN_E2E_PASSWORD_ENCRYPTION=${MIGRUN_E2E_PASSWORD_ENCRYPTION:-scram-sha-256}

export MIGRUN_E2E_ROOT MIGRUN_E2E_SUBNET MIGRUN_E2E_NET_PREFIX MIGRUN_E2E_BRIDGE \
	MIGRUN_E2E_GATEWAY_IP MIGRUN_E2E_ENGINE_IP MIGRUN_E2E_DB_IP \
	MIGRUN_E2E_ENGINE_NS MIGRUN_E2E_DB_NS MIGRUN_E2E_HOSTS MIGRUN_E2E_FLEET_PAIRS \
	MIGRUN_E2E_CLIENT_DIR MIGRUN_E2E_IDENTITY MIGRUN_E2E_KNOWN_HOSTS MIGRUN_E2E_SSH_CONFIG \
	MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE MIGRUN_E2E_ENGINE_DIR MIGRUN_E2E_DB_DIR \
	MIGRUN_E2E_PGBIN MIGRUN_E2E_PGDATA MIGRUN_E2E_PGLOG MIGRUN_E2E_PGSOCKET_DIR MIGRUN_E2E_PGPORT \
	MIGRUN_E2E_ENGINE_DB_NAME MIGRUN_E2E_ENGINE_DB_USER MIGRUN_E2E_DWH_DB_PASSWORD_FILE \
	MIGRUN_E2E_DWH_DB_NAME MIGRUN_E2E_DWH_DB_USER MIGRUN_E2E_STANDIN_BIN MIGRUN_E2E_ENGINE_VERSION \
	MIGRUN_E2E_KEYCLOAK_DB_PASSWORD_FILE MIGRUN_E2E_KEYCLOAK_DB_NAME MIGRUN_E2E_KEYCLOAK_DB_USER \
	MIGRUN_E2E_GRAFANA_DB_PASSWORD_FILE \
	MIGRUN_E2E_PASSWORD_ENCRYPTION
