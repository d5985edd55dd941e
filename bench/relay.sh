#!/usr/bin/env bash
# bench/relay.sh — the relay benchmark of issue 19 item 8. A script a person
# runs, not a test; everything happens on loopback (127.0.0.1 to 127.0.0.3)
# and nothing needs the network.
#
#   sudo bench/relay.sh                       # 1 KB and 100 KB, -s 32 -m 2000
#   SIZES="1024" MESSAGES=5000 SESSIONS="8 32" sudo bench/relay.sh
#   SOURCE_FLAGS=-d sudo bench/relay.sh       # several messages per connection
#
# Needs root (Postfix's master runs as root and drops to the postfix user),
# Go, and Debian's postfix package, which ships smtp-source and smtp-sink:
#
#   apt-get install postfix iproute2
#
# For each message size and number of parallel sessions it measures, with
# Postfix's own load generator
#
#   smtp-source -s SESSIONS -m MESSAGES -l SIZE -f … -t user@bench.test HOST:PORT
#
# (one connection per message unless SOURCE_FLAGS has -d):
#   1. accepted/s: messages acknowledged per second, by
#      - mxtrace relay --domain bench.test --recipients FILE --queue relay.db
#        on 127.0.0.1 (FILE lists user@bench.test): its SQLite queue (WAL,
#        synchronous=FULL) commits and fsyncs every message before its 250
#        (--rate 0 and high connection caps: every message comes from one
#        client); its primary (MX 10, 127.0.0.3) is down, so the
#        relay only accepts and queues, as a backup MX does while it
#        matters;
#      - Postfix 3.x on 127.0.0.2 (the reference): its queue on the same
#        disk, in the work directory; every message is put on hold
#        (check_client_access static:HOLD) so that it too only accepts and
#        queues, and in_flow_delay is 0 so it is not throttled for having
#        no deliveries (cleanup fsyncs each queue file before the 250, as
#        Postfix always does);
#   2. delivered/s: then smtp-sink starts as the primary on 127.0.0.3 and
#      the queue drains into it: the relay by its own out-of-band probe of
#      the primary (--probe-every 200ms, so the wait for the probe is at
#      most 0.2 s of the figure), Postfix after "postsuper -H ALL" and
#      "postqueue -f"; the time runs from the sink's start until it has
#      counted every message.
# Both queues are emptied between runs (a fresh queue per run).
#
# Knobs (environment): SERVERS ("relay postfix": which to measure), SIZES
# (bytes of body, "1024 102400"), SESSIONS
# ("32"), MESSAGES (2000), SOURCE_FLAGS, RELAY_FLAGS (extra flags for
# mxtrace relay), KEEP=1 (keep the work directory, printed).
#
# The machine is shared: the 1-minute load average is printed beside every
# figure. Every process it starts (the relay, Postfix's master and its
# daemons, smtp-sink) is killed by its PID or process group on exit, and
# the work directory is removed unless KEEP=1.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1024 102400"}
SESSIONS=${SESSIONS:-32}
MESSAGES=${MESSAGES:-2000}
SOURCE_FLAGS=${SOURCE_FLAGS:-}
SERVERS=${SERVERS:-"relay postfix"}
RELAY_FLAGS=${RELAY_FLAGS:-}
PATH=$PATH:/usr/sbin:/sbin

[[ $(id -u) == 0 ]] || { echo "bench/relay.sh: run as root (Postfix's master needs it)" >&2; exit 2; }
for tool in go ss postconf smtp-source smtp-sink postsuper postqueue; do
	command -v "$tool" >/dev/null || { echo "bench/relay.sh: $tool is missing (apt-get install postfix iproute2)" >&2; exit 2; }
done
daemons=$(postconf -d -h daemon_directory)

