#!/usr/bin/env bash
# bench/run.sh — migrun against the tools an administrator would use
# instead, side by side on throwaway test hosts (issue 9). `make bench` runs
# it after the Go benchmarks when root on Linux.
#
#   bench/run.sh                                   # the full run (about 50 min at the defaults)
#   MIGRUN_BENCH_DB_MB=100 MIGRUN_BENCH_ROUNDS=1 MIGRUN_BENCH_SWEEP=0 \
#   MIGRUN_BENCH_COPY_MB=100 bench/run.sh          # a quick one (~5 min)
#
# It prints ONE table on stdout and a final summary line of ratios against
# the targets of issue 9; progress goes to stderr, every run's output to the
# log directory. Parts (MIGRUN_BENCH_PARTS):
#
#   downtime  the engine's downtime moving its database to the db host: the
#             largest gap between consecutive heartbeats of the stand-in
#             engine (one every 200 ms) over the old and the new database,
#             for the guide's manual procedure (peers/manual.sh), Ansible
#             (peers/ansible-move.yml) and migrun's headline plan
#             (plans/ovirt-engine-remote-db.yaml, with the variables
#             scripts/demo-hosts.sh uses) both ways: `migrun` (the default
#             replicate=true: logical replication while the engine runs)
#             and `migrun-dump` (replicate=false: dump, copy, restore with
#             the engine stopped), and `migrun-capture`
#             (replicate=false capture=true: the copy made while the
#             engine runs, its changes logged by triggers and applied in
#             the downtime). Each run on a fresh pair of hosts whose
#             Manager is the faithful stand-in of e2e/hosts (the schema
#             up.sh loads, e2e/hosts/engine-schema.sql, grown to the size
#             by e2e/hosts/engine-bulk.sql; the engine, dwhd, the notifier
#             and the fence_kdump listener writing to it all the time),
#             tools alternating; the peers' target is prepared beforehand
#             exactly as the plan's own preparation steps leave it (migrun
#             --only those steps), so only the move is compared; migrun's
#             preparation runs while the engine still runs, as the plan says.
#             Every run is verified: row counts of every table (but those
#             the clients write all the time), every sequence (but theirs),
#             indexes, constraints, functions, triggers and extensions equal
#             between the old and the new database, and the engine writing
#             its heartbeats to the new one; after a migrun run the four
#             clients are stopped and each checks with -verify that the
#             database it is configured for holds everything it committed
#             (a MISMATCH fails the run). The peers do what the guide says:
#             only ovirt-engine is stopped and repointed, the other clients
#             stay on the old database (the note says so). Also at 0.25x
#             and 4x the size.
#   copy      a file from engine to db: migrun's `copy` step (a one-step
#             plan; also with `direct: true` where the binary has it),
#             `scp -3` run on the workstation, and `scp` run on the engine
#             host to the db host (the direct path); MiB/s and migrun's
#             peak RSS.
#   overhead  the same N trivial commands (`true`) alternating over the two
#             hosts: migrun (N `command` steps, a fresh state dir each
#             time), ansible-playbook (N command tasks, pipelining, one
#             ControlMaster per host) and one `ssh` per command; the wall
#             time of the whole process; with MIGRUN_BENCH_BASELINE_BIN,
#             that binary too (migrun-baseline), in the same rounds.
#
# Configuration (environment; defaults in brackets):
#   MIGRUN_BENCH_DB_MB        size of the engine database on disk, MB [1024]
#   MIGRUN_BENCH_ROUNDS       downtime rounds at that size, each peer once a round [3]
#   MIGRUN_BENCH_SWEEP        1: also at other sizes (the factors below); 0: not [1]
#   MIGRUN_BENCH_SWEEP_FACTORS those sizes, as factors of MIGRUN_BENCH_DB_MB ["0.25 4"]
#   MIGRUN_BENCH_SWEEP_ROUNDS rounds at each of those sizes [1]
#   MIGRUN_BENCH_SWEEP_MIGRUN_ROUNDS rounds of migrun (replication) at each of
#                             those sizes, the ones past SWEEP_ROUNDS alone: issue 19
#                             compares its downtime across sizes, and one run's
#                             heartbeat gap varies by 0.1-0.2 s [3]
#   MIGRUN_BENCH_TOOLS        downtime tools, in the order of the first round
#                             [manual,ansible,migrun,migrun-dump,migrun-capture]
#   MIGRUN_BENCH_MIGRUN_VARS  extra plan variables for migrun's own moves (both tools), e.g.
#                             "bulk_load=true" (not replicate: the tool sets it) []
#   MIGRUN_BENCH_COPY_MB      size of the copied file, MB [1024]
#   MIGRUN_BENCH_COPY_ROUNDS  copy rounds, each tool once a round [3]
#   MIGRUN_BENCH_STEPS        trivial commands in the overhead runs, one or
#                             more counts ["20 50"]
#   MIGRUN_BENCH_OVERHEAD_ROUNDS overhead rounds, each tool once a round [5]
#   MIGRUN_BENCH_ANSIBLE_MODULE  command or raw, the overhead playbook's tasks [command]
#   MIGRUN_BENCH_PARTS        which parts, comma-separated [overhead,copy,downtime]
#   MIGRUN_BENCH_BIN          a migrun binary to test [built as make package does: CGO_ENABLED=0 go build -trimpath]
#   MIGRUN_BENCH_BASELINE_BIN another migrun binary (an older build) measured
#                             beside it in the overhead runs []
#   MIGRUN_BENCH_CACHE        database templates (a data directory per size,
#                             reused while engine-schema.sql, engine-bulk.sql,
#                             the recipe here and PostgreSQL are unchanged)
#                             [/var/cache/migrun-bench]
#   MIGRUN_BENCH_PURGE        1: remove the template cache at the end [0]
#   MIGRUN_BENCH_LOGS         where every run's output goes [/var/tmp/migrun-bench/logs-DATE]
#   MIGRUN_BENCH_KEEP_HOSTS   1: leave the last pair of hosts up [0]
#   MIGRUN_BENCH_REPORT       a results.tsv of an earlier run: print its table, run nothing
# The benchmark's own set of test hosts, never the e2e tests' (e2e/hosts/env.sh):
#   MIGRUN_BENCH_ROOT [/run/migrun-bench]  MIGRUN_BENCH_SUBNET [10.232.0.0/24]
#   MIGRUN_BENCH_BRIDGE [mrbench-br0]  MIGRUN_BENCH_ENGINE_NS [mrbench-engine]
#   MIGRUN_BENCH_DB_NS [mrbench-db]
#
# Needs root on Linux (Debian 12): it installs what it lacks with apt-get
# (ansible-core, time, and what e2e/hosts/up.sh installs).
# shellcheck source-path=SCRIPTDIR disable=SC2153 # (MIGRUN_E2E_* come from env.sh)
set -euo pipefail
export LC_ALL=C.UTF-8 # Ansible refuses any locale but a UTF-8 one
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd / # psql as postgres, runuser: from a directory everyone can read
repo=$(cd "$here/.." && pwd)
hostsdir=$repo/e2e/hosts
plan=$repo/plans/ovirt-engine-remote-db.yaml

