package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// The invariants of a placement history. The cluster is stable at a
// step when no member is dying, cut off or restarting, every member up
// sees exactly the members up (the registry's members, SetMembers), knows
// a route to every filter, and fills none, and the members up are those
// of the step before. Then every member forwards to the same owners, and
// every owner holds its filters ready. Checked at every step:
//
//   - read your writes, W = R: a has through any member answers present
//     every key whose add was sent and acknowledged, and the has sent and
//     answered, all while the cluster stayed stable; W = 1: the same for
//     a key acknowledged at least replicateWithin before the has was sent
//     (lossyWithin on a lossy network), the cluster stable since backoff
//     before its add was sent. While the cluster is stable, no add and no
//     has is refused;
//   - owners hold what was acknowledged, W = R: a member up and not cut
//     off that sees exactly the members up, owns a filter by that view and
//     holds it ready, holds every key acknowledged into it while the
//     cluster was stable (such a key is on every owner once acknowledged,
//     and a new owner fills from one that holds it) — unless at some step
//     since, no member up and not cut off held that key ready (its copies
//     were all down or cut off: a fill then finds none; the key must come
//     back with them all the same, below);
//   - memory: no member keeps a filter it no longer owns for longer than
//     the handoff grace (and graceSlack: its housekeeping frees it);
//   - answers: no error but those a fault explains, and none while the
//     cluster is stable.
//
// And once every fault healed:
//
//   - convergence: within placeWithin, every member up sees the members
//     up, routes every filter to the same owners — R of them, or all if
//     fewer are up — and every filter is held by exactly those, none
//     filling, none kept for the grace;
//   - lost = 0: within settleWithin of that, every owner holds every key
//     acknowledged into its filters (W = 1: by replication and
//     anti-entropy), and a has through every member up, forwarded or not,
//     answers every one present — but for the keys that only a member
//     that left while cut off from every other held (W = 1 lets one
//     member alone hold an add; it could hand nothing off), counted;
//   - memory: a member's data directory holds the folders of the placed
//     filters it owns, and no other;
//   - false positives: keys never added answer present at no more than
//     1.25 × the filter's rate, on an owner, in memory (fpProbes of them
//     for the filter filled to near capacity, a tenth as many for the
//     others), and are counted as the history asks them through members.

// Bounds of the checks.
const (
	// replicateWithin is how soon a key acknowledged by one owner is on
	// the others (W = 1), the network losing nothing: a push each sync
	// interval, and its resends.
	replicateWithin = time.Second
	// graceSlack is how long past its grace a member may still keep a
	// filter it no longer owns: its housekeeping frees it (every 250 ms),
	// and the check sees it a step later.
	graceSlack = time.Second
	// settleWithin is how long after the filters are placed every owner
	// must hold every key: anti-entropy rounds between owners.
	settleWithin = 5 * antiEntropyInterval
)

// backoffSteps is gossip's backoff in steps.
const backoffSteps = int(backoff / tick)

// owners returns f's owners, sorted, as every member up routes it: ""
// when they agree, and the owners are min(R, members up) of the members
// up; else what is not so. (Which members own a filter is the registry's
// to decide — placement.Owners, or bounded loads — the same everywhere.)
func (h *placeRun) owners(f PlacedFilter) ([]string, string) {
	live := h.c.live()
	names := liveNames(live)
	var want []string
	for i, m := range live {
		rt, ok := m.n.Registry().Route([]byte(f.Name))
		if !ok {
			return nil, fmt.Sprintf("n%d has no route to %s", m.i, f.Name)
		}
		o := slices.Clone(rt.Owners())
		slices.Sort(o)
		switch {
		case i == 0:
			want = o
		case !slices.Equal(o, want):
			return nil, fmt.Sprintf("%s is owned by %v as n%d routes it, by %v as n%d does", f.Name, want, live[0].i, o, m.i)
		}
	}
	if len(want) != min(f.Replicas, len(names)) || slices.ContainsFunc(want, func(o string) bool { return !slices.Contains(names, o) }) {
		return nil, fmt.Sprintf("%s is owned by %v, and %v are up (%d replicas)", f.Name, want, names, f.Replicas)
	}
	return want, ""
}

// held returns m's filter name, nil if it holds none.
func held(m *member, name string) *registry.Filter {
	return m.n.Registry().Lookup([]byte(name)).Winner()
}

// missing returns the first of keys f lacks, nil if none.
func missing(f *registry.Filter, keys [][]byte) []byte {
	for _, k := range keys {
		if !f.Has(k) {
			return k
		}
	}
	return nil
}

