#!/usr/bin/env bash
# bench/scan.sh — the scan benchmark of issue 5 item 7. A script a person
# runs, not a test. Everything happens on loopback; nothing needs the network.
#
#   bench/scan.sh                 # N = 100000 and 1000000
#   bench/scan.sh 100000          # one or more sizes
#   KEEP=1 bench/scan.sh 100000   # keep the work directory (printed)
#
# Needs Go (to build mxtrace and the helpers) and, on Debian or Ubuntu:
#
#   apt-get install knot unbound dnsperf time
#
# For each size N it:
#   1. generates a world of N domains (go run ./bench/scanworld): zone files,
#      the input list, the dnsperf query file, the ground truth;
#   2. starts knotd on 127.0.0.1 serving it, and measures knot's own limit
#      with dnsperf over the questions a perfect cache needs (MX of every
#      domain, A and AAAA of every distinct exchange), looped for
#      $DNSPERF_SECONDS seconds, best of $DNSPERF_RUNS runs;
#   3. limit in domains/s = dnsperf qps / (perfect-cache queries per domain);
#   4. runs "mxtrace scan" straight at knot: domains/s, ratio to the limit
#      (target >= 50%), peak RSS (/usr/bin/time -v; target < 200 MB and flat
#      from 100k to 1M), correctness against the truth (target 100%);
#   5. starts unbound (2 threads, a stub-zone per zone to knot) cold and
#      measures its limit the same way, but COLD: dnsperf goes through the
#      query file exactly once (-n 1) right after a restart, so every
#      question is a cache miss that unbound resolves from knot, which is
#      exactly the work of a scan through a cold resolver (a looped,
#      warm dnsperf would measure unbound's cache instead; it is printed
#      for information); then restarts unbound cold and runs the scan
#      through it (target >= 90% of the cold limit);
#   6. profiles the same pipeline (bench/scantool profile: scan.Run and the
#      route planner wired as mxtrace scan wires them, with a CPU profile,
#      since mxtrace scan has no --cpuprofile) against knot, with the
#      resolve.Stub transport mxtrace scan uses and with resolve.Mux, and
#      prints the profile tops.
#
# Knobs (environment): SCAN_FLAGS (extra flags for mxtrace scan, e.g.
# "--concurrency 512"), DNSPERF_SECONDS (10), DNSPERF_RUNS (2), PROFILE=0 to
# skip step 6, SEED (1), KEEP=1.
#
# Every process it starts is killed by its PID on exit (trap), and the work
# directory is removed unless KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=("$@")
if [ ${#SIZES[@]} -eq 0 ]; then SIZES=(100000 1000000); fi
SCAN_FLAGS=${SCAN_FLAGS:-}
DNSPERF_SECONDS=${DNSPERF_SECONDS:-10}
DNSPERF_RUNS=${DNSPERF_RUNS:-2}
PROFILE=${PROFILE:-1}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
CORES=$(nproc)

need() {
	for p in "$@"; do
		if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "$p" ]; then
			echo "scan.sh: $p not found: apt-get install knot unbound dnsperf time (and Go)" >&2
			exit 2
		fi
	done
}
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
need go "$KNOTD" "$UNBOUND" dnsperf /usr/bin/time awk

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mxtrace-scanbench.XXXXXX")
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
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

# stop PID: kill one process we started, and wait for it.
stop() {
	local pid=$1
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

BIN=$WORK/bin
mkdir -p "$BIN"
log "building mxtrace and the helpers"
(cd "$ROOT" && go build -o "$BIN/mxtrace" ./cmd/mxtrace &&
	go build -o "$BIN/scanworld" ./bench/scanworld &&
	go build -o "$BIN/scantool" ./bench/scantool)
TOOL=$BIN/scantool

# start_knot DIR WORLD: writes knot.conf (knot.conf(5), Knot 3.x) and starts
# knotd in the foreground; sets KNOT_PID and KNOT_PORT.
start_knot() {
	local dir=$1 world=$2
	mkdir -p "$dir"
	KNOT_PORT=$("$TOOL" freeport)
	{
		cat <<EOF
server:
    rundir: "$dir"
    pidfile: "$dir/knot.pid"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: $CORES
    tcp-workers: 1
    background-workers: 1
control:
    listen: "$dir/knot.sock"
database:
    storage: "$dir"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$dir"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
EOF
		while read -r origin file; do
			printf '  - domain: "%s"\n    file: "%s"\n' "$origin" "$file"
		done <"$world/zones.txt"
	} >"$dir/knot.conf"
	"$KNOTD" -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 &
	KNOT_PID=$!
	PIDS+=("$KNOT_PID")
	if ! "$TOOL" ready -server "127.0.0.1:$KNOT_PORT" -zones "$world/zones.txt" -timeout 300s; then
		cat "$dir/knotd.log" >&2
		exit 1
	fi
}

# start_unbound DIR WORLD: a caching recursive unbound (unbound.conf(5),
# Unbound 1.17) with one thread per core and a stub-zone per zone of the
# world pointing at knot (the root too, so nothing can leave loopback);
# sets UNBOUND_PID and UNBOUND_PORT. Every start is cold: a new process.
start_unbound() {
	local dir=$1 world=$2
	mkdir -p "$dir"
	UNBOUND_PORT=$("$TOOL" freeport)
	{
		cat <<EOF
server:
    verbosity: 0
    interface: 127.0.0.1@$UNBOUND_PORT
    port: $UNBOUND_PORT
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    num-threads: $CORES
    so-reuseport: yes
    outgoing-range: 8192
    num-queries-per-thread: 4096
    msg-cache-size: 512m
    rrset-cache-size: 1g
    directory: "$dir"
    pidfile: "$dir/unbound.pid"
    username: ""
    chroot: ""
    use-syslog: no
    logfile: ""
    do-not-query-localhost: no
    module-config: "validator iterator"
    prefetch: no
    minimal-responses: yes
    # test. is one of unbound's built-in local zones (RFC 6761 §6.2).
    local-zone: "test." nodefault
remote-control:
    control-enable: no
EOF
		while read -r origin _; do
			printf 'stub-zone:\n    name: "%s"\n    stub-addr: 127.0.0.1@%s\n' "$origin" "$KNOT_PORT"
		done <"$world/zones.txt"
	} >"$dir/unbound.conf"
	"$UNBOUND" -d -p -c "$dir/unbound.conf" >>"$dir/unbound.log" 2>&1 &
	UNBOUND_PID=$!
	PIDS+=("$UNBOUND_PID")
	if ! "$TOOL" ready -server "127.0.0.1:$UNBOUND_PORT" -localhost -timeout 60s; then
		cat "$dir/unbound.log" >&2
		exit 1
	fi
}

# perf NAME PORT ARGS...: runs dnsperf, report in $RUN/NAME.dnsperf.
perf() {
	local name=$1 port=$2
	shift 2
	dnsperf -s 127.0.0.1 -p "$port" -T "$CORES" -c 8 -t 5 "$@" >"$RUN/$name.dnsperf" 2>&1
}

# scan NAME PORT: runs mxtrace scan at 127.0.0.1:PORT under /usr/bin/time;
# prints "domains/s rss_MB wall_s" and the verification line.
scan() {
	local name=$1 port=$2
	# shellcheck disable=SC2086 # SCAN_FLAGS is a list of flags
	/usr/bin/time -v -o "$RUN/$name.time" "$BIN/mxtrace" scan --resolver "127.0.0.1:$port" --seed 1 \
		-o "$RUN/$name.jsonl" --summary "$RUN/$name.summary.json" $SCAN_FLAGS "$WORLD/input.txt" \
		2>"$RUN/$name.stderr" || {
		echo "scan.sh: mxtrace scan failed:" >&2
		cat "$RUN/$name.stderr" >&2
		exit 1
	}
	"$TOOL" verify -truth "$WORLD/truth.jsonl" -out "$RUN/$name.jsonl" -json "$RUN/$name.verify.json" >"$RUN/$name.verify"
}

rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }

ROWS=()
for N in "${SIZES[@]}"; do
	RUN=$WORK/run-$N
	WORLD=$WORK/world-$N
	mkdir -p "$RUN"
	log "N=$N: generating the world"
	"$BIN/scanworld" -n "$N" -seed "$SEED" -out "$WORLD"
	QPD=$("$TOOL" get "$WORLD/world.json" queries_per_domain)
	log "N=$N: $(wc -l <"$WORLD/queries.txt") perfect-cache queries, $QPD per domain"

	log "N=$N: starting knotd"
	start_knot "$RUN/knot" "$WORLD"
	log "N=$N: knot limit: dnsperf, ${DNSPERF_SECONDS}s looped, best of $DNSPERF_RUNS"
	reports=()
	for i in $(seq "$DNSPERF_RUNS"); do
		perf "knot-$i" "$KNOT_PORT" -d "$WORLD/queries.txt" -l "$DNSPERF_SECONDS" -q 1000
		reports+=("$RUN/knot-$i.dnsperf")
	done
	KNOT_QPS=$("$TOOL" dnsperf "${reports[@]}")
	KNOT_LIMIT=$(awk -v q="$KNOT_QPS" -v d="$QPD" 'BEGIN {printf "%.0f", q/d}')
	log "N=$N: knot $KNOT_QPS qps = $KNOT_LIMIT domains/s"

	log "N=$N: mxtrace scan straight at knot"
	scan direct "$KNOT_PORT"
	D_RATE=$("$TOOL" get "$RUN/direct.summary.json" domains_per_second)
	D_RSS=$(rss_mb "$RUN/direct.time")
	D_OK=$("$TOOL" get "$RUN/direct.verify.json" percent_correct)
	log "N=$N: direct: $D_RATE domains/s, $D_RSS MB, $(cat "$RUN/direct.verify" | head -1)"

	log "N=$N: unbound cold limit: dnsperf once through the queries on a fresh unbound"
	start_unbound "$RUN/unbound" "$WORLD"
	perf unbound-cold "$UNBOUND_PORT" -d "$WORLD/queries.txt" -n 1 -q 2000
	perf unbound-warm "$UNBOUND_PORT" -d "$WORLD/queries.txt" -l "$DNSPERF_SECONDS" -q 1000
	stop "$UNBOUND_PID"
	UB_QPS=$("$TOOL" dnsperf "$RUN/unbound-cold.dnsperf")
	UB_WARM=$("$TOOL" dnsperf "$RUN/unbound-warm.dnsperf")
	UB_LOST=$(awk '/Queries lost:/ {print $3}' "$RUN/unbound-cold.dnsperf")
	UB_LIMIT=$(awk -v q="$UB_QPS" -v d="$QPD" 'BEGIN {printf "%.0f", q/d}')
	log "N=$N: unbound cold $UB_QPS qps ($UB_LOST lost) = $UB_LIMIT domains/s; warm $UB_WARM qps"

	log "N=$N: mxtrace scan through a cold unbound"
	start_unbound "$RUN/unbound" "$WORLD"
	scan unbound "$UNBOUND_PORT"
	stop "$UNBOUND_PID"
	U_RATE=$("$TOOL" get "$RUN/unbound.summary.json" domains_per_second)
	U_RSS=$(rss_mb "$RUN/unbound.time")
	U_OK=$("$TOOL" get "$RUN/unbound.verify.json" percent_correct)
	log "N=$N: unbound: $U_RATE domains/s, $U_RSS MB, $(head -1 "$RUN/unbound.verify")"

	if [ "$PROFILE" = 1 ]; then
		for tr in stub mux; do
			log "N=$N: profile of the scan pipeline, transport $tr, straight at knot"
			"$TOOL" profile -server "127.0.0.1:$KNOT_PORT" -in "$WORLD/input.txt" -out "$RUN/profile-$tr.jsonl" \
				-transport "$tr" -cpuprofile "$RUN/profile-$tr.cpu" 2>"$RUN/profile-$tr.stderr"
			"$TOOL" verify -truth "$WORLD/truth.jsonl" -out "$RUN/profile-$tr.jsonl" >"$RUN/profile-$tr.verify"
			(cd "$ROOT" && go tool pprof -top -nodecount 25 "$TOOL" "$RUN/profile-$tr.cpu") >"$RUN/profile-$tr.top" 2>/dev/null
			echo "== profile (scan.Run + route.Planner + resolve.Cache + resolve.${tr^}) against knot, N=$N"
			cat "$RUN/profile-$tr.stderr"
			head -1 "$RUN/profile-$tr.verify"
			sed -n '1,32p' "$RUN/profile-$tr.top"
		done
	fi
	stop "$KNOT_PID"

	pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100*a/b}'; }
	ROWS+=("$(printf '%-9s %-8s %10s %13s %12s %7s %9s %9s' "$N" knot "$KNOT_QPS" "$KNOT_LIMIT" "$(printf '%.0f' "$D_RATE")" "$(pct "$D_RATE" "$KNOT_LIMIT")" "$D_RSS" "$D_OK%")")
	ROWS+=("$(printf '%-9s %-8s %10s %13s %12s %7s %9s %9s' "$N" unbound "$UB_QPS" "$UB_LIMIT" "$(printf '%.0f' "$U_RATE")" "$(pct "$U_RATE" "$UB_LIMIT")" "$U_RSS" "$U_OK%")")
	echo
	echo "N=$N: perfect-cache queries per domain $QPD; unbound warm (cache hits) $UB_WARM qps; cold dnsperf lost $UB_LOST"
	for name in direct unbound; do
		echo "-- $name: $(head -1 "$RUN/$name.verify")"
		sed -n '2,6p' "$RUN/$name.verify"
	done
done

echo
echo "mxtrace scan benchmark ($(nproc) cores, $(date +%F)); targets: knot >= 50%, unbound >= 90% of the limit, 100% correct, RSS < 200 MB and flat"
printf '%-9s %-8s %10s %13s %12s %7s %9s %9s\n' N server "limit qps" "limit dom/s" "scan dom/s" ratio "RSS MB" correct
for r in "${ROWS[@]}"; do echo "$r"; done
