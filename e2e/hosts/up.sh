#!/bin/bash
# up.sh — bring up the e2e test hosts `engine` and `db` on this machine.
#
# Each host is a network namespace (migrun-engine, migrun-db) on the bridge
# migrun-br0 and a PID 1 (hostinit.sh) in its own mount, UTS, IPC and PID
# namespaces that runs the host's sshd and PostgreSQL 15 with private /tmp,
# /root, /etc (copy-on-write), /etc/ovirt-engine ... See README.md here.
# Idempotent: when the hosts are already up it only says so. Root only.
# Undo with down.sh. A second, independent set runs beside the first with
# its own MIGRUN_E2E_ROOT, _SUBNET, _BRIDGE, _ENGINE_NS and _DB_NS (env.sh).
set -euo pipefail
# What the caller asked for, before env.sh reads what is up now.
user_subnet=${MIGRUN_E2E_SUBNET:-} user_bridge=${MIGRUN_E2E_BRIDGE:-}
user_engine_ns=${MIGRUN_E2E_ENGINE_NS:-} user_db_ns=${MIGRUN_E2E_DB_NS:-}
user_fleet_pairs=${MIGRUN_E2E_FLEET_PAIRS:-}
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
export LC_ALL=C

case $MIGRUN_E2E_SUBNET in
*.0/24) ;;
*) die "MIGRUN_E2E_SUBNET must be a /24 written as A.B.C.0/24, not $MIGRUN_E2E_SUBNET" ;;
esac
case $MIGRUN_E2E_PASSWORD_ENCRYPTION in
scram-sha-256 | md5) ;;
*) die "MIGRUN_E2E_PASSWORD_ENCRYPTION must be scram-sha-256 or md5, not $MIGRUN_E2E_PASSWORD_ENCRYPTION" ;;
esac

hosts_up() {
	local h
	for h in $MIGRUN_E2E_HOSTS; do
		pid_alive "$(host_dir "$h")/init.pid" && [ -e "$(host_dir "$h")/ready" ] || return 1
	done
	[ -r "$MIGRUN_E2E_SSH_CONFIG" ] && [ -r "$MIGRUN_E2E_ROOT/hosts.env" ]
}
if hosts_up; then
	log "test hosts are already up (down.sh takes them down)"
	exit 0
fi
# Only this set's own names count: another set of hosts (other names) may
# be up beside this one.
if [ -e "$MIGRUN_E2E_ROOT" ] ||
	ip netns list | grep -qE "^($MIGRUN_E2E_ENGINE_NS|$MIGRUN_E2E_DB_NS)( |$)" ||
	ip link show "$MIGRUN_E2E_BRIDGE" >/dev/null 2>&1; then
	[ -z "${MIGRUN_E2E_UP_RETRY:-}" ] || die "down.sh did not clear the partial set-up ($MIGRUN_E2E_ROOT, namespaces $MIGRUN_E2E_ENGINE_NS $MIGRUN_E2E_DB_NS, bridge $MIGRUN_E2E_BRIDGE)"
	log "a partial set-up is there: taking it down first"
	"$E2E_HOSTS_DIR/down.sh"
	MIGRUN_E2E_UP_RETRY=1 MIGRUN_E2E_SUBNET=$user_subnet MIGRUN_E2E_BRIDGE=$user_bridge \
		MIGRUN_E2E_ENGINE_NS=$user_engine_ns MIGRUN_E2E_DB_NS=$user_db_ns \
		MIGRUN_E2E_FLEET_PAIRS=$user_fleet_pairs exec "$E2E_HOSTS_DIR/up.sh"
