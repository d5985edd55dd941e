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
#   1. generates a world of N domains (bench/scanworld): zone files, the
#      input list, the dnsperf query file, the ground truth;
#   2. starts knotd on 127.0.0.1 serving it, and measures knot's own limit
#      with dnsperf over the questions a perfect cache needs (MX of every
#      domain, A and AAAA of every distinct exchange), looped for
#      $DNSPERF_SECONDS seconds per setting, the best of a few settings;
#   3. limit in domains/s = dnsperf qps / (perfect-cache queries per domain);
#      the machine's speed drifts from minute to minute (a shared VM moves
#      the same command by 15 %), so before each scan run the limit is
#      measured again with the best setting, and the run's ratio is to
#      that limit; the ratio to the limit measured at the start (the best
#      of all settings; a measurement just before a run can exceed it) too;
#   4. runs "mxtrace scan" straight at knot: domains/s, ratio to the limit
#      (target >= 50%), peak RSS (/usr/bin/time -v; target at most 64 MB and flat
#      from 100k to 1M), correctness against the truth (target 100%), and
#      the CPU time per domain of the scanner and of the server, and how
#      busy the two kept the cores (their CPU over the scan's seconds and
#      the cores: a stall, such as a full reorder window, shows as less);
#   5. starts unbound (a thread per core, a stub-zone per zone to knot) and
#      measures its limit the same way, but COLD: dnsperf goes through the
#      query file exactly once (-n 1) right after a restart, so every
#      question is a cache miss that unbound resolves from knot, which is
#      exactly the work of a scan through a cold resolver (a looped,
#      warm dnsperf would measure unbound's cache instead; it is printed
#      for information); then restarts unbound cold and runs the scan
#      through it (target >= 90% of the cold limit);
#   6. profiles one more scan straight at knot (mxtrace scan --cpuprofile)
#      and prints the top of the profile, flat and cumulative.
#
# dnsperf's limit is the best of a few settings (threads, sockets, queries
# outstanding): too many outstanding overflows the server's socket buffer
# and loses queries, too few leaves it idle; the best is the server's limit.
#
# Knobs (environment): SCAN_FLAGS (extra flags for mxtrace scan, e.g.
# "--concurrency 128"), SCAN_RUNS (1: scans per setup, one table row each),
# DNSPERF_SECONDS (10), PROFILE=0 to skip step 6, UNBOUND=0 to skip step 5
# (the runs straight at Knot only), SEED (1), KEEP=1, and
# COMPARE_REV: a git revision (a commit before a change) whose mxtrace is
# built too and scanned beside this tree's in every run, in pairs whose
# order alternates (this tree first in odd runs), each against the same
# limit measured just before the pair and, through unbound, each on a
# fresh cold unbound; its rows say "knot@base" and "unbound@base".
#
# The machine is shared: the 1-minute load average is printed beside every
# figure, since other work on the same cores moves all of them.
#
# Every process it starts is killed by its PID on exit (trap), and the work
# directory is removed unless KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=("$@")
if [ ${#SIZES[@]} -eq 0 ]; then SIZES=(100000 1000000); fi
SCAN_FLAGS=${SCAN_FLAGS:-}
SCAN_RUNS=${SCAN_RUNS:-1}
DNSPERF_SECONDS=${DNSPERF_SECONDS:-10}
PROFILE=${PROFILE:-1}
UNBOUND=${UNBOUND:-1}
SEED=${SEED:-1}
KEEP=${KEEP:-0}
COMPARE_REV=${COMPARE_REV:-}
CORES=$(nproc)
# dnsperf settings tried for each limit (threads, sockets, queries
# outstanding); the best is the limit. A cold unbound does best with fewer
# outstanding, and each of its settings costs a full pass.
KNOT_SETS=("-T $CORES -c 2 -q 50" "-T $CORES -c 4 -q 100" "-T $CORES -c 8 -q 200" "-T $CORES -c 4 -q 500")
UNBOUND_SETS=("-T $CORES -c 4 -q 100" "-T $CORES -c 8 -q 200")

need() {
	for p in "$@"; do
		if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "$p" ]; then
			echo "scan.sh: $p not found: apt-get install knot unbound dnsperf time (and Go)" >&2
			exit 2
		fi
	done
}
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)
UNBOUND_BIN=$(command -v unbound || echo /usr/sbin/unbound)
need go "$KNOTD" dnsperf /usr/bin/time awk pkill
if [ "$UNBOUND" = 1 ]; then
	need "$UNBOUND_BIN"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mxtrace-scanbench.XXXXXX")