# --- configuration ----------------------------------------------------------------
DB_MB=${MIGRUN_BENCH_DB_MB:-1024}
ROUNDS=${MIGRUN_BENCH_ROUNDS:-3}
SWEEP=${MIGRUN_BENCH_SWEEP:-1}
SWEEP_ROUNDS=${MIGRUN_BENCH_SWEEP_ROUNDS:-1}
SWEEP_MIGRUN_ROUNDS=${MIGRUN_BENCH_SWEEP_MIGRUN_ROUNDS:-3}
SWEEP_FACTORS=${MIGRUN_BENCH_SWEEP_FACTORS:-0.25 4}
TOOLS=${MIGRUN_BENCH_TOOLS:-manual,ansible,migrun,migrun-dump,migrun-capture}
COPY_MB=${MIGRUN_BENCH_COPY_MB:-1024}
COPY_ROUNDS=${MIGRUN_BENCH_COPY_ROUNDS:-3}
STEPS=${MIGRUN_BENCH_STEPS:-20 50}
BASELINE_BIN=${MIGRUN_BENCH_BASELINE_BIN:-}
OVERHEAD_ROUNDS=${MIGRUN_BENCH_OVERHEAD_ROUNDS:-5}
ANSIBLE_MODULE=${MIGRUN_BENCH_ANSIBLE_MODULE:-command}
PARTS=${MIGRUN_BENCH_PARTS:-overhead,copy,downtime}
CACHE=${MIGRUN_BENCH_CACHE:-/var/cache/migrun-bench}
LOGS=${MIGRUN_BENCH_LOGS:-/var/tmp/migrun-bench/logs-$(date +%Y%m%d-%H%M%S)}

# The first downtime step of the headline plan: the steps before it are its
# preparation (run for the peers beforehand, as for migrun while the engine runs).
FIRST_DOWNTIME_STEP=stop-dwhd

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# --- the table and the summary ----------------------------------------------------
# print_table RESULTS: the one table and the summary line, from the
# results file (part size tool value ok note, tab-separated).
print_table() {
	python3 - "$1" "$DB_MB" "$COPY_MB" <<-'PY'
		import sys, statistics
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
		db_mb, copy_mb = sys.argv[2], sys.argv[3]
		groups, order = {}, []
		for part, size, tool, value, ok, note in rows:
		    k = (part, size, tool)
		    if k not in groups:
		        groups[k] = {"vals": [], "n": 0, "notes": {}}
		        order.append(k)
		    g = groups[k]
		    g["n"] += 1
		    if ok == "1":
		        g["vals"].append(float(value))
		        if note:
		            g["notes"][float(value)] = note
		def med(k):
		    g = groups.get(k)
		    return statistics.median(g["vals"]) if g and g["vals"] else None
		ref = {"downtime": "manual", "copy": "scp-3", "overhead": "ssh"}
		unit = {"downtime": "s", "copy": "MiB/s", "overhead": "s", "data": "s", "rss": "MiB"}
		partorder = {"data": 0, "downtime": 1, "copy": 2, "rss": 3, "overhead": 4}
		toolorder = {"generate": 0, "load": 1, "manual": 2, "ansible": 3, "scp-3": 4, "scp-direct": 5, "ssh": 6, "migrun-baseline": 7, "migrun": 9, "migrun-direct": 10, "migrun-dump": 11, "migrun-capture": 12}
		def sizekey(s):
		    try: return float(s.split("MB")[0].split()[0])
		    except ValueError: return 0
		order.sort(key=lambda k: (partorder.get(k[0], 9), sizekey(k[1]), toolorder.get(k[2], 8)))
		hdr = ["part", "size", "tool", "ok", "min", "median", "max", "unit", "vs ref", "per step", "notes"]
		out = []
		for k in order:
		    part, size, tool = k
		    if part == "rss":
		        continue
		    g = groups[k]
		    v = g["vals"]
		    m = med(k)
		    vs = ""
		    if part in ref and m is not None:
		        r = med((part, size, ref[part]))
		        if r:
		            vs = "%.3fx %s" % (m / r, ref[part]) if tool != ref[part] else "ref"
		    per = ""
		    if part == "overhead" and m is not None:
		        per = "%.1f ms" % (m / int(size.split()[0]) * 1000)
		    # the note of the run nearest the median (migrun's per-phase seconds)
		    note = g["notes"][min(g["notes"], key=lambda x: abs(x - m))] if g["notes"] and m is not None else ""
		    if part == "data" and tool == "load":
		        note = note + " (template copy, engine up)"
		    if part == "copy" and tool.startswith("migrun"):
		        rs = groups.get(("rss", size, tool))
		        if rs and rs["vals"]:
		            note = "peak RSS %.0f MiB" % max(rs["vals"])
		    fmt = (lambda x: "%.1f" % x) if part == "copy" else (lambda x: "%.2f" % x)
		    out.append([part, size, tool, "%d/%d" % (len(v), g["n"]),
		                fmt(min(v)) if v else "-", fmt(m) if v else "-", fmt(max(v)) if v else "-",
		                unit.get(part, ""), vs, per, note])
		w = [max(len(str(r[i])) for r in out + [hdr]) for i in range(len(hdr))]
		for r in [hdr] + out:
		    print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
		# Summary: ratios against issue 9's targets.
		def ratio(a, b):
		    return a / b if a is not None and b else None
		items = []
		def item(name, val, op, target, fmt="%.3f"):
		    if val is None:
		        items.append("%s n/a" % name)
		        return
		    ok = val <= target if op == "<=" else val >= target
		    items.append(("%s " + fmt + " (target %s %s) %s") % (name, val, op, target, "PASS" if ok else "FAIL"))
		dm = "%sMB" % db_mb
		bad = [k for k in groups if k[0] == "downtime" and k[1] == dm and len(groups[k]["vals"]) < groups[k]["n"]]
		# The headline plan both ways, against the manual procedure (issue 9's
		# target is for the default, replicate=true) and against Ansible.
		dtools = [t for t in ("migrun", "migrun-dump", "migrun-capture") if ("downtime", dm, t) in groups] or ["migrun"]
		for t in dtools:
		    if t == "migrun":
		        item("downtime %s/manual" % t, ratio(med(("downtime", dm, t)), med(("downtime", dm, "manual"))), "<=", 0.5)
		    else:
		        r = ratio(med(("downtime", dm, t)), med(("downtime", dm, "manual")))
		        items.append("downtime %s/manual %s" % (t, "%.3f" % r if r is not None else "n/a"))
		    r = ratio(med(("downtime", dm, t)), med(("downtime", dm, "ansible")))
		    items[-1] += ", /ansible %s" % ("%.3f" % r if r is not None else "n/a")
		if bad:
		    items.append("UNVERIFIED downtime runs: %s" % ",".join(k[2] for k in bad))
		# Issue 19: with replication at most 3 s at every size, the largest
		# within 10% of the smallest; without (migrun-capture) at most 0.5x
		# the manual procedure at every size.
		dsizes = sorted({k[1] for k in groups if k[0] == "downtime" and k[2] == "migrun" and groups[k]["vals"]}, key=sizekey)
		if len(dsizes) > 1:
		    item("downtime migrun %s/%s" % (dsizes[-1], dsizes[0]), ratio(med(("downtime", dsizes[-1], "migrun")), med(("downtime", dsizes[0], "migrun"))), "<=", 1.10)
		if dsizes:
		    item("downtime migrun max s", max(med(("downtime", s, "migrun")) for s in dsizes), "<=", 3.0, "%.2f")
		for s in sorted({k[1] for k in groups if k[0] == "downtime" and k[2] == "migrun-capture"}, key=sizekey):
		    item("downtime migrun-capture/manual %s" % s, ratio(med(("downtime", s, "migrun-capture")), med(("downtime", s, "manual"))), "<=", 0.5)
		# Issue 9's target is for 50 steps; issue 19's for 20: half the 493 ms
		# spot took for them where it was measured (it is not installable here).
		item("overhead 50 steps migrun/ssh", ratio(med(("overhead", "50 steps", "migrun")), med(("overhead", "50 steps", "ssh"))), "<=", 0.03)
		item("overhead 20 steps migrun s", med(("overhead", "20 steps", "migrun")), "<=", 0.247)
		for k in sorted(k for k in groups if k[0] == "overhead" and k[2] == "migrun-baseline"):
		    r = ratio(med((k[0], k[1], "migrun")), med(k))
		    items.append("overhead %s migrun/migrun-baseline %s" % (k[1], "%.3f" % r if r is not None else "n/a"))
		cm = "%sMB" % copy_mb
		item("copy migrun/scp-3", ratio(med(("copy", cm, "migrun")), med(("copy", cm, "scp-3"))), ">=", 1.0)
		direct = "migrun-direct" if ("copy", cm, "migrun-direct") in groups else "migrun"
		item("copy %s/direct-scp" % direct, ratio(med(("copy", cm, direct)), med(("copy", cm, "scp-direct"))), ">=", 0.9)
		rss = [v for t in ("migrun", "migrun-direct") for v in (groups.get(("rss", cm, t)) or {"vals": []})["vals"]]
		item("peak RSS MiB", max(rss) if rss else None, "<=", 64, "%.0f")
		print("summary: " + " | ".join(items) + " | spot (published): overhead 0.055x ssh, downtime 0.8x manual")
	PY
}

