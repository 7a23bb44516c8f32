package node

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Replication: one path for every filter. Every segment of every filter
// has a gossip.Gossip of its own — delta rounds, acks, resends — pushing
// to the cluster's members; the default filter's first segment also
// pushes to the static peers (--peer, peer requests), which get nothing
// else, and holds their challenges. The frames of the default filter's
// first segment go unwrapped, as classic and older peers read them; every
// other segment's go in named frames naming the filter and segment.
//
// mu serialises every Gossip: decisions are made under it, and the
// frames they decide go out after it is let go (Outbox).
type replicator struct {
	n      *Node
	ticker sync.Mutex // one tick at a time: out and bufs are its
	mu     sync.Mutex
	seg    map[*registry.Segment]*segSync
	def    *segSync // the default filter's first segment
	// members by name, and how many members each address holds (admin
	// requests from them are allowed when there is no key to prove it).
	members   map[string]memberRec
	memberIPs map[netip.Addr]int
	turn      int             // where the next tick's rotation starts
	retired   gossip.Counters // counts of segments gone, so that totals never fall
	out       gossip.Outbox   // the ticker's own
	bufs      sendBufs
}

// segSync is one segment's replication.
type segSync struct {
	seg  *registry.Segment
	g    *gossip.Gossip
	name string // its filter's name; "" for the default's first segment, sent unwrapped
}

// memberRec is what the node knows of a member.
type memberRec struct {
	data     netip.AddrPort
	match    bool // the same default filter: it syncs that one too
	reported bool // a mismatch already logged
}

// tickBytes bounds what the segments after the first send in one tick,
// all together: a thousand filters each sending its window at once would
// overrun the receivers' socket buffers, and rounds lost that way are
// only sent again, as large. Past it the rest wait for the next tick,
// starting where this one stopped.
const tickBytes = 256 << 10

func newReplicator(n *Node) (*replicator, error) {
	r := &replicator{n: n, seg: map[*registry.Segment]*segSync{}, members: map[string]memberRec{}, memberIPs: map[netip.Addr]int{}}
	cfg := gossip.DefaultConfig()
	if n.cfg.Profile == ProfileClassic {
		cfg = gossip.ClassicConfig()
	}
	seg := n.def.Segments()[0]
	g, err := gossip.New(r.config(cfg, "", seg), seg.Rows())
	if err != nil {
		return nil, err
	}
	r.def = &segSync{seg: seg, g: g}
	r.seg[seg] = r.def
	return r, nil
}

// config fills a segment's gossip configuration from the node's.
func (r *replicator) config(cfg gossip.Config, name string, seg *registry.Segment) gossip.Config {
	c := r.n.cfg
	cfg.PruneAfter, cfg.MaxPeers = c.PruneAfter, c.MaxPeers
	cfg.MaxFrame = c.MaxDatagram
	if name != "" { // wrapped in a named frame
		cfg.MaxFrame -= wire.NamedOverhead(name, seg.ID())
	}
	if len(c.ClusterKeys) > 0 { // sealed, a frame still fits a datagram
		cfg.MaxFrame -= wire.SealedOverhead
	}
	cfg.Seed = xxh3.HashString(c.Listen + c.Name + name)
	return cfg
}

// segments makes the segments of all the ones replicated: a Gossip for
// each new one, with the members as push targets, and none for those
// gone. Callers hold r.mu.
func (r *replicator) segments(all []*registry.Filter) []*segSync {
	out := make([]*segSync, 0, len(all))
	live := make(map[*registry.Segment]bool, len(all))
	for _, f := range all {
		for _, seg := range f.Segments() {
			live[seg] = true
			ss := r.seg[seg]
			if ss == nil {
				ss = r.newSegSync(f, seg)
				if ss == nil {
					continue
				}
			}
			out = append(out, ss)
		}
	}
	for seg, ss := range r.seg {
		if !live[seg] {
			r.retire(ss)
			delete(r.seg, seg)
		}
	}
	return out
}

// newSegSync starts replicating seg of f, a named filter's (a new member
// gets every row of it once). Callers hold r.mu.
func (r *replicator) newSegSync(f *registry.Filter, seg *registry.Segment) *segSync {
	cfg := gossip.DefaultConfig()
	cfg.FillMembers = true
	g, err := gossip.New(r.config(cfg, f.Name(), seg), seg.Rows())
	if err != nil {
		r.n.log.Error("a filter cannot be replicated", "filter", f.Name(), "err", err)
		return nil
	}
	ss := &segSync{seg: seg, g: g, name: f.Name()}
	for _, m := range r.members {
		g.AddMember(m.data)
	}
	r.seg[seg] = ss
	return ss
}

// retire keeps the counts of a segment no longer replicated.
func (r *replicator) retire(ss *segSync) {
	c := ss.g.Counters()
	r.retired.Frames += c.Frames
	r.retired.Bytes += c.Bytes
	r.retired.Rows += c.Rows
	r.retired.Resent += c.Resent
	r.retired.Acks += c.Acks
	r.retired.StrayAcks += c.StrayAcks
}

