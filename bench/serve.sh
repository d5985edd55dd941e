#!/usr/bin/env bash
# bench/serve.sh — the serve benchmark of issue 17 item 8: cached
# GET /api/v1/route/{domain} under wrk. A script a person runs, not a test;
# everything happens on loopback and nothing needs the network.
#
#   bench/serve.sh                  # the default matrix below
#   DURATION=20 bench/serve.sh      # seconds per wrk run (10)
#   THREADS="1 2" CONNS="16 64 256" bench/serve.sh
#   DOMAIN=bigtiers.example bench/serve.sh
#
# Needs Go and wrk (Debian: apt-get install wrk curl).
#
# It builds mxtrace, starts
#   mxtrace serve --zone examples/example.zone --zone examples/reverse.zone
# on 127.0.0.1 with the per-client rate limit lifted (--rate and --burst
# of a million: every request comes from 127.0.0.1, one client, which the
# default limit would answer with 429), asks for the route once so that
# every later request is answered from the shared cache, then runs
# wrk --latency for each number of wrk threads and connections, and prints
# requests/s and the p50/p99 latency of each run, with the server's CPU
# time and the load average. The server and wrk share the machine's cores,
# as the target asks (10,000 requests/s or more, p99 under 50 ms, on a
# 2-core machine).
#
# The server and wrk are killed by their PIDs on exit; the work directory
# is removed unless KEEP=1.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
THREADS=${THREADS:-"1 2"}
CONNS=${CONNS:-"8 32 128 512"}
DOMAIN=${DOMAIN:-tiers.example}
SERVE_FLAGS=${SERVE_FLAGS:-}

for tool in wrk curl go; do
	command -v "$tool" >/dev/null || { echo "bench/serve.sh: $tool is missing (apt-get install wrk curl)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/mxtrace-serve-bench.XXXXXX)
server=
cleanup() {
	if [[ -n $server ]]; then
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

go build -o "$work/mxtrace" ./cmd/mxtrace
# The access log goes to a file, as it would to the journal; it is part of
# the work of every request.
# shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
"$work/mxtrace" serve --listen 127.0.0.1:0 \
	--zone examples/example.zone --zone examples/reverse.zone \
	--rate 1000000 --burst 1000000 $SERVE_FLAGS 2>"$work/serve.log" &
server=$!

# The port is the kernel's choice, read from the "listening" log line.
base=
for _ in $(seq 100); do
	base=$(sed -n 's/.*msg="serve: listening" addr=\(http:[^ ]*\)\/ .*/\1/p' "$work/serve.log")
	[[ -n $base ]] && break
	kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
	sleep 0.1
done
[[ -n $base ]] || { echo "bench/serve.sh: the server did not say where it listens" >&2; cat "$work/serve.log" >&2; exit 1; }
curl -fsS -o /dev/null "$base/healthz"
url=$base/api/v1/route/$DOMAIN
# Warm the cache, and check that the route answers what the CLI prints.
status=$(curl -sS -o "$work/route.json" -w '%{http_code}' "$url")
if [[ $status != 200 ]]; then
	echo "bench/serve.sh: GET $url answered $status:" >&2
	cat "$work/route.json" >&2
	exit 1
fi
"$work/mxtrace" route --json --zone examples/example.zone --zone examples/reverse.zone "$DOMAIN" >"$work/cli.json" || true
if ! cmp -s <(jq -S 'del(.elapsed_ms, .order)' "$work/route.json" 2>/dev/null) \
	<(jq -S 'del(.elapsed_ms, .order)' "$work/cli.json" 2>/dev/null); then
	echo "note: the API body differs from route --json beyond elapsed_ms and order (or jq is missing)"
fi

cpu() { # the server's user+system CPU time in clock ticks
	awk '{print $14 + $15}' "/proc/$server/stat"
}
ms() { # wrk's latency ("812.00us", "3.21ms", "1.02s") in milliseconds
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n }'
}

hz=$(getconf CLK_TCK)
echo "mxtrace serve, GET $url from the cache"
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty), wrk ${DURATION}s per run"
printf '%-8s %-6s %12s %10s %10s %10s %8s %10s %s\n' threads conns 'requests/s' 'p50 ms' 'p99 ms' 'max ms' errors 'server CPU' 'load'
best=
for t in $THREADS; do
	for c in $CONNS; do
		((c >= t)) || continue
		before=$(cpu)
		out=$(wrk -t"$t" -c"$c" -d"${DURATION}s" --latency "$url")
		after=$(cpu)
		echo "$out" >"$work/wrk-t$t-c$c.txt"
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
		p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
		max=$(ms "$(awk '$1 == "Latency" && NF >= 4 {print $4; exit}' <<<"$out")")
		errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
		share=$(awk -v d="$((after - before))" -v hz="$hz" -v s="$DURATION" 'BEGIN {printf "%.0f%% of a core", 100 * d / hz / s}')
		load=$(cut -d' ' -f1 /proc/loadavg)
		printf '%-8s %-6s %12s %10s %10s %10s %8s %10s %s\n' "$t" "$c" "$rps" "$p50" "$p99" "$max" "$errs" "$share" "$load"
		if awk -v r="$rps" -v p="$p99" -v e="$errs" -v b="${best:-0 0}" 'BEGIN {split(b, x, " "); exit !(e == 0 && p < 50 && r > x[1])}'; then
			best="$rps $p99 -t$t -c$c"
		fi
	done
done
if [[ -n $best ]]; then
	read -r rps p99 tf cf <<<"$best"
	verdict=missed
	awk -v r="$rps" 'BEGIN {exit !(r >= 10000)}' && verdict=met
	echo "best with p99 < 50 ms and no errors: $rps requests/s, p99 $p99 ms (wrk $tf $cf -d${DURATION}s --latency); target 10,000 requests/s: $verdict"
else
	echo "no run had p99 under 50 ms without errors: target missed"
fi
