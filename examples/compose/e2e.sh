#!/usr/bin/env bash
# End-to-end test of a three-node cluster in containers (see README.md).
# Two stacks run side by side: the test's own, on ports 820N, 640N and 930N,
# and, while it is up, every command of README.md as written, compared with
# the output shown there (internal/doctest/rundoc), which starts its stacks
# on the documented ports. On the test's own stack:
#   1. keys added on node 1 are on node 3 within 5 s;
#   0. every node turns healthy (ready: joined and filled), and its
#      metrics scrape;
#   1b. node 2 stopped (SIGTERM): the others list it as left, not dead;
#   1c. two named filters created on nodes 1 and 2, used from node 3: every
#      key on every node;
#   1d. the Redis protocol, with the host's redis-cli: a filter made by
#      BF.INSERT on node 1, BF.MADD on node 2, BF.MEXISTS true on node 3;
#   2. node 2 killed, keys added, node 2 started again: it has every key;
#   3. node 3 cut off past failure detection, different keys added on each
#      side, node 3 reconnected: within 30 s every key is on every node,
#      with nothing run in between but checks;
#   4. all three killed at once (SIGKILL) and started again: no key lost,
#      named filters' included;
#   5. an outsider without the cluster key joins and pushes: it is never a
#      member, and none of its keys reaches any node;
#   6. down, and a one-line summary.
# Bounded in time, and the containers go away whatever happens.
set -euo pipefail
cd "$(dirname "$0")"
export IMAGE=${IMAGE:-rmbd:dev}
PROJECT=rmbde2e$$
DOC_PROJECT=rmbddoc$$ # the README's stack; its second stack is rmbd2, as documented
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
# The test's own stack publishes node N on 127.0.0.1:820N, 640N and 930N.
dc() {
	RMBD_BINARY_PORTS=820 RMBD_RESP_PORTS=640 RMBD_METRICS_PORTS=930 \
		"${COMPOSE[@]}" -p "$PROJECT" -f docker-compose.yml "$@"
}
work=$(mktemp -d)
doc_ran=""
began=$(date +%s)
cleanup() {
	dc --profile outsider down -v --remove-orphans -t 1 >/dev/null 2>&1 || true
	if [ -n "$doc_ran" ]; then # the README's stacks, which this run made: none was there before it
		for p in "$DOC_PROJECT" rmbd2; do "${COMPOSE[@]}" -p "$p" -f docker-compose.yml down -v -t 1 >/dev/null 2>&1 || true; done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
log() { printf '[e2e %3ds] %s\n' $(($(date +%s) - began)) "$*"; }
fail() { log "FAILED: $*"; dc --profile outsider logs --tail 30 >&2 || true; exit 1; }

cli() { local node=$1; shift; dc exec -T "$node" /rmbd-cli --timeout 2s "$@"; }
ready() { dc exec -T "$1" /rmbd healthcheck --ready; }
# until SECONDS CMD...: retry CMD until it succeeds or SECONDS pass.
until_ok() {
	local deadline=$(($(date +%s) + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}
has_all() { cli "$1" has - < "$2"; }
keys() { seq -f "$1-%06g" 1 "$2" > "$work/$1"; }
alive() { [ "$(cli "$1" members | grep -c ' alive ')" -eq "$2" ]; }
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q "$1")")" = healthy ]; }

log "starting three nodes ($IMAGE)"
dc up -d >/dev/null 2>&1 || fail "compose up"
for n in node1 node2 node3; do until_ok 30 cli $n ping || fail "$n does not answer"; done
for n in node1 node2 node3; do until_ok 30 alive $n 3 || fail "$n does not see 3 members"; done
for n in node1 node2 node3; do until_ok 60 healthy $n || fail "$n never healthy (ready)"; done
checked=0

log "0. README.md's commands, as written, on stacks beside this one"
# They use the documented ports and the project name rmbd2: refuse to run
# over what someone else runs there (make cluster, a compose demo).
taken=""
for p in 8001 8002 8003 6381 6382 6383 9101 9102 9103 8101 8102 8103 6391 6392 6393 9201 9202 9203; do
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && taken="$taken $p"
done
[ -z "$taken" ] || fail "the compose README's ports are in use on 127.0.0.1:$taken (make cluster, or a compose stack, running?): stop it first"
[ -z "$(docker ps -aq --filter label=com.docker.compose.project=rmbd2)" ] ||
	fail "a compose project rmbd2 exists, which the compose README makes: remove it first (docker compose -p rmbd2 down)"
