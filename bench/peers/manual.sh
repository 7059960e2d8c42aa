#!/bin/bash
# bench/peers/manual.sh — the Administration Guide's procedure for moving
# the engine database to a remote server, as an administrator types it from
# the workstation: one `ssh` per step, the dump copied by `scp` from the
# Manager to the new server, restored there, and the edit done correctly
# (ENGINE_DB_HOST *and* ENGINE_DB_URL, which is what the engine connects
# to). The new server is already prepared (role, empty database with
# uuid-ossp, pg_hba, listen_addresses, firewall), exactly as the headline
# plan's preparation steps leave it, and the Manager can ssh to it.
#
#   SSH_CONFIG=... NEW_DB=10.232.0.12 bench/peers/manual.sh
#
# SSH_CONFIG names the hosts `engine` (the Manager) and `db`; NEW_DB is the
# new server's address as the Manager reaches it.
set -euo pipefail
: "${SSH_CONFIG:?}" "${NEW_DB:?}"
DUMP=/var/tmp/engine.dump
CONF=/etc/ovirt-engine/engine.conf.d/10-setup-database.conf

ssh -F "$SSH_CONFIG" engine 'systemctl stop ovirt-engine'
ssh -F "$SSH_CONFIG" engine "su - postgres -c 'pg_dump -F c engine -f $DUMP'"
ssh -F "$SSH_CONFIG" engine "scp $DUMP root@$NEW_DB:$DUMP"
ssh -F "$SSH_CONFIG" db "chown postgres:postgres $DUMP && su - postgres -c 'pg_restore -d engine $DUMP'"
ssh -F "$SSH_CONFIG" engine "sed -i -e 's|^ENGINE_DB_HOST=.*|ENGINE_DB_HOST=\"$NEW_DB\"|' \
	-e 's|^\\(ENGINE_DB_URL=\"jdbc:postgresql://\\)[^:/]*|\\1$NEW_DB|' $CONF"
ssh -F "$SSH_CONFIG" engine 'systemctl start ovirt-engine'
