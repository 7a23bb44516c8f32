package replicate

import (
	"maps"
	"net/netip"
	"slices"
)

// Members. Every member is a push target of every named filter's
// segments, and of the default filter's first segment when its default
// filter is this node's (Match).

// MemberUp records a member alive at data. It reports whether a mismatch
// of default filters is new (to log once) and whether the default filter
// took the member as a push target.
func (r *Replicator) MemberUp(name string, data netip.AddrPort, match, sparse bool) (report, added bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, known := r.members[name]
	if !known || old.Data.Addr() != data.Addr() {
		r.memberIP(data.Addr(), 1)
		if known {
			r.memberIP(old.Data.Addr(), -1)
		}
	}
	if !known || old.Data != data {
		r.memberAddr(data, 1)
		if known {
			r.memberAddr(old.Data, -1)
		}
	}
	report = !match && !old.reported
	r.members[name] = Member{Data: data, Match: match, Sparse: sparse, reported: old.reported || report}
	if known && old.Data != data {
		r.removeTarget(old.Data, old.Match)
	}
	if known && old.Match && !match {
		r.def.g.RemoveMember(old.Data)
	}
	for _, ss := range r.seg {
		if ss != r.def && (!ss.placed || slices.Contains(ss.owners, name)) {
			ss.g.AddMember(data)
			ss.g.SetSparse(data, sparse)
		}
	}
	if !match {
		return report, false
	}
	added = r.def.g.AddMember(data)
	r.def.g.SetSparse(data, sparse)
	return report, added
}

// MemberDown forgets a member that failed or left.
func (r *Replicator) MemberDown(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.members[name]
	if !ok {
		return
	}
	r.removeTarget(m.Data, m.Match)
	r.memberIP(m.Data.Addr(), -1)
	r.memberAddr(m.Data, -1)
	delete(r.members, name)
}

// removeTarget stops pushing to data. Callers hold r.mu.
func (r *Replicator) removeTarget(data netip.AddrPort, match bool) {
	for _, ss := range r.seg {
		if ss != r.def || match {
			ss.g.RemoveMember(data)
		}
	}
}

// memberIP counts the members at ip. Callers hold r.mu.
func (r *Replicator) memberIP(ip netip.Addr, delta int) {
	if r.memberIPs[ip] += delta; r.memberIPs[ip] <= 0 {
		delete(r.memberIPs, ip)
	}
}

// memberAddr counts the members whose data address is a, in a new map
// (IsMember reads the old one meanwhile). Callers hold r.mu.
func (r *Replicator) memberAddr(a netip.AddrPort, delta int) {
	m := map[netip.AddrPort]int{}
	if old := r.memberAddrs.Load(); old != nil {
		m = maps.Clone(*old)
	}
	if m[a] += delta; m[a] <= 0 {
		delete(m, a)
	}
	r.memberAddrs.Store(&m)
}

// IsMember reports whether a member's data address is a. It takes no
// lock: every row sync received asks, while a tick holds r.mu.
func (r *Replicator) IsMember(a netip.AddrPort) bool {
	m := r.memberAddrs.Load()
	return m != nil && (*m)[a] > 0
}

// IsMemberIP reports whether a member is at ip.
func (r *Replicator) IsMemberIP(ip netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.memberIPs[ip] > 0
}

// Member returns what is known of a member.
func (r *Replicator) Member(name string) (Member, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.members[name]
	return m, ok
}

// Members returns how many members are alive.
func (r *Replicator) Members() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// MemberData returns each member's data address.
func (r *Replicator) MemberData() map[string]netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]netip.AddrPort, len(r.members))
	for name, m := range r.members {
		out[name] = m.Data
	}
	return out
}
