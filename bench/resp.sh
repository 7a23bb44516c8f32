#!/usr/bin/env bash
# rmbd's RESP listener against redis-server, driven by the same
# redis-benchmark binary: BF.EXISTS against SISMEMBER and BF.ADD against
# SADD, one connection's commands one at a time and pipelined (-P 32).
# Reports requests per second and the server's CPU seconds per million
# requests (user + system, from /proc/PID/stat), and rmbd ÷ redis.
#
#   bench/resp.sh                   # 2,000,000 requests per run
#   N=200000 bench/resp.sh          # quicker
#   PIN=1 bench/resp.sh             # server on CPU 1, redis-benchmark on CPU 0
#
# Needs redis-server, redis-cli and redis-benchmark (Debian: redis-server,
# redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-32}
RMBD_PORT=${RMBD_PORT:-16479}
REDIS_PORT=${REDIS_PORT:-16480}
PIN=${PIN:-}
for t in redis-server redis-cli redis-benchmark; do
	command -v $t >/dev/null || { echo "bench/resp.sh: $t not found (apt-get install redis-server redis-tools)" >&2; exit 1; }
done

make -s build >/dev/null
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

server_pin=() bench_pin=()
if [ -n "$PIN" ]; then
	server_pin=(taskset -c 1) bench_pin=(taskset -c 0)
fi

"${server_pin[@]}" bin/rmbd --listen 127.0.0.1:0 --resp-listen 127.0.0.1:$RMBD_PORT --capacity 10000000 >"$tmp/rmbd.log" 2>&1 &
pids+=($!)
rmbd_pid=$!
"${server_pin[@]}" redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
redis_pid=$!
for port in $RMBD_PORT $REDIS_PORT; do
	for i in $(seq 100); do
		[ "$(timeout 2 redis-cli -p $port PING 2>/dev/null)" = PONG ] && break
		[ "$i" -lt 100 ] || { echo "bench/resp.sh: nothing answers on port $port" >&2; cat "$tmp"/*.log >&2; exit 1; }
		sleep 0.1
	done
done

# cpu PID: the process's user + system time in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run PORT PID ARGS...: requests per second, the server's and the
# client's CPU seconds per million requests.
run() {
	local port=$1 pid=$2
	shift 2
	local before after rps client
	before=$(cpu "$pid")
	client=$( { TIMEFORMAT='%U %S'; time "${bench_pin[@]}" redis-benchmark -p "$port" -c "$CLIENTS" -n "$N" -r 1000000 -q "$@" \
		>"$tmp/out" 2>/dev/null; } 2>&1)
	rps=$(tr '\r' '\n' <"$tmp/out" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
	after=$(cpu "$pid")
	echo "$rps $(awk -v t=$((after - before)) -v hz="$hz" -v n="$N" 'BEGIN {printf "%.2f", t / hz / (n / 1e6)}')" \
		"$(awk -v u="${client% *}" -v s="${client#* }" -v n="$N" 'BEGIN {printf "%.2f", (u + s) / (n / 1e6)}')"
}

printf '%-30s %11s %11s %6s %9s %9s %6s %11s %11s\n' "" "rmbd req/s" "redis req/s" "ratio" "rmbd cpu" "redis cpu" "ratio" "bench→rmbd" "bench→redis"
for p in 1 "$PIPELINE"; do
	for pair in "BF.EXISTS f|SISMEMBER s" "BF.ADD f|SADD s"; do
		ours=${pair%|*} theirs=${pair#*|}
		read -r r_rps r_cpu r_client < <(run $RMBD_PORT $rmbd_pid -P "$p" $ours key:__rand_int__)
		read -r s_rps s_cpu s_client < <(run $REDIS_PORT $redis_pid -P "$p" $theirs key:__rand_int__)
		printf '%-30s %11.0f %11.0f %6s %9s %9s %6s %11s %11s\n' "${ours%% *} vs ${theirs%% *} -P $p" "$r_rps" "$s_rps" \
			"$(awk -v a="$r_rps" -v b="$s_rps" 'BEGIN {printf "%.2f", a / b}')" "$r_cpu" "$s_cpu" \
			"$(awk -v a="$r_cpu" -v b="$s_cpu" 'BEGIN {if (a > 0) printf "%.2f", b / a; else print "-"}')" "$r_client" "$s_client"
	done
done
echo "cpu: CPU seconds per million requests (user + system), of each server and of redis-benchmark"
echo "against each (rmbd's, then redis's); the cpu ratio is redis ÷ rmbd, above 1 when rmbd spends less."
