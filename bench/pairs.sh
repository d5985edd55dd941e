#!/usr/bin/env bash
# bench/pairs.sh — two builds of mxtrace over one kept world, in
# alternating pairs (A B, then B A, ...), against one knotd kept up for
# all of them. For a change whose gain is a few percent: this machine's
# speed moves by half within minutes (the same route scan took 20 µs of
# CPU a domain, then 30), so only runs seconds apart, in both orders, can
# be compared, and by the ratio of the scanner's CPU to Knot's over the
# same seconds (docs/performance.md, "Comparing builds on this machine").
#
#   KEEP=1 bench/scan.sh 100000                      # a route world (prints WORK)
#   KEEP=1 UNBOUND=0 PROFILE=0 bench/audit.sh 100000 # an audit world
#   go build -o /tmp/a/mxtrace ./cmd/mxtrace         # in each tree
#   bench/pairs.sh WORK route 4 /tmp/a/mxtrace /tmp/b/mxtrace
#   bench/pairs.sh WORK check 3 /tmp/a/mxtrace /tmp/b/mxtrace
#
# MODE is route (scan --mode route) or check (scan --mode check --no-dnsbl,
# the nameservers asked on Knot's port). SCAN_FLAGS adds flags to both.
# Each run prints the build, domains/s, the scanner's CPU µs a domain
# (user + system), Knot's, and their ratio; busy, the share of all the
# cores the two used over the run (below 100 %, the pipeline stood idle:
# a Go program's idle spinning counts as used); the datagrams sent again
# (the summary's dns.queries.resent) and the scanner's peak RSS. The
# lines are not scored: the
# rigs (bench/scan.sh, bench/audit.sh) do that. Loopback only; knotd is
# stopped by its PID on exit and the work files are removed.
set -euo pipefail

if [ $# -ne 5 ]; then
	echo "usage: bench/pairs.sh WORK route|check RUNS BIN_A BIN_B" >&2
	exit 2
fi
WORK=$(cd "$1" && pwd)
MODE=$2
RUNS=$3
BINS=("$4" "$5")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)

worlds=("$WORK"/world-*)
if [ ! -d "${worlds[0]}" ]; then
	echo "pairs.sh: no world-N under $WORK (run KEEP=1 bench/scan.sh N or bench/audit.sh N first)" >&2
	exit 2
fi
WORLD=${worlds[0]}
N=${WORLD##*/world-}
CONF=$WORK/run-$N/knot/knot.conf
PORT=$(awk -F'@' '/listen: 127.0.0.1@/ {print $2; exit}' "$CONF")
case $MODE in
route) FLAGS=(--mode route) ;;
check) FLAGS=(--mode check --no-dnsbl --ns-port "$PORT") ;;
*)
	echo "pairs.sh: MODE is route or check, not $MODE" >&2
	exit 2
	;;
esac
# shellcheck disable=SC2206 # SCAN_FLAGS is split on purpose
FLAGS+=(${SCAN_FLAGS:-})
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mxtrace-pairs.XXXXXX")

KNOT_PID=""
cleanup() {
	if [ -n "$KNOT_PID" ]; then
		kill "$KNOT_PID" 2>/dev/null || true
		wait "$KNOT_PID" 2>/dev/null || true
	fi
	rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$ROOT" && go build -o "$OUT/scantool" ./bench/scantool)
"$KNOTD" -c "$CONF" >"$OUT/knotd.log" 2>&1 &
KNOT_PID=$!
if ! "$OUT/scantool" ready -server "127.0.0.1:$PORT" -zones "$WORLD/zones.txt" -timeout 600s; then
	cat "$OUT/knotd.log" >&2
	exit 1
fi

TICKS=$(getconf CLK_TCK)
CORES=$(nproc)
run() {
	local bin=$1
	rm -f "$OUT/out.jsonl" "$OUT/summary.json"
	local before
	before=$(awk '{print $14 + $15}' "/proc/$KNOT_PID/stat")
	/usr/bin/time -f "%U %S %M" -o "$OUT/time" "$bin" scan "${FLAGS[@]}" \
		--resolver "127.0.0.1:$PORT" --seed 1 -o "$OUT/out.jsonl" \
		--summary "$OUT/summary.json" "$WORLD/input.txt" 2>"$OUT/stderr" || {
		cat "$OUT/stderr" >&2
		exit 1
	}
	local knot rate resent
	knot=$(awk -v b="$before" -v t="$TICKS" '{print ($14 + $15 - b) / t}' "/proc/$KNOT_PID/stat")
	rate=$("$OUT/scantool" get "$OUT/summary.json" domains_per_second)
	resent=$("$OUT/scantool" get "$OUT/summary.json" dns.queries.resent)
	awk -v n="$N" -v k="$knot" -v rate="$rate" -v bin="$bin" -v cores="$CORES" -v resent="$resent" '{
		printf "%-32s %7.0f domains/s  mxtrace %6.1f µs/domain  knot %5.1f  mxtrace/knot %.2f  busy %3.0f%%  resent %d  %3.0f MB\n",
			bin, rate, 1e6 * ($1 + $2) / n, 1e6 * k / n, ($1 + $2) / k, 100 * ($1 + $2 + k) * rate / n / cores, resent, $3 / 1024
	}' "$OUT/time"
}
for r in $(seq "$RUNS"); do
	if [ $((r % 2)) = 1 ]; then
		run "${BINS[0]}"
		run "${BINS[1]}"
	else
		run "${BINS[1]}"
		run "${BINS[0]}"
	fi
done
