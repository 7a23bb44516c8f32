#!/usr/bin/env bash
# Three rmbd nodes on this machine's loopback, in the foreground: `make
# cluster` (which builds bin/ first). Node N (1, 2, 3) serves
#   binary frames  127.0.0.1:800N  (rmbd-cli --addr 127.0.0.1:800N)
#   gossip         127.0.0.1:700N  (nodes 2 and 3 join node 1)
#   RESP           127.0.0.1:638N  (redis-cli -p 638N)
#   metrics        127.0.0.1:910N  (curl 127.0.0.1:910N/metrics)
# the same ports as the compose demo publishes. Filters are kept in memory;
# extra flags go to every node: `make cluster ARGS='--capacity 10000000'`.
# Ctrl-C (or SIGTERM) stops all three.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=bin
pids=()
stop() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait
}
trap 'stop; exit 130' INT TERM
trap stop EXIT
for n in 1 2 3; do
	join=()
	[ "$n" = 1 ] || join=(--join 127.0.0.1:7001)
	# shellcheck disable=SC2086 # ARGS is split into flags on purpose
	"$bin/rmbd" "127.0.0.1:800$n" --node-name "node$n" --gossip-listen "127.0.0.1:700$n" \
		--resp-listen "127.0.0.1:638$n" --metrics-listen "127.0.0.1:910$n" "${join[@]}" ${ARGS:-} &
	pids+=($!)
done
for n in 1 2 3; do
	until "$bin/rmbd-cli" --addr "127.0.0.1:800$n" --timeout 200ms ping >/dev/null 2>&1; do
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "cluster: a node ended; see its log above" >&2; exit 1; }; done
		sleep 0.2
	done
done
echo "cluster: three nodes listening on 127.0.0.1: binary 8001-8003, RESP 6381-6383, metrics 9101-9103; Ctrl-C stops them" >&2
wait -n "${pids[@]}" || true
echo "cluster: a node ended (or Ctrl-C): stopping all three" >&2
