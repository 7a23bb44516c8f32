// Package replicate pushes every segment of every filter of a registry to
// the cluster's members, and the default filter's first segment to static
// peers too: one replication path for every filter. Each segment has a
// gossip.Gossip of its own — delta rounds, acks, resends — and members
// become push targets of every segment (of the default filter's only when
// their default filter is this node's: members sized otherwise still share
// every named filter). The default filter's first segment holds the static
// peers and their challenges; its frames go unwrapped, as classic and
// older peers read them, every other segment's in named frames naming the
// filter and segment (the Send function wraps them).
//
// A Replicator decides under its lock and sends after it, as gossip's
// Outbox is made for: no socket write happens under the lock.
//
//	r, err := replicate.New(cfg) // cfg.Send addresses, seals and sends an Outbox
//	r.MemberUp(name, addr, sameDefault, takesSparse)
//	r.Tick() // every sync interval
package replicate

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Config configures a Replicator.
type Config struct {
	// Registry holds the filters to replicate.
	Registry *registry.Registry
	// Gossip configures the default filter's first segment's rounds (the
	// profile: classic or delta); the other segments' take its bounds.
	Gossip gossip.Config
	// MaxDatagram bounds the datagrams sent, wrapping and sealing
	// included; Sealed says frames are sealed (room for the seal).
	MaxDatagram int
	Sealed      bool
	// Seed tells this node's choices of peers from other nodes'.
	Seed string
	// Send sends out's frames through datagram reader's socket, addressed
	// to the filter name's segment seg (name "": the default filter's
	// first, unwrapped), sealed if the cluster has a key; its plain frames
	// as they are. It empties out.
	Send func(reader int, out *gossip.Outbox, name string, seg uint64)
	// Node is this node's name (placed filters push to their other owners).
	Node string
	// Logger receives what the replicator does.
	Logger *slog.Logger
}

// Replicator is the node's side of gossip. See the package doc.
type Replicator struct {
	cfg    Config
	log    *slog.Logger
	ticker sync.Mutex // one tick at a time: out is its

	mu  sync.Mutex
	seg map[*registry.Segment]*segSync
	def *segSync // the default filter's first segment
	// members by name, and how many members each address holds (admin
	// requests from them are allowed when there is no key to prove it).
	members   map[string]Member
	memberIPs map[netip.Addr]int
	// memberAddrs counts members by data address: rows from one are not
	// this node's to push on (gossip.MergeRowSync). Copied on write.
	memberAddrs atomic.Pointer[map[netip.AddrPort]int]
	turn        int             // where the next tick's rotation starts
	retired     gossip.Counters // counts of segments gone, so that totals never fall
	out         gossip.Outbox   // the ticker's own
}

// segSync is one segment's replication.
type segSync struct {
	seg  *registry.Segment
	g    *gossip.Gossip
	name string // its filter's name; "" for the default's first segment, sent unwrapped
	// owners, for a placed filter, are the members it pushes to (by name,
	// this node's left out); placed says it is one.
	owners []string
	placed bool
}

// Member is what the replicator knows of a cluster member.
type Member struct {
	Data     netip.AddrPort
	Match    bool // the same default filter: it syncs that one too
	Sparse   bool // it takes sparse row syncs
	reported bool // a mismatch already logged
}

// tickBytes bounds what the segments after the first send in one tick,
// all together: a thousand filters each sending its window at once would
// overrun the receivers' socket buffers, and rounds lost that way are
// only sent again, as large. Past it the rest wait for the next tick,
// starting where this one stopped.
const tickBytes = 256 << 10

// New returns a Replicator of cfg.Registry's filters.
func New(cfg Config) (*Replicator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Replicator{cfg: cfg, log: cfg.Logger, seg: map[*registry.Segment]*segSync{},
		members: map[string]Member{}, memberIPs: map[netip.Addr]int{}}
	seg := cfg.Registry.Default().Segments()[0]
	g, err := gossip.New(r.config(cfg.Gossip, "", seg), seg.Rows())
	if err != nil {
		return nil, err
	}
	r.def = &segSync{seg: seg, g: g}
	r.seg[seg] = r.def
	return r, nil
}

