package node

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/membership"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// The node's side of cluster membership. Members become push targets of
// every named filter, and of the default filter when theirs is the same;
// failed ones stop being targets. Memberlist's callbacks never wait on
// anything slow: catalog changes are queued for the catalog loop, and
// the digests members swap are compared, and the differing rows pulled,
// in the background (repair.go).

func (n *Node) startMembership() error {
	var keys [][]byte
	if len(n.cfg.ClusterKeys) > 0 {
		r, _ := auth.NewKeyring(n.cfg.ClusterKeys) // validated
		keys = r.MemberlistKeys()
	}
	m, err := membership.New(membership.Config{
		Name:             string(n.name),
		Bind:             n.cfg.gossipListen(),
		Advertise:        n.cfg.Advertise,
		Join:             n.cfg.Join,
		PushPullInterval: n.cfg.AntiEntropyInterval,
		RejoinInterval:   n.cfg.RejoinInterval,
		Resolver:         n.cfg.Resolver,
		Logger:           n.log,
		Keys:             keys,
		Transport:        n.cfg.GossipTransport,
		Allowed:          n.gossipAllowed(),
		SwapNew:          n.reg.HoldsRows(),
		Now:              n.cfg.Now,
	}, host{n})
	if err != nil {
		return err
	}
	n.mem.Store(m)
	m.Start(n.life.ctx, n.life.spawn)
	return nil
}

// GossipAddr returns the address memberlist listens on, or "" without
// cluster membership.
func (n *Node) GossipAddr() string {
	if m := n.mem.Load(); m != nil {
		return m.Addr()
	}
	return ""
}

// Members lists the cluster as this node sees it — itself first — with
// each member's state, age and how long ago it last acknowledged rows of
// the default filter from this node; nil without membership.
func (n *Node) Members() []wire.Member {
	m := n.mem.Load()
	if m == nil {
		return nil
	}
	ms := m.Members()
	acked := map[netip.AddrPort]int{}
	for _, p := range n.repl.Peers() {
		acked[p.Addr] = p.AckedTicksAgo
	}
	data := n.repl.MemberData()
	for i := range ms {
		a, ok := data[string(ms[i].Name)]
		if ago, synced := acked[a]; ok && synced && ago >= 0 {
			d := time.Duration(ago) * n.cfg.SyncInterval
			ms[i].LastSync = uint32(min(d/time.Millisecond, time.Duration(wire.NeverSynced-1)))
		}
	}
	return ms
}

// host is the node as membership.Host.
type host struct{ n *Node }

// Meta is this node's metadata: protocol version, default filter, data
// port and the id frames sealed for it carry.
func (h host) Meta() wire.NodeMeta {
	return wire.NodeMeta{Version: wire.ProtocolVersion, FP: h.n.reg.Default().Version().Def.FP, DataPort: h.n.Addr().Port(), SealID: h.n.SealID(), Flags: wire.MetaSparseRows}
}

// AppendState appends this node's name, the digests of every segment's
// rows and the catalog.
func (h host) AppendState(dst []byte) []byte {
	dst, err := wire.AppendLocalStateHeader(dst, h.n.name)
	if err != nil { // a name over 255 bytes: membership refuses it at Create
		return dst
	}
	return h.n.appendCatalogFrame(h.n.appendDigests(dst))
}

// NotifyMsg takes a member's broadcast: a change to the catalog, queued.
func (h host) NotifyMsg(b []byte) {
	entries, err := wire.DecodeCatalogFrame(b)
	if err != nil {
		h.n.meters.c.Inc(counter.MemberBadState)
		return
	}
	h.n.queueCatalog(entries)
}

// MemberUp makes a member a push target.
func (h host) MemberUp(m membership.Member) {
	n := h.n
	n.learnID(m.Data, m.Meta.SealID)
	match := m.Meta.FP == n.reg.Default().Version().Def.FP
	report, added := n.repl.MemberUp(m.Name, m.Data, match, m.Meta.Flags&wire.MetaSparseRows != 0)
	if report {
		n.meters.c.Inc(counter.MemberMismatch)
		n.log.Warn("member has another default filter; syncing named filters only", "member", m.Name,
			"theirs", m.Meta.FP.String(), "ours", n.reg.Default().Version().Def.FP.String())
	}
	n.placeSoon()
	if added {
		n.log.Info("member is a push target", "member", m.Name, "data", m.Data.String(), "gossip", m.Gossip)
	}
}

// MemberDown stops pushing to a member that failed or left.
func (h host) MemberDown(m membership.Member, left bool) {
	if left {
		h.n.placing.dir.Left(m.Name, m.Data) // it hands its placed filters off: the members taking them fill from it
	}
	h.n.repl.MemberDown(m.Name)
	h.n.placeSoon()
}

// MergeState queues the catalog a member sent and its digests, compared
// in the background: on join this is the bulk transfer that fills a new
// node. One comparison runs at a time; a member's newer state replaces
// one of its own still waiting, never another member's (after the whole
// cluster restarted, one member may alone hold some rows).
func (h host) MergeState(from membership.Member, s wire.LocalState, join bool) {
	n := h.n
	if s.Catalog != nil { // from any member: the catalog is the cluster's
		n.queueCatalog(s.Catalog)
	}
	st := repairState{member: from.Name, addr: from.Data, join: join, match: from.Meta.FP == n.reg.Default().Version().Def.FP,
		digests: append([]byte(nil), s.Digests...), named: append([]byte(nil), s.Named...)}
	if n.repairs.Put(from.Name, st) && !n.life.spawn(n.repairQueued) {
		n.repairs.Stop() // shutting down
	}
}

// repairQueued compares the members' states queued, one at a time, until
// none waits or the node stops. A joining node is ready once one pull
// filled it and no other member's state waits: every seed reached at the
// join is compared first, each of which may alone hold some rows.
func (n *Node) repairQueued() {
	filled := false
	for _, st, ok := n.repairs.Next(); ok && n.life.ctx.Err() == nil; _, st, ok = n.repairs.Next() {
		if filled = n.repair(st) || filled; filled && n.repairs.Len() == 0 {
			n.repairs.joined.Store(true)
		}
	}
}

// appendDigests appends the digests of every segment's rows: the default
// filter's first segment's as they are, every other's in named frames,
// at most wire.MaxLocalStateNamed of them. Past that the rest wait for
// another push/pull: each begins at a segment drawn at random, so that
// every segment's rows are compared in time.
func (n *Node) appendDigests(dst []byte) []byte {
	dst = gossip.AppendDigests(dst, n.reg.Default().Segments()[0].Rows())
	var segs []*registry.Segment
	for _, f := range n.reg.All() {
		for _, seg := range f.Segments() {
			if !seg.Unwrapped() {
				segs = append(segs, seg)
			}
		}
	}
	var own []byte
	frames, start := 0, rand.IntN(len(segs)+1)
	for i := range segs {
		seg := segs[(start+i)%len(segs)]
		own = gossip.AppendDigests(own[:0], seg.Rows())
		for frame := range wire.Frames(own) {
			if frames++; frames > wire.MaxLocalStateNamed {
				return dst
			}
			if out, err := seg.AppendFrame(dst, frame); err == nil {
				dst = out
			}
		}
	}
	return dst
}
