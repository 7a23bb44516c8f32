#!/usr/bin/env bash
# Three rmbd nodes on this machine's loopback: `make cluster` (which builds
# bin/ first). Node N (1, 2, 3) serves
#   binary frames  127.0.0.1:800N  (rmbd-cli --addr 127.0.0.1:800N)
#   gossip         127.0.0.1:700N  (nodes 2 and 3 join node 1)
#   RESP           127.0.0.1:638N  (redis-cli -p 638N)
#   metrics        127.0.0.1:910N  (curl 127.0.0.1:910N/metrics)
# the same ports as the compose demo publishes. Filters are kept in memory;
# each node's log goes to build/cluster/nodeN.log; extra flags go to every
# node: `make cluster ARGS='--capacity 10000000'`. It says when all three
# are members of one cluster, and runs until stopped (Ctrl-C, or kill %1
# when started with &), stopping the three.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=bin logs=build/cluster
mkdir -p "$logs"
pids=()
stop() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait
}
trap 'stop; exit 130' INT TERM
trap stop EXIT
# fail says why the cluster did not form, with the end of each log.
fail() {
	echo "cluster: $*" >&2
	for n in 1 2 3; do [ -s "$logs/node$n.log" ] && { echo "--- node$n:" >&2; tail -5 "$logs/node$n.log" >&2; }; done
	exit 1
}
# until_up N CMD...: run CMD until it succeeds, for up to 20 s, while every
# node started runs.
until_up() {
	local what=$1 deadline=$((SECONDS + 20)); shift
	until "$@" >/dev/null 2>&1; do
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "a node ended before $what"; done
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not within 20 s"
		sleep 0.1
	done
}
start() {
	local n=$1; shift
	# shellcheck disable=SC2086 # ARGS is split into flags on purpose
	"$bin/rmbd" "127.0.0.1:800$n" --node-name "node$n" --gossip-listen "127.0.0.1:700$n" \
		--resp-listen "127.0.0.1:638$n" --metrics-listen "127.0.0.1:910$n" "$@" ${ARGS:-} >"$logs/node$n.log" 2>&1 &
	pids+=($!)
}
members() { [ "$("$bin/rmbd-cli" --addr "127.0.0.1:800$1" --timeout 500ms members | grep -c ' alive ')" -eq 3 ]; }

# Node 1 first, so that the others find it when they join.
start 1
until_up "node 1 answering" "$bin/rmbd-cli" --addr 127.0.0.1:8001 --timeout 200ms ping
start 2 --join 127.0.0.1:7001
start 3 --join 127.0.0.1:7001
for n in 1 2 3; do until_up "node $n seeing three members" members "$n"; done
echo "cluster: three nodes listening on 127.0.0.1, one cluster: binary 8001-8003, RESP 6381-6383, metrics 9101-9103; logs in $logs/" >&2
wait -n "${pids[@]}" || true
echo "cluster: a node ended (or it was stopped): stopping all three" >&2
