#!/usr/bin/env bash
# bench/audit.sh — the audit benchmark of issue 20 items 2–4: "mxtrace scan
# --mode check --no-dnsbl" over the audit world of bench/scanworld -audit,
# straight at Knot and through a cold Unbound. A script a person runs, not
# a test. Everything happens on loopback; nothing needs the network.
#
#   bench/audit.sh                 # N = 100000 and 1000000
#   bench/audit.sh 100000          # one or more sizes
#   KEEP=1 bench/audit.sh 100000   # keep the work directory (printed)
#
# Needs Go and, on Debian or Ubuntu: apt-get install knot unbound dnsperf time
#
# For each size N it:
#   1. generates the audit world (bench/scanworld -audit): the routing
#      world of bench/scan.sh plus SPF, DMARC, DKIM, MTA-STS, TLS-RPT,
#      TLSA and PTR records for realistic shares of the domains, every
#      zone's nameservers at 127.0.0.1, the ground truth of the findings
#      (findings.jsonl) and the questions a perfect cache asks for the
#      audit: audit-queries.txt (recursive, through the resolver) and
#      audit-direct.txt (the nameserver audit's questions to the zone's
#      servers, which go to Knot whatever the resolver);
#   2. starts knotd (with mod-stats, to count the queries it answers) and
#      measures its limit with dnsperf over both files, looped for
#      $DNSPERF_SECONDS per setting, the best of a few settings:
#      limit in domains/s = qps / perfect-cache queries per domain;
#   3. runs the audit straight at Knot ("--resolver" and "--ns-port" both
#      Knot's port), each run against the limit measured just before it:
#      domains/s, the ratio to that limit, peak RSS, the queries Knot
#      answered per domain against the perfect cache's, and the score of
#      the findings against the truth (scantool audit: precision and
#      recall per finding ID, target 100 %; the MTA-STS policy fetch's IDs
#      are not scored, since the world serves no HTTPS);
#   4. does the same through Unbound (a thread per core, a stub zone per
#      zone to Knot), restarted before each run so it starts cold; its limit
#      is measured cold too (dnsperf -n 1 once through audit-queries.txt on
#      a fresh Unbound), in domains/s = qps / recursive queries per domain;
#   5. profiles one more audit straight at Knot (--cpuprofile) and prints
#      the top of the profile.
#
# zdns (MXLOOKUP, SPF, DMARC, NSLOOKUP side by side) runs when ZDNS names
# a zdns binary built from its source (docs/performance.md says why this
# machine has none): each module over the input, straight at Knot.
#
# Knobs (environment): SCAN_FLAGS (extra flags for mxtrace scan),
# SCAN_RUNS (1), DNSPERF_SECONDS (10), PROFILE (1), UNBOUND (1: 0 skips
# step 4), SEED (1), KEEP (0), KEEP_LINES (0: each run's JSON lines are
# removed once scored), ZDNS (unset).
#
# The machine is shared: the 1-minute load average is printed beside every
# figure. Every process it starts is killed by its PID on exit (trap), and
# the work directory is removed unless KEEP=1.
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
KEEP_LINES=${KEEP_LINES:-0}
ZDNS=${ZDNS:-}
CORES=$(nproc)
KNOT_SETS=("-T $CORES -c 2 -q 50" "-T $CORES -c 4 -q 100" "-T $CORES -c 8 -q 200" "-T $CORES -c 4 -q 500")
UNBOUND_SETS=("-T $CORES -c 4 -q 100" "-T $CORES -c 8 -q 200")
# The findings of the MTA-STS policy fetch (HTTPS), which the world does
# not serve: reported, not scored.
UNSCORED=mta-sts-policy-unreachable,mta-sts-policy-invalid,mta-sts-mx-not-covered,mta-sts-testing,mta-sts-fetch-refused

