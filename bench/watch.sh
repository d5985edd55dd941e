#!/usr/bin/env bash
# bench/watch.sh — the watch benchmark of issue 18 item 9. A script a person
# runs, not a test. Everything happens on loopback, inside a network
# namespace of its own (unshare -n) where loopback is the only network.
#
#   bench/watch.sh                       # N = 100000, every domain checked
#   bench/watch.sh 100000 10000          # watch N, check the first 10000
#   MODE=route bench/watch.sh 100000 10000  # watch run --mode route
#   KEEP=1 bench/watch.sh                # keep the work directory (printed)
#
# Needs Go, root (for unshare -n, and to run PostgreSQL as nobody) and, on
# Debian or Ubuntu:
#
#   apt-get install knot postgresql postgresql-client sqlite3 util-linux
#
# It:
#   1. generates the bench world of N domains (bench/scanworld, the world of
#      bench/scan.sh) and serves it from knotd on 127.0.0.1;
#   2. on SQLite and then on PostgreSQL: `mxtrace watch add` of the N
#      domains (one `watch add --from`: one transaction), timed, and
#      ONE_BY_ONE more added one command each, timed (the cost of one
#      command with N watched);
#   3. `mxtrace watch run --once --all` of RUN_N of them (a database of its
#      own with the first RUN_N) straight at knot: checks per second. With
#      MODE=check (the default) every check is the whole audit (route, the
#      nameservers, SPF, DMARC, MTA-STS, TLS-RPT, DKIM, the SMTP probe);
#      with MODE=route, the route alone (watch run --mode route). The
#      world's nameservers and exchanges have documentation addresses
#      (RFC 5737); in the namespace they are unreachable at once, so a
#      check costs its work and its loopback DNS, never a connect time-out
#      (and every result is an error of the world: ns-unreachable,
#      smtp-unreachable, stored whole like any other);
#   4. the size of the database with those RUN_N results, and that size per
#      100,000 results: SQLite the file with its WAL checkpointed (du),
#      PostgreSQL pg_database_size and pg_total_relation_size('results');
#   5. history and diff of one domain with 1,000 stored results
#      (BenchmarkHistoryDiff in cmd/mxtrace, on SQLite and, unless PG=0, on
#      a PostgreSQL of its own: the whole command, opening the database too).
#
# Knobs (environment): MODE (check or route), CONCURRENCY (8, watch run's
# default), TIMEOUT (20s), ONE_BY_ONE (20 commands of one domain each),
# SEED (1), KEEP=1, PG=0 to skip PostgreSQL.
#
# A watch run that fails (the database) is reported with how many results
# reported, and the script goes on.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-100000}
RUN_N=${2:-$N}
CONCURRENCY=${CONCURRENCY:-8}
MODE=${MODE:-check}
ONE_BY_ONE=${ONE_BY_ONE:-20}
TIMEOUT=${TIMEOUT:-20s}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
PG=${PG:-1}

# Into a network namespace of our own first: only loopback, which is down
# until we bring it up.
if [ "${WATCHBENCH_NETNS:-}" != 1 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "watch.sh: run as root (unshare -n, and PostgreSQL as nobody)" >&2
		exit 2
	fi
	WATCHBENCH_NETNS=1 exec unshare -n "$BASH" "${BASH_SOURCE[0]}" "$@"
fi
ip link set lo up

need() {
	for p in "$@"; do
		if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "$p" ]; then
			echo "watch.sh: $p not found: apt-get install knot postgresql postgresql-client sqlite3 (and Go)" >&2
			exit 2
		fi
	done
}
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
need go "$KNOTD" sqlite3 runuser setpriv
if [ "$PG" = 1 ]; then need "$PGBIN/initdb" "$PGBIN/postgres" psql; fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mxtrace-watchbench.XXXXXX")
chmod 755 "$WORK" # PostgreSQL runs as nobody inside it
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -INT "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [ "$KEEP" = 1 ]; then
		echo "work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", a / b}'; }
mib() { awk -v a="$1" 'BEGIN {printf "%.1f MiB", a / 1048576}'; }

BIN=$WORK/bin
mkdir -p "$BIN"
log "building mxtrace and the helpers"
(cd "$ROOT" && go build -o "$BIN/mxtrace" ./cmd/mxtrace &&
	go build -o "$BIN/scanworld" ./bench/scanworld &&
	go build -o "$BIN/scantool" ./bench/scantool)
TOOL=$BIN/scantool
MX=$BIN/mxtrace

WORLD=$WORK/world
log "generating a world of $N domains"
"$BIN/scanworld" -n "$N" -seed "$SEED" -out "$WORLD" >/dev/null
head -n "$RUN_N" "$WORLD/input.txt" >"$WORK/run.txt"

# Knot as in bench/scan.sh (knot.conf(5), Knot 3.x).
KD=$WORK/knot
mkdir -p "$KD"
KNOT_PORT=$("$TOOL" freeport)
{
	cat <<EOF
server:
    rundir: "$KD"
    pidfile: "$KD/knot.pid"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: $(nproc)
    tcp-workers: 1
    background-workers: 1
control:
    listen: "$KD/knot.sock"
database:
    storage: "$KD"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$KD"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
EOF
	while read -r origin file; do
		printf '  - domain: "%s"\n    file: "%s"\n' "$origin" "$file"
	done <"$WORLD/zones.txt"
} >"$KD/knot.conf"
"$KNOTD" -c "$KD/knot.conf" >"$KD/knotd.log" 2>&1 &
PIDS+=($!)
if ! "$TOOL" ready -server "127.0.0.1:$KNOT_PORT" -zones "$WORLD/zones.txt" -timeout 300s; then
	cat "$KD/knotd.log" >&2
	exit 1
