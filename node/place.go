package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/fill"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/forward"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/route"
	"github.com/rmbd/rmbd/wire"
)

// Filters placed on some members (registry placement.go): the members
// this node sees go to the registry as they change and at each
// housekeeping; requests for a filter held elsewhere are forwarded
// (package route, over package forward); a filter this node came to own
// is filled from a member that held it (package fill).

// placing is the node's side of placement.
type placing struct {
	fwd     *forward.Forwarder
	dir     *route.Directory // where the members are
	filling atomic.Bool      // a fill runs
	filler  *fill.Filler     // fills the filters this node came to own
	changed chan struct{}    // the members changed: place again (catalogLoop)
	later   chan struct{}    // datagrams' batches forwarding (forwardLater)
}

// placeSoon asks the catalog loop to place filters again: a member came
// or went. It never blocks (memberlist calls it).
func (n *Node) placeSoon() {
	select {
	case n.placing.changed <- struct{}{}:
	default: // one is pending
	}
}

// placeWait is how long a node that joins waits to reach a member before
// it places filters by itself alone.
const placeWait = 5 * time.Second

// newPlacing makes the forwarder of requests to other members and the
// filler of filters this node came to own.
func (n *Node) newPlacing() {
	cfg := forward.Config{Dial: n.tr.Dial, Timeout: n.cfg.ForwardTimeout}
	if n.keys != nil {
		cfg.Seal = n.sealFor
		cfg.Open = n.openPulled
	}
	n.placing.fwd, n.placing.changed, n.placing.later = forward.New(cfg), make(chan struct{}, 1), make(chan struct{}, maxForwardsLater)
	n.placing.dir = route.NewDirectory(string(n.name), nil)
	n.placing.filler = fill.New(fill.Config{Forwarder: n.placing.fwd, Timeout: n.cfg.ForwardTimeout, PullTimeout: pullTimeout, Logger: n.log,
		Pull: func(ctx context.Context, addr netip.AddrPort, seg *registry.Segment, runs []filter.Run) (int, error) {
			rows, _, err := n.pullRows(ctx, addr, seg, runs)
			return rows, err
		}})
}

// handOff, as the node leaves the cluster (told already), waits until
// the members that take over each placed filter it holds hold it ready —
// filled from this node, which serves meanwhile — or route.LeftFor.
func (n *Node) handOff() {
	left := fill.HandOff(n.life.ctx, n.reg, n.placing.fwd, n.placing.dir, string(n.name), n.cfg.ForwardTimeout, route.LeftFor)
	if len(left) > 0 {
		n.log.Warn("leaving: placed filters not yet held by the members taking them over", "filters", left)
	}
}

// ranked returns rt's members as route asks them (route.Directory).
func (n *Node) ranked(rt registry.Route) []route.Member {
	return n.placing.dir.Ranked(rt.Ranked, rt.Replicas)
}

// fill tries once to fill every filter that awaits its rows, and to see
// every filter this node gave up held by its owners (then freed at once).
func (n *Node) fill() {
	defer fill.Handed(n.life.ctx, n.reg, n.placing.fwd, n.placing.dir, string(n.name), n.cfg.ForwardTimeout, n.repl.Delivered)
	res := n.placing.filler.Round(n.life.ctx, n.reg, func(rt registry.Route) []route.Member {
		return n.placing.dir.FillFrom(rt.Ranked, rt.Replicas)
	})
	n.meters.c.Add(counter.FillsDone, uint64(res.Filled))
	n.meters.c.Add(counter.FillBytes, res.Bytes)
	n.meters.c.Add(counter.FillsFailed, uint64(res.Failed))
}

// placeMembers tells the registry the members alive, once they are known
// (alone: at once; joining: once a member answered, or after placeWait),
// and fills the filters it now owns.
func (n *Node) placeMembers() {
	self := string(n.name)
	addrs := map[string]netip.AddrPort{self: n.Addr()}
	if n.cfg.clustered() {
		if n.mem.Load() == nil {
			return
		}
		data := n.repl.MemberData()
		if len(data) == 0 && len(n.cfg.Join) > 0 && time.Since(n.life.started) < placeWait {
			return
		}
		for name, a := range data {
			addrs[name] = a
		}
	}
	n.placing.dir.Set(addrs)
	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	if err := n.change(n.reg.SetMembers(names), nil); err != nil {
		n.log.Warn("a filter placed here could not be opened", "err", err)
	}
	if len(n.reg.Filling())+len(n.reg.Leaving()) > 0 && n.placing.filling.CompareAndSwap(false, true) {
		if !n.life.spawn(func() { defer n.placing.filling.Store(false); n.fill() }) {
			n.placing.filling.Store(false)
		}
	}
}