need() {
	for p in "$@"; do
		if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "$p" ]; then
			echo "audit.sh: $p not found: apt-get install knot unbound dnsperf time (and Go)" >&2
			exit 2
		fi
	done
}
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)
KNOTC=$(command -v knotc || echo /usr/sbin/knotc)
UNBOUND_BIN=$(command -v unbound || echo /usr/sbin/unbound)
need go "$KNOTD" "$KNOTC" "$UNBOUND_BIN" dnsperf /usr/bin/time awk pkill

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mxtrace-auditbench.XXXXXX")
PIDS=()
CHILD=""
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
# that a signal reaches the trap at once.
run() {
	local rc=0
	"$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}

stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
load() { cut -d' ' -f1 /proc/loadavg; }
qps_of() { awk '/Queries per second/ {print $4}' "$1"; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100*a/b}'; }
TICKS=$(getconf CLK_TCK)
cpu() { awk -v t="$TICKS" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }
scan_cpu() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"; }

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

BIN=$WORK/bin
mkdir -p "$BIN"
log "building mxtrace and the helpers"
(cd "$ROOT" && go build -o "$BIN/mxtrace" ./cmd/mxtrace &&
	go build -o "$BIN/scanworld" ./bench/scanworld &&
	go build -o "$BIN/scantool" ./bench/scantool)
TOOL=$BIN/scantool

# start_knot DIR WORLD: knot.conf (Knot 3.x) with mod-stats counting the
# queries by protocol; sets KNOT_PID, KNOT_PORT, KNOT_SOCK.
start_knot() {
	local dir=$1 world=$2
	mkdir -p "$dir"
	KNOT_PORT=$("$TOOL" freeport)
	KNOT_SOCK=$dir/knot.sock
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
    listen: "$KNOT_SOCK"
database:
    storage: "$dir"
log:
  - target: stderr
    any: warning
mod-stats:
  - id: count
    request-protocol: on
    server-operation: off
    request-bytes: off
    response-bytes: off
    edns-presence: off
    flag-presence: off
    response-code: off
    request-edns-option: off
    response-edns-option: off
    reply-nodata: off
    query-type: off
    query-size: off
    reply-size: off
template:
  - id: default
    storage: "$dir"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    global-module: mod-stats/count
zone:
EOF
		while read -r origin file; do
			printf '  - domain: "%s"\n    file: "%s"\n' "$origin" "$file"
		done <"$world/zones.txt"
	} >"$dir/knot.conf"
	"$KNOTD" -c "$dir/knot.conf" >"$dir/knotd.log" 2>&1 &
	KNOT_PID=$!
	PIDS+=("$KNOT_PID")
	if ! "$TOOL" ready -server "127.0.0.1:$KNOT_PORT" -zones "$world/zones.txt" -timeout 600s; then
		cat "$dir/knotd.log" >&2
		exit 1
	fi
}

# knot_queries: the queries Knot has answered so far (mod-stats).
knot_queries() {
	"$KNOTC" -s "$KNOT_SOCK" stats mod-stats.request-protocol 2>/dev/null | awk -F' = ' '{s += $2} END {print s + 0}'
}

# start_unbound DIR WORLD: as bench/scan.sh's (a thread per core, a stub
# zone per zone to Knot, cold at every start); sets UNBOUND_PID and
# UNBOUND_PORT.
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
    # test. is one of unbound's built-in local zones (RFC 6761 §6.2);
    # so are the reverse zones of the documentation ranges.
    local-zone: "test." nodefault
    local-zone: "2.0.192.in-addr.arpa." nodefault
    local-zone: "100.51.198.in-addr.arpa." nodefault
    local-zone: "113.0.203.in-addr.arpa." nodefault
    local-zone: "8.b.d.0.1.0.0.2.ip6.arpa." nodefault
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

# perf NAME PORT ARGS...: dnsperf, its report in $RUN/NAME.dnsperf.
perf() {
	local name=$1 port=$2
	shift 2
	echo "load $(load)" >"$RUN/$name.dnsperf"
	run /usr/bin/time -f 'client CPU seconds: %U user %S system' dnsperf -s 127.0.0.1 -p "$port" "$@" >"$RUN/$name.raw" 2>&1
	grep -v '^\[Timeout\]' "$RUN/$name.raw" >>"$RUN/$name.dnsperf"
	rm "$RUN/$name.raw"
}