// liveNames returns the names of the members up, sorted.
func liveNames(ms []*member) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.n.Name()
	}
	slices.Sort(names)
	return names
}

// placedOn returns "" when every member up sees the others up alone, and
// every filter is held by its owners among them alone, filled; or what
// is not so.
func (h *placeRun) placedOn() string {
	live := h.c.live()
	names := liveNames(live)
	for _, m := range live {
		if got := m.n.Registry().Members(); !slices.Equal(got, names) {
			return fmt.Sprintf("n%d sees members %v, and %v are up", m.i, got, names)
		}
		for _, o := range m.n.Members() { // a suspicion raised before the heal may still change that
			if o.State == wire.MemberSuspect {
				return fmt.Sprintf("n%d suspects %s", m.i, o.Name)
			}
		}
	}
	for _, f := range h.pl.Filters {
		want, why := h.owners(f)
		if why != "" {
			return why
		}
		var holders []string
		for _, m := range live {
			g := held(m, f.Name)
			switch {
			case g == nil:
				continue
			case g.Filling():
				return fmt.Sprintf("n%d is filling %s", m.i, f.Name)
			case g.Unowned():
				return fmt.Sprintf("n%d keeps %s for the grace", m.i, f.Name)
			}
			holders = append(holders, m.n.Name())
		}
		slices.Sort(holders)
		if !slices.Equal(holders, want) {
			return fmt.Sprintf("%s is held by %v, its owners are %v", f.Name, holders, want)
		}
	}
	return ""
}

// describeHolders says who holds filter f, and how, for a failure.
func (h *placeRun) describeHolders(f PlacedFilter) string {
	var parts []string
	for _, m := range h.c.live() {
		g := held(m, f.Name)
		if g == nil {
			continue
		}
		s := m.n.Name()
		if g.Filling() {
			s += " filling"
		}
		if g.Unowned() {
			s += " unowned"
		}
		parts = append(parts, s)
	}
	return "held by " + strings.Join(parts, ", ")
}

// unstable returns why the cluster is not stable now, "" when it is, and
// notes the members up (the next step compares them).
func (h *placeRun) unstable() string {
	live := h.c.live()
	names := liveNames(live)
	key := strings.Join(names, ",")
	if key != h.live {
		h.live = key
		return "the members up changed"
	}
	for _, m := range h.c.members {
		if m.dying {
			return fmt.Sprintf("n%d is dying", m.i)
		}
	}
	for _, m := range live {
		if h.c.cutOff(m) {
			return fmt.Sprintf("n%d is cut off", m.i)
		}
		reg := m.n.Registry()
		if got := reg.Members(); !slices.Equal(got, names) {
			return fmt.Sprintf("n%d sees %v", m.i, got)
		}
		for _, f := range h.pl.Filters {
			if _, ok := reg.Route([]byte(f.Name)); !ok {
				return fmt.Sprintf("n%d has no route to %s", m.i, f.Name)
			}
			if g := held(m, f.Name); g != nil && g.Filling() {
				return fmt.Sprintf("n%d fills %s", m.i, f.Name)
			}
		}
	}
	return ""
}

// watch checks the step: stability, the answers and acknowledgements it
// brought, what owners hold, what members keep.
func (h *placeRun) watch() {
	if h.unstable() != "" {
		h.lastUnstable = h.step
	}
	for _, f := range h.c.active {
		if f.Kind == Lossy {
			h.lastLossy = h.step
		}
	}
	live := h.c.live()
	for _, a := range h.ackNow {
		a.steady = h.lastUnstable < a.sentStep-1
		h.acks[a.filter] = append(h.acks[a.filter], a)
		h.all = append(h.all, a)
		if a.steady {
			h.pr.Steady += len(a.keys)
			if h.pl.writeAll() {
				h.steady[a.filter] = append(h.steady[a.filter], a)
			}
		}
		if h.loading && h.rng.IntN(3) == 0 {
			h.ask(live, a) // at once, through a member drawn: an owner short of the add answers it absent
		}
	}
	h.ackNow = h.ackNow[:0]
	for i := range h.marked {
		if m := h.c.members[i]; m.leaving != nil && h.c.cutOff(m) {
			h.markDeparted(m, m.leaving)
		} else {
			delete(h.marked, i)
		}
	}
	for _, q := range h.judgeNow {
		h.judge(q)
	}
	h.judgeNow = h.judgeNow[:0]
	h.checkKept()
	if h.pl.writeAll() {
		h.orphans()
		h.checkOwners()
	}
}