RELAY=127.0.0.1 POSTFIX=127.0.0.2 PRIMARY=127.0.0.3
work=$(mktemp -d /tmp/mxtrace-relay-bench.XXXXXX)
chmod 755 "$work"
relay= master= sink=
stop() { # stop PID: SIGTERM, then SIGKILL after 5 s; waits
	local pid=$1
	[[ -n $pid ]] || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
stop_postfix() { # the master, then whatever of its process group is left
	[[ -n $master ]] || return 0
	stop "$master"
	kill -9 -- "-$master" 2>/dev/null || true
	master=
}
cleanup() {
	stop "$relay"
	stop "$sink"
	stop_postfix
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

port() { # a TCP port nothing listened on, on any address, a moment ago
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return 0; }
	done
	echo "bench/relay.sh: no free port" >&2
	return 1
}
wait_banner() { # wait until an SMTP server at $1:$2 greets (10 s)
	local line
	for _ in $(seq 100); do
		# In a subshell: a failed exec redirection ends the shell.
		line=$( (exec 3<>"/dev/tcp/$1/$2" && read -r -t 2 l <&3 && echo "$l") 2>/dev/null || true)
		[[ $line == 220* ]] && return 0
		sleep 0.1
	done
	echo "bench/relay.sh: nothing answers SMTP on $1:$2" >&2
	return 1
}
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN {printf "%.0f", n / (b - a)}'; }

go build -o "$work/mxtrace" ./cmd/mxtrace
relay_port=$(port $RELAY) postfix_port=$(port $POSTFIX) sink_port=$(port $PRIMARY)

# The zone the relay routes by: MX 10 the primary, MX 20 the relay itself
# (which --self prunes, RFC 5321 §5.1).
cat >"$work/bench.zone" <<EOF
\$ORIGIN bench.test.
\$TTL 300
@       SOA ns hostmaster 1 3600 600 86400 300
@       NS  ns
ns      A   $RELAY
@       MX  10 mx1
@       MX  20 relay
mx1     A   $PRIMARY
relay   A   $RELAY
EOF

# smtp-source's one recipient, the relay's list (--recipients: a relay
# runs with a verifier, so the bench measures one).
echo user@bench.test >"$work/recipients"

start_sink() {
	smtp-sink -u postfix -c "$PRIMARY:$sink_port" 256 >"$work/sink.out" 2>&1 &
	sink=$!
	wait_banner $PRIMARY "$sink_port"
}
sunk() { # messages smtp-sink has counted
	tr '\r' '\n' <"$work/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1
}
wait_sunk() { # wait until the sink has counted $1 messages (10 minutes)
	local n=0
	for _ in $(seq 60000); do
		n=$(sunk)
		((${n:-0} >= $1)) && return 0
		sleep 0.01
	done
	echo "bench/relay.sh: the sink counted ${n:-0} of $1 messages" >&2
	return 1
}

start_relay() {
	# shellcheck disable=SC2086 # RELAY_FLAGS is a list of flags
	"$work/mxtrace" relay --domain bench.test --listen "$RELAY:$relay_port" \
		--queue "$work/relay.db" --hostname relay.bench.test --self relay.bench.test \
		--recipients "$work/recipients" \
		--zone "$work/bench.zone" --smtp-port "$sink_port" --allow-private \
		--probe-every 200ms --rate 0 --max-conns 1000 --max-conns-per-client 1000 $RELAY_FLAGS 2>"$work/relay.log" &
	relay=$!
	wait_banner $RELAY "$relay_port" || { tail -20 "$work/relay.log" >&2; exit 1; }
}

# Postfix's queue, configuration and log in the work directory, its
# directories as postfix-files(5) makes them.
pf=$work/postfix
start_postfix() {
	rm -rf "$pf"
	mkdir -p "$pf/conf" "$pf/queue/pid"
	install -d -o postfix -g postfix -m 700 "$pf/data"
	install -d -o postfix -g postdrop -m 730 "$pf/queue/maildrop"
	install -d -o postfix -g postdrop -m 710 "$pf/queue/public"
	for d in active bounce corrupt defer deferred flush hold incoming private saved trace; do
		install -d -o postfix -g postfix -m 700 "$pf/queue/$d"
	done
	cat >"$pf/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = ref.bench.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains = bench.test
smtpd_relay_restrictions = reject_unauth_destination
smtpd_client_restrictions = check_client_access static:HOLD
relayhost = [$PRIMARY]:$sink_port
relay_transport = smtp
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
in_flow_delay = 0
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
alias_maps =
alias_database =
notify_classes =
smtpd_tls_security_level = none
smtp_tls_security_level = none
EOF
	cat >"$pf/conf/master.cf" <<EOF
$POSTFIX:$postfix_port inet n - n - 256 smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
	touch -d '1 minute ago' "$pf/conf/main.cf" "$pf/conf/master.cf"
	"$daemons/master" -c "$pf/conf" -s >"$work/master.out" 2>&1 &
	master=$!
	wait_banner $POSTFIX "$postfix_port" || { cat "$work/master.out" >&2; exit 1; }
}
queued_postfix() { find "$pf/queue/incoming" "$pf/queue/active" "$pf/queue/hold" "$pf/queue/deferred" -type f | wc -l; }

source_run() { # source_run HOST PORT SIZE SESSIONS: prints start and end times
	local a b
	a=$(now)
	# shellcheck disable=SC2086 # SOURCE_FLAGS is a list of flags
	smtp-source $SOURCE_FLAGS -s "$4" -m "$MESSAGES" -l "$3" -M client.bench.test \
		-f sender@client.bench.test -t user@bench.test "$1:$2" >"$work/source.out" 2>&1 ||
		{ echo "bench/relay.sh: smtp-source against $1:$2 failed:" >&2; tail -5 "$work/source.out" >&2; exit 1; }
	b=$(now)
	echo "$a $b"
}

echo "mxtrace relay against Postfix $(postconf -d -h mail_version), smtp-source -m $MESSAGES $SOURCE_FLAGS"
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(go version | cut -d' ' -f3), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty), $(df -T "$work" | awk 'NR == 2 {print $2}') at $work"
printf '%-8s %-9s %-14s %12s %12s %8s %s\n' size sessions server 'accepted/s' 'delivered/s' queued load
for size in $SIZES; do
	for s in $SESSIONS; do
		# mxtrace relay: accept with the primary down, then drain.
		if [[ " $SERVERS " == *" relay "* ]]; then
		rm -f "$work"/relay.db*
		start_relay
		read -r a b < <(source_run $RELAY "$relay_port" "$size" "$s")
		acc=$(rate "$MESSAGES" "$a" "$b")
		load=$(cut -d' ' -f1 /proc/loadavg)
		queued=$("$work/mxtrace" relay queue list --queue "$work/relay.db" --json 2>/dev/null | grep -c '"id"' || true)
		c=$(now)
		start_sink
		wait_sunk "$MESSAGES"
		d=$(now)
		printf '%-8s %-9s %-14s %12s %12s %8s %s\n' "$size" "$s" "mxtrace relay" "$acc" "$(rate "$MESSAGES" "$c" "$d")" "$queued" "$load"
		stop "$relay"
		relay=
		stop "$sink"
		sink=
		fi

		# Postfix: accept onto hold, then release and flush.
		[[ " $SERVERS " == *" postfix "* ]] || continue
		start_postfix
		read -r a b < <(source_run $POSTFIX "$postfix_port" "$size" "$s")
		acc=$(rate "$MESSAGES" "$a" "$b")
		load=$(cut -d' ' -f1 /proc/loadavg)
		# cleanup may still be writing the last files the 250 already
		# acknowledged: they are on disk, counting them is a moment away.
		for _ in $(seq 100); do
			queued=$(queued_postfix)
			((queued >= MESSAGES)) && break
			sleep 0.05
		done
		c=$(now)
		start_sink
		postsuper -c "$pf/conf" -H ALL 2>/dev/null
		postqueue -c "$pf/conf" -f
		wait_sunk "$MESSAGES"
		d=$(now)
		printf '%-8s %-9s %-14s %12s %12s %8s %s\n' "$size" "$s" "postfix" "$acc" "$(rate "$MESSAGES" "$c" "$d")" "$queued" "$load"
		stop_postfix
		stop "$sink"
		sink=
	done
done