# audit NAME RESOLVER_PORT: the audit under /usr/bin/time, the queries
# Knot answered meanwhile in $RUN/NAME.knotq, and its score.
audit() {
	local name=$1 port=$2 before
	before=$(knot_queries)
	# shellcheck disable=SC2086 # SCAN_FLAGS is a list of flags
	run /usr/bin/time -v -o "$RUN/$name.time" "$BIN/mxtrace" scan --mode check --no-dnsbl \
		--resolver "127.0.0.1:$port" --ns-port "$KNOT_PORT" --seed 1 \
		-o "$RUN/$name.jsonl" --summary "$RUN/$name.summary.json" $SCAN_FLAGS "$WORLD/input.txt" \
		2>"$RUN/$name.stderr" || {
		echo "audit.sh: mxtrace scan failed:" >&2
		cat "$RUN/$name.stderr" >&2
		exit 1
	}
	echo $(($(knot_queries) - before)) >"$RUN/$name.knotq"
	run "$TOOL" audit -truth "$WORLD/findings.jsonl" -out "$RUN/$name.jsonl" -unscored "$UNSCORED" \
		-json "$RUN/$name.score.json" >"$RUN/$name.score"
	# The lines are 8.5 kB a domain, 850 MB at 100k: kept, the kernel
	# writes them to disk 30 s later (vm.dirty_expire_centisecs), which
	# is during the next run, and that run lost a quarter of its rate to
	# the writeback (docs/performance.md, "Comparing builds"). Removed
	# before then, their dirty pages are dropped unwritten.
	if [ "$KEEP_LINES" != 1 ]; then
		rm -f "$RUN/$name.jsonl"
	fi
}

FMT='%-8s %-8s %3s %10s %11s %10s %6s %6s %7s %8s %9s %9s %5s\n'
ROWS=()
# row N SETUP RUN QPS LIMIT NAME QPD SERVER_CPU: one line of the table.
row() {
	local n=$1 setup=$2 r=$3 qps=$4 limit=$5 name=$6 qpd=$7 server_cpu=$8 rate rss exact sent knotq us
	rate=$("$TOOL" get "$RUN/$name.summary.json" domains_per_second)
	rss=$(rss_mb "$RUN/$name.time")
	exact=$("$TOOL" get "$RUN/$name.score.json" exact)
	sent=$(awk -v s="$("$TOOL" get "$RUN/$name.summary.json" dns.queries.sent)" -v n="$n" 'BEGIN {printf "%.2f", s/n}')
	knotq=$(awk -v s="$(cat "$RUN/$name.knotq")" -v n="$n" 'BEGIN {printf "%.2f", s/n}')
	us=$(awk -v a="$(scan_cpu "$RUN/$name.time")" -v b="$server_cpu" -v n="$n" 'BEGIN {printf "%.0f/%.0f", 1e6*a/n, 1e6*b/n}')
	log "N=$n: $name: $(printf '%.0f' "$rate") domains/s ($(percent "$rate" "$limit") of $limit), $rss MB, mux queries/domain $sent, knot queries/domain $knotq (perfect $qpd), exact findings: $exact (load $(load))"
	# shellcheck disable=SC2059 # FMT is the table's format
	ROWS+=("$(printf "$FMT" "$n" "$setup" "$r" "$(printf '%.0f' "$qps")" "$limit" "$(printf '%.0f' "$rate")" \
		"$(percent "$rate" "$limit")" "$rss" "$sent" "$knotq" "$exact" "$us" "$(load)")")
}

