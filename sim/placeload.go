package sim

import (
	"fmt"
	"slices"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
)

// The load of a placement history: the creates, the adds through members
// drawn at random, the has requests that check them, and what the
// members counted.

// create sends the create of every filter, each through a member drawn.
func (h *placeRun) create() {
	for _, f := range h.pl.Filters {
		q := &request{op: Op{Kind: OpCreate, Node: h.rng.IntN(h.c.plan.Nodes), Filter: f.Name, Capacity: f.Capacity,
			Replicas: uint8(f.Replicas), Growth: 1}}
		if err := h.cl.send(q); err != nil {
			h.r.failf("client: %v", err)
		}
	}
}

// load sends a tick's adds, each through a member up drawn at random, and
// asks: some keys just acknowledged, and older ones.
func (h *placeRun) load() {
	live := h.c.live()
	if len(live) == 0 {
		return
	}
	h.owed += float64(h.pl.Rate) * tick.Seconds()
	for ; h.owed >= 1; h.owed-- {
		fi := h.rng.IntN(len(h.pl.Filters))
		n := 1 + h.rng.IntN(16)
		if fi == h.pl.FillFilter || h.added[fi]+uint64(n) > h.pl.Filters[fi].Capacity {
			continue
		}
		h.add(live, fi, n)
	}
	// The filled filter: its share spread over the history.
	fi := h.pl.FillFilter
	goal := h.pl.Filters[fi].Capacity * uint64(h.pl.FillPct) / 100
	h.fill += float64(goal) * tick.Seconds() / (h.c.plan.Length - placeBy/2).Seconds()
	for ; h.fill >= fillBatch && h.added[fi]+fillBatch <= goal; h.fill -= fillBatch {
		h.add(live, fi, fillBatch)
	}
	if h.rng.IntN(2) == 0 {
		h.ask(live, h.older())
	}
}

// add sends n new keys into filter fi through a member of live.
func (h *placeRun) add(live []*member, fi, n int) {
	q := &request{op: Op{Kind: OpAdd, Node: live[h.rng.IntN(len(live))].i, Filter: h.pl.Filters[fi].Name}}
	for range n {
		q.keys = append(q.keys, fmt.Appendf(nil, "p%d-%d", h.c.plan.Seed, h.next))
		h.next++
	}
	h.added[fi] += uint64(n)
	h.send(q)
}

// older draws an acknowledged batch (nil: none yet).
func (h *placeRun) older() *placeAck {
	if len(h.all) == 0 {
		return nil
	}
	return h.all[h.rng.IntN(len(h.all))]
}

// ask sends a has of a's keys (up to maxKeysPerAsk, less a few) and of a
// few keys never added, through a member of live.
func (h *placeRun) ask(live []*member, a *placeAck) {
	if a == nil || len(live) == 0 {
		return
	}
	q := &request{op: Op{Kind: OpHas, Node: live[h.rng.IntN(len(live))].i, Filter: h.pl.Filters[a.filter].Name}}
	q.keys = append(q.keys, a.keys[:min(len(a.keys), maxKeysPerAsk-neverPerAsk)]...)
	for range neverPerAsk {
		h.never++
		q.keys = append(q.keys, fmt.Appendf(nil, "never-%d", h.never))
	}
	q.acked = a
	h.send(q)
}

// neverPerAsk is the keys never added each has asks too.
const neverPerAsk = 4

func (h *placeRun) send(q *request) {
	h.pr.Requests++
	if err := h.cl.send(q); err != nil {
		h.r.failf("client: %v", err)
	}
	q.sentStep = h.step
}

// answered takes an answer as the network delivers it.
func (h *placeRun) answered(q *request) {
	h.r.Answers[q.op.Kind]++
	switch {
	case q.other != "":
		h.r.failf("n%d answered %v with %s", q.op.Node, q.op.Kind, q.other)
		return
	case q.err != nil:
		h.r.Errors[q.err.Code]++
		if !expectedCodes[q.err.Code] {
			h.r.failf("client: n%d answered %v of %q with error %d %q", q.op.Node, q.op.Kind, q.op.Filter, q.err.Code, q.err.Msg)
		}
	}
	switch q.op.Kind {
	case OpCreate:
		if q.err != nil {
			h.r.failf("create: n%d refused %q: %d %q", q.op.Node, q.op.Filter, q.err.Code, q.err.Msg)
		}
	case OpAdd:
		if q.err != nil {
			h.judgeNow = append(h.judgeNow, q)
			return
		}
		a := &placeAck{filter: h.index(q.op.Filter), keys: q.keys, node: q.op.Node, sentStep: q.sentStep, sent: q.sentAt, at: h.c.elapsed()}
		h.ackNow = append(h.ackNow, a)
		h.pr.Acked += len(a.keys)
	case OpHas:
		h.judgeNow = append(h.judgeNow, q)
	}
}

// index returns the index of the filter name.
func (h *placeRun) index(name string) int {
	return slices.IndexFunc(h.pl.Filters, func(f PlacedFilter) bool { return f.Name == name })
}

// stopping reads the counters of a member about to stop.
func (h *placeRun) stopping(m *member) {
	st := m.n.Stats()
	h.pr.Forwards += st.Count(counter.Forwards)
	h.pr.ForwardsFailed += st.Count(counter.ForwardsFailed)
	h.pr.Fills += st.Count(counter.FillsDone)
	h.pr.FillBytes += st.Count(counter.FillBytes)
	h.pr.FillsFailed += st.Count(counter.FillsFailed)
}

// departing marks the batches a member leaving while cut off holds and
// no other member up does: it cannot hand them off, and they leave with
// it (W = 1 lets one member alone hold an add acknowledged). Until it
// exits, or is cut off no more, so are those it acknowledges meanwhile
// (watch).
func (h *placeRun) departing(m *member) {
	if h.c.cutOff(m) {
		h.marked[m.i] = 0
		h.markDeparted(m, m.n)
	}
}

// markDeparted marks the batches that n, the node of member m leaving
// cut off, holds and no member up does, from the first not looked at.
func (h *placeRun) markDeparted(m *member, n *node.Node) {
	for _, a := range h.all[h.marked[m.i]:] {
		name := h.pl.Filters[a.filter].Name
		g := n.Registry().Lookup([]byte(name)).Winner()
		if g == nil || missing(g, a.keys) != nil {
			continue
		}
		a.departed = !slices.ContainsFunc(h.c.live(), func(o *member) bool {
			g := held(o, name)
			return o != m && g != nil && missing(g, a.keys) == nil
		})
	}
	h.marked[m.i] = len(h.all)
}