# MIGRUN_BENCH_REPORT=RESULTS: print the table of an earlier run's results
# file (LOGS/results.tsv) and stop; nothing else runs.
if [ -n "${MIGRUN_BENCH_REPORT:-}" ]; then
	print_table "$MIGRUN_BENCH_REPORT"
	exit 0
fi

{ [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; } || die "needs root on Linux (it creates test hosts with network and mount namespaces)"
for v in DB_MB ROUNDS SWEEP SWEEP_ROUNDS SWEEP_MIGRUN_ROUNDS COPY_MB COPY_ROUNDS OVERHEAD_ROUNDS; do
	is_uint "${!v}" || die "MIGRUN_BENCH_$v must be a whole number, not '${!v}'"
done
for v in $STEPS; do
	is_uint "$v" && [ "$v" -gt 0 ] || die "MIGRUN_BENCH_STEPS: not a positive whole number: $v"
done
[ -z "$BASELINE_BIN" ] || [ -x "$BASELINE_BIN" ] || die "MIGRUN_BENCH_BASELINE_BIN: no executable at $BASELINE_BIN"
[ "$DB_MB" -ge 8 ] || die "MIGRUN_BENCH_DB_MB must be at least 8"
case $ANSIBLE_MODULE in command | raw) ;; *) die "MIGRUN_BENCH_ANSIBLE_MODULE: command or raw" ;; esac
want() { [[ ",$PARTS," == *",$1,"* ]]; }
IFS=, read -r -a tools <<<"$TOOLS"
for t in "${tools[@]}"; do case $t in manual | ansible | migrun | migrun-dump | migrun-capture) ;; *) die "MIGRUN_BENCH_TOOLS: unknown tool $t (manual, ansible, migrun, migrun-dump, migrun-capture)" ;; esac; done
for v in ${MIGRUN_BENCH_MIGRUN_VARS:-}; do
	case $v in replicate=*) die "MIGRUN_BENCH_MIGRUN_VARS: not replicate (the tool migrun is replicate=true, migrun-dump and migrun-capture replicate=false)" ;; esac
done

# The benchmark's own test hosts. Never the e2e tests' default set, which
# another session may be using right now: refuse its names outright.
for v in $(compgen -v MIGRUN_E2E_ || true); do unset "$v"; done
export MIGRUN_E2E_ROOT=${MIGRUN_BENCH_ROOT:-/run/migrun-bench}
export MIGRUN_E2E_SUBNET=${MIGRUN_BENCH_SUBNET:-10.232.0.0/24}
export MIGRUN_E2E_BRIDGE=${MIGRUN_BENCH_BRIDGE:-mrbench-br0}
export MIGRUN_E2E_ENGINE_NS=${MIGRUN_BENCH_ENGINE_NS:-mrbench-engine}
export MIGRUN_E2E_DB_NS=${MIGRUN_BENCH_DB_NS:-mrbench-db}
case " $(readlink -m "$MIGRUN_E2E_ROOT") $MIGRUN_E2E_SUBNET $MIGRUN_E2E_BRIDGE $MIGRUN_E2E_ENGINE_NS $MIGRUN_E2E_DB_NS " in
*" /run/migrun-e2e "* | *" 10.231.0.0/24 "* | *" migrun-br0 "* | *" migrun-engine "* | *" migrun-db "*)
	die "MIGRUN_BENCH_ROOT/SUBNET/BRIDGE/ENGINE_NS/DB_NS must not name the e2e tests' hosts" ;;
esac
# shellcheck source=../e2e/hosts/lib.sh
. "$hostsdir/lib.sh" # env.sh, host_dir, other_roots ...
# (lib.sh has its own say/die: ours again.)
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

install -d -m 0755 "$LOGS" "$CACHE"
work=$(mktemp -d /var/tmp/migrun-bench-work.XXXXXX)
results=$LOGS/results.tsv # part size tool value ok note; kept with the logs
: >"$results"
table_printed=0
hosts_log=$LOGS/hosts.log


