#!/usr/bin/env bash
# Node throughput against its baselines, all measured in one run:
#   1. single-key has over UDP, 16 clients: rmbd vs the null responder
#      (the ceiling: answers at once, no filter) vs redis SISMEMBER, 16 clients
#   2. batched has over UDP (64 keys a datagram)
#   3. pipelined has over TCP vs redis SISMEMBER with -P 32
#   4. the cost of a cluster key: add and has (1 key over UDP, 64 keys over
#      UDP, pipelined over TCP) against a node with --cluster-key-file vs an
#      identical node without (ONLY=key runs this part alone)
#   6. a named filter: single-key has and add over UDP addressed to a named
#      filter vs the default filter of the same node, same sizing
#      (ONLY=named runs this part alone)
#   5. the cost of metrics: single-key has over UDP against a node with
#      --metrics-listen, scraped every second, vs an identical node without
#      (ONLY=metrics runs this part alone)
# Each figure is the median of ROUNDS runs of SECONDS, taken in turns so that
# machine noise falls on every contender alike. Needs redis-server and
# redis-benchmark for the redis rows (Debian: apt-get install redis-server).
# The load generator runs on the same machine and takes a core, so rmbd and
# the null responder each get UDP_SOCKETS reader sockets (default: cores - 1,
# at least 1), and redis, single-threaded, one core.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-3}
RMBD_PORT=${RMBD_PORT:-18100} NULL_PORT=${NULL_PORT:-18200} REDIS_PORT=${REDIS_PORT:-18300}
PLAIN_PORT=${PLAIN_PORT:-18400} KEYED_PORT=${KEYED_PORT:-18500}
METERED_PORT=${METERED_PORT:-18600} METRICS_PORT=${METRICS_PORT:-18601}
ONLY=${ONLY:-all}
UDP_SOCKETS=${UDP_SOCKETS:-$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))}

make -s build
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

