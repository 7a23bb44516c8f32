package membership

import (
	"net/netip"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/wire"
)

// delegate is Membership as memberlist.Delegate.
type delegate Membership

// NodeMeta returns this node's metadata.
func (d *delegate) NodeMeta(limit int) []byte {
	return wire.AppendNodeMeta(nil, (*Membership)(d).meta())
}

// NotifyMsg hands a member's broadcast to the host.
func (d *delegate) NotifyMsg(b []byte) { d.host.NotifyMsg(b) }

// GetBroadcasts returns what Broadcast queued, as much as fits.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.broadcasts.GetBroadcasts(overhead, limit)
}

// LocalState is this node's push/pull state: name and row digests.
func (d *delegate) LocalState(bool) []byte { return d.host.AppendState(nil) }

// MergeRemoteState hands a member's state to the host. States that do
// not decode, or come from a member never seen with readable metadata, are
// counted and dropped. A member this node holds dead is taken: its
// push/pull shows it is back, before the news that it is alive (it must
// refute its death first) — and a member back after the whole cluster
// restarted may alone hold some rows.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	m := (*Membership)(d)
	s, err := wire.DecodeLocalState(buf)
	if err != nil {
		m.badState.Add(1)
		m.log.Debug("push/pull state refused", "err", err)
		return
	}
	m.mu.Lock()
	r, ok := m.members[string(s.Name)]
	ok = ok && r.readable
	var from Member
	if ok {
		from = r.Member
	}
	m.mu.Unlock()
	if !ok {
		m.badState.Add(1)
		m.log.Debug("push/pull state from a member never seen", "member", string(s.Name))
		return
	}
	m.host.MergeState(from, s, join)
}

// events is Membership as memberlist.EventDelegate. memberlist calls it
// under its own lock: the node it gets is read there and copied.
type events Membership

// NotifyJoin reports a member that joined.
func (e *events) NotifyJoin(n *memberlist.Node) { (*Membership)(e).up(n) }

// NotifyUpdate reports a member whose metadata changed.
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Membership)(e).up(n) }

// NotifyLeave reports a member that failed or left, and forgets its
// clock: one that failed is joined again by the rejoin loop. (memberlist
// does not say which: a member flags its metadata before it leaves.)
func (e *events) NotifyLeave(n *memberlist.Node) {
	m := (*Membership)(e)
	if n.Name == m.cfg.Name {
		return
	}
	m.mu.Lock()
	r, ok := m.members[n.Name]
	if !ok {
		r = &record{Member: Member{Name: n.Name, Gossip: n.Address()}}
		m.members[n.Name] = r
	}
	left := r.readable && r.Meta.Flags&wire.MetaLeaving != 0
	r.state, r.since = wire.MemberDead, m.now()
	delete(m.clocks, n.Name)
	if left {
		r.state = wire.MemberLeft
	}
	down, report := r.Member, r.readable
	m.mu.Unlock()
	if report {
		m.host.MemberDown(down, left)
	}
	m.log.Info("member failed or left", "member", n.Name, "gossip", n.Address(), "left", left)
}

// up records a member alive and reports it to the host, unless its
// metadata is unreadable (counted) or says it is leaving.
func (m *Membership) up(n *memberlist.Node) {
	if n.Name == m.cfg.Name {
		return
	}
	r := &record{Member: Member{Name: n.Name, Gossip: n.Address()}, state: wire.MemberAlive}
	meta, err := wire.DecodeNodeMeta(n.Meta)
	ip, ok := netip.AddrFromSlice(n.Addr)
	if err == nil && ok {
		r.readable, r.Meta, r.Data = true, meta, netip.AddrPortFrom(ip.Unmap(), meta.DataPort)
	}
	m.mu.Lock()
	r.since = m.now()
	old, known := m.members[n.Name]
	if known && old.state == wire.MemberAlive {
		r.since = old.since // an update, not a change of state
	}
	m.members[n.Name] = r
	m.mu.Unlock()
	back := known && (old.state != wire.MemberAlive || old.Meta.SealID != meta.SealID) // from a failure, or restarted
	if r.readable && (back || !known && m.cfg.SwapNew && m.now().Sub(m.started) < swapNewFor) {
		m.swapSoon(r.Gossip)
	}
	switch {
	case !r.readable:
		m.badMeta.Add(1)
		m.log.Warn("member ignored: unreadable metadata", "member", n.Name, "gossip", r.Gossip, "err", err)
	case meta.Flags&wire.MetaLeaving != 0:
		m.host.MemberDown(r.Member, true) // on its way out: stop pushing to it now
	default:
		m.host.MemberUp(r.Member)
	}
}