fi

# start_postgres: a throw-away cluster owned by nobody (postgres refuses
# root), on 127.0.0.1; sets PG_PORT.
start_postgres() {
	local pd=$WORK/pg
	mkdir -p "$pd"
	chown nobody "$pd"
	runuser -u nobody -- "$PGBIN/initdb" -D "$pd/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
	PG_PORT=$("$TOOL" freeport)
	# setpriv execs postgres itself (runuser would stay its parent and not
	# pass the stop signal on), so the PID kept is postgres's.
	setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$PGBIN/postgres" -D "$pd/data" -p "$PG_PORT" -k "$pd" \
		-c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_connections=200 \
		-c log_min_messages=warning >"$pd/postgres.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do
		if psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc 'select 1' postgres >/dev/null 2>&1; then return; fi
		sleep 0.2
	done
	cat "$pd/postgres.log" >&2
	exit 1
}

# bench ENGINE DSN_ADD DSN_RUN: the add and run figures on one engine.
bench() {
	local engine=$1 add=$2 dsn=$3 t0 secs
	log "$engine: watch add of $N domains"
	t0=$(now)
	"$MX" watch add --db "$add" --from "$WORLD/input.txt" >/dev/null
	secs=$(since "$t0")
	printf '%-10s watch add, %d domains (--from): %8s s  %6s domains/s\n' "$engine" "$N" "$secs" "$(ratio "$N" "$secs")"
	t0=$(now)
	for i in $(seq "$ONE_BY_ONE"); do "$MX" watch add --db "$add" "one$i.bench.test" >/dev/null; done
	secs=$(since "$t0")
	printf '%-10s watch add, one command each:     %8s ms per domain (%d commands, %d watched)\n' "$engine" \
		"$(awk -v s="$secs" -v n="$ONE_BY_ONE" 'BEGIN {printf "%.1f", s * 1000 / n}')" "$ONE_BY_ONE" "$N"

	log "$engine: watch run --once --all --mode $MODE of $RUN_N domains"
	"$MX" watch add --db "$dsn" --from "$WORK/run.txt" >/dev/null
	t0=$(now)
	"$MX" --resolver "127.0.0.1:$KNOT_PORT" --timeout "$TIMEOUT" watch run --once --all \
		--mode "$MODE" --concurrency "$CONCURRENCY" --db "$dsn" >"$WORK/$engine.run.out" 2>"$WORK/$engine.run.err" || {
		secs=$(since "$t0")
		printf '%-10s watch run FAILED after %s s, %s domains reported: %s\n' "$engine" "$secs" \
			"$(grep -c . "$WORK/$engine.run.out" || true)" "$(grep -v level= "$WORK/$engine.run.err" | tail -1)"
		return
	}
	secs=$(since "$t0")
	printf '%-10s watch run --once --all --mode %s, %d checks: %8s s  %6s checks/s (--concurrency %s, load %s)\n' \
		"$engine" "$MODE" "$RUN_N" "$secs" "$(ratio "$RUN_N" "$secs")" "$CONCURRENCY" "$(cut -d' ' -f1 /proc/loadavg)"
}

DB=$WORK/sqlite
mkdir -p "$DB"
bench sqlite "$DB/add.db" "$DB/run.db"
sqlite3 "$DB/run.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
results=$(sqlite3 "$DB/run.db" 'select count(*) from results')
bytes=$(du -b "$DB/run.db" | cut -f1)
printf '%-10s database with %d results: %s; per 100,000 results: %s\n' sqlite "$results" "$(mib "$bytes")" \
	"$(mib "$(awk -v b="$bytes" -v r="$results" 'BEGIN {print b * 100000 / r}')")"

if [ "$PG" = 1 ]; then
	start_postgres
	q() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc "$1" "${2:-postgres}"; }
	q 'create database watchadd'
	q 'create database watchrun'
	pg() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$1?sslmode=disable"; }
	bench postgres "$(pg watchadd)" "$(pg watchrun)"
	q 'vacuum analyze' watchrun
	results=$(q 'select count(*) from results' watchrun)
	bytes=$(q "select pg_database_size('watchrun')")
	table=$(q "select pg_total_relation_size('results')" watchrun)
	printf '%-10s database with %d results: %s (results table and its indexes %s); per 100,000 results: %s (%s)\n' \
		postgres "$results" "$(mib "$bytes")" "$(mib "$table")" \
		"$(mib "$(awk -v b="$bytes" -v r="$results" 'BEGIN {print b * 100000 / r}')")" \
		"$(mib "$(awk -v b="$table" -v r="$results" 'BEGIN {print b * 100000 / r}')")"
fi

log "history and diff of one domain with 1,000 results (BenchmarkHistoryDiff)"
hd=BenchmarkHistoryDiff
if [ "$PG" != 1 ]; then hd=BenchmarkHistoryDiff/sqlite; fi
(cd "$ROOT" && go test -run '^$' -bench "$hd" -benchtime 20x ./cmd/mxtrace) |
	awk '/^Benchmark/ {split($1, n, "/"); printf "%-10s %-60s %8.1f ms\n", n[2], n[3], $3 / 1e6}'