fi
for v in MIGRUN_E2E_ENGINE_NS MIGRUN_E2E_DB_NS MIGRUN_E2E_BRIDGE; do
	[[ ${!v} =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "$v=${!v}: use letters, digits, . _ - only"
done
[ ${#MIGRUN_E2E_BRIDGE} -le 15 ] || die "MIGRUN_E2E_BRIDGE=$MIGRUN_E2E_BRIDGE: an interface name has 15 characters at most"
[ "$MIGRUN_E2E_ENGINE_NS" != "$MIGRUN_E2E_DB_NS" ] || die "MIGRUN_E2E_ENGINE_NS and MIGRUN_E2E_DB_NS must differ"
[[ $MIGRUN_E2E_FLEET_PAIRS =~ ^[0-9]+$ ]] && [ "$MIGRUN_E2E_FLEET_PAIRS" -le 49 ] || die "MIGRUN_E2E_FLEET_PAIRS=$MIGRUN_E2E_FLEET_PAIRS: want 0 to 49"
t0=$(date +%s)

# --- packages -----------------------------------------------------------------
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] && [ -x /usr/lib/postgresql/15/bin/psql ] || missing+=(postgresql)
[ -r /usr/share/postgresql/15/extension/uuid-ossp.control ] || missing+=(postgresql-contrib)
command -v iptables >/dev/null || missing+=(iptables)
command -v locale-gen >/dev/null || missing+=(locales)
command -v ip >/dev/null || missing+=(iproute2)
command -v pgrep >/dev/null || missing+=(procps)
{ command -v unshare && command -v runuser && command -v setsid && command -v findmnt; } >/dev/null || missing+=(util-linux)
command -v sudo >/dev/null || missing+=(sudo) # migrun's default `become`
command -v curl >/dev/null || missing+=(curl)   # health checks on engine
command -v go >/dev/null || die "go is needed to build the stand-in engine (e2e/standin/engine)"
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	# Keep apt from starting a system-wide sshd or the Debian `main` cluster.
	made_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\n# migrun e2e up.sh: no service starts during apt-get\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	sshd_before=$(pgrep -x sshd --ns 1 --nslist net 2>/dev/null | sort || true)
	pg_before=$(pgrep -x postgres --ns 1 --nslist net 2>/dev/null | sort || true)
	export DEBIAN_FRONTEND=noninteractive
	apt_ok=1
	{ apt-get -q update && apt-get -q install -y --no-install-recommends "${missing[@]}"; } >"/tmp/migrun-e2e-apt.log" 2>&1 || apt_ok=0
	[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
	[ "$apt_ok" = 1 ] || { tail -n 30 /tmp/migrun-e2e-apt.log >&2; die "apt-get install ${missing[*]} failed (log: /tmp/migrun-e2e-apt.log)"; }
	rm -f /tmp/migrun-e2e-apt.log
	# Should something have started anyway: stop what the install started.
	if [ -d /run/systemd/system ]; then
		for u in ssh.service ssh.socket postgresql.service postgresql@15-main.service; do
			case " ${missing[*]} " in *" openssh-server "*) ;; *) [[ $u == ssh* ]] && continue ;; esac
			case " ${missing[*]} " in *" postgresql "*) ;; *) [[ $u == postgresql* ]] && continue ;; esac
			systemctl disable --now "$u" >/dev/null 2>&1 || true
		done
	fi
	for p in $(comm -13 <(echo "$pg_before") <(pgrep -x postgres --ns 1 --nslist net 2>/dev/null | sort || true)); do
		log "stopping the Debian cluster the install started"
		pg_ctlcluster 15 main stop >/dev/null 2>&1 || kill "$p" 2>/dev/null || true
		break
	done
	for p in $(comm -13 <(echo "$sshd_before") <(pgrep -x sshd --ns 1 --nslist net 2>/dev/null | sort || true)); do
		log "stopping the system sshd the install started (pid $p)"
		kill "$p" 2>/dev/null || true
	done
fi
if ! locale -a 2>/dev/null | grep -qiE '^en_US\.utf-?8$'; then
	log "generating the en_US.UTF-8 locale"
	if ! grep -qE '^en_US\.UTF-8 UTF-8' /etc/locale.gen; then
		if grep -qE '^# *en_US\.UTF-8 UTF-8' /etc/locale.gen; then
			sed -i -E 's/^# *(en_US\.UTF-8 UTF-8)/\1/' /etc/locale.gen
		else
			echo 'en_US.UTF-8 UTF-8' >>/etc/locale.gen
		fi
	fi
	locale-gen >/dev/null
fi
t_pkgs=$(date +%s)