for N in "${SIZES[@]}"; do
	RUN=$WORK/run-$N
	WORLD=$WORK/world-$N
	mkdir -p "$RUN"
	log "N=$N: generating the audit world"
	run "$BIN/scanworld" -n "$N" -seed "$SEED" -audit -out "$WORLD"
	QPD=$("$TOOL" get "$WORLD/world.json" audit.queries_per_domain)
	RQPD=$("$TOOL" get "$WORLD/world.json" audit.recursive_queries_per_domain)
	cat "$WORLD/audit-queries.txt" "$WORLD/audit-direct.txt" >"$WORLD/knot-stream.txt"
	log "N=$N: perfect cache: $QPD queries per domain at Knot ($RQPD through a resolver, the rest direct)"

	log "N=$N: starting knotd"
	start_knot "$RUN/knot" "$WORLD"
	log "N=$N: knot limit: dnsperf looped ${DNSPERF_SECONDS}s per setting over the audit's perfect-cache stream"
	reports=()
	for i in "${!KNOT_SETS[@]}"; do
		# shellcheck disable=SC2086 # a list of flags
		perf "knot-$i" "$KNOT_PORT" -d "$WORLD/knot-stream.txt" -l "$DNSPERF_SECONDS" -t 5 ${KNOT_SETS[$i]}
		reports+=("$RUN/knot-$i.dnsperf")
	done
	KNOT_QPS=$("$TOOL" dnsperf "${reports[@]}")
	KNOT_BEST=$(best_set "${reports[@]}")
	log "N=$N: knot $KNOT_QPS qps = $(awk -v q="$KNOT_QPS" -v d="$QPD" 'BEGIN {printf "%.0f", q/d}') audited domains/s (load $(load))"

	for r in $(seq "$SCAN_RUNS"); do
		# shellcheck disable=SC2086 # a list of flags
		perf "knot-before-$r" "$KNOT_PORT" -d "$WORLD/knot-stream.txt" -l "$DNSPERF_SECONDS" -t 5 ${KNOT_SETS[$KNOT_BEST]}
		qps=$(qps_of "$RUN/knot-before-$r.dnsperf")
		log "N=$N: audit straight at knot, run $r (knot just before: $qps qps)"
		before=$(cpu "$KNOT_PID")
		audit "direct-$r" "$KNOT_PORT"
		row "$N" knot "$r" "$qps" "$(awk -v q="$qps" -v d="$QPD" 'BEGIN {printf "%.0f", q/d}')" "direct-$r" "$QPD" \
			"$(awk -v a="$before" -v b="$(cpu "$KNOT_PID")" 'BEGIN {print b - a}')"
	done

	if [ -n "$ZDNS" ]; then
		for module in MXLOOKUP SPF DMARC NSLOOKUP; do
			log "N=$N: zdns $module straight at knot"
			start=$(date +%s.%N)
			run /usr/bin/time -v -o "$RUN/zdns-$module.time" "$ZDNS" "$module" --name-servers "127.0.0.1:$KNOT_PORT" \
				--threads 1000 --input-file "$WORLD/input.txt" --output-file "$RUN/zdns-$module.jsonl" 2>"$RUN/zdns-$module.stderr"
			secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {print e - s}')
			ROWS+=("$(printf '%-8s zdns %-9s %.0f domains/s, %s MB, %s lines (load %s)' "$N" "$module" \
				"$(awk -v n="$N" -v s="$secs" 'BEGIN {print n/s}')" "$(rss_mb "$RUN/zdns-$module.time")" \
				"$(wc -l <"$RUN/zdns-$module.jsonl")" "$(load)")")
		done
	fi

	if [ "$UNBOUND" = 1 ]; then
		log "N=$N: unbound cold limit: dnsperf once through the recursive questions (-n 1) on a fresh unbound, per setting"
		reports=()
		for i in "${!UNBOUND_SETS[@]}"; do
			start_unbound "$RUN/unbound" "$WORLD"
			# shellcheck disable=SC2086 # a list of flags
			perf "unbound-cold-$i" "$UNBOUND_PORT" -d "$WORLD/audit-queries.txt" -n 1 -t 3 ${UNBOUND_SETS[$i]}
			reports+=("$RUN/unbound-cold-$i.dnsperf")
			stop "$UNBOUND_PID"
		done
		UB_BEST=$(best_set "${reports[@]}")
		for r in $(seq "$SCAN_RUNS"); do
			if [ "$r" = 1 ]; then
				# The settings were just measured, each on a fresh
				# Unbound: the best of them is the limit just before.
				qps=$(qps_of "${reports[$UB_BEST]}")
			else
				start_unbound "$RUN/unbound" "$WORLD"
				# shellcheck disable=SC2086 # a list of flags
				perf "unbound-before-$r" "$UNBOUND_PORT" -d "$WORLD/audit-queries.txt" -n 1 -t 3 ${UNBOUND_SETS[$UB_BEST]}
				stop "$UNBOUND_PID"
				qps=$(qps_of "$RUN/unbound-before-$r.dnsperf")
			fi
			log "N=$N: audit through a cold unbound, run $r (cold unbound just before: $qps qps)"
			start_unbound "$RUN/unbound" "$WORLD"
			audit "unbound-$r" "$UNBOUND_PORT"
			ub_cpu=$(cpu "$UNBOUND_PID")
			stop "$UNBOUND_PID"
			row "$N" unbound "$r" "$qps" "$(awk -v q="$qps" -v d="$RQPD" 'BEGIN {printf "%.0f", q/d}')" "unbound-$r" "$RQPD" "$ub_cpu"
		done
	fi

	if [ "$PROFILE" = 1 ]; then
		log "N=$N: profile of an audit straight at knot"
		SCAN_FLAGS="$SCAN_FLAGS --cpuprofile $RUN/profile.cpu" audit profile "$KNOT_PORT"
		(cd "$ROOT" && go tool pprof -top -nodecount 25 "$BIN/mxtrace" "$RUN/profile.cpu" 2>/dev/null) >"$RUN/profile.top"
		(cd "$ROOT" && go tool pprof -top -cum -nodecount 40 "$BIN/mxtrace" "$RUN/profile.cpu" 2>/dev/null) >"$RUN/profile.cum"
		echo
		echo "== N=$N: profile of the audit straight at knot (load $(load))"
		grep -E "^scanned|dns:" "$RUN/profile.stderr" || true
		echo "-- CPU, flat"
		grep -A 26 '^ *flat' "$RUN/profile.top" || true
		echo "-- CPU, cumulative"
		grep -A 41 '^ *flat' "$RUN/profile.cum" || true
	fi
	stop "$KNOT_PID"

	echo
	echo "N=$N: perfect cache $QPD queries per domain at Knot, $RQPD through a resolver"
	for f in "$RUN"/knot-*.dnsperf "$RUN"/unbound-*.dnsperf; do
		[ -e "$f" ] || continue
		echo "-- $(basename "$f" .dnsperf): $(grep -E '^load|Command line|Queries lost|Queries per second' "$f" |
			sed -e 's/.*Command line: dnsperf -s 127.0.0.1 -p [0-9]* -d [^ ]* //' | tr -s ' ' | tr '\n' ';')"
	done
	for f in "$RUN"/direct-*.score "$RUN"/unbound-*.score; do
		[ -e "$f" ] || continue
		echo "-- $(basename "$f" .score):"
		cat "$f"
	done
done

echo
echo "mxtrace audit benchmark ($(nproc) cores, $(date +%F)): scan --mode check --no-dnsbl; targets: >= 5,000 domains/s against knot,"
echo ">= 90% of the cold limit through unbound, every finding ID at 100% precision and recall, one line per domain, RSS flat."
echo "limit = dnsperf qps (just before the run, best setting) / perfect-cache queries per domain (knot: recursive + direct;"
echo "unbound: recursive); mux q/d = queries mxtrace sent through its resolver per domain; knot q/d = queries Knot answered per"
echo "domain during the run (recursive and direct); cpu = CPU µs per domain of mxtrace / of the server; load after the run"
# shellcheck disable=SC2059 # FMT is the table's format
printf "$FMT" N setup run "limit qps" "limit dom/s" "dom/s" ratio "RSS MB" "mux q/d" "knot q/d" exact "cpu µs" load
for r in "${ROWS[@]}"; do echo "$r"; done
