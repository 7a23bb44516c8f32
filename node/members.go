package node

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/membership"
	"github.com/rmbd/rmbd/wire"
)

// The node's side of cluster membership: members with the node's filter
// become push targets, failed ones stop being targets, and the digests
// members swap are compared and the differing rows pulled.

// memberRec is what the node knows of a member, under n.mu.
type memberRec struct {
	data     netip.AddrPort
	match    bool // same filter: a push target
	reported bool // a mismatch already logged
}

// pullTimeout bounds one anti-entropy pull.
const pullTimeout = 60 * time.Second

func (n *Node) startMembership() error {
	m, err := membership.New(membership.Config{
		Name:             string(n.name),
		Bind:             n.cfg.gossipListen(),
		Advertise:        n.cfg.Advertise,
		Join:             n.cfg.Join,
		PushPullInterval: n.cfg.AntiEntropyInterval,
		RejoinInterval:   n.cfg.RejoinInterval,
		Resolver:         n.cfg.Resolver,
		Logger:           n.log,
		Keys:             n.memberlistKeys(),
	}, host{n})
	if err != nil {
		return err
	}
	n.mem.Store(m)
	m.Start(n.ctx, n.spawn)
	return nil
}

// memberlistKeys are the keys memberlist encrypts gossip with, derived
// from the cluster keys (none without).
func (n *Node) memberlistKeys() [][]byte {
	if len(n.cfg.ClusterKeys) == 0 {
		return nil
	}
	r, _ := auth.NewKeyring(n.cfg.ClusterKeys) // validated
	return r.MemberlistKeys()
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
// each member's state, age and how long ago it last acknowledged rows
// from this node; nil without membership.
func (n *Node) Members() []wire.Member {
	m := n.mem.Load()
	if m == nil {
		return nil
	}
	ms := m.Members()
	n.mu.Lock()
	acked := make(map[netip.AddrPort]int, len(n.members))
	for _, p := range n.g.Peers() {
		acked[p.Addr] = p.AckedTicksAgo
	}
	data := make(map[string]netip.AddrPort, len(n.members))
	for name, r := range n.members {
		data[name] = r.data
	}
	n.mu.Unlock()
	for i := range ms {
		a, ok := data[string(ms[i].Name)]
		if ago, synced := acked[a]; ok && synced && ago >= 0 {
			ms[i].LastSync = uint32(min(n.ticksToDuration(ago)/time.Millisecond, time.Duration(wire.NeverSynced-1)))
		}
	}
	return ms
}

// ticksToDuration converts gossip ticks into time.
func (n *Node) ticksToDuration(ticks int) time.Duration {
	return time.Duration(ticks) * n.cfg.SyncInterval
}

// host is the node as membership.Host.
type host struct{ n *Node }

// Meta is this node's metadata: protocol version, filter and data port.
func (h host) Meta() wire.NodeMeta {
	return wire.NodeMeta{Version: wire.ProtocolVersion, FP: h.n.f.Fingerprint(), DataPort: h.n.Addr().Port()}
}

// AppendState appends this node's name and the digests of its rows.
func (h host) AppendState(dst []byte) []byte {
	dst, err := wire.AppendLocalStateHeader(dst, h.n.name)
	if err != nil { // a name over 255 bytes: membership refuses it at Create
		return dst
	}
	return h.n.appendCatalogFrame(h.n.appendNamedDigests(gossip.AppendDigests(dst, h.n.f)))
}

// NotifyMsg takes a member's broadcast: a change to the catalog.
func (h host) NotifyMsg(b []byte) {
	entries, err := wire.DecodeCatalogFrame(b)
	if err != nil {
		h.n.c.inc(MemberBadState)
		return
	}
	h.n.mergeCatalog(entries)
}

// MemberUp makes a member with the node's filter a push target; one with
// another filter is logged once and never synced with.
func (h host) MemberUp(m membership.Member) {
	n := h.n
	match := m.Meta.FP == n.f.Fingerprint()
	named := n.named.all() // before n.mu: the lock order is named's, then n.mu
	n.mu.Lock()
	old, known := n.members[m.Name]
	if !known || old.data.Addr() != m.Data.Addr() {
		n.memberIP(m.Data.Addr(), 1)
		if known {
			n.memberIP(old.data.Addr(), -1)
		}
	}
	rec := memberRec{data: m.Data, match: match, reported: old.reported}
	report := !match && !old.reported
	rec.reported = rec.reported || report
	n.members[m.Name] = rec
	if known && old.match && (old.data != m.Data || !match) {
		n.g.RemoveMember(old.data)
		namedMembers(named, old.data, false)
	}
	added := match && n.g.AddMember(m.Data)
	if match {
		namedMembers(named, m.Data, true)
	}
	n.mu.Unlock()
	if report {
		n.c.inc(MemberMismatch)
		n.log.Warn("member has another filter; never syncing with it", "member", m.Name,
			"theirs", m.Meta.FP.String(), "ours", n.f.Fingerprint().String())
	}
	if added {
		n.log.Info("member is a push target", "member", m.Name, "data", m.Data.String(), "gossip", m.Gossip)
	}
}

// MemberDown stops pushing to a member that failed or left.
func (h host) MemberDown(m membership.Member, left bool) {
	n := h.n
	named := n.named.all()
	n.mu.Lock()
	if rec, ok := n.members[m.Name]; ok {
		if rec.match {
			n.g.RemoveMember(rec.data)
			namedMembers(named, rec.data, false)
		}
		n.memberIP(rec.data.Addr(), -1)
		delete(n.members, m.Name)
	}
	n.mu.Unlock()
}

// memberIP counts the members at ip. Callers hold n.mu.
func (n *Node) memberIP(ip netip.Addr, delta int) {
	if n.memberIPs[ip] += delta; n.memberIPs[ip] <= 0 {
		delete(n.memberIPs, ip)
	}
}

// MergeState starts a pull of the rows whose digests differ from the
// member's, in the background: on join this is the bulk transfer that
// fills a new node. One pull runs at a time; a state that comes while one
// runs is dropped (the next push/pull comes soon).
func (h host) MergeState(from membership.Member, s wire.LocalState, join bool) {
	n := h.n
	if s.Catalog != nil { // from any member: the catalog is the cluster's
		n.mergeCatalog(s.Catalog)
	}
	n.mu.Lock()
	rec, ok := n.members[from.Name]
	n.mu.Unlock()
	if !ok || !rec.match {
		n.log.Debug("anti-entropy: state of a member with another filter ignored", "member", from.Name)
		return
	}
	if len(s.Named) > 0 {
		select {
		case n.repairingNamed <- struct{}{}:
			named := append([]byte(nil), s.Named...)
			if !n.spawn(func() {
				defer func() { <-n.repairingNamed }()
				n.repairNamed(from.Name, rec.data, named)
			}) {
				<-n.repairingNamed
			}
		default: // one at a time; the next push/pull comes soon
		}
	}
	select {
	case n.repairing <- struct{}{}:
	default:
		n.log.Debug("anti-entropy: a pull is running; this state waits for the next round", "member", from.Name)
		return
	}
	digests := append([]byte(nil), s.Digests...)
	if !n.spawn(func() {
		defer func() { <-n.repairing }()
		n.repair(from.Name, rec.data, digests, join)
	}) {
		<-n.repairing // shutting down
	}
}

// repair pulls from the member at addr the rows whose digests differ from
// the local ones. It returns when the pull is done.
func (n *Node) repair(name string, addr netip.AddrPort, digests []byte, join bool) {
	runs, err := gossip.Differing(n.f, digests)
	if err != nil {
		n.log.Debug("anti-entropy: digests refused", "member", name, "err", err)
		return
	}
	if len(runs) == 0 {
		n.joinPulled.Store(true) // nothing to pull: as full as the member
		return
	}
	n.log.Debug("anti-entropy: pulling", "member", name, "runs", len(runs), "join", join)
	began := time.Now()
	empty := n.f.LastChanged() == 0 && n.f.Generation() <= 1
	rows, changed, err := n.pullRetrying(name, addr, runs)
	if err == nil {
		n.joinPulled.Store(true)
	}
	if join && empty && err == nil {
		// A new node filled from the cluster: the members have these rows.
		n.mu.Lock()
		n.g.AssumeMembersHave(n.f.Advance())
		n.mu.Unlock()
	}
	n.c.inc(AntiEntropyPulls)
	n.c.add(AntiEntropyRows, uint64(changed))
	lvl := slog.LevelDebug
	if join || changed > 0 {
		lvl = slog.LevelInfo
	}
	if err != nil && n.ctx.Err() == nil {
		lvl = slog.LevelWarn
	}
	n.log.Log(context.Background(), lvl, "anti-entropy pull", "member", name, "join", join,
		"rows", rows, "changed", changed, "took", time.Since(began).Round(time.Millisecond), "err", err)
}

// pullAttempts and pullBackoff: a failed pull is tried again after 1 s,
// then 2 s; after that the next anti-entropy round tries again.
const (
	pullAttempts = 3
	pullBackoff  = time.Second
)

// pullRetrying pulls runs from the member at addr, trying again after a
// failure; each failure is counted and logged with its reason.
func (n *Node) pullRetrying(name string, addr netip.AddrPort, runs []filter.Run) (rows, changed int, err error) {
	wait := pullBackoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(n.ctx, pullTimeout)
		r, c, err := n.pull(ctx, addr, runs)
		cancel()
		rows, changed = rows+r, changed+c
		if err == nil || n.ctx.Err() != nil {
			return rows, changed, err
		}
		n.c.inc(PullsFailed)
		if attempt == pullAttempts {
			return rows, changed, err
		}
		n.log.Warn("anti-entropy pull failed; trying again", "member", name, "attempt", attempt, "in", wait.String(), "err", err)
		select {
		case <-n.after(wait):
		case <-n.ctx.Done():
			return rows, changed, err
		}
		wait *= 2
	}
}
