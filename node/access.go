package node

import (
	"net/netip"
)

// Who may do what. Clients add and ask without a key; Config.Allow and
// Config.AllowRead narrow who may. Admin requests (peer, stats, members,
// pull) come from loopback, from members (authenticated by a sealed
// frame with a cluster key, by address without one) or from
// Config.AllowAdmin.

func contains(ps []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// mayAdd reports whether a client at from may add.
func (n *Node) mayAdd(from netip.AddrPort) bool {
	return len(n.cfg.Allow) == 0 || contains(n.cfg.Allow, from.Addr())
}

// mayRead reports whether a client at from may ask has.
func (n *Node) mayRead(from netip.AddrPort) bool {
	return len(n.cfg.AllowRead) == 0 || contains(n.cfg.AllowRead, from.Addr())
}

// mayAdmin reports whether from may make an admin request; sealed: the
// request came sealed with the cluster key.
func (n *Node) mayAdmin(from netip.AddrPort, sealed bool) bool {
	ip := from.Addr().Unmap()
	if sealed || ip.IsLoopback() || contains(n.cfg.AllowAdmin, ip) {
		return true
	}
	if n.sealer != nil {
		return false // with a key, a member proves itself by sealing
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.memberIPs[ip] > 0
}
