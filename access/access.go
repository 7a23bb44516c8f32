// Package access says who may do what on a node, for every protocol it
// speaks (its own frames and RESP alike). Clients add and ask without a
// key; Policy.Allow and Policy.AllowRead narrow who may. Admin requests
// (peer, stats, members, pulls, creating and dropping filters) come from
// loopback, from cluster members — proved by a sealed frame with a
// cluster key, known by address without one — or from Policy.AllowAdmin.
//
//	p := access.Policy{AllowRead: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
//	p.Allows(access.Read, netip.MustParseAddr("192.0.2.1"), false) // false
package access

import "net/netip"

// Op is what a request asks to do.
type Op uint8

// Operations.
const (
	// Any is what every client that may connect may do (ping, echo).
	Any Op = iota
	// Add: add keys (--allow).
	Add
	// Read: ask for keys and describe filters (--allow-read).
	Read
	// Admin: peer, stats, members, pulls, create and drop
	// (--allow-admin, loopback and members).
	Admin
)

// Flag names the flag that grants op, for the messages that refuse it.
func (op Op) Flag() string {
	switch op {
	case Add:
		return "--allow"
	case Read:
		return "--allow-read"
	case Admin:
		return "--allow-admin"
	}
	return ""
}

// Policy is who may do what. The zero value lets anyone add and read,
// and loopback alone administer.
type Policy struct {
	// Allow, when not empty, lists the clients that may add; AllowRead
	// those that may read. AllowAdmin adds to loopback and members those
	// that may administer.
	Allow, AllowRead, AllowAdmin []netip.Prefix
	// Keyed: the cluster has a key, so a member proves itself by sealing
	// what it sends, and an address alone proves nothing.
	Keyed bool
	// Member reports whether addr is a cluster member's (consulted only
	// without a key); nil knows none.
	Member func(addr netip.Addr) bool
}

// Allows reports whether a request from `from` may do op; sealed: it came
// sealed with the cluster key.
func (p *Policy) Allows(op Op, from netip.Addr, sealed bool) bool {
	switch op {
	case Add:
		return len(p.Allow) == 0 || contains(p.Allow, from)
	case Read:
		return len(p.AllowRead) == 0 || contains(p.AllowRead, from)
	case Admin:
		return p.admin(from, sealed)
	}
	return true
}

func (p *Policy) admin(from netip.Addr, sealed bool) bool {
	ip := from.Unmap()
	switch {
	case sealed || ip.IsLoopback() || contains(p.AllowAdmin, ip):
		return true
	case p.Keyed || p.Member == nil:
		return false // with a key, a member proves itself by sealing
	}
	return p.Member(ip)
}

func contains(ps []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