PIDS=()  # servers (knotd, unbound)
CHILD="" # the long command run() is waiting for
cleanup() {
	local pid
	if [ -n "$CHILD" ]; then
		# /usr/bin/time does not pass a signal on: stop its child first.
		pkill -TERM -P "$CHILD" 2>/dev/null || true
		kill "$CHILD" 2>/dev/null || true
		wait "$CHILD" 2>/dev/null || true
	fi
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

# run CMD...: runs a long command in the background and waits for it, so
# that Ctrl-C or a TERM reaches the trap at once and the trap can stop the
# command by its PID.
run() {
	local rc=0
	"$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}

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
# BINS: the binaries scanned in each run, and their row labels' suffixes.
BINS=("$BIN/mxtrace")
TAGS=("")
if [ -n "$COMPARE_REV" ]; then
	log "building mxtrace at $COMPARE_REV for comparison"
	mkdir -p "$WORK/base-src"
	git -C "$ROOT" archive "$COMPARE_REV" | tar -x -C "$WORK/base-src"
	(cd "$WORK/base-src" && go build -o "$BIN/mxtrace-base" ./cmd/mxtrace)
	BINS+=("$BIN/mxtrace-base")
	TAGS+=("@base")
fi

# order R: the indexes of BINS in the order run R scans them: this tree
# first in odd runs, last in even ones, so drift within a pair hits both.
order() {
	if [ $(($1 % 2)) = 1 ]; then
		seq 0 $((${#BINS[@]} - 1))
	else
		seq $((${#BINS[@]} - 1)) -1 0
	fi
}

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
    # The socket buffers unbound's documentation advises for heavy load
    # (as root it may exceed net.core.rmem_max); without them a burst of
    # queries overflows the default 208 KiB and is lost.
    so-rcvbuf: 4m
    so-sndbuf: 4m
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
	"$UNBOUND_BIN" -d -p -c "$dir/unbound.conf" >>"$dir/unbound.log" 2>&1 &
	UNBOUND_PID=$!
	PIDS+=("$UNBOUND_PID")
	if ! "$TOOL" ready -server "127.0.0.1:$UNBOUND_PORT" -localhost -timeout 60s; then
		cat "$dir/unbound.log" >&2
		exit 1
	fi
}

# perf NAME PORT ARGS...: runs dnsperf, report (without the line per lost
# query) in $RUN/NAME.dnsperf.
perf() {
	local name=$1 port=$2
	shift 2
	echo "load $(load)" >"$RUN/$name.dnsperf"
	run /usr/bin/time -f 'client CPU seconds: %U user %S system' dnsperf -s 127.0.0.1 -p "$port" "$@" >"$RUN/$name.raw" 2>&1
	grep -v '^\[Timeout\]' "$RUN/$name.raw" >>"$RUN/$name.dnsperf"
	rm "$RUN/$name.raw"
}

load() { cut -d' ' -f1 /proc/loadavg; }

# qps_of FILE: the "Queries per second" of one dnsperf report.
qps_of() { awk '/Queries per second/ {print $4}' "$1"; }

# domains_of QPS: the limit in domains/s, QPS / perfect-cache queries per domain.
domains_of() { awk -v q="$1" -v d="$QPD" 'BEGIN {printf "%.0f", q/d}'; }

# percent A B: A as a whole percentage of B.
percent() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100*a/b}'; }

# best_set FILE...: the index of the report with the highest rate (the
# reports are given in the order of their settings).
best_set() {
	local i=0 best=0 top=0 q
	for f in "$@"; do
		q=$(qps_of "$f")
		if awk -v a="${q:-0}" -v b="$top" 'BEGIN {exit !(a > b)}'; then
			best=$i top=${q:-0}
		fi
		i=$((i + 1))
	done
	echo "$best"
}

# cpu PID: CPU seconds (user + system) the process has used so far.
TICKS=$(getconf CLK_TCK)
cpu() { awk -v t="$TICKS" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }

# scan NAME PORT [BINARY]: runs mxtrace scan (BINARY, by default this
# tree's) at 127.0.0.1:PORT under /usr/bin/time, then verifies its output.
scan() {
	local name=$1 port=$2 bin=${3:-$BIN/mxtrace}
	# shellcheck disable=SC2086 # SCAN_FLAGS is a list of flags
	run /usr/bin/time -v -o "$RUN/$name.time" "$bin" scan --resolver "127.0.0.1:$port" --seed 1 \
		-o "$RUN/$name.jsonl" --summary "$RUN/$name.summary.json" $SCAN_FLAGS "$WORLD/input.txt" \
		2>"$RUN/$name.stderr" || {
		echo "scan.sh: mxtrace scan failed:" >&2
		cat "$RUN/$name.stderr" >&2
		exit 1
	}
	run "$TOOL" verify -truth "$WORLD/truth.jsonl" -out "$RUN/$name.jsonl" -json "$RUN/$name.verify.json" >"$RUN/$name.verify"
}

rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }

# scan_cpu FILE: CPU seconds (user + system) from /usr/bin/time -v.
scan_cpu() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"; }

FMT='%-8s %-13s %3s %10s %12s %11s %6s %8s %7s %9s %10s %5s %5s\n'
ROWS=()
# row N SERVER RUN QPS LIMIT NAME SERVER_CPU BEST: one line of the table,
# from the scan NAME; QPS and LIMIT are the server's measured just before
# it, BEST the limit measured at the session's start (best of all
# settings); SERVER_CPU is the server's CPU seconds during the scan.
row() {
	local n=$1 server=$2 r=$3 qps=$4 limit=$5 name=$6 server_cpu=$7 best=$8 rate rss ok us busy
	rate=$("$TOOL" get "$RUN/$name.summary.json" domains_per_second)
	rss=$(rss_mb "$RUN/$name.time")
	ok=$("$TOOL" get "$RUN/$name.verify.json" percent_correct)
	us=$(awk -v a="$(scan_cpu "$RUN/$name.time")" -v b="$server_cpu" -v n="$n" 'BEGIN {printf "%.0f/%.0f", 1e6*a/n, 1e6*b/n}')
	busy=$(awk -v a="$(scan_cpu "$RUN/$name.time")" -v b="$server_cpu" -v n="$n" -v rate="$rate" -v c="$(nproc)" \
		'BEGIN {printf "%.0f%%", 100*(a+b)*rate/n/c}')
	log "N=$n: $name: $(printf '%.0f' "$rate") domains/s, $rss MB, CPU µs/domain scan/server $us, $(head -1 "$RUN/$name.verify") (load $(load))"
	# shellcheck disable=SC2059 # FMT is the table's format
	ROWS+=("$(printf "$FMT" "$n" "$server" "$r" "$(printf '%.0f' "$qps")" "$limit" "$(printf '%.0f' "$rate")" \
		"$(percent "$rate" "$limit")" "$(percent "$rate" "$best")" "$rss" "$(printf '%.2f%%' "$ok")" "$us" "$busy" "$(load)")")
}

for N in "${SIZES[@]}"; do
	RUN=$WORK/run-$N
	WORLD=$WORK/world-$N
	mkdir -p "$RUN"
	log "N=$N: generating the world"
	run "$BIN/scanworld" -n "$N" -seed "$SEED" -out "$WORLD"
	QPD=$("$TOOL" get "$WORLD/world.json" queries_per_domain)
	log "N=$N: $(wc -l <"$WORLD/queries.txt") perfect-cache queries, $QPD per domain"

	log "N=$N: starting knotd"
	start_knot "$RUN/knot" "$WORLD"
	log "N=$N: knot limit: dnsperf looped ${DNSPERF_SECONDS}s per setting, best of ${#KNOT_SETS[@]} settings"
	reports=()
	for i in "${!KNOT_SETS[@]}"; do
		# shellcheck disable=SC2086 # a list of flags
		perf "knot-$i" "$KNOT_PORT" -d "$WORLD/queries.txt" -l "$DNSPERF_SECONDS" -t 5 ${KNOT_SETS[$i]}
		reports+=("$RUN/knot-$i.dnsperf")
	done
	KNOT_QPS=$("$TOOL" dnsperf "${reports[@]}")
	KNOT_LIMIT=$(domains_of "$KNOT_QPS")
	log "N=$N: knot $KNOT_QPS qps = $KNOT_LIMIT domains/s (load $(load))"

	KNOT_BEST=$(best_set "${reports[@]}")
	for r in $(seq "$SCAN_RUNS"); do
		# The machine's speed drifts from minute to minute: each run is
		# set against the limit measured just before it, with the best
		# setting (the table's limit columns), and against the limit
		# measured at the start.
		# shellcheck disable=SC2086 # a list of flags
		perf "knot-before-$r" "$KNOT_PORT" -d "$WORLD/queries.txt" -l "$DNSPERF_SECONDS" -t 5 ${KNOT_SETS[$KNOT_BEST]}
		qps=$(qps_of "$RUN/knot-before-$r.dnsperf")
		for b in $(order "$r"); do
			log "N=$N: mxtrace${TAGS[$b]} scan straight at knot, run $r (knot just before: $qps qps)"
			before=$(cpu "$KNOT_PID")
			scan "direct-$r${TAGS[$b]}" "$KNOT_PORT" "${BINS[$b]}"
			row "$N" "knot${TAGS[$b]}" "$r" "$qps" "$(domains_of "$qps")" "direct-$r${TAGS[$b]}" "$(awk -v a="$before" -v b="$(cpu "$KNOT_PID")" 'BEGIN {print b - a}')" "$KNOT_LIMIT"
		done
	done

	UB_WARM="not measured (UNBOUND=0)"
	if [ "$UNBOUND" = 1 ]; then
		log "N=$N: unbound cold limit: dnsperf once through the queries (-n 1) on a fresh unbound, per setting"
		reports=()
		for i in "${!UNBOUND_SETS[@]}"; do
			start_unbound "$RUN/unbound" "$WORLD"
			# shellcheck disable=SC2086 # a list of flags
			perf "unbound-cold-$i" "$UNBOUND_PORT" -d "$WORLD/queries.txt" -n 1 -t 3 ${UNBOUND_SETS[$i]}
			echo "unbound CPU seconds: $(cpu "$UNBOUND_PID")" >>"$RUN/unbound-cold-$i.dnsperf"
			reports+=("$RUN/unbound-cold-$i.dnsperf")
			if [ "$i" = 0 ]; then
				# For information: the same unbound, now warm, answers
				# every question from its cache.
				# shellcheck disable=SC2086 # a list of flags
				perf unbound-warm "$UNBOUND_PORT" -d "$WORLD/queries.txt" -l "$DNSPERF_SECONDS" -t 5 ${UNBOUND_SETS[0]}
			fi
			stop "$UNBOUND_PID"
		done
		UB_QPS=$("$TOOL" dnsperf "${reports[@]}")
		UB_WARM="$("$TOOL" dnsperf "$RUN/unbound-warm.dnsperf") qps"
		UB_LIMIT=$(domains_of "$UB_QPS")
		log "N=$N: unbound cold $UB_QPS qps = $UB_LIMIT domains/s; warm $UB_WARM"

		UB_BEST=$(best_set "$RUN"/unbound-cold-[0-9]*.dnsperf)
		for r in $(seq "$SCAN_RUNS"); do
			start_unbound "$RUN/unbound" "$WORLD"
			# shellcheck disable=SC2086 # a list of flags
			perf "unbound-before-$r" "$UNBOUND_PORT" -d "$WORLD/queries.txt" -n 1 -t 3 ${UNBOUND_SETS[$UB_BEST]}
			stop "$UNBOUND_PID"
			qps=$(qps_of "$RUN/unbound-before-$r.dnsperf")
			for b in $(order "$r"); do
				log "N=$N: mxtrace${TAGS[$b]} scan through a cold unbound, run $r (cold unbound just before: $qps qps)"
				start_unbound "$RUN/unbound" "$WORLD"
				scan "unbound-$r${TAGS[$b]}" "$UNBOUND_PORT" "${BINS[$b]}"
				ub_cpu=$(cpu "$UNBOUND_PID")
				stop "$UNBOUND_PID"
				row "$N" "unbound${TAGS[$b]}" "$r" "$qps" "$(domains_of "$qps")" "unbound-$r${TAGS[$b]}" "$ub_cpu" "$UB_LIMIT"
			done
		done
	fi

	if [ "$PROFILE" = 1 ]; then
		log "N=$N: profile of a scan straight at knot"
		SCAN_FLAGS="$SCAN_FLAGS --cpuprofile $RUN/profile.cpu" scan profile "$KNOT_PORT"
		(cd "$ROOT" && go tool pprof -top -nodecount 25 "$BIN/mxtrace" "$RUN/profile.cpu" 2>/dev/null) >"$RUN/profile.top"
		(cd "$ROOT" && go tool pprof -top -cum -nodecount 25 "$BIN/mxtrace" "$RUN/profile.cpu" 2>/dev/null) >"$RUN/profile.cum"
		echo
		echo "== N=$N: profile of mxtrace scan straight at knot (load $(load))"
		grep -E "^scanned|dns:" "$RUN/profile.stderr" || true
		head -1 "$RUN/profile.verify"
		echo "-- CPU, flat"
		grep -A 26 '^ *flat' "$RUN/profile.top" || true
		echo "-- CPU, cumulative"
		grep -A 26 '^ *flat' "$RUN/profile.cum" || true
	fi
	stop "$KNOT_PID"

	echo
	echo "N=$N: perfect-cache queries per domain $QPD; unbound warm (all cache hits): $UB_WARM"
	for f in "$RUN"/knot-*.dnsperf "$RUN"/unbound-*.dnsperf; do
		[ -e "$f" ] || continue
		echo "-- $(basename "$f" .dnsperf): $(grep -E '^load|Command line|Queries lost|Queries per second|CPU seconds' "$f" |
			sed -e 's/.*Command line: dnsperf -s 127.0.0.1 -p [0-9]* -d [^ ]* //' | tr -s ' ' | tr '\n' ';')"
	done
	for f in "$RUN"/direct-*.verify "$RUN"/unbound-*.verify; do
		[ -e "$f" ] || continue
		echo "-- $(basename "$f" .verify): $(head -1 "$f")"
		sed -n '2,6p' "$f"
	done
done

echo
echo "mxtrace scan benchmark ($(nproc) cores, $(date +%F)); targets: knot >= 50%, unbound >= 90% of the limit, 100% correct, RSS <= 64 MB and flat (issue 20)"
echo "limit = dnsperf qps / perfect-cache queries per domain, measured just before each scan with the best setting;"
echo "ratio = scan / that limit; of best = scan / the limit measured at the start, best of all settings; cpu = CPU µs per domain of mxtrace / of the server"
echo "during the scan; busy = the share of all the cores the two used over the scan (below 100%, they stood idle);"
echo "load = 1-minute load average after the scan (other work on the same cores)"
# shellcheck disable=SC2059 # FMT is the table's format
printf "$FMT" N server run "limit qps" "limit dom/s" "scan dom/s" ratio "of best" "RSS MB" correct "cpu µs" busy load
for r in "${ROWS[@]}"; do echo "$r"; done