// routed serves a batch for a placed filter when this node cannot alone:
// a has whose filter is not held here ready, an add that waits for more
// owners than this one or whose filter is not held here. A batch another
// member forwarded is served here or answered CodeNotHere. done is false
// when the batch is for this node to serve as any other. A datagram's
// batch is forwarded on a goroutine of its own, its answer sent from it:
// the reader goes on meanwhile.
func (n *Node) routed(q *request, b wire.Batch, rt registry.Route) (r reply, done bool) {
	vs := n.reg.Lookup(q.name)
	held := len(vs) > 0
	ready := held && !vs.Winner().Filling()
	if b.Flags&wire.FlagForwarded != 0 {
		if !held || b.Type == wire.TypeHasBatch && !ready {
			q.w.c.Inc(counter.ForwardsNotHere)
			return n.refuse(q, wire.CodeNotHere, "filter "+string(q.name)+" is not held here (yet)"), true
		}
		return reply{}, false
	}
	owner := rt.Owns(string(n.name))
	if owner && (b.Type == wire.TypeHasBatch && ready || b.Type == wire.TypeAddBatch && held && n.cfg.WriteQuorum <= 1) {
		return reply{}, false
	}
	if q.size > 0 && !q.sealed {
		return n.forwardLater(q, rt), true
	}
	return n.forward(q, b, rt), true
}

// forward serves q, a batch for a placed filter, through route: here
// and on the members that hold it.
func (n *Node) forward(q *request, b wire.Batch, rt registry.Route) reply {
	vs := n.reg.Lookup(q.name)
	held := len(vs) > 0
	ready := held && !vs.Winner().Filling()
	p := route.Plan{Filter: string(q.name), Members: n.ranked(rt), Owners: rt.Replicas, Quorum: min(n.cfg.WriteQuorum, rt.Replicas, len(rt.Ranked)),
		Tries: rt.Replicas + 2, Unreached: n.placing.dir.Unreached}
	req := append(q.w.fwd[:0], q.frame...)
	req[wire.BatchFlagsAt] |= wire.FlagForwarded
	if b.Type == wire.TypeAddBatch {
		req[wire.BatchFlagsAt] |= wire.FlagAck // an unacknowledged add still waits for its owner
	}
	q.w.fwd = req
	ctx, cancel := context.WithTimeout(n.life.ctx, n.cfg.ForwardTimeout)
	defer cancel()
	q.w.c.Inc(counter.Forwards)
	var local reply
	var out []byte
	var err error
	if b.Type == wire.TypeHasBatch {
		out, err = route.Has(ctx, p, func(dst []byte) ([]byte, bool) {
			if !ready {
				return dst, false
			}
			return n.hasBatch(q, b).frame, true
		}, n.placing.fwd, req, q.w.buf[:0])
	} else {
		out, err = route.Add(ctx, p, func(dst []byte) ([]byte, bool) {
			if !held {
				return dst, false
			}
			local = n.addBatch(q, vs.Winner(), b)
			return local.frame, local.frame != nil && wire.Type(local.frame[0]) != wire.TypeError
		}, n.placing.fwd, req, q.w.buf[:0])
	}
	if err != nil {
		q.w.c.Inc(counter.ForwardsFailed)
		return n.routeRefusal(q, err)
	}
	if b.Type == wire.TypeAddBatch && b.Flags&wire.FlagAck == 0 {
		return reply{}
	}
	q.w.buf = out[:0]
	return reply{frame: out, wait: local.wait}
}

// maxForwardsLater bounds the datagrams' batches forwarding at once;
// past it they are answered busy.
const maxForwardsLater = 256

// forwardLater forwards q, a datagram's batch, on a goroutine of its own,
// which sends the answer as the datagram loop would have: held to the
// datagram's size, after the disk when an add waits for it.
func (n *Node) forwardLater(q *request, rt registry.Route) reply {
	select {
	case n.placing.later <- struct{}{}:
	default:
		return n.refuse(q, wire.CodeBusy, "too many requests forwarded at once: try again")
	}
	lq := &request{frame: bytes.Clone(q.frame), from: q.from, size: q.size, named: true, name: bytes.Clone(q.name),
		w: &worker{c: n.meters.c, reader: q.w.reader}}
	if !n.life.spawn(func() {
		defer func() { <-n.placing.later }()
		b, _ := wire.DecodeBatch(lq.frame) // it decoded once already
		r := n.forward(lq, b, rt)
		out := r.frame
		if len(out) > lq.size {
			out = n.tooLarge(lq.w, out, lq.frame, lq.size)
		}
		switch {
		case len(out) == 0:
		case !r.wait.Synced():
			n.replyWhenSynced(lq.w.reader, out, lq.size, lq.from, r.wait)
		default:
			n.sendTo(lq.w.reader, out, lq.from)
		}
	}) {
		<-n.placing.later
	}
	return reply{}
}

// routeRefusal answers a routed batch no member served: a member's own
// refusal as it said it, else why each one failed.
func (n *Node) routeRefusal(q *request, err error) reply {
	var no *route.Refusal
	if errors.As(err, &no) {
		return n.refuse(q, no.Code, no.Msg)
	}
	return n.refuse(q, wire.CodeUnavailable, fmt.Sprint(err))
}
