// Package access says who may do what on a node, for every protocol it
// speaks (its own frames and RESP alike). Clients add and ask without a
// key; Policy.Allow and Policy.AllowRead narrow who may. Admin requests
// (peer, stats, members, pulls, dropping filters) come from loopback,
// from cluster members — proved by a sealed frame with a cluster key,
// known by address without one — or from Policy.AllowAdmin. Creating a
// filter, by asking or by adding to a name that has none, is for admins
// and for the clients Policy.AllowCreate names.
//
// A node in protected mode (Policy.Protected: it listens beyond loopback
// with no cluster key and no allow rule) serves loopback alone, as Redis
// does: everyone else is refused everything, and told how to configure
// the node (ProtectedMessage).
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
	// Admin: peer, stats, members, pulls, drop (--allow-admin, loopback
	// and members).
	Admin
	// Create: create a filter, by asking or by adding to it (admins and
	// --auto-create's list).
	Create
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
	case Create:
		return "--auto-create"
	}
	return ""
}

// Policy is who may do what. The zero value lets anyone add and read,
// and loopback alone administer and create.
type Policy struct {
	// Allow, when not empty, lists the clients that may add; AllowRead
	// those that may read. AllowAdmin adds to loopback and members those
	// that may administer; AllowCreate adds to admins those that may
	// create filters.
	Allow, AllowRead, AllowAdmin, AllowCreate []netip.Prefix
	// Keyed: the cluster has a key, so a member proves itself by sealing
	// what it sends, and an address alone proves nothing.
	Keyed bool
	// Protected: protected mode, loopback alone may do anything.
	Protected bool
	// Member reports whether addr is a cluster member's (consulted only
	// without a key); nil knows none.
	Member func(addr netip.Addr) bool
}

// Rules reports whether the policy names anyone beyond its defaults:
// an allow rule of any kind, which takes a node out of protected mode.
func (p *Policy) Rules() bool {
	return len(p.Allow)+len(p.AllowRead)+len(p.AllowAdmin)+len(p.AllowCreate) > 0
}

// Open reports whether a request from `from` may be served at all: not
// in protected mode, or from loopback.
func (p *Policy) Open(from netip.Addr) bool {
	return !p.Protected || from.Unmap().IsLoopback()
}

// Allows reports whether a request from `from` may do op; sealed: it came
// sealed with the cluster key.
func (p *Policy) Allows(op Op, from netip.Addr, sealed bool) bool {
	if !p.Open(from) {
		return false
	}
	switch op {
	case Add:
		return len(p.Allow) == 0 || contains(p.Allow, from)
	case Read:
		return len(p.AllowRead) == 0 || contains(p.AllowRead, from)
	case Admin:
		return p.admin(from, sealed)
	case Create:
		return p.admin(from, sealed) || contains(p.AllowCreate, from)
	}
	return true
}

// IsAdmin reports whether a request from `from` is an admin's: whether
// it is free of the quotas other creators are held to.
func (p *Policy) IsAdmin(from netip.Addr, sealed bool) bool {
	return p.Open(from) && p.admin(from, sealed)
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

// ProtectedMessage is what a node in protected mode answers anyone but
// loopback: why, and the three ways out.
const ProtectedMessage = "rmbd is in protected mode: it listens beyond loopback with no cluster key and no allow rule, " +
	"so it answers loopback alone. Give every node a key (rmbd keygen; --cluster-key-file), " +
	"name who may connect (--allow, --allow-read, --allow-admin, --auto-create), " +
	"or start it with --protected-mode=no if everyone who can reach it may use it"