# --- state directories --------------------------------------------------------
install -d -m 0755 "$MIGRUN_E2E_ROOT"
# The hosts run the harness's scripts (hostinit, the stand-in init and its
# services) from inside their own mount namespaces, where a checkout under
# /tmp or /root is hidden behind the host's private dirs: they get a copy
# under $MIGRUN_E2E_ROOT, which every host sees.
E2E_HOSTS_INSIDE=$MIGRUN_E2E_ROOT/harness
rm -rf "$E2E_HOSTS_INSIDE"
cp -a "$E2E_HOSTS_DIR" "$E2E_HOSTS_INSIDE"
install -d -m 0700 "$MIGRUN_E2E_CLIENT_DIR"
{
	echo "# written by up.sh $(date -Is); read by env.sh"
	echo "MIGRUN_E2E_SUBNET=$MIGRUN_E2E_SUBNET"
	echo "MIGRUN_E2E_BRIDGE=$MIGRUN_E2E_BRIDGE"
	echo "MIGRUN_E2E_ENGINE_NS=$MIGRUN_E2E_ENGINE_NS"
	echo "MIGRUN_E2E_DB_NS=$MIGRUN_E2E_DB_NS"
	echo "MIGRUN_E2E_ENGINE_VERSION=$MIGRUN_E2E_ENGINE_VERSION"
	echo "MIGRUN_E2E_FLEET_PAIRS=$MIGRUN_E2E_FLEET_PAIRS"
} >"$MIGRUN_E2E_ROOT/hosts.env"
# Mount points and dirs this machine lacked, for down.sh to remove.
created=$MIGRUN_E2E_ROOT/created-paths
: >"$created"
[ -d /run/netns ] || echo /run/netns >>"$created"
if [ ! -d /run/sshd ]; then install -d -m 0755 /run/sshd; echo /run/sshd >>"$created"; fi
for d in $E2E_PRIVATE_DIRS; do
	case $d in /etc/*) continue ;; esac # made inside the host's /etc overlay
	if [ ! -e "$d" ]; then mkdir -p "$d"; echo "$d" >>"$created"; fi
done

# --- the stand-in engine ---------------------------------------------------------
# Built once per source hash into $E2E_STANDIN_CACHE, in the background
# while the hosts are set up; copied to $MIGRUN_E2E_STANDIN_BIN.
build_standin() {
	local hash bin
	hash=$(cd "$E2E_REPO_DIR" && { go env GOVERSION; cat go.mod go.sum e2e/standin/engine/*.go internal/ovirtconf/*.go; } | sha256sum | cut -c1-16)
	bin=$E2E_STANDIN_CACHE/ovirt-engine-$hash
	if [ ! -x "$bin" ]; then
		log "building the stand-in engine ($hash)"
		install -d -m 0755 "$E2E_STANDIN_CACHE"
		# $$: two sets of hosts may build at once.
		(cd "$E2E_REPO_DIR" && CGO_ENABLED=0 go build -trimpath -o "$bin.tmp.$$" ./e2e/standin/engine) || return 1
		mv "$bin.tmp.$$" "$bin"
		# Keep the newest few builds only.
		ls -1t "$E2E_STANDIN_CACHE"/ovirt-engine-* 2>/dev/null | tail -n +4 | xargs -r rm -f
	fi
	install -d -m 0755 "$MIGRUN_E2E_STANDIN_BIN"
	install -m 0755 "$bin" "$MIGRUN_E2E_STANDIN_BIN/ovirt-engine"
	# The other services are the same binary under their own names.
	local r
	for r in ovirt-engine-dwhd ovirt-engine-notifier ovirt-fence-kdump-listener grafana-server; do
		ln -sfn ovirt-engine "$MIGRUN_E2E_STANDIN_BIN/$r"
	done
}
build_standin >"$MIGRUN_E2E_ROOT/build.log" 2>&1 &
build_pid=$!

# --- network ------------------------------------------------------------------
log "network $MIGRUN_E2E_SUBNET on bridge $MIGRUN_E2E_BRIDGE"
if ip -4 addr show | grep -qF "inet $MIGRUN_E2E_NET_PREFIX."; then
	die "$MIGRUN_E2E_SUBNET is already in use on this machine: pick another with MIGRUN_E2E_SUBNET"
fi
ip link add "$MIGRUN_E2E_BRIDGE" type bridge
ip addr add "$MIGRUN_E2E_GATEWAY_IP/24" dev "$MIGRUN_E2E_BRIDGE"
ip link set "$MIGRUN_E2E_BRIDGE" up
for h in $MIGRUN_E2E_HOSTS; do
	ns=$(host_ns "$h") veth=$(host_veth "$h")
	ip netns add "$ns"
	ip link add "$veth" type veth peer name eth0 netns "$ns"
	ip link set "$veth" master "$MIGRUN_E2E_BRIDGE" up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$(host_ip "$h")/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "$MIGRUN_E2E_GATEWAY_IP"
done
# With br_netfilter, frames between the hosts cross this machine's FORWARD
# chain: let them through should its policy drop.
if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ] &&
	iptables -S FORWARD 2>/dev/null | grep -qE '^-P FORWARD (DROP|REJECT)'; then
	iptables -I FORWARD -i "$MIGRUN_E2E_BRIDGE" -o "$MIGRUN_E2E_BRIDGE" -m comment --comment migrun-e2e -j ACCEPT
	echo forward-rule >"$MIGRUN_E2E_ROOT/forward-rule"
fi

# --- client key -----------------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C migrun-e2e-client -f "$MIGRUN_E2E_IDENTITY"
( umask 077; head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE" )
( umask 077; head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$MIGRUN_E2E_DWH_DB_PASSWORD_FILE" )
( umask 077; head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$MIGRUN_E2E_KEYCLOAK_DB_PASSWORD_FILE" )
( umask 077; head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$MIGRUN_E2E_GRAFANA_DB_PASSWORD_FILE" )
engine_db_password=$(cat "$MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE")
dwh_db_password=$(cat "$MIGRUN_E2E_DWH_DB_PASSWORD_FILE")
keycloak_db_password=$(cat "$MIGRUN_E2E_KEYCLOAK_DB_PASSWORD_FILE")
grafana_db_password=$(cat "$MIGRUN_E2E_GRAFANA_DB_PASSWORD_FILE")

# --- hosts ----------------------------------------------------------------------
pg_uid=$(id -u postgres) pg_gid=$(id -g postgres)
setup_host() { # HOST: files, keys, sshd config, PostgreSQL cluster
	local h=$1 hd ip
	hd=$(host_dir "$h") ip=$(host_ip "$h")
	install -d -m 0755 "$hd" "$hd/fs" "$hd/log" "$hd/state" "$hd/state/enabled" "$hd/etc-upper" "$hd/etc-work"
	install -d -m 0700 "$hd/ssh"
	local d
	for d in $E2E_PRIVATE_DIRS; do install -d -m 0755 "$hd/fs$d"; done
	chmod 1777 "$hd/fs/tmp" "$hd/fs/var/tmp"
	chmod 0700 "$hd/fs/root"
	install -d -m 0700 "$hd/fs/root/.ssh"
	install -m 0600 "$MIGRUN_E2E_IDENTITY.pub" "$hd/fs/root/.ssh/authorized_keys"
	chown "$pg_uid:$pg_gid" "$hd/fs/run/postgresql" "$hd/fs/var/lib/postgresql"
	chmod 2775 "$hd/fs/run/postgresql"

	ssh-keygen -q -t ed25519 -N '' -C "root@$h" -f "$hd/ssh/ssh_host_ed25519_key"
	cat >"$hd/sshd_config" <<-CONF
		# sshd of the e2e test host $h (up.sh)
		ListenAddress $ip:22
		HostKey $hd/ssh/ssh_host_ed25519_key
		PidFile $hd/sshd.pid
		PermitRootLogin prohibit-password
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		AuthorizedKeysFile .ssh/authorized_keys
		UsePAM no
		UseDNS no
		PrintMotd no
		PrintLastLog no
		X11Forwarding no
		AcceptEnv LANG LC_*
		Subsystem sftp /usr/lib/openssh/sftp-server
	CONF

	# The host's environment for hostinit.sh and the stand-in init.
	# A fleet pair's hosts have PostgreSQL only.
	local svcs en
	eval "svcs=\${E2E_SERVICES_$h:-postgresql} en=\${E2E_ENABLED_$h:-postgresql}"
	cat >"$hd/host.env" <<-ENV
		E2E_HOST=$h
		E2E_HOST_IP=$ip
		E2E_HOST_DIR=$hd
		E2E_HOSTS_DIR=$E2E_HOSTS_INSIDE
		E2E_ENGINE_IP=$MIGRUN_E2E_ENGINE_IP
		E2E_DB_IP=$MIGRUN_E2E_DB_IP
		E2E_GATEWAY_IP=$MIGRUN_E2E_GATEWAY_IP
		E2E_SERVICES="$svcs"
		E2E_PRIVATE_DIRS="$E2E_PRIVATE_DIRS"
		PGBIN=$MIGRUN_E2E_PGBIN
		PGDATA=$MIGRUN_E2E_PGDATA
		PGLOG=$MIGRUN_E2E_PGLOG
		E2E_STANDIN_BIN=$MIGRUN_E2E_STANDIN_BIN
	ENV
	local s
	for s in $en; do : >"$hd/state/enabled/$s"; done
	# systemctl and service, first on the PATH of SSH sessions (inside the
	# host this dir is /usr/local/sbin).
	for s in systemctl service; do
		printf '#!/bin/sh\n# migrun e2e stand-in init (see %s/initctl.sh)\nE2E_HOST_ENV=%s exec %s/initctl.sh %s "$@"\n' \
			"$E2E_HOSTS_INSIDE" "$hd/host.env" "$E2E_HOSTS_INSIDE" "$s" >"$hd/fs/usr/local/sbin/$s"
		chmod 0755 "$hd/fs/usr/local/sbin/$s"
	done

	# PostgreSQL 15 cluster, /var/lib/postgresql/15/main inside the host.
	local pgdata=$hd/fs$MIGRUN_E2E_PGDATA
	install -d -o "$pg_uid" -g "$pg_gid" -m 0755 "$(dirname "$pgdata")"
	runuser -u postgres -- "$MIGRUN_E2E_PGBIN/initdb" -D "$pgdata" -U postgres \
		--locale=en_US.UTF-8 --encoding=UTF8 --auth-local=peer --auth-host="$MIGRUN_E2E_PASSWORD_ENCRYPTION" \
		>"$hd/log/initdb.log" 2>&1 || { cat "$hd/log/initdb.log" >&2; return 1; }
	{
		echo
		echo "# --- migrun e2e (up.sh) ---"
		echo "unix_socket_directories = '$MIGRUN_E2E_PGSOCKET_DIR'"
		echo "port = $MIGRUN_E2E_PGPORT"
		echo "password_encryption = $MIGRUN_E2E_PASSWORD_ENCRYPTION"
		if [ "$h" = engine ]; then
			# As engine-setup provisions the Manager's own server.
			echo "listen_addresses = '*'"
		fi
		# db starts as a fresh server: listen_addresses is left at 'localhost'.
	} >>"$pgdata/postgresql.conf"
	if [ "$h" = engine ]; then
		engine_setup_hba "$pgdata/pg_hba.conf"
		engine_files "$hd"
	elif [ "$h" = db ]; then
		he_host_files "$hd"
	fi
}

# he_host_files HOST_DIR: db doubles as a hosted-engine host: the stand-in
# hosted-engine tool and HA agent (not deployed: no hosted-engine.conf, the
# ovirt-ha-agent service not started; a test deploys them).
he_host_files() {
	local t
	for t in hosted-engine ovirt-ha-agent; do
		install -m 0755 "$E2E_REPO_DIR/e2e/standin/$t" "$1/fs/usr/local/sbin/$t"
	done
}

# engine_setup_hba FILE: the lines engine-setup adds for each database it
# provisions (any address, md5: a password either way), right after the
# `local` lines, so that they come before initdb's host lines.
engine_setup_hba() {
	local f=$1 lines
	lines=$(for du in engine:engine ovirt_engine_history:ovirt_engine_history ovirt_engine_keycloak:ovirt_engine_keycloak \
		ovirt_engine_history:ovirt_engine_history_grafana; do
		printf 'host    %s    %s    0.0.0.0/0    md5\n' "${du%%:*}" "${du#*:}"
		printf 'host    %s    %s    ::0/0        md5\n' "${du%%:*}" "${du#*:}"
	done)
	awk -v add="$lines" '
		/^[ \t]*local[ \t]/ { last = NR }
		{ line[NR] = $0 }
		END { for (i = 1; i <= NR; i++) { print line[i]; if (i == last) print add } }
	' "$f" >"$f.new" && mv "$f.new" "$f"
}

# db_conf PREFIX USER PASSWORD DATABASE: the nine keys engine-setup 4.5
# writes for one database (OvirtUtils.getDBConfig), on localhost.
db_conf() {
	cat <<-CONF
		$1_HOST="localhost"
		$1_PORT="$MIGRUN_E2E_PGPORT"
		$1_USER="$2"
		$1_PASSWORD="$3"
		$1_DATABASE="$4"
		$1_SECURED="False"
		$1_SECURED_VALIDATION="False"
		$1_DRIVER="org.postgresql.Driver"
		$1_URL="jdbc:postgresql://localhost:$MIGRUN_E2E_PGPORT/$4?sslfactory=org.postgresql.ssl.NonValidatingFactory"
	CONF
}

engine_files() { # HOST_DIR: engine's oVirt config files and stand-in tools
	local hd=$1 fs=$1/fs
	install -d -m 0755 "$fs/etc/ovirt-engine/engine.conf.d" "$fs/etc/ovirt-engine/aaa" \
		"$fs/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d"
	( umask 027
	db_conf ENGINE_DB engine "$engine_db_password" engine >"$fs/etc/ovirt-engine/engine.conf.d/10-setup-database.conf"
	db_conf DWH_DB ovirt_engine_history "$dwh_db_password" ovirt_engine_history >"$fs/etc/ovirt-engine/engine.conf.d/10-setup-dwh-database.conf"
	# Keycloak, bundled and on by default since 4.5 (OIDC for the
	# engine's own users).
	{
		db_conf KEYCLOAK_DB ovirt_engine_keycloak "$keycloak_db_password" ovirt_engine_keycloak
		echo 'KEYCLOAK_DB_MAX_CONNECTIONS=20'
		echo 'KEYCLOAK_BUNDLED=True'
		echo 'EXTERNAL_OIDC_CLIENT_ID="ovirt-engine-internal"'
	} >"$fs/etc/ovirt-engine/engine.conf.d/12-setup-keycloak.conf"
	{
		db_conf DWH_DB ovirt_engine_history "$dwh_db_password" ovirt_engine_history
		db_conf ENGINE_DB engine "$engine_db_password" engine
	} >"$fs/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-database.conf"
	# Grafana's read-only role, as engine-setup keeps it for itself, and the
	# DWH data source it provisions for Grafana (grafana-dwh-data-source.template).
	{
		echo 'GRAFANA_DB_HOST="localhost"'
		echo "GRAFANA_DB_PORT=\"$MIGRUN_E2E_PGPORT\""
		echo 'GRAFANA_DB_USER="ovirt_engine_history_grafana"'
		echo "GRAFANA_DB_PASSWORD=\"$grafana_db_password\""
		echo 'GRAFANA_DB_DATABASE="ovirt_engine_history"'
	} >"$fs/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-grafana-database.conf"
	install -d -m 0755 "$hd/etc-upper/grafana/conf/provisioning/datasources"
	cat >"$hd/etc-upper/grafana/conf/provisioning/datasources/ovirt-dwh.yaml" <<-YAML
		---
		apiVersion: 1

		datasources:
		- name: oVirt DWH
		  type: postgres
		  access: proxy
		  orgId: 1
		  uid: DS_OVIRT_DWH
		  url: localhost:$MIGRUN_E2E_PGPORT
		  editable: true
		  isDefault: true
		  secureJsonData:
		    password: '$grafana_db_password'
		  user: ovirt_engine_history_grafana
		  database: ovirt_engine_history
		  jsonData:
		    sslmode: disable
	YAML
	# The notifier starts only with a mail server configured.
	install -d -m 0755 "$fs/etc/ovirt-engine/notifier/notifier.conf.d"
	printf 'MAIL_SERVER=localhost\nMAIL_PORT=25\n' >"$fs/etc/ovirt-engine/notifier/notifier.conf.d/10-e2e.conf"
	# aaa/internal.properties as engine-setup writes it (config/aaajdbc.py).
	cat >"$fs/etc/ovirt-engine/aaa/internal.properties" <<-PROPS
		config.datasource.jdbcurl=jdbc:postgresql://localhost:$MIGRUN_E2E_PGPORT/engine?sslfactory=org.postgresql.ssl.NonValidatingFactory
		config.datasource.dbuser=engine
		config.datasource.dbpassword=$engine_db_password
		config.datasource.jdbcdriver=org.postgresql.Driver
		config.datasource.schemaname=aaa_jdbc
	PROPS
	)
	# Stand-in tools first on the PATH (engine's /usr/local/sbin).
	local t
	for t in engine-backup engine-setup engine-cleanup rpm; do
		install -m 0755 "$E2E_REPO_DIR/e2e/standin/$t" "$fs/usr/local/sbin/$t"
	done
	printf 'ovirt-engine %s 1.el9 noarch\n' "$MIGRUN_E2E_ENGINE_VERSION" >"$fs/usr/local/sbin/rpm-standin.db"
}

firewall_db() { # RHEL-like INPUT chain on db: PostgreSQL is rejected (rule 5)
	local ns
	ns=$(host_ns db)
	ip netns exec "$ns" iptables -P INPUT ACCEPT
	ip netns exec "$ns" iptables -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
	ip netns exec "$ns" iptables -A INPUT -p icmp -j ACCEPT
	ip netns exec "$ns" iptables -A INPUT -i lo -j ACCEPT
	ip netns exec "$ns" iptables -A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 22 -j ACCEPT
	ip netns exec "$ns" iptables -A INPUT -p tcp -m tcp --dport 5432 -j REJECT --reject-with icmp-host-prohibited
	ip netns exec "$ns" iptables -A INPUT -j REJECT --reject-with icmp-host-prohibited
	# As iptables-persistent keeps them (db's /etc is its own).
	install -d -m 0755 "$(host_dir db)/etc-upper/iptables"
	ip netns exec "$ns" iptables-save >"$(host_dir db)/etc-upper/iptables/rules.v4"
}

start_host() { # HOST: PID 1 of the host, in its namespaces
	local h=$1 hd upid ipid i
	hd=$(host_dir "$h")
	setsid ip netns exec "$(host_ns "$h")" \
		unshare --mount --propagation private --uts --ipc --pid --fork --mount-proc --kill-child=SIGTERM \
		"$E2E_HOSTS_INSIDE/hostinit.sh" "$hd/host.env" </dev/null >>"$hd/log/init.log" 2>&1 &
	upid=$!
	echo "$upid" >"$hd/unshare.pid"
	for i in $(seq 100); do
		ipid=$(pgrep -P "$upid" || true)
		[ -n "$ipid" ] && break
		kill -0 "$upid" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "${ipid:-}" ] || { cat "$hd/log/init.log" >&2; die "$h: the host's init did not start"; }
	echo "$ipid" >"$hd/init.pid"
}

wait_ready() { # HOST
	local h=$1 hd i
	hd=$(host_dir "$h")
	for i in $(seq 600); do
		[ -e "$hd/ready" ] && return 0
		pid_alive "$hd/init.pid" || break
		sleep 0.1
	done
	cat "$hd/log/init.log" >&2
	die "$h did not come up (logs in $hd/log)"
}

log "hosts: keys, sshd, PostgreSQL clusters"
pids=()
for h in $MIGRUN_E2E_HOSTS; do
	setup_host "$h" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "setting up a host failed"; done
firewall_db
wait "$build_pid" || { cat "$MIGRUN_E2E_ROOT/build.log" >&2; die "building the stand-in engine failed"; }
for h in $MIGRUN_E2E_HOSTS; do start_host "$h"; done
for h in $MIGRUN_E2E_HOSTS; do wait_ready "$h"; done

# --- engine database ----------------------------------------------------------------
log "engine database"
ehd=$(host_dir engine)
# A loaded machine (CI, parallel tests) can take a while to start a cluster.
pg_up=
for i in $(seq 600); do
	if runuser -u postgres -- "$MIGRUN_E2E_PGBIN/pg_isready" -q -h "$ehd/fs/run/postgresql"; then pg_up=1; break; fi
	sleep 0.1
done
if [ -z "$pg_up" ]; then
	cat "$ehd/log/"*.log "$ehd/fs$MIGRUN_E2E_PGLOG" >&2 2>/dev/null || true
	die "engine's PostgreSQL did not accept connections within 60 s"
fi
epsql() { runuser -u postgres -- "$MIGRUN_E2E_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$ehd/fs/run/postgresql" "$@"; }
# The password travels on stdin, never in argv.
# owned_db NAME PASSWORD: a role and its database, as engine-setup makes them.
owned_db() {
	epsql -d postgres <<-SQL
		\set pw '$2'
		CREATE ROLE $1 LOGIN PASSWORD :'pw';
		CREATE DATABASE $1 OWNER $1 TEMPLATE template0 ENCODING 'UTF8'
		    LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8';
		ALTER DATABASE $1 SET lc_messages = 'en_US.UTF-8';
	SQL
}
owned_db engine "$engine_db_password"
epsql -d engine -c 'CREATE EXTENSION "uuid-ossp"'
# The stand-in for the oVirt 4.5 schema: tables without a primary key,
# sequences owned by no column, a generated column, hundreds of views and
# functions (see engine-schema.sql).
epsql -d engine -f "$E2E_HOSTS_DIR/engine-schema.sql"
# The DWH history database: 40 tables, 32 sequences no column owns,
# hundreds of views (see dwh-schema.sql).
owned_db ovirt_engine_history "$dwh_db_password"
{ echo 'SET ROLE ovirt_engine_history;'; cat "$E2E_HOSTS_DIR/dwh-schema.sql"; } | epsql -d ovirt_engine_history
# Grafana's read-only role (ovirt-engine-dwh's grafana provisioning): SELECT
# on every table now and, by default privileges, on every table the DWH
# makes later.
epsql -d ovirt_engine_history <<-SQL
	\set pw '$grafana_db_password'
	CREATE ROLE ovirt_engine_history_grafana LOGIN PASSWORD :'pw';
	GRANT USAGE ON SCHEMA public TO ovirt_engine_history_grafana;
	GRANT SELECT ON ALL TABLES IN SCHEMA public TO ovirt_engine_history_grafana;
	ALTER DEFAULT PRIVILEGES FOR ROLE ovirt_engine_history IN SCHEMA public GRANT SELECT ON TABLES TO ovirt_engine_history_grafana;
SQL
# The Keycloak database: Liquibase's changelog without a primary key,
# foreign keys, the sessions and events the engine writes (see
# keycloak-schema.sql).
owned_db ovirt_engine_keycloak "$keycloak_db_password"
{ echo 'SET ROLE ovirt_engine_keycloak;'; cat "$E2E_HOSTS_DIR/keycloak-schema.sql"; } | epsql -d ovirt_engine_keycloak

# --- client files -------------------------------------------------------------------
: >"$MIGRUN_E2E_KNOWN_HOSTS"
: >"$MIGRUN_E2E_SSH_CONFIG"
for h in $MIGRUN_E2E_HOSTS; do
	echo "$(host_ip "$h") $(cut -d' ' -f1,2 "$(host_dir "$h")/ssh/ssh_host_ed25519_key.pub")" >>"$MIGRUN_E2E_KNOWN_HOSTS"
	cat >>"$MIGRUN_E2E_SSH_CONFIG" <<-CONF
		Host $h
		    HostName $(host_ip "$h")
		    User root
		    IdentityFile $MIGRUN_E2E_IDENTITY
		    IdentitiesOnly yes
		    UserKnownHostsFile $MIGRUN_E2E_KNOWN_HOSTS
		    GlobalKnownHostsFile /dev/null
		    StrictHostKeyChecking yes
		    BatchMode yes
		    ConnectTimeout 10
		    LogLevel ERROR

	CONF
done
chmod 0644 "$MIGRUN_E2E_KNOWN_HOSTS" "$MIGRUN_E2E_SSH_CONFIG"

# --- check ----------------------------------------------------------------------------
for h in $MIGRUN_E2E_HOSTS; do
	got=$(ssh -F "$MIGRUN_E2E_SSH_CONFIG" "$h" 'hostname; systemctl is-active postgresql') ||
		die "ssh to $h failed (logs in $(host_dir "$h")/log)"
	[ "$got" = "$h"$'\n'active ] || die "$h: unexpected answer from the host: $got"
done
# The stand-in engine retried while its database was being made: wait until
# it writes heartbeats (health 200).
ok=
for i in $(seq 100); do
	code=$(ssh -F "$MIGRUN_E2E_SSH_CONFIG" engine 'curl -s -o /dev/null -w "%{http_code}" http://localhost/ovirt-engine/services/health' || true)
	[ "$code" = 200 ] && { ok=1; break; }
	sleep 0.2
done
[ -n "$ok" ] || { tail -n 20 "$ehd/fs/var/log/ovirt-engine/engine.log" >&2 2>/dev/null || true; die "the stand-in engine's health did not answer 200 (last: $code)"; }
t1=$(date +%s)
log "up in $((t1 - t0))s (packages $((t_pkgs - t0))s): ssh -F $MIGRUN_E2E_SSH_CONFIG engine|db"
