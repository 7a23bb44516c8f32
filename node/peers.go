package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/hostport"
	"github.com/rmbd/rmbd/wire"
)

// resolveTimeout bounds one host lookup for a peer frame.
const resolveTimeout = 2 * time.Second

// peerOutcome is what became of a request to push rows to an address.
type peerOutcome struct {
	addr       netip.AddrPort
	challenged bool   // a challenge went to addr
	state      uint8  // wire.PeerChallenged or wire.PeerKnown when taken
	code       uint16 // wire.Code… when refused
	why        string
}

// addPeer makes host:port a push target, unverified until it answers the
// challenge sent to it; trusted (the operator named it) makes the node
// challenge it again each tick until it does. IP literals are handled at
// once; host names are looked up in the background (at most
// cap(n.resolving) at a time, more are refused) so that a slow resolver
// never stalls a reader. done, if not nil, gets the outcome, on whatever
// goroutine has it.
func (n *Node) addPeer(host string, port uint16, trusted bool, done func(peerOutcome)) {
	if done == nil {
		done = func(peerOutcome) {}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		done(n.addPeerAddr(netip.AddrPortFrom(ip.Unmap(), port), trusted))
		return
	}
	select {
	case n.gates.resolving <- struct{}{}:
	default:
		n.meters.c.Inc(counter.Unresolved)
		n.log.Warn("peer refused: too many lookups in flight", "host", host)
		done(peerOutcome{code: wire.CodeBusy, why: "too many host names being looked up; try again"})
		return
	}
	if !n.life.spawn(func() {
		defer func() { <-n.gates.resolving }()
		ctx, cancel := context.WithTimeout(n.life.ctx, resolveTimeout)
		defer cancel()
		ips, err := n.cfg.Resolver.LookupNetIP(ctx, "ip", host)
		ip, ok := hostport.Pick(ips, n.Addr().Addr().Is4())
		if err != nil || !ok {
			n.meters.c.Inc(counter.Unresolved)
			n.log.Warn("peer host did not resolve", "host", host, "err", err)
			done(peerOutcome{code: wire.CodeRefused, why: fmt.Sprintf("%s does not resolve to an address this node can reach", host)})
			return
		}
		done(n.addPeerAddr(netip.AddrPortFrom(ip, port), trusted))
	}) {
		<-n.gates.resolving // shutting down
		done(peerOutcome{code: wire.CodeUnavailable, why: "shutting down"})
	}
}

// addPeerAddr makes a a push target of the default filter and
// challenges it (gossip's challenges).
func (n *Node) addPeerAddr(a netip.AddrPort, trusted bool) peerOutcome {
	if n.isSelf(a) {
		n.meters.c.Inc(counter.SelfPeers)
		n.log.Debug("ignoring peer request naming this node", "peer", a.String())
		return peerOutcome{addr: a, code: wire.CodeRefused, why: a.String() + " is this node"}
	}
	st, count := n.repl.RequestPeer(a, trusted)
	switch st {
	case gossip.PeerKnown:
		return peerOutcome{addr: a, state: wire.PeerKnown}
	case gossip.PeerChallenged:
		n.log.Info("peer challenged; rows follow once it answers", "peer", a.String(), "peers", count)
		return peerOutcome{addr: a, state: wire.PeerChallenged, challenged: true}
	}
	n.log.Warn("peer refused: the peer table is full", "peer", a.String(), "peers", count)
	return peerOutcome{addr: a, code: wire.CodeRefused, why: "the peer table is full"}
}

// AddPeer makes addr a static push target, as --peer does: it is
// challenged each tick until it answers, and gets rows from then on.
func (n *Node) AddPeer(addr netip.AddrPort) { n.addPeerAddr(addr, true) }

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
