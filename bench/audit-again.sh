#!/usr/bin/env bash
# bench/audit-again.sh — the quick loop of the audit benchmark: one more
# "mxtrace scan --mode check --no-dnsbl" straight at Knot over a world that
# a "KEEP=1 bench/audit.sh N" left behind, without generating the world or
# measuring Knot's limit again. For comparing two builds in interleaved
# runs (A B A B ...) while working on the audit's CPU per domain; the
# figures a note reports still come from bench/audit.sh.
#
#   KEEP=1 UNBOUND=0 PROFILE=0 bench/audit.sh 20000   # prints the kept work directory
#   bench/audit-again.sh WORK                         # build this tree, one run
#   bench/audit-again.sh WORK ../other-tree           # build another tree
#   bench/audit-again.sh WORK . --cpuprofile /tmp/a.cpu  # extra flags for scan
#
# It starts the kept knotd from WORK/run-N/knot/knot.conf (same port), waits
# until every zone answers, runs the audit, scores it against the world's
# truth and prints one line: domains/s, mxtrace's CPU µs per domain (user
# + system) and Knot's, the ratio of the two, peak RSS, the queries Knot
# answered per domain against the perfect cache's, whether every finding
# was exact, and the load average. Loopback only; knotd is stopped by its
# PID on exit.
#
# The ratio is the figure to compare builds by. This machine's speed
# drifts by a fifth from one minute to the next (a host shared with
# others; no steal time shows), and one build's µs per domain drifts with
# it, 278 to 404 at 20k in one afternoon. Knot does the same work for
# every build, in the same seconds, so it is the run's own yardstick:
# mxtrace/knot moved 2.40 to 2.78 over those runs (docs/performance.md,
# "Comparing builds on this machine").
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: bench/audit-again.sh WORK [TREE] [scan flags...]" >&2
	exit 2
fi
WORK=$(cd "$1" && pwd)
shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TREE=$ROOT
if [ $# -gt 0 ]; then
	TREE=$(cd "$1" && pwd)
	shift
fi
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)
KNOTC=$(command -v knotc || echo /usr/sbin/knotc)
UNSCORED=mta-sts-policy-unreachable,mta-sts-policy-invalid,mta-sts-mx-not-covered,mta-sts-testing,mta-sts-fetch-refused

worlds=("$WORK"/world-*)
if [ ! -d "${worlds[0]}" ]; then
	echo "audit-again.sh: no world-N under $WORK (run KEEP=1 bench/audit.sh N first)" >&2
	exit 2
fi
WORLD=${worlds[0]}
N=${WORLD##*/world-}
CONF=$WORK/run-$N/knot/knot.conf
PORT=$(awk -F'@' '/listen: 127.0.0.1@/ {print $2; exit}' "$CONF")
SOCK=$(awk -F'"' '/^control:/ {c = 1} c && /listen:/ {print $2; exit}' "$CONF")
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mxtrace-auditagain.XXXXXX")

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

(cd "$TREE" && go build -o "$OUT/mxtrace" ./cmd/mxtrace && go build -o "$OUT/scantool" ./bench/scantool)
"$KNOTD" -c "$CONF" >"$OUT/knotd.log" 2>&1 &
KNOT_PID=$!
if ! "$OUT/scantool" ready -server "127.0.0.1:$PORT" -zones "$WORLD/zones.txt" -timeout 600s; then
	cat "$OUT/knotd.log" >&2
	exit 1
fi

knot_queries() {
	"$KNOTC" -s "$SOCK" stats mod-stats.request-protocol 2>/dev/null | awk -F' = ' '{s += $2} END {print s + 0}'
}
TICKS=$(getconf CLK_TCK)
before_q=$(knot_queries)
before_cpu=$(awk '{print $14 + $15}' "/proc/$KNOT_PID/stat")
/usr/bin/time -v -o "$OUT/time" "$OUT/mxtrace" scan --mode check --no-dnsbl \
	--resolver "127.0.0.1:$PORT" --ns-port "$PORT" --seed 1 \
	-o "$OUT/out.jsonl" --summary "$OUT/summary.json" "$@" "$WORLD/input.txt" 2>"$OUT/stderr" || {
	cat "$OUT/stderr" >&2
	exit 1
}
knot_cpu=$(awk -v b="$before_cpu" -v t="$TICKS" '{print ($14 + $15 - b) / t}' "/proc/$KNOT_PID/stat")
knotq=$(($(knot_queries) - before_q))
"$OUT/scantool" audit -truth "$WORLD/findings.jsonl" -out "$OUT/out.jsonl" -unscored "$UNSCORED" \
	-json "$OUT/score.json" >"$OUT/score"

rate=$("$OUT/scantool" get "$OUT/summary.json" domains_per_second)
exact=$("$OUT/scantool" get "$OUT/score.json" exact)
qpd=$("$OUT/scantool" get "$WORLD/world.json" audit.queries_per_domain)
awk -F': ' -v n="$N" -v rate="$rate" -v kc="$knot_cpu" -v kq="$knotq" -v qpd="$qpd" -v exact="$exact" \
	-v load="$(cut -d' ' -f1 /proc/loadavg)" '
	/User time|System time/ {cpu += $2}
	/System time/ {sys = $2}
	/Maximum resident set size/ {rss = $2 / 1024}
	END {
		printf "N=%d: %.0f domains/s, mxtrace %.0f µs/domain (system %.0f), knot %.0f µs/domain, mxtrace/knot %.2f, %.0f MB, knot q/d %.2f (perfect %s), exact %s, load %s\n",
			n, rate, 1e6 * cpu / n, 1e6 * sys / n, 1e6 * kc / n, (kc > 0 ? cpu / kc : 0), rss, kq / n, qpd, exact, load
	}' "$OUT/time"
if [ "$exact" != true ]; then
	cat "$OUT/score"
fi