# --- clean-up -----------------------------------------------------------------------
# Directories the hosts bind-mount over or need (/run/sshd) that up.sh makes
# when the machine lacks them. An e2e set brought up by an older up.sh/down.sh
# removes the ones it made when it goes down, even while these hosts use them:
# a marker file keeps them non-empty (rmdir fails), and the ones this script
# made are handed to another set still up at the end, or removed.
shared_dirs=/run/sshd
for d in $E2E_PRIVATE_DIRS; do
	case $d in /etc/* | /tmp | /var/tmp | /root | /usr/local/sbin | /run/postgresql | /var/lib/postgresql) ;; *) shared_dirs="$shared_dirs $d" ;; esac
done
marker=.migrun-bench-in-use.$$
made_dirs=() borrowed=() # borrowed: "DIR ROOT", made by a set that is up (ROOT/created-paths)
others=$(other_roots || true)
for d in $shared_dirs; do
	if [ ! -d "$d" ]; then
		install -d -m 0755 "$d"
		made_dirs+=("$d")
	else
		for o in $others; do
			if grep -qxF "$d" "$o/created-paths" 2>/dev/null; then borrowed+=("$d $o"); fi
		done
	fi
	: >"$d/$marker"
done

ssh_masters_dir=$work/ansible/cp
MARGS=() PVARS=()
cleanup() {
	local rc=$? d heir s
	trap - EXIT INT TERM
	set +e
	for s in "$ssh_masters_dir"*/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1; done
	if [ "${MIGRUN_BENCH_KEEP_HOSTS:-0}" = 1 ] && [ -e "$MIGRUN_E2E_ROOT/hosts.env" ]; then
		say "hosts left up: MIGRUN_E2E_ROOT=$MIGRUN_E2E_ROOT $hostsdir/down.sh takes them down"
	else
		say "taking the benchmark's hosts down"
		"$hostsdir/down.sh" >>"$hosts_log" 2>&1 || say "down.sh failed (see $hosts_log)"
	fi
	for d in $shared_dirs; do rm -f "$d/$marker"; done
	# What a set gone meanwhile could not remove because of the marker.
	for s in "${borrowed[@]}"; do
		[ -d "${s#* }" ] || rmdir "${s%% *}" 2>/dev/null
	done
	if [ ${#made_dirs[@]} -gt 0 ]; then
		heir=$(other_roots | head -n 1 || true)
		if [ -n "$heir" ] && [ -w "$heir/created-paths" ]; then
			printf '%s\n' "${made_dirs[@]}" >>"$heir/created-paths"
		elif [ "${MIGRUN_BENCH_KEEP_HOSTS:-0}" != 1 ]; then
			for d in "${made_dirs[@]}"; do rmdir "$d" 2>/dev/null; done
		fi
	fi
	if [ "$table_printed" = 0 ] && [ -s "$results" ]; then
		say "stopped early: the table of what was measured (also: MIGRUN_BENCH_REPORT=$results $0)"
		print_table "$results"
	fi
	rm -rf "$work"
	if [ "${MIGRUN_BENCH_PURGE:-0}" = 1 ]; then rm -rf "$CACHE"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools --------------------------------------------------------------------------
need=()
command -v ansible-playbook >/dev/null || need+=(ansible-core)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]} (apt-get)"
	{ DEBIAN_FRONTEND=noninteractive apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"; } >>"$LOGS/apt.log" 2>&1 ||
		die "apt-get install ${need[*]} failed (log: $LOGS/apt.log)"
fi
# Ansible's files stay in the work dir (not ~/.ansible).
mkdir -p "$work/ansible/home" "$work/ansible/tmp"
export ANSIBLE_HOME=$work/ansible/home ANSIBLE_LOCAL_TEMP=$work/ansible/tmp ANSIBLE_NOCOLOR=1
ansible_version=$(ansible-playbook --version | sed -n '1s/[][]//gp')
if [ -n "${MIGRUN_BENCH_BIN:-}" ]; then
	bin=$MIGRUN_BENCH_BIN
else
	say "building migrun"
	# As `make package` builds what users install: static (CGO_ENABLED=0),
	# which also starts a few milliseconds sooner than a binary that loads
	# the C library.
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$work/migrun" ./cmd/migrun) || die "go build ./cmd/migrun failed"
	bin=$work/migrun
fi
[ -x "$bin" ] || die "no migrun binary at $bin"
migrun_version=$("$bin" version 2>/dev/null | head -n 1 || echo "migrun ?")
# The downtime runs keep a trace (apply --trace: every host operation,
# timed) beside their journal, where the binary has the flag.
trace_flag=0
"$bin" apply -h 2>&1 | grep -q -- '-trace' && trace_flag=1

# --- hosts --------------------------------------------------------------------------
hosts_fresh() { # a fresh pair of hosts: down (whatever is there), up
	"$hostsdir/down.sh" >>"$hosts_log" 2>&1 || die "down.sh failed (see $hosts_log)"
	"$hostsdir/up.sh" >>"$hosts_log" 2>&1 || { tail -n 20 "$hosts_log" >&2; die "up.sh failed (see $hosts_log)"; }
	# shellcheck source=../e2e/hosts/env.sh
	. "$hostsdir/env.sh"
	provision_key
	migrun_args
}
sshc() { ssh -F "$MIGRUN_E2E_SSH_CONFIG" "$@"; }
# hpsql HOST ARGS...: psql as postgres on a host's cluster, through the
# socket dir every host's private /run/postgresql mirrors here.
hpsql() {
	local h=$1
	shift
	runuser -u postgres -- "$MIGRUN_E2E_PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$(host_dir "$h")/fs/run/postgresql" -p "$MIGRUN_E2E_PGPORT" "$@"
}
# The Manager reaches the db host by ssh (the manual procedure's scp, the
# direct copy): a key for this pair of hosts only, gone with them.
provision_key() {
	local efs dfs
	efs=$(host_dir engine)/fs dfs=$(host_dir db)/fs
	ssh-keygen -q -t ed25519 -N '' -C migrun-bench-run -f "$efs/root/.ssh/id_ed25519"
	cat "$efs/root/.ssh/id_ed25519.pub" >>"$dfs/root/.ssh/authorized_keys"
	echo "$MIGRUN_E2E_DB_IP $(cut -d' ' -f1,2 "$(host_dir db)/ssh/ssh_host_ed25519_key.pub")" >>"$efs/root/.ssh/known_hosts"
	chmod 0600 "$efs/root/.ssh/known_hosts"
}
wait_health() { # until the engine answers 200 (SECONDS)
	local i code=
	for i in $(seq $(($1 * 5))); do
		code=$(sshc engine 'curl -s -o /dev/null -w "%{http_code}" http://localhost/ovirt-engine/services/health' 2>/dev/null || true)
		[ "$code" = 200 ] && return 0
		sleep 0.2
	done
	return 1
}
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# --- the engine database -------------------------------------------------------------
# The faithful stand-in's schema, which up.sh loads on every fresh engine
# host (e2e/hosts/engine-schema.sql), grown by e2e/hosts/engine-bulk.sql to
# the size: built once per size into a template (a copy of the engine
# host's stopped data directory, with the clients' accounts, which must
# match what the database holds for their -verify), then copied into each
# fresh engine host: much faster than growing (or pg_restore-ing) it again
# for every run. The template's name hashes the SQL files (the engine's,
# the DWH's and Keycloak's databases are all in the data directory), the
# stand-in clients' sources (their accounts are in it), the recipe below
# and the PostgreSQL version.
pgdata_engine() { echo "$(host_dir engine)/fs$MIGRUN_E2E_PGDATA"; }
standin_state() { echo "$(host_dir engine)/fs/var/lib/ovirt-standin"; } # the clients' accounts
# The Manager's clients of the engine database, as the plan stops them.
CLIENTS=(ovirt-engine ovirt-engine-dwhd ovirt-engine-notifier ovirt-fence-kdump-listener)
tpl_dir() {
	local h
	h=$( {
		cat "$hostsdir"/engine-schema.sql "$hostsdir"/engine-bulk.sql "$hostsdir"/dwh-schema.sql "$hostsdir"/keycloak-schema.sql \
			"$repo"/e2e/standin/engine/*.go
		declare -f build_template
		"$MIGRUN_E2E_PGBIN/postgres" --version
	} | sha256sum | cut -c1-12)
	echo "$CACHE/engine-${1}mb-$h"
}
build_template() { # MB: grow the fresh engine host's database to MB, keep its data dir
	local mb=$1 tpl t0 t1 size grow
	tpl=$(tpl_dir "$mb")
	say "growing the engine database to ${mb} MB (once; cached in $tpl)"
	# The clients stop first: the restarts below would count as their
	# failures, and their accounts go into the template with the data.
	sshc engine "systemctl stop ${CLIENTS[*]}" >/dev/null
	# Less WAL to write (no WAL archiving or senders), fewer checkpoints.
	hpsql engine -d postgres -c "ALTER SYSTEM SET wal_level = minimal" -c "ALTER SYSTEM SET max_wal_senders = 0" \
		-c "ALTER SYSTEM SET max_wal_size = '16GB'" -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" \
		-c "ALTER SYSTEM SET synchronous_commit = off"
	sshc engine 'systemctl restart postgresql' >/dev/null
	t0=$(now)
	size=$(hpsql engine -d engine -c "SELECT pg_database_size('engine') / 1048576")
	grow=$((mb - size))
	if [ "$grow" -gt 0 ]; then
		hpsql engine -d engine -v mb="$grow" -f "$hostsdir/engine-bulk.sql" >>"$LOGS/generate.log" 2>&1 ||
			{ tail -n 20 "$LOGS/generate.log" >&2; die "engine-bulk.sql failed (log: $LOGS/generate.log)"; }
	fi
	# Settled pages (hint bits, frozen, statistics) for every run alike.
	hpsql engine -d engine -c "VACUUM (FREEZE, ANALYZE)" >>"$LOGS/generate.log" 2>&1
	t1=$(now)
	size=$(hpsql engine -d engine -c "SELECT pg_database_size('engine') / 1048576")
	# Back to the usual settings, and a small WAL: the checkpoints drop the
	# segments the growth filled, which the template would carry.
	hpsql engine -d postgres -c "ALTER SYSTEM RESET ALL" -c "ALTER SYSTEM SET max_wal_size = '64MB'" \
		-c "ALTER SYSTEM SET min_wal_size = '32MB'" -c "SELECT pg_reload_conf()" -c CHECKPOINT -c CHECKPOINT >/dev/null
	sshc engine 'systemctl stop postgresql' >/dev/null
	rm -rf "$tpl.tmp"
	install -d -m 0755 "$tpl.tmp"
	cp -a "$(pgdata_engine)" "$tpl.tmp/pgdata"
	cp -a "$(standin_state)" "$tpl.tmp/standin"
	printf 'mb=%s\nsize_mb=%s\ngenerate_s=%s\n' "$mb" "$size" "$(elapsed "$t0" "$t1")" >"$tpl.tmp/meta"
	rm -rf "$tpl"
	mv "$tpl.tmp" "$tpl"
	say "grown in $(elapsed "$t0" "$t1") s: ${size} MB on disk"
}
load_template() { # MB: the template's data (and the clients' accounts) into the current engine host
	local mb=$1 tpl pd t0 pw dpw
	tpl=$(tpl_dir "$mb")
	[ -d "$tpl/pgdata" ] || build_template "$mb"
	pd=$(pgdata_engine)
	t0=$(now)
	sshc engine "systemctl stop ${CLIENTS[*]} postgresql" >/dev/null
	# The fresh cluster's own configuration stays (addresses, pg_hba).
	rm -rf "$work/conf"
	mkdir "$work/conf"
	cp -a "$pd"/postgresql.conf "$pd"/postgresql.auto.conf "$pd"/pg_hba.conf "$pd"/pg_ident.conf "$work/conf/"
	rm -rf "$pd"
	cp -a "$tpl/pgdata" "$pd"
	cp -a "$work/conf/"* "$pd/" # (not conf/.: that would copy the dir's owner and mode too)
	# The accounts of what the template's database holds: the clients go
	# on from there (the fresh host's, of the database up.sh made, are gone with it).
	# (The directory itself is a host's bind mount: its contents only.)
	find "$(standin_state)" -mindepth 1 -delete
	cp -a "$tpl/standin/." "$(standin_state)/"
	sshc engine 'systemctl start postgresql' >/dev/null
	# This pair's passwords (up.sh made new ones), on stdin only.
	pw=$(cat "$MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE") dpw=$(cat "$MIGRUN_E2E_DWH_DB_PASSWORD_FILE")
	kpw=$(cat "$MIGRUN_E2E_KEYCLOAK_DB_PASSWORD_FILE") gpw=$(cat "$MIGRUN_E2E_GRAFANA_DB_PASSWORD_FILE")
	hpsql engine -d postgres <<-SQL
		\set pw '$pw'
		\set dpw '$dpw'
		\set kpw '$kpw'
		\set gpw '$gpw'
		ALTER ROLE engine PASSWORD :'pw';
		ALTER ROLE ovirt_engine_history PASSWORD :'dpw';
		ALTER ROLE ovirt_engine_keycloak PASSWORD :'kpw';
		ALTER ROLE ovirt_engine_history_grafana PASSWORD :'gpw';
	SQL
	sshc engine "systemctl start ${CLIENTS[*]}" >/dev/null
	wait_health 60 || die "the engine did not come up on the loaded database"
	echo -e "data\t${mb}MB\tload\t$(elapsed "$t0" "$(now)")\t1\t$(meta "$tpl" size_mb) MB on disk" >>"$results"
}
meta() { sed -n "s/^$2=//p" "$1/meta"; } # TEMPLATE KEY
data_row() { # MB: the growth time of a template, as measured when it was built
	local tpl
	tpl=$(tpl_dir "$1")
	[ -r "$tpl/meta" ] || return 0
	echo -e "data\t${1}MB\tgenerate\t$(meta "$tpl" generate_s)\t1\tengine-schema.sql + engine-bulk.sql; $(meta "$tpl" size_mb) MB on disk" >>"$results"
}

# --- migrun ---------------------------------------------------------------------------
migrun_args() { # MARGS: how migrun reaches the hosts; PVARS: the headline plan's vars, as scripts/demo-hosts.sh sets them
	MARGS=(--known-hosts "$MIGRUN_E2E_KNOWN_HOSTS" --identity "$MIGRUN_E2E_IDENTITY" --ssh-config none)
	PVARS=(--var "engine_host=$MIGRUN_E2E_ENGINE_IP" --var "db_host=$MIGRUN_E2E_DB_IP"
		--var "engine_ip=$MIGRUN_E2E_ENGINE_IP" --var "pg_data=$MIGRUN_E2E_PGDATA" --var install_packages=false
		# The manual procedure and the Ansible playbook move the engine
		# database only, as the guide does: so does migrun here, for a
		# like-for-like downtime.
		--var move_dwh_db=false --var move_keycloak_db=false)
}
prep_steps() { # the headline plan's step ids before FIRST_DOWNTIME_STEP
	awk -v stop="$FIRST_DOWNTIME_STEP" '
		/^steps:/ { on = 1; next }
		/^[a-z_]+:/ { on = 0 }
		on && /^  - id: / { if ($3 == stop) exit; ids = ids (ids ? "," : "") $3 }
		END { print ids }' "$plan"
}
# run_migrun LOG ARGS...: migrun with the engine DB password in its
# environment only (the plan's secret engine_db_password reads
# ENGINE_DB_PASSWORD), peak RSS into LOG.rss (KiB).
run_migrun() {
	local log=$1
	shift
	ENGINE_DB_PASSWORD=$(cat "$MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE") \
		/usr/bin/time -f %M -o "$log.rss" "$bin" "$@" >"$log.out" 2>"$log.err"
}

# --- downtime -------------------------------------------------------------------------
# heartbeats HOST SINCE: epoch seconds of the heartbeat rows at or after SINCE.
heartbeats() {
	hpsql "$1" -d engine -c "SELECT extract(epoch FROM at) FROM heartbeat WHERE at >= to_timestamp($2) ORDER BY 1" 2>/dev/null || true
}
# The tables the Manager's clients write all the time, and their sequences:
# after a move they go on changing on whichever side the clients write to
# (with the guide's procedure dwhd, the notifier and the fence_kdump
# listener stay on the old database), so they are left out of the
# old-versus-new comparison; the clients' own -verify covers them
# (clients_verify), and the heartbeat rows are checked below.
client_tables="'heartbeat', 'audit_log', 'vm_guest_agent_interfaces', 'vm_host_pinning_map', 'async_tasks_entities', 'event_notification_hist', 'dwh_history_timekeeping', 'external_variable'"
client_sequences="'audit_log_seq', 'heartbeat_id_seq'"
# Everything else must be equal between the old and the new database.
verify_sql="
SELECT 'table ' || c.relname || ' ' ||
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
   AND c.relname NOT IN ($client_tables)
UNION ALL
SELECT 'sequence ' || schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, 'unused')
  FROM pg_sequences WHERE sequencename NOT IN ($client_sequences)
UNION ALL
SELECT 'indexes ' || count(*) FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'constraints ' || count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'functions ' || count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'views ' || count(*) FROM pg_views WHERE schemaname = 'public'
UNION ALL
SELECT 'triggers ' || count(*) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'extensions ' || string_agg(extname || ' ' || extversion, ',' ORDER BY extname) FROM pg_extension
ORDER BY 1"
# verify LOG T_END: the new database equals the old one, and the engine
# writes to the new one (not the old); returns non-zero with the reason in LOG.
verify() {
	local log=$1 t_end=$2 i n first old_after oc omax nc
	n=0
	for i in $(seq 300); do # the engine's first writes after the tool returned
		n=$(hpsql db -d engine -c "SELECT count(*) FROM heartbeat WHERE at >= to_timestamp($t_end)" 2>/dev/null || echo 0)
		[ "$n" -ge 3 ] && break
		sleep 0.2
	done
	[ "$n" -ge 3 ] || { echo "the engine does not write heartbeats to the new database" >>"$log"; return 1; }
	first=$(hpsql db -d engine -c "SELECT extract(epoch FROM min(at)) FROM heartbeat WHERE at >= to_timestamp($t_end)")
	old_after=$(hpsql engine -d engine -c "SELECT count(*) FROM heartbeat WHERE at >= to_timestamp($first)")
	[ "$old_after" = 0 ] || { echo "the engine still writes to the old database ($old_after rows)" >>"$log"; return 1; }
	hpsql engine -d engine -c "$verify_sql" >"$log.old" 2>>"$log" || return 1
	hpsql db -d engine -c "$verify_sql" >"$log.new" 2>>"$log" || return 1
	if ! diff "$log.old" "$log.new" >>"$log"; then echo "old and new databases differ (above)" >>"$log"; return 1; fi
	# heartbeat: the old rows, all of them, and the engine's newer ones.
	read -r oc omax <<<"$(hpsql engine -d engine -F ' ' -c "SELECT count(*), coalesce(max(id), 0) FROM heartbeat")"
	nc=$(hpsql db -d engine -c "SELECT count(*) FROM heartbeat WHERE id <= $omax")
	[ "$oc" = "$nc" ] || { echo "heartbeat: $oc rows in the old database, $nc of them in the new one" >>"$log"; return 1; }
	return 0
}
# clients_verify LOG: stop the Manager's four clients, then each compares
# the database its configuration names with its own account (-verify:
# nothing it committed lost, nothing doubled); non-zero if any does not
# say "ok" (a MISMATCH, or it could not check), with the reason in LOG.
clients_verify() {
	local log=$1 c out bad=""
	sshc engine "systemctl stop ${CLIENTS[*]}" >>"$log" 2>&1 || { echo "stopping the clients failed" >>"$log"; return 1; }
	for c in "${CLIENTS[@]}"; do
		out=$(sshc engine "$MIGRUN_E2E_STANDIN_BIN/$c -log - -verify" 2>&1) || true
		echo "$out" >>"$log"
		[[ $out == *"$c: ok on "* ]] || bad="$bad ${c#ovirt-}"
	done
	[ -z "$bad" ] || { echo "clients' -verify failed:$bad" >>"$log"; return 1; }
}
# clients_left_old: the clients whose last transaction committed on the old
# database (localhost in their configuration), from their accounts.
clients_left_old() {
	python3 - "$(standin_state)" "$MIGRUN_E2E_DB_IP" "${CLIENTS[@]}" <<-'PY'
		import json, sys
		d, new = sys.argv[1], sys.argv[2]
		left = []
		for c in sys.argv[3:]:
		    try:
		        db = json.load(open("%s/%s.json" % (d, c))).get("database", "")
		    except (OSError, ValueError):
		        db = "?"
		    if not db.startswith(new + ":"):
		        left.append(c.replace("ovirt-", "", 1))
		print(",".join(left))
	PY
}
# downtime_run TOOL MB ROUND
downtime_run() {
	local tool=$1 mb=$2 r=$3 log t0 t1 rc=0 gap gap2 ok note="" left
	log=$LOGS/downtime-${mb}mb-r$r-$tool
	say "downtime ${mb} MB, round $r: $tool (fresh hosts)"
	hosts_fresh
	load_template "$mb"
	case $tool in
	manual | ansible)
		# The server's preparation only: the replication (replicate=true,
		# the plan's default) is migrun's way of moving the data.
		run_migrun "$log.prep" apply --yes --output json --state-dir "$work/state-prep-$tool-${mb}mb-$r" \
			--only "$(prep_steps)" "${MARGS[@]}" "${PVARS[@]}" --var replicate=false "$plan" ||
			{ tail -n 5 "$log.prep.out" "$log.prep.err" >&2; die "preparing the db host for $tool failed (logs: $log.prep.*)"; }
		;;
	esac
	sleep 1 # a few heartbeats before
	t0=$(now)
	case $tool in
	manual)
		SSH_CONFIG=$MIGRUN_E2E_SSH_CONFIG NEW_DB=$MIGRUN_E2E_DB_IP "$here/peers/manual.sh" >"$log.out" 2>"$log.err" || rc=$?
		;;
	ansible)
		ansible_setup
		rm -rf "$work/relay"
		mkdir -p "$work/relay"
		ANSIBLE_SSH_CONTROL_PATH_DIR=$ssh_masters_dir.$tool.$r \
			ansible-playbook -i "$work/ansible/inventory" -e "new_db=$MIGRUN_E2E_DB_IP" -e "relay_dir=$work/relay" \
			"$here/peers/ansible-move.yml" >"$log.out" 2>"$log.err" || rc=$?
		close_masters "$ssh_masters_dir.$tool.$r"
		;;
	migrun | migrun-dump | migrun-capture)
		local mvars=() v replicate=true
		[ "$tool" != migrun ] && replicate=false
		[ "$tool" = migrun-capture ] && mvars+=(--var capture=true)
		for v in ${MIGRUN_BENCH_MIGRUN_VARS:-}; do mvars+=(--var "$v"); done
		[ "$trace_flag" = 1 ] && mvars+=(--trace "$log.trace.tsv")
		run_migrun "$log" apply --yes --output json --state-dir "$work/state-$tool-${mb}mb-$r" \
			"${MARGS[@]}" "${PVARS[@]}" "${mvars[@]}" --var "replicate=$replicate" "$plan" || rc=$?
		# The journal keeps each step's own account (how long the catch-up
		# waited, what the verification read again): kept with the logs.
		cp "$work/state-$tool-${mb}mb-$r"/*.journal.json "$log.journal.json" 2>/dev/null || true
		;;
	esac
	t1=$(now)
	ok=1
	if [ "$rc" != 0 ]; then
		ok=0 note="exit $rc"
		say "  $tool failed (exit $rc): see $log.*"
		tail -n 5 "$log.err" >&2 || true
	elif ! verify "$log.verify" "${t1%.*}"; then
		ok=0 note="unverified"
		say "  verification FAILED: $(tail -n 3 "$log.verify" | tr '\n' ' ')"
	fi
	# The largest gap is the downtime; the second largest is shown too,
	# since a plan may cause more than one outage (the old server's
	# restart for wal_level = logical, a bulk_load restart).
	read -r gap gap2 < <({ heartbeats engine "$(elapsed 2 "$t0")"; heartbeats db "$(elapsed 2 "$t0")"; } | sort -n |
		awk 'NR > 1 { d = $1 - p; if (d > m) { m2 = m; m = d } else if (d > m2) m2 = d } { p = $1 } END { printf "%.3f %.3f\n", m + 0, m2 + 0 }')
	case $tool in
	migrun*)
		# Nothing any client committed lost: each one's own -verify, on the
		# database its configuration now names (the clients stop for it:
		# after the heartbeats were read).
		if [ "$ok" = 1 ] && ! clients_verify "$log.clients"; then
			ok=0 note="clients MISMATCH"
			say "  clients' -verify FAILED: $(grep -v ': ok on ' "$log.clients" | tail -n 4 | tr '\n' ' ')"
		fi
		if [ "$ok" = 1 ]; then note="$(migrun_downtime_note "$log.out"); next gap ${gap2} s; clients verified"; fi
		;;
	*)
		# The guide repoints ovirt-engine only: the other clients go on
		# writing to the old database (their accounts say where).
		left=$(clients_left_old)
		[ -z "$left" ] || note="${note:+$note; }left on the old db: $left"
		;;
	esac
	say "  $tool: downtime ${gap} s (wall $(elapsed "$t0" "$t1") s)${note:+; $note}"
	echo -e "downtime\t${mb}MB\t$tool\t$gap\t$ok\t$note" >>"$results"
}
# migrun_downtime_note JSONLOG: where the downtime went, step by step.
migrun_downtime_note() {
	python3 - "$1" "$FIRST_DOWNTIME_STEP" <<-'PY'
		import json, sys
		ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
		ends = [e for e in ev if e.get("type") == "step_end"]
		ids = [e["step"] for e in ends]
		# From the first downtime step to the engine answering on the new database.
		lo = ids.index(sys.argv[2]) if sys.argv[2] in ids else 0
		hi = ids.index("wait-engine") + 1 if "wait-engine" in ids else len(ids)
		# Phases by step id (the -dwh and -keycloak variants with theirs).
		phases = [("stop", "stop-"), ("catch-up", "replicate-finish"), ("catch-up", "capture-apply"), ("copy", "copy-dump"), ("dump", "dump"),
		          ("restore", "restore"), ("stream", "stream"), ("verify", "verify"), ("repoint", "repoint-"),
		          ("start", "start-engine"), ("start", "wait-engine")]
		tot = {}
		for e in ends[lo:hi]:
		    if e.get("status") == "skipped":
		        continue
		    k = next((name for name, prefix in phases if e["step"].startswith(prefix)), "other")
		    tot[k] = tot.get(k, 0) + e.get("duration_ns", 0) / 1e9
		order = ["stop", "catch-up", "dump", "copy", "restore", "stream", "verify", "repoint", "start", "other"]
		# Each phase's share of the steps' time from the first stop to the
		# engine answering (the heartbeat gap starts at the engine's own stop).
		whole = sum(tot.values()) or 1
		print(" ".join("%s %.1f (%d%%)" % (k, tot[k], round(100 * tot[k] / whole)) for k in order if k in tot))
	PY
}

# --- ansible --------------------------------------------------------------------------
ansible_setup() {
	cat >"$work/ansible/inventory" <<-INV
		engine ansible_host=$MIGRUN_E2E_ENGINE_IP
		db ansible_host=$MIGRUN_E2E_DB_IP

		[all:vars]
		ansible_user=root
		ansible_ssh_private_key_file=$MIGRUN_E2E_IDENTITY
		ansible_ssh_common_args='-o UserKnownHostsFile=$MIGRUN_E2E_KNOWN_HOSTS -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes'
		ansible_python_interpreter=/usr/bin/python3
	INV
	# Sensible settings: pipelining, one persistent connection per host
	# (ControlMaster), no facts, no compression on this fast network.
	cat >"$work/ansible/ansible.cfg" <<-CFG
		[defaults]
		host_key_checking = True
		gathering = explicit
		retry_files_enabled = False
		local_tmp = $work/ansible/tmp
		interpreter_python = /usr/bin/python3
		forks = 5
		[ssh_connection]
		pipelining = True
		ssh_args = -o ControlMaster=auto -o ControlPersist=60s
	CFG
	export ANSIBLE_CONFIG=$work/ansible/ansible.cfg
}
close_masters() { # DIR: end the ControlMaster connections a run left
	local s
	for s in "$1"/*; do
		if [ -S "$s" ]; then ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1 || true; fi
	done
	rm -rf "$1"
}

# --- copy -------------------------------------------------------------------------------
copy_part() {
	local r t i log src dst t0 t1 rc mbps rss note ok
	say "copy: fresh hosts, a ${COPY_MB} MB file on engine"
	hosts_fresh
	src=/var/tmp/bench-copy.bin dst=/var/tmp/bench-copy.bin
	head -c "${COPY_MB}M" /dev/urandom >"$(host_dir engine)/fs$src"
	cat >"$work/copy.yaml" <<-YAML
		version: 1
		name: bench-copy
		hosts:
		  engine: {address: "$MIGRUN_E2E_ENGINE_IP", user: root}
		  db: {address: "$MIGRUN_E2E_DB_IP", user: root}
		steps:
		  - id: copy
		    copy: {from: "engine:$src", to: "db:$dst"}
	YAML
	local copy_tools=(migrun scp-3 scp-direct) n
	# migrun's direct mode (the source host sends to the target), where the binary has it.
	if "$bin" doc copy 2>/dev/null | grep -q '^  direct:'; then
		copy_tools=(migrun scp-3 migrun-direct scp-direct)
		sed 's/^    copy: {from: \(.*\)}$/    copy: {from: \1, direct: true}/' "$work/copy.yaml" >"$work/copy-direct.yaml"
		grep -q 'direct: true' "$work/copy-direct.yaml" || die "copy-direct.yaml: the sed did not apply"
	fi
	n=${#copy_tools[@]}
	for r in $(seq "$COPY_ROUNDS"); do
		for i in $(seq 0 $((n - 1))); do
			t=${copy_tools[$(((i + r - 1) % n))]}
			log=$LOGS/copy-r$r-$t
			rm -rf "$(host_dir db)/fs$dst" "$(host_dir db)/fs$dst".* "$work/state-copy"
			sync
			t0=$(now) rc=0 rss="" note=""
			case $t in
			migrun) run_migrun "$log" apply --yes --output json --state-dir "$work/state-copy" "${MARGS[@]}" "$work/copy.yaml" || rc=$? ;;
			migrun-direct) run_migrun "$log" apply --yes --output json --state-dir "$work/state-copy" "${MARGS[@]}" "$work/copy-direct.yaml" || rc=$? ;;
			scp-3) scp -3 -q -F "$MIGRUN_E2E_SSH_CONFIG" "engine:$src" "db:$dst" >"$log.out" 2>"$log.err" || rc=$? ;;
			scp-direct) sshc engine "scp -q $src root@$MIGRUN_E2E_DB_IP:$dst" >"$log.out" 2>"$log.err" || rc=$? ;;
			esac
			t1=$(now)
			if [ "$rc" = 0 ] && cmp -s "$(host_dir engine)/fs$src" "$(host_dir db)/fs$dst"; then ok=1; else ok=0 note="exit $rc or copy differs"; fi
			mbps=$(awk -v mb="$COPY_MB" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", mb / s }')
			if [[ $t == migrun* ]]; then
				rss=$(tail -n 1 "$log.rss" 2>/dev/null || echo 0)
				note="peak RSS $((rss / 1024)) MiB"
				echo -e "rss\t${COPY_MB}MB\t$t\t$((rss / 1024))\t$ok\t" >>"$results"
			fi
			say "copy round $r: $t $mbps MiB/s ($(elapsed "$t0" "$t1") s)${note:+; $note}"
			echo -e "copy\t${COPY_MB}MB\t$t\t$mbps\t$ok\t$note" >>"$results"
		done
	done
	rm -f "$(host_dir engine)/fs$src" "$(host_dir db)/fs$dst"
}

# --- runner overhead --------------------------------------------------------------------
overhead_part() {
	say "overhead: fresh hosts, $STEPS trivial commands alternating over engine and db"
	hosts_fresh
	ansible_setup
	local n
	for n in $STEPS; do
		overhead_runs "$n"
	done
}

# overhead_runs N: the overhead rounds with N commands.
overhead_runs() {
	local steps=$1 r i t log t0 t1 rc h note
	{
		echo "version: 1"
		echo "name: bench-overhead"
		echo "hosts:"
		echo "  engine: {address: \"$MIGRUN_E2E_ENGINE_IP\", user: root}"
		echo "  db: {address: \"$MIGRUN_E2E_DB_IP\", user: root}"
		echo "steps:"
		for i in $(seq "$steps"); do
			h=engine
			[ $((i % 2)) = 0 ] && h=db
			echo "  - {id: step-$i, host: $h, command: {argv: [\"true\"]}}"
		done
	} >"$work/overhead.yaml"
	{
		echo "- hosts: engine"
		echo "  gather_facts: false"
		echo "  tasks:"
		for i in $(seq "$steps"); do
			h=engine
			[ $((i % 2)) = 0 ] && h=db
			echo "    - name: step $i"
			echo "      ansible.builtin.$ANSIBLE_MODULE: \"true\""
			echo "      delegate_to: $h"
		done
	} >"$work/overhead.yml"
	local ov_tools=(ssh ansible migrun)
	[ -n "$BASELINE_BIN" ] && ov_tools+=(migrun-baseline)
	local nt=${#ov_tools[@]}
	for r in $(seq 0 "$OVERHEAD_ROUNDS"); do # round 0: warm-up, not counted
		for i in $(seq 0 $((nt - 1))); do
			t=${ov_tools[$(((i + r) % nt))]}
			log=$LOGS/overhead-$steps-r$r-$t
			rm -rf "$work/state-ov"
			rc=0
			t0=$(now)
			case $t in
			ssh)
				for i2 in $(seq "$steps"); do
					h=engine
					[ $((i2 % 2)) = 0 ] && h=db
					sshc "$h" true || { rc=$?; break; }
				done >"$log.out" 2>"$log.err"
				;;
			ansible)
				ANSIBLE_SSH_CONTROL_PATH_DIR=$ssh_masters_dir.ov.$r \
					ansible-playbook -i "$work/ansible/inventory" "$work/overhead.yml" >"$log.out" 2>"$log.err" || rc=$?
				;;
			migrun) run_migrun "$log" apply --yes --output json --state-dir "$work/state-ov" "${MARGS[@]}" "$work/overhead.yaml" || rc=$? ;;
			migrun-baseline)
				bin=$BASELINE_BIN run_migrun "$log" apply --yes --output json --state-dir "$work/state-ov" "${MARGS[@]}" "$work/overhead.yaml" || rc=$?
				;;
			esac
			t1=$(now)
			[ "$t" = ansible ] && close_masters "$ssh_masters_dir.ov.$r"
			[ "$rc" = 0 ] || die "overhead: $t failed (exit $rc; logs $log.*)"
			[ "$r" = 0 ] && continue
			say "overhead $steps steps, round $r: $t $(elapsed "$t0" "$t1") s"
			note=""
			[[ $t == migrun* ]] && note=$(migrun_overhead_note "$log.out" "$t0" "$t1")
			echo -e "overhead\t$steps steps\t$t\t$(elapsed "$t0" "$t1")\t1\t$note" >>"$results"
		done
	done
}
# migrun_overhead_note JSONLOG T0 T1: start-up, in-step and between-step time.
migrun_overhead_note() {
	python3 - "$@" <<-'PY'
		import json, sys, datetime
		def ts(s):
		    s = s.rstrip("Z")
		    base, _, frac = s.partition(".")
		    t = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc).timestamp()
		    return t + float("0." + (frac or "0"))
		ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
		t0, t1 = float(sys.argv[2]), float(sys.argv[3])
		starts = [ts(e["time"]) for e in ev if e["type"] == "step_start"]
		ends = [ts(e["time"]) for e in ev if e["type"] == "step_end"]
		insteps = sum(e.get("duration_ns", 0) for e in ev if e["type"] == "step_end") / 1e9
		n = max(len(ends), 1)
		first, last = min(starts), max(ends)
		print("until 1st step %.0f ms, in steps %.1f ms/step, between %.1f ms/step, after last %.0f ms"
		      % ((first - t0) * 1e3, insteps / n * 1e3, ((last - first) - insteps) / n * 1e3, (t1 - last) * 1e3))
	PY
}

# --- the runs -----------------------------------------------------------------------------
say "logs: $LOGS; $migrun_version; $ansible_version; $(ssh -V 2>&1)"
want overhead && overhead_part
want copy && copy_part
if want downtime; then
	sizes=("$DB_MB")
	if [ "$SWEEP" = 1 ]; then
		for f in $SWEEP_FACTORS; do
			[[ $f =~ ^[0-9]*\.?[0-9]+$ ]] || die "MIGRUN_BENCH_SWEEP_FACTORS: not a number: $f"
			sizes+=("$(awk -v m="$DB_MB" -v f="$f" 'BEGIN { printf "%d", m * f }')")
		done
	fi
	for mb in "${sizes[@]}"; do
		[ "$mb" -ge 8 ] || { say "skipping ${mb} MB (under 8)"; continue; }
		rounds=$ROUNDS alone=$ROUNDS
		if [ "$mb" != "$DB_MB" ]; then
			rounds=$SWEEP_ROUNDS alone=$((SWEEP_MIGRUN_ROUNDS > SWEEP_ROUNDS ? SWEEP_MIGRUN_ROUNDS : SWEEP_ROUNDS))
		fi
		for r in $(seq "$rounds"); do
			n=${#tools[@]}
			for i in $(seq 0 $((n - 1))); do
				downtime_run "${tools[$(((i + r - 1) % n))]}" "$mb" "$r"
			done
		done
		if [[ " ${tools[*]} " == *" migrun "* ]]; then
			for r in $(seq $((rounds + 1)) "$alone"); do
				downtime_run migrun "$mb" "$r"
			done
		fi
		data_row "$mb"
	done
fi

# --- the table and the summary -------------------------------------------------------------
print_table "$results"
table_printed=1
say "done; logs in $LOGS"