// judge checks a has answered, or an add refused, in this step.
func (h *placeRun) judge(q *request) {
	calm := h.lastUnstable < q.sentStep-1
	if q.err != nil {
		if calm {
			h.r.failf("answers: n%d refused %v of %q at %v, the cluster stable: %d %q", q.op.Node, q.op.Kind, q.op.Filter,
				h.c.elapsed(), q.err.Code, q.err.Msg)
		}
		return
	}
	if q.op.Kind != OpHas {
		return
	}
	h.pr.Asked++
	n := len(q.keys) - neverPerAsk
	for i := n; i < len(q.keys); i++ {
		h.pr.Never++
		if present(q.bits, i) {
			h.pr.NeverTrue++
		}
	}
	a := q.acked
	need := h.lastUnstable < a.sentStep-1
	if !h.pl.writeAll() {
		from := a.sentStep - backoffSteps
		within := replicateWithin
		if h.lastLossy >= from {
			within = lossyWithin
		}
		need = h.lastUnstable < from && q.sentAt-a.at >= within
	}
	if !need {
		return
	}
	absent := 0
	for i := range n {
		if !present(q.bits, i) {
			absent++
		}
	}
	if absent > 0 {
		f := h.pl.Filters[a.filter]
		h.r.failf("read your writes: at %v n%d answered %d of %d keys of %s absent (%s…), added through n%d and acknowledged at %v, the cluster stable since; %s",
			h.c.elapsed(), q.op.Node, absent, n, f.Name, a.keys[0], a.node, a.at, h.describeHolders(f))
	}
}

// checkKept: no member keeps a filter it no longer owns past the grace.
func (h *placeRun) checkKept() {
	now := h.c.elapsed()
	seen := map[string]time.Duration{}
	for _, m := range h.c.live() {
		for _, f := range h.pl.Filters {
			g := held(m, f.Name)
			if g == nil || !g.Unowned() {
				continue
			}
			k := fmt.Sprintf("n%d %s", m.i, f.Name)
			since, ok := h.unowned[k]
			if !ok {
				since = now
			}
			seen[k] = since
			if now-since > h.pl.Grace+graceSlack && !h.reported["kept "+k] {
				h.reported["kept "+k] = true
				h.r.failf("memory: n%d has kept %s for %v since it stopped owning it (grace %v)", m.i, f.Name, now-since, h.pl.Grace)
			}
		}
	}
	h.unowned = seen
}

// orphans marks the steady batches no member up and not cut off holds
// ready now.
func (h *placeRun) orphans() {
	for fi, list := range h.steady {
		name := h.pl.Filters[fi].Name
		for _, a := range list {
			if a.orphaned || a.holder != nil && h.holds(a.holderAt, name, a.holder) {
				continue
			}
			a.holder = nil
			for _, m := range h.c.live() {
				if g := held(m, name); g != nil && h.holds(m.i, name, g) && missing(g, a.keys) == nil {
					a.holder, a.holderAt = g, m.i
					break
				}
			}
			if a.holder == nil {
				a.orphaned = true
				h.pr.Orphaned += len(a.keys)
			}
		}
	}
}

// holds reports whether member i is up, not cut off, and holds g as its
// filter name, ready.
func (h *placeRun) holds(i int, name string, g *registry.Filter) bool {
	m := h.c.members[i]
	return m.up() && !h.c.cutOff(m) && held(m, name) == g && !g.Filling()
}

// checkOwners: an owner in touch holding its filter ready holds every
// steady key not orphaned (W = R).
func (h *placeRun) checkOwners() {
	live := h.c.live()
	names := liveNames(live)
	for _, m := range live {
		reg := m.n.Registry()
		if h.c.cutOff(m) || !slices.Equal(reg.Members(), names) {
			continue
		}
		for fi, f := range h.pl.Filters {
			rt, ok := reg.Route([]byte(f.Name))
			g := held(m, f.Name)
			if !ok || !rt.Owns(m.n.Name()) || g == nil || g.Filling() {
				continue
			}
			list := h.steady[fi]
			j := h.verified[g]
			for ; j < len(list); j++ {
				a := list[j]
				if a.orphaned {
					continue
				}
				if k := missing(g, a.keys); k != nil {
					h.r.failf("owners: at %v n%d owns %s, holds it ready, and lacks %s, added through n%d and acknowledged at %v with the cluster stable (on every owner then); %s",
						h.c.elapsed(), m.i, f.Name, k, a.node, a.at, h.describeHolders(f))
					j = len(list) // once for this filter here
					break
				}
			}
			h.verified[g] = j
		}
	}
}