bin/rmbd --listen 127.0.0.1:$RMBD_PORT --udp-sockets "$UDP_SOCKETS" --log-level warn & pids+=($!)
keyfile=$(mktemp); trap 'cleanup; rm -f "$keyfile"' EXIT
bin/rmbd keygen >"$keyfile"
bin/rmbd --listen 127.0.0.1:$PLAIN_PORT --udp-sockets "$UDP_SOCKETS" --log-level error & pids+=($!)
bin/rmbd --listen 127.0.0.1:$KEYED_PORT --udp-sockets "$UDP_SOCKETS" --log-level warn --cluster-key-file "$keyfile" & pids+=($!)
bin/rmbd --listen 127.0.0.1:$METERED_PORT --udp-sockets "$UDP_SOCKETS" --log-level error --metrics-listen 127.0.0.1:$METRICS_PORT & pids+=($!)
# Prometheus's default is a scrape a minute; this is sixty times that.
(while sleep 1; do curl -sf -o /dev/null http://127.0.0.1:$METRICS_PORT/metrics || true; done) & pids+=($!)
bin/rmbd-bench serve-null --listen 127.0.0.1:$NULL_PORT --udp-sockets "$UDP_SOCKETS" 2>/dev/null & pids+=($!)
have_redis=no
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
	redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no >/dev/null & pids+=($!)
	have_redis=yes
fi
# Wait (bounded) until every server answers.
for _ in $(seq 50); do
	ok=yes
	for p in $RMBD_PORT $PLAIN_PORT $KEYED_PORT $METERED_PORT; do
		bin/rmbd-bench --addr 127.0.0.1:$p --duration 50ms --keys 16 --clients 1 >/dev/null 2>&1 || ok=no
	done
	bin/rmbd-bench --addr 127.0.0.1:$NULL_PORT --duration 50ms --keys 16 --clients 1 >/dev/null 2>&1 || ok=no
	[ $have_redis = no ] || redis-cli -p $REDIS_PORT sadd myset member >/dev/null 2>&1 || ok=no
	[ $ok = yes ] && break
	sleep 0.1
done

keys_per_sec() { sed -n 's/.*"keys_per_sec":\([0-9.]*\).*/\1/p'; }
rmbd_run() { bin/rmbd-bench --duration ${SECONDS_EACH}s --json "$@" 2>/dev/null | keys_per_sec; }
redis_run() { redis-benchmark -p $REDIS_PORT -n $1 "${@:2}" --csv sismember myset member 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A runs
keyed_round() {
	local op
	for op in add has; do
		for node in plain keyed; do
			local port=$PLAIN_PORT
			[ $node = keyed ] && port=$KEYED_PORT
			runs[${op}_udp1_$node]+="$(rmbd_run --addr 127.0.0.1:$port --op $op --clients 16)"$'\n'
			runs[${op}_udp64_$node]+="$(rmbd_run --addr 127.0.0.1:$port --op $op --clients 16 --batch 64)"$'\n'
			runs[${op}_tcp_$node]+="$(rmbd_run --addr 127.0.0.1:$port --op $op --clients 4 --tcp --batch 64 --pipeline 32)"$'\n'
		done
	done
}
named_round() {
	local op
	for op in has add; do
		runs[${op}_udp1_default]+="$(rmbd_run --addr 127.0.0.1:$PLAIN_PORT --op $op --clients 16)"$'\n'
		runs[${op}_udp1_named]+="$(rmbd_run --addr 127.0.0.1:$PLAIN_PORT --op $op --clients 16 --filter bench)"$'\n'
	done
}
metrics_round() {
	runs[has_udp1_unmetered]+="$(rmbd_run --addr 127.0.0.1:$PLAIN_PORT --op has --clients 16)"$'\n'
	runs[has_udp1_metered]+="$(rmbd_run --addr 127.0.0.1:$METERED_PORT --op has --clients 16)"$'\n'
}
if [ "$ONLY" = named ] || [ "$ONLY" = all ]; then
	bin/rmbd-cli --addr 127.0.0.1:$PLAIN_PORT create bench --capacity 1000000 --fp-rate 0.01 >/dev/null
fi
for r in $(seq "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	if [ "$ONLY" = named ] || [ "$ONLY" = all ]; then named_round; fi
	[ "$ONLY" = named ] && continue
	metrics_round
	[ "$ONLY" = metrics ] && continue
	keyed_round
	[ "$ONLY" = key ] && continue
	runs[udp1_rmbd]+="$(rmbd_run --addr 127.0.0.1:$RMBD_PORT --clients 16)"$'\n'
	runs[udp1_null]+="$(rmbd_run --addr 127.0.0.1:$NULL_PORT --clients 16)"$'\n'
	runs[udp64_rmbd]+="$(rmbd_run --addr 127.0.0.1:$RMBD_PORT --clients 16 --batch 64)"$'\n'
	runs[udp64_null]+="$(rmbd_run --addr 127.0.0.1:$NULL_PORT --clients 16 --batch 64)"$'\n'
	runs[tcp_rmbd]+="$(rmbd_run --addr 127.0.0.1:$RMBD_PORT --clients 4 --tcp --batch 64 --pipeline 32)"$'\n'
	runs[tcp_null]+="$(rmbd_run --addr 127.0.0.1:$NULL_PORT --clients 4 --tcp --batch 64 --pipeline 32)"$'\n'
	if [ $have_redis = yes ]; then
		runs[redis1]+="$(redis_run 300000 -c 16)"$'\n'
		runs[redis32]+="$(redis_run 3000000 -c 16 -P 32)"$'\n'
	fi
done
m() { printf '%s' "${runs[$1]:-}" | grep . | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

if [ "$ONLY" = named ] || [ "$ONLY" = all ]; then
	printf '\n%-44s %14s %14s %8s\n' "named filter: median of $ROUNDS × ${SECONDS_EACH}s" "default" "named" "ratio"
	for op in has add; do
		a=$(m ${op}_udp1_default) b=$(m ${op}_udp1_named)
		printf '%-44s %14.0f %14.0f %8s\n' "$op, 1 key, UDP, 16 clients" "$a" "$b" "$(ratio "$b" "$a")"
	done
fi
[ "$ONLY" = named ] && exit 0

printf '\n%-44s %14s %14s %8s\n' "metrics: median of $ROUNDS × ${SECONDS_EACH}s" "without" "scraped 1/s" "ratio"
a=$(m has_udp1_unmetered) b=$(m has_udp1_metered)
printf '%-44s %14.0f %14.0f %8s\n' "has, 1 key, UDP, 16 clients" "$a" "$b" "$(ratio "$b" "$a")"
[ "$ONLY" = metrics ] && exit 0

printf '\n%-44s %14s %14s %8s\n' "cluster key: median of $ROUNDS × ${SECONDS_EACH}s" "without" "with key" "ratio"
for op in add has; do
	for mode in udp1:"1 key, UDP" udp64:"64 keys/datagram, UDP" tcp:"64 keys/frame, TCP, 32 deep"; do
		a=$(m ${op}_${mode%%:*}_plain) b=$(m ${op}_${mode%%:*}_keyed)
		printf '%-44s %14.0f %14.0f %8s\n' "$op, ${mode#*:}" "$a" "$b" "$(ratio "$b" "$a")"
	done
done
[ "$ONLY" = key ] && exit 0

u1=$(m udp1_rmbd) u1n=$(m udp1_null) u64=$(m udp64_rmbd) u64n=$(m udp64_null) t=$(m tcp_rmbd) tn=$(m tcp_null)
r1=$(m redis1 || true) r32=$(m redis32 || true)
printf '\n%-44s %14s %10s\n' "median of $ROUNDS × ${SECONDS_EACH}s, $UDP_SOCKETS UDP socket(s)" "keys/s" "ratio"
printf '%-44s %14.0f\n' "has, UDP, 1 key, 16 clients: null ceiling" "$u1n"
printf '%-44s %14.0f %10s\n' "has, UDP, 1 key, 16 clients: rmbd" "$u1" "$(ratio "$u1" "$u1n") × ceiling"
[ -n "$r1" ] && printf '%-44s %14.0f %10s\n' "redis SISMEMBER, -c 16" "$r1" "$(ratio "$u1" "$r1") × redis"
printf '%-44s %14.0f\n' "has, UDP, 64 keys/datagram: null ceiling" "$u64n"
printf '%-44s %14.0f %10s\n' "has, UDP, 64 keys/datagram: rmbd" "$u64" "$(ratio "$u64" "$u64n") × ceiling"
printf '%-44s %14.0f\n' "has, TCP, 64 keys/frame, 32 deep: null" "$tn"
printf '%-44s %14.0f %10s\n' "has, TCP, 64 keys/frame, 32 deep: rmbd" "$t" "$(ratio "$t" "$tn") × ceiling"
[ -n "$r32" ] && printf '%-44s %14.0f %10s\n' "redis SISMEMBER, -c 16 -P 32" "$r32" "$(ratio "$t" "$r32") × redis"
exit 0
