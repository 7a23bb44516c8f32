package node

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// resolveTimeout bounds one host lookup for a peer frame.
const resolveTimeout = 2 * time.Second

// addPeer adds host:port as a push target. IP literals are added at once;
// host names are looked up in the background (at most cap(n.resolving) at
// a time, more are counted and dropped) so that a slow resolver never
// stalls a reader.
func (n *Node) addPeer(host string, port uint16) {
	if ip, err := netip.ParseAddr(host); err == nil {
		n.addPeerAddr(netip.AddrPortFrom(ip.Unmap(), port))
		return
	}
	select {
	case n.resolving <- struct{}{}:
	default:
		n.c.inc(Unresolved)
		n.log.Warn("peer dropped: too many lookups in flight", "host", host)
		return
	}
	n.lookups.Add(1)
	if !n.spawn(func() {
		defer n.lookups.Done()
		defer func() { <-n.resolving }()
		ctx, cancel := context.WithTimeout(n.ctx, resolveTimeout)
		defer cancel()
		ips, err := n.cfg.Resolver.LookupNetIP(ctx, "ip", host)
		ip, ok := n.pickAddr(ips)
		if err != nil || !ok {
			n.c.inc(Unresolved)
			n.log.Warn("peer host did not resolve", "host", host, "err", err)
			return
		}
		n.addPeerAddr(netip.AddrPortFrom(ip, port))
	}) {
		<-n.resolving // shutting down
		n.lookups.Done()
	}
}

// pickAddr chooses the first address our UDP socket can reach: IPv4 for
// an IPv4 socket, otherwise preferring IPv4 (as the original rmbd did).
func (n *Node) pickAddr(ips []netip.Addr) (netip.Addr, bool) {
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), true
		}
	}
	if n.Addr().Addr().Is4() {
		return netip.Addr{}, false
	}
	if len(ips) > 0 {
		return ips[0], true
	}
	return netip.Addr{}, false
}

func (n *Node) addPeerAddr(a netip.AddrPort) {
	if n.isSelf(a) {
		n.c.inc(SelfPeers)
		n.log.Debug("ignoring peer request naming this node", "peer", a.String())
		return
	}
	n.mu.Lock()
	added := n.g.AddPeer(a)
	count := len(n.g.Peers())
	n.mu.Unlock()
	if added {
		n.log.Info("peer added", "peer", a.String(), "peers", count)
	}
}

// isSelf reports whether a is this node's own address: the bound address,
// or, when bound to every interface, any local address on our port.
func (n *Node) isSelf(a netip.AddrPort) bool {
	own := n.Addr()
	if a == own {
		return true
	}
	if a.Port() != own.Port() || !own.Addr().IsUnspecified() {
		return false
	}
	if a.Addr().IsLoopback() || a.Addr().IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a.Addr() {
			return true
		}
	}
	return false
}