// tick runs one gossip round for every segment: the default filter's
// first segment, then the others in turn, up to tickBytes.
func (r *replicator) tick() {
	r.ticker.Lock()
	defer r.ticker.Unlock()
	defer r.n.meters.timed(SyncRoundLatency, time.Now())
	all := r.n.reg.All()
	r.mu.Lock()
	segs := r.segments(all)
	start := r.turn
	r.mu.Unlock()
	sent := 0
	for i := range segs {
		ss := segs[0] // the default's first segment, always
		if i > 0 {
			if sent >= tickBytes { // the rest next tick, from here
				r.mu.Lock()
				r.turn = start + i - 1
				r.mu.Unlock()
				return
			}
			ss = segs[1+(start+i-1)%(len(segs)-1)]
		}
		r.mu.Lock()
		before := ss.g.Counters().Pruned
		ss.g.Tick(&r.out)
		pruned := ss.g.Counters().Pruned - before
		r.mu.Unlock()
		sent += r.out.Size()
		r.n.sendOut(0, &r.out, ss, &r.bufs)
		if pruned > 0 {
			r.n.log.Info("pruned peers that stopped acking or never answered", "count", pruned)
		}
	}
}

// rowAck hands an ack to the segment it acknowledges, in every version of
// the filter, and sends what it lets out.
func (r *replicator) rowAck(q *request, a wire.RowAck) {
	targets := []*registry.Segment{r.def.seg}
	if q.named {
		targets = targets[:0]
		for _, f := range r.n.reg.Lookup(q.name) {
			if s := f.Segment(q.seg); s != nil {
				targets = append(targets, s)
			}
		}
	}
	for _, seg := range targets {
		r.mu.Lock()
		ss := r.seg[seg]
		if ss != nil {
			ss.g.RowAck(q.from, a, &q.w.out)
		}
		r.mu.Unlock()
		if ss != nil {
			r.n.sendOut(q.w.reader, &q.w.out, ss, &q.w.send)
		}
	}
}

// classicAck records a classic peer's one-byte ack.
func (r *replicator) classicAck(from netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def.g.ClassicAck(from)
}

// requestPeer makes addr a static push target and challenges it.
func (r *replicator) requestPeer(addr netip.AddrPort, retry bool) (gossip.PeerState, int) {
	var out gossip.Outbox
	r.mu.Lock()
	st := r.def.g.RequestPeer(addr, retry, &out)
	peers := len(r.def.g.Peers())
	r.mu.Unlock()
	r.n.sendOut(0, &out, r.def, &sendBufs{})
	return st, peers
}

// answer takes a datagram that may answer a challenge.
func (r *replicator) answer(frame []byte, from netip.AddrPort) bool {
	if !gossip.IsAnswer(frame) {
		return false
	}
	r.mu.Lock()
	ok := r.def.g.Answer(frame, from)
	r.mu.Unlock()
	if ok {
		r.n.log.Info("peer answered its challenge: it gets rows from now on", "peer", from.String())
	}
	return true
}

// assumeMembersHave records that the members hold the default filter's
// rows as of gen (a node just filled by a pull from them).
func (r *replicator) assumeMembersHave(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def.g.AssumeMembersHave(gen)
}

// peers lists the static peers and members the default filter pushes to.
func (r *replicator) peers() []gossip.PeerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.def.g.Peers()
}

// counters adds up every segment's gossip counters.
func (r *replicator) counters() gossip.Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.def.g.Counters()
	for _, ss := range r.seg {
		if ss == r.def {
			continue
		}
		sc := ss.g.Counters()
		c.Frames, c.Bytes, c.Rows = c.Frames+sc.Frames, c.Bytes+sc.Bytes, c.Rows+sc.Rows
		c.Resent, c.Acks, c.StrayAcks = c.Resent+sc.Resent, c.Acks+sc.Acks, c.StrayAcks+sc.StrayAcks
	}
	c.Frames, c.Bytes, c.Rows = c.Frames+r.retired.Frames, c.Bytes+r.retired.Bytes, c.Rows+r.retired.Rows
	c.Resent, c.Acks, c.StrayAcks = c.Resent+r.retired.Resent, c.Acks+r.retired.Acks, c.StrayAcks+r.retired.StrayAcks
	return c
}

// sendBufs are the buffers a sender reuses: a frame wrapped for its
// filter, then sealed.
type sendBufs struct{ wrap, seal []byte }

// sendOut writes out's frames from the listening address through the
// given datagram reader's socket: addressed to ss's filter and segment
// (unless ss is the default's first), then sealed with the cluster key if
// there is one; plain frames as they are. It empties out. Never call it
// with r.mu held.
func (n *Node) sendOut(reader int, out *gossip.Outbox, ss *segSync, b *sendBufs) {
	for to, frame := range out.All() {
		if ss.name != "" {
			wrapped, err := wire.AppendNamedSegment(b.wrap[:0], ss.name, ss.seg.ID(), frame)
			if err != nil {
				continue
			}
			b.wrap, frame = wrapped, wrapped
		}
		if n.keys != nil {
			b.seal = n.seal(b.seal[:0], frame)
			frame = b.seal
		}
		n.sendTo(reader, frame, to)
	}
	for to, frame := range out.Plain() {
		n.sendTo(reader, frame, to)
	}
	out.Reset()
}

// sendTo sends one datagram, counting a failure.
func (n *Node) sendTo(reader int, frame []byte, to netip.AddrPort) {
	if err := n.tr.WriteTo(reader, frame, to); err != nil {
		n.meters.c.inc(SendErrors)
		n.log.Debug("send failed", "to", to.String(), "err", err)
	}
}

// Tick runs one gossip round now. With ManualTicks it is the only way
// rounds happen (tests and simulators drive time); otherwise a ticker
// calls it every SyncInterval.
func (n *Node) Tick() { n.repl.tick() }

// syncLoop ticks every SyncInterval until the node stops.
func (n *Node) syncLoop() {
	t := time.NewTicker(n.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-n.life.ctx.Done():
			return
		case <-t.C:
			n.repl.tick()
		}
	}
}

// Peers lists the push targets of the default filter: static peers and
// members.
func (n *Node) Peers() []gossip.PeerStatus { return n.repl.peers() }