// config fills a segment's gossip configuration.
func (r *Replicator) config(g gossip.Config, name string, seg *registry.Segment) gossip.Config {
	g.PruneAfter, g.MaxPeers = r.cfg.Gossip.PruneAfter, r.cfg.Gossip.MaxPeers
	g.MaxFrame = r.cfg.MaxDatagram
	if name != "" { // wrapped in a named frame
		g.MaxFrame -= wire.NamedOverhead(name, seg.ID())
	}
	if r.cfg.Sealed { // sealed, a frame still fits a datagram
		g.MaxFrame -= wire.SealedOverhead
	}
	g.Seed = xxh3.HashString(r.cfg.Seed + name)
	return g
}

// segments makes the segments of all the ones replicated: a Gossip for
// each new one, with the members as push targets, and none for those
// gone. Callers hold r.mu.
func (r *Replicator) segments(all []*registry.Filter) []*segSync {
	out := make([]*segSync, 0, len(all))
	live := make(map[*registry.Segment]bool, len(all))
	for _, f := range all {
		for _, seg := range f.Segments() {
			live[seg] = true
			ss := r.seg[seg]
			if ss == nil {
				if ss = r.newSegSync(f, seg); ss == nil {
					continue
				}
			} else if ss.placed {
				r.place(ss)
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

// newSegSync starts replicating seg of f, a named filter's: the members
// there are now get the rows this node originated; a member that joins
// later gets every row once. Callers hold r.mu.
func (r *Replicator) newSegSync(f *registry.Filter, seg *registry.Segment) *segSync {
	cfg := gossip.DefaultConfig()
	cfg.FillMembers = true
	g, err := gossip.New(r.config(cfg, f.Name(), seg), seg.Rows())
	if err != nil {
		r.log.Error("a filter cannot be replicated", "filter", f.Name(), "err", err)
		return nil
	}
	ss := &segSync{seg: seg, g: g, name: f.Name()}
	rt, placed := r.cfg.Registry.Route([]byte(f.Name()))
	if placed {
		ss.placed, ss.owners = true, r.others(rt)
	}
	for name, m := range r.members {
		if !placed || slices.Contains(ss.owners, name) {
			g.AddKnownMember(m.Data)
			g.SetSparse(m.Data, m.Sparse)
		}
	}
	r.seg[seg] = ss
	return ss
}

// Delivered reports whether the owners of f, a placed filter, have
// acknowledged every row this node originated in each of its segments: a
// copy given up may then go without losing an add it took.
func (r *Replicator) Delivered(f *registry.Filter) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, seg := range f.Segments() {
		last := seg.Rows().LastOriginated()
		if last == 0 {
			continue // nothing of its own to deliver
		}
		ss := r.seg[seg]
		if ss == nil || !ss.placed {
			return false
		}
		for _, o := range ss.owners {
			m, ok := r.members[o]
			if !ok {
				return false
			}
			if gen, ok := ss.g.Acked(m.Data); !ok || gen < last {
				return false
			}
		}
	}
	return true
}

// others returns the owners of a placed filter but this node.
func (r *Replicator) others(rt registry.Route) []string {
	var out []string
	for _, o := range rt.Owners() {
		if o != r.cfg.Node {
			out = append(out, o)
		}
	}
	return out
}

// place makes a placed filter's segment push to its owners now. An
// owner new to it fills by pulling from an owner, so it is taken to hold
// what the owners it keeps acknowledged of this node's rows, and gets the
// rest; with no owner kept, all this node originated (an owner that
// never stopped being one, on the other side of a partition, pulls
// nothing: the adds taken while cut off from it reach it so). One no
// longer an owner gets nothing more. Callers hold r.mu.
func (r *Replicator) place(ss *segSync) {
	rt, ok := r.cfg.Registry.Route([]byte(ss.name))
	if !ok {
		return
	}
	owners := r.others(rt)
	if slices.Equal(owners, ss.owners) {
		return
	}
	var asOf uint64
	kept := false
	for _, o := range ss.owners {
		m, ok := r.members[o]
		switch {
		case !ok:
		case !slices.Contains(owners, o):
			ss.g.RemoveMember(m.Data)
		default:
			if gen, ok := ss.g.Acked(m.Data); ok && (!kept || gen < asOf) {
				asOf, kept = gen, true
			}
		}
	}

	for _, o := range owners {
		if m, ok := r.members[o]; ok && !slices.Contains(ss.owners, o) {
			ss.g.AddMemberAsOf(m.Data, asOf)
			ss.g.SetSparse(m.Data, m.Sparse)
		}
	}
	ss.owners = owners
}

// retire keeps the counts of a segment no longer replicated.
func (r *Replicator) retire(ss *segSync) { r.retired = add(r.retired, ss.g.Counters()) }

// add adds the counts of frames sent and acks received of b to a.
func add(a, b gossip.Counters) gossip.Counters {
	a.Frames, a.Bytes, a.Rows = a.Frames+b.Frames, a.Bytes+b.Bytes, a.Rows+b.Rows
	a.Resent, a.Acks, a.StrayAcks = a.Resent+b.Resent, a.Acks+b.Acks, a.StrayAcks+b.StrayAcks
	return a
}

// Tick runs one gossip round for every segment: the default filter's
// first segment, then the others in turn, up to tickBytes.
func (r *Replicator) Tick() {
	r.ticker.Lock()
	defer r.ticker.Unlock()
	all := r.cfg.Registry.All()
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
		r.cfg.Send(0, &r.out, ss.name, ss.seg.ID())
		if pruned > 0 {
			r.log.Info("pruned peers that stopped acking or never answered", "count", pruned)
		}
	}
}

// RowAck hands an ack from `from` to the segment it acknowledges: the
// default filter's first (vs nil), or segment seg of every version vs of
// a named filter; what it lets out is sent through reader, with out.
func (r *Replicator) RowAck(reader int, from netip.AddrPort, vs registry.Versions, seg uint64, a wire.RowAck, out *gossip.Outbox) {
	targets := []*registry.Segment{r.def.seg}
	if vs != nil {
		targets = targets[:0]
		for _, f := range vs {
			if s := f.Segment(seg); s != nil {
				targets = append(targets, s)
			}
		}
	}
	for _, s := range targets {
		r.mu.Lock()
		ss := r.seg[s]
		if ss != nil {
			ss.g.RowAck(from, a, out)
		}
		r.mu.Unlock()
		if ss != nil {
			r.cfg.Send(reader, out, ss.name, ss.seg.ID())
		}
	}
}

// ClassicAck records a classic peer's one-byte ack.
func (r *Replicator) ClassicAck(from netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def.g.ClassicAck(from)
}

// RequestPeer makes addr a static push target of the default filter and
// challenges it; retry makes each tick challenge it again until it
// answers. It returns what became of it and how many peers there are.
func (r *Replicator) RequestPeer(addr netip.AddrPort, retry bool) (gossip.PeerState, int) {
	var out gossip.Outbox
	r.mu.Lock()
	st := r.def.g.RequestPeer(addr, retry, &out)
	peers := len(r.def.g.Peers())
	r.mu.Unlock()
	r.cfg.Send(0, &out, "", 0)
	return st, peers
}

// Answer takes a datagram that may answer a challenge, and reports
// whether it had the shape of one.
func (r *Replicator) Answer(frame []byte, from netip.AddrPort) bool {
	if !gossip.IsAnswer(frame) {
		return false
	}
	r.mu.Lock()
	ok := r.def.g.Answer(frame, from)
	r.mu.Unlock()
	if ok {
		r.log.Info("peer answered its challenge: it gets rows from now on", "peer", from.String())
	}
	return true
}

// AssumeMembersHave records that the members hold the default filter's
// rows as of gen (a node just filled by a pull from them).
func (r *Replicator) AssumeMembersHave(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def.g.AssumeMembersHave(gen)
}

// Peers lists the static peers and members the default filter pushes to.
func (r *Replicator) Peers() []gossip.PeerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.def.g.Peers()
}

// Counters adds up every segment's gossip counters: the default filter's
// first segment's whole, the others' frames and acks.
func (r *Replicator) Counters() gossip.Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := add(r.def.g.Counters(), r.retired)
	for _, ss := range r.seg {
		if ss != r.def {
			c = add(c, ss.g.Counters())
		}
	}
	return c
}
