#!/usr/bin/env bash
# Two builds of rmbd side by side, the same loads against each in turns:
# did a change make a node slower? For each load it prints the median
# keys/s of each build and the ratio new ÷ old, and the median server CPU
# per million keys (user + system, from /proc/PID/stat) and its ratio.
# Taken in turns, round after round, so that the machine's noise falls on
# both alike; CPU per key is the steadier figure on a shared machine.
#
#   OLD=/path/to/old/bin/rmbd ROUNDS=7 bench/ab.sh     # NEW defaults to bin/rmbd
#   ONLY='64 keys' OLD=… bench/ab.sh                     # only the loads whose name matches
#
# A build of an earlier commit: git worktree add /tmp/old REV && make -C /tmp/old build.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OLD:?set OLD to the path of the old rmbd binary}"
NEW=${NEW:-bin/rmbd}
ROUNDS=${ROUNDS:-5}
SECONDS_EACH=${SECONDS_EACH:-3}
OLD_PORT=${OLD_PORT:-18700} NEW_PORT=${NEW_PORT:-18800}
ONLY=${ONLY:-}
UDP_SOCKETS=${UDP_SOCKETS:-$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))}

make -s build
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
"$OLD" --listen 127.0.0.1:$OLD_PORT --udp-sockets "$UDP_SOCKETS" --log-level error & pids+=($!)
old_pid=$!
"$NEW" --listen 127.0.0.1:$NEW_PORT --udp-sockets "$UDP_SOCKETS" --log-level error & pids+=($!)
new_pid=$!
for _ in $(seq 50); do # bounded: until both answer
	bin/rmbd-bench --addr 127.0.0.1:$OLD_PORT --duration 50ms --keys 16 --clients 1 >/dev/null 2>&1 &&
		bin/rmbd-bench --addr 127.0.0.1:$NEW_PORT --duration 50ms --keys 16 --clients 1 >/dev/null 2>&1 && break
	sleep 0.1
done
for p in $OLD_PORT $NEW_PORT; do
	bin/rmbd-cli --addr 127.0.0.1:$p create bench --capacity 1000000 --fp-rate 0.01 >/dev/null
done

# cpu prints a process's user + system clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run loads one build and prints "keys/s cpu-seconds-per-million-keys".
run() {
	local pid=$1 port=$2
	shift 2
	local before after out kps
	before=$(cpu "$pid")
	out=$(bin/rmbd-bench --addr 127.0.0.1:$port --duration ${SECONDS_EACH}s --json "$@" 2>/dev/null)
	after=$(cpu "$pid")
	kps=$(sed -n 's/.*"keys_per_sec":\([0-9.]*\).*/\1/p' <<<"$out")
	awk -v k="$kps" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$SECONDS_EACH" \
		'BEGIN { printf "%.0f %.4f\n", k, (t / hz) / (k * s / 1e6) }'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

loads=(
	"has, 1 key, UDP, 16 clients|--op has --clients 16"
	"has, 64 keys/datagram, UDP|--op has --clients 16 --batch 64"
	"has, 64 keys/frame, TCP, 32 deep|--op has --clients 4 --tcp --batch 64 --pipeline 32"
	"add, 1 key, UDP, 16 clients|--op add --clients 16"
	"add, 64 keys/datagram, UDP|--op add --clients 16 --batch 64"
	"has, 1 key, UDP, named filter|--op has --clients 16 --filter bench"
)
if [ -n "$ONLY" ]; then
	picked=()
	for l in "${loads[@]}"; do [[ ${l%%|*} =~ $ONLY ]] && picked+=("$l"); done
	[ ${#picked[@]} -gt 0 ] || { echo "ab.sh: no load matches ONLY=$ONLY" >&2; exit 2; }
	loads=("${picked[@]}")
fi
declare -A kps cpus
for r in $(seq "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	for i in "${!loads[@]}"; do
		args=${loads[$i]#*|}
		for who in old new; do
			pid=$old_pid port=$OLD_PORT
			[ $who = new ] && pid=$new_pid port=$NEW_PORT
			# shellcheck disable=SC2086 # args are words
			read -r k c < <(run "$pid" "$port" $args)
			kps[$i.$who]+="$k"$'\n'
			cpus[$i.$who]+="$c"$'\n'
		done
	done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf '\n%-36s %12s %12s %6s %12s %12s %6s\n' "median of $ROUNDS × ${SECONDS_EACH}s" "old keys/s" "new keys/s" "ratio" "old CPU/M" "new CPU/M" "ratio"
for i in "${!loads[@]}"; do
	ko=$(printf '%s' "${kps[$i.old]}" | grep . | median) kn=$(printf '%s' "${kps[$i.new]}" | grep . | median)
	co=$(printf '%s' "${cpus[$i.old]}" | grep . | median) cn=$(printf '%s' "${cpus[$i.new]}" | grep . | median)
	printf '%-36s %12.0f %12.0f %6s %11.3fs %11.3fs %6s\n' "${loads[$i]%%|*}" "$ko" "$kn" "$(ratio "$kn" "$ko")" "$co" "$cn" "$(ratio "$cn" "$co")"
done