doc_ran=1
(cd ../.. && COMPOSE_PROJECT_NAME=$DOC_PROJECT go run ./internal/doctest/rundoc examples/compose/README.md) ||
	fail "a command of README.md does not do what the page says"
alive node1 3 || fail "the README's stacks disturbed this one"

log "1. keys added on node 1 reach node 3 within 5 s"
keys a 1000
cli node1 add - < "$work/a" || fail "add on node1"
until_ok 5 has_all node3 "$work/a" || fail "node3 lacks keys added on node1 after 5 s"
checked=$((checked + 1000))
log "   node 1's metrics: 1,000 adds"
scrape=$(curl -sf --max-time 5 http://127.0.0.1:9301/metrics) || fail "no scrape of node1:9100/metrics"
grep -q '^rmbd_adds_total 1000$' <<<"$scrape" || fail "rmbd_adds_total is not 1000: $(grep '^rmbd_adds_total' <<<"$scrape")"
grep -q '^rmbd_member_up{member="node3"} 1$' <<<"$scrape" || fail "node1's metrics do not show node3 up"

log "1b. node 2 stopped (SIGTERM): listed as left"
dc stop -t 10 node2 >/dev/null 2>&1
left() { cli node1 members | grep '^node2 ' | grep -q ' left '; }
until_ok 10 left || fail "node1 does not list node2 as left: $(cli node1 members)"
dc start node2 >/dev/null 2>&1
until_ok 60 healthy node2 || fail "node2 never healthy after its restart"

log "1c. named filters: created on nodes 1 and 2, used from node 3"
cli node1 create users --capacity 100000 --fp-rate 0.001 >/dev/null || fail "create users on node1"
cli node2 create events --capacity 100000 >/dev/null || fail "create events on node2"
listed() { cli "$1" list | grep -q "^$2 "; }
until_ok 10 listed node3 users || fail "node3 never heard of users"
until_ok 10 listed node3 events || fail "node3 never heard of events"
keys nu 500
keys ne 500
cli node3 -f users add - < "$work/nu" || fail "add to users on node3"
cli node3 -f events add - < "$work/ne" || fail "add to events on node3"
named_all() { cli "$1" -f "$2" has - < "$3"; }
for n in node1 node2 node3; do
	until_ok 10 named_all $n users "$work/nu" || fail "$n lacks users' keys"
	until_ok 10 named_all $n events "$work/ne" || fail "$n lacks events' keys"
done
crossed=$(cli node1 -f events has - < "$work/nu" | grep -c $'\ttrue$' || true)
[ "$crossed" -le 15 ] || fail "events answers true for $crossed of 500 users keys"
checked=$((checked + 3 * 1000))

if command -v redis-cli >/dev/null; then
	log "1d. the Redis protocol: BF.INSERT on node 1, BF.MADD on node 2, BF.MEXISTS on node 3"
	rc() { local port=$1; shift; timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@"; }
	[ "$(rc 6401 BF.INSERT visits CAPACITY 10000 ITEMS home | tr -d '\n')" = 1 ] || fail "BF.INSERT on node1"
	exists_on() { [ "$(rc "$1" EXISTS visits)" = 1 ]; }
	until_ok 10 exists_on 6402 || fail "node2 never heard of visits"
	[ "$(rc 6402 BF.MADD visits about pricing | tr -d '\n')" = 11 ] || fail "BF.MADD on node2"
	all_three() { [ "$(rc 6403 BF.MEXISTS visits home about pricing | tr -d '\n')" = 111 ]; }
	until_ok 10 all_three || fail "node3 lacks visits' items: $(rc 6403 BF.MEXISTS visits home about pricing)"
	checked=$((checked + 3))
else
	log "1d. skipped: no redis-cli on this machine (Debian: redis-tools)"
fi

log "2. node 2 killed, keys added, node 2 restarted"
dc kill node2 >/dev/null 2>&1
keys b 1000
cli node1 add - < "$work/b" || fail "add on node1"
dc start node2 >/dev/null 2>&1
until_ok 30 cli node2 ping || fail "node2 does not come back"
cat "$work/a" "$work/b" > "$work/ab"
until_ok 30 has_all node2 "$work/ab" || fail "restarted node2 lacks keys"
checked=$((checked + 2000))

log "3. node 3 cut off past failure detection"
# Its network link is taken down from the host (nsenter into its network
# namespace), so that it keeps its address, which Docker chose, when the
# link comes back.
pid3=$(docker inspect -f '{{.State.Pid}}' "$(dc ps -q node3)")
in3() { nsenter -t "$pid3" -n "$@"; }
route3=$(in3 ip route show default)
in3 ip link set eth0 down || fail "cannot cut node 3 off (nsenter needs root)"
until_ok 60 alive node1 2 || fail "node1 never saw node3 fail"
until_ok 60 alive node3 1 || fail "node3 never saw the others fail"
keys c 1000
keys d 1000
cli node1 add - < "$work/c" || fail "add on node1"
cli node3 add - < "$work/d" || fail "add on node3"
has_all node3 "$work/c" >/dev/null 2>&1 && fail "the partition leaks"
log "   reconnecting node 3"
in3 ip link set eth0 up
[ -z "$route3" ] || in3 ip route replace $route3
cat "$work/a" "$work/b" "$work/c" "$work/d" > "$work/all"
deadline=$(($(date +%s) + 30))
for n in node1 node2 node3; do
	until_ok $((deadline - $(date +%s))) has_all $n "$work/all" || fail "$n lacks keys 30 s after the partition healed"
done
checked=$((checked + 3 * 4000))
missing=0
for n in node1 node2 node3; do
	missing=$((missing + $(cli $n has - < "$work/all" | grep -c $'\tfalse$' || true)))
done
[ "$missing" -eq 0 ] || fail "$missing keys missing"

log "4. all three killed at once and started again"
keys e 1000
cli node2 add - < "$work/e" || fail "add on node2"
cat "$work/all" "$work/e" > "$work/all2"
dc kill >/dev/null 2>&1
dc start >/dev/null 2>&1
for n in node1 node2 node3; do until_ok 30 cli $n ping || fail "$n does not come back"; done
# Each node has every key once it is ready: its own adds from its disk,
# the rows it had merged from the others (on its disk only from its next
# checkpoint) pulled back from them as it rejoins.
for n in node1 node2 node3; do until_ok 30 ready $n || fail "$n is not ready 30 s after the restart"; done
lost=0
for n in node1 node2 node3; do
	lost=$((lost + $(cli $n has - < "$work/all" | grep -c $'\tfalse$' || true)))
done
lost=$((lost + $(cli node2 has - < "$work/e" | grep -c $'\tfalse$' || true)))
[ "$lost" -eq 0 ] || fail "$lost keys lost by the kill"
for n in node1 node2 node3; do # named filters too
	named_all $n users "$work/nu" >/dev/null || fail "$n lost users' keys in the kill"
	named_all $n events "$work/ne" >/dev/null || fail "$n lost events' keys in the kill"
done
# and what one node took just before the kill reaches the others.
deadline=$(($(date +%s) + 30))
for n in node1 node2 node3; do
	until_ok $((deadline - $(date +%s))) has_all $n "$work/all2" || fail "$n lacks keys after the whole cluster was killed"
done
checked=$((checked + 3 * 5000 + 1000))

log "5. an outsider without the key"
dc --profile outsider up -d outsider >/dev/null 2>&1 || fail "outsider up"
until_ok 30 cli outsider ping || fail "the outsider does not answer"
keys x 500
cli outsider add - < "$work/x" || fail "add on the outsider"
refused() { [ "$(cli "$1" stats | awk '$1 == "unauthenticated" {print $2}')" -gt 0 ]; }
# It challenges node1 and node2, which answer (a has), then pushes rows
# they refuse: unsealed.
until_ok 30 refused node1 || fail "node1 never refused the outsider's pushes"
until_ok 30 refused node2 || fail "node2 never refused the outsider's pushes"
cli outsider --addr node1:8000 peer outsider:8000 >/dev/null 2>&1 && fail "node1 took a peer request from the outsider"
cli outsider members | grep -q ' alive ' || fail "the outsider does not list itself"
[ "$(cli outsider members | grep -c ' alive ')" -eq 1 ] || fail "the outsider sees members"
for n in node1 node2 node3; do
	alive $n 3 || fail "$n does not list exactly its 3 members"
	cli $n members | grep -q outsider && fail "$n lists the outsider"
	leaked=$(cli $n has - < "$work/x" | grep -c $'\ttrue$' || true)
	[ "$leaked" -eq 0 ] || fail "$leaked of the outsider's keys on $n"
done
checked=$((checked + 3 * 500))
cli node1 ping | grep -q 'cluster traffic: authenticated' || fail "node1 is not authenticated"

log "6. down"
dc --profile outsider down -v -t 1 >/dev/null 2>&1
echo "e2e: passed in $(($(date +%s) - began))s: $checked key checks on 3 nodes, keys missing = $missing"
