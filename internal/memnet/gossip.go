package memnet

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipTransport is memberlist's transport on the in-memory network: the
// members of a memberlist cluster run in one process on the same Network
// as the nodes' datagrams and streams, with no sockets, so a test can cut
// a node off and its gossip is cut with it. Pass it as
// memberlist.Config.Transport.
//
// Unlike the network's datagrams, gossip packets do not wait for Deliver:
// memberlist runs on its own timers, so a packet goes straight into the
// receiver's buffered PacketCh when it is written. Cuts (Cut, Partition)
// and the Drop fault apply to it as to a datagram; Duplicate, Reorder and
// MaxDelay are rounds of Deliver and do not. Like UDP, a packet to an
// address with no transport, a shut-down one or a full queue is lost and
// never blocks the sender. Streams are net.Pipe pairs; a cut link or an
// address with no transport refuses them at once. Gossip is not counted
// in Stats.
//
// Gossip addresses are their own namespace: a transport and an Endpoint
// may share an address (a node's data port and its gossip port may even
// be the same number) and never see each other's traffic. A cut decides
// on the addresses themselves, so a Partition meant to isolate a node
// lists its gossip address as well as its data address.
//
// The transport runs no goroutine of its own, so it works inside a
// testing/synctest bubble, where memberlist's timers run on the fake
// clock; open it inside the bubble its memberlist runs in, since its
// channels belong to the bubble that made them. Memberlist's Shutdown does
// not wait for its goroutines, and the bubble's clock stops when its
// function returns, so a probe still waiting on its timer then is a
// deadlock: sleep out the longer of TCPTimeout and ProbeInterval times
// AwarenessMaxMultiplier (10s of fake time for the LAN defaults) first.
type GossipTransport struct {
	n       *Network
	addr    netip.AddrPort
	key     netip.AddrPort // where it is registered in n's maps
	packets chan *memberlist.Packet
	streams *listener
	down    atomic.Bool
}

var _ memberlist.NodeAwareTransport = (*GossipTransport)(nil)

// gossipQueue bounds the packets a transport holds for memberlist; more
// are lost, as a full socket buffer loses them.
const gossipQueue = 256

// gossipZone marks the keys gossip transports are registered under in the
// network's handler and listener maps: Network keeps no map of its own for
// them, and a zone no data address carries keeps the two namespaces apart.
// Nothing Sends to such a key, so Deliver never reaches a transport.
const gossipZone = "memnet-gossip"

// gossipKey returns the key addr's transport is registered under. IPv4
// addresses take their IPv6-mapped form, which can carry a zone.
func gossipKey(addr netip.AddrPort) netip.AddrPort {
	ip := addr.Addr()
	return netip.AddrPortFrom(netip.AddrFrom16(ip.As16()).WithZone(gossipZone+ip.Zone()), addr.Port())
}

// Gossip opens a memberlist transport at addr; a second one at the same
// address is refused until the first is shut down. An IPv4-mapped
// address is taken as the IPv4 one, which is how memberlist writes it.
func (n *Network) Gossip(addr netip.AddrPort) (*GossipTransport, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !addr.IsValid() {
		return nil, fmt.Errorf("memnet: gossip address %v is not valid", addr)
	}
	key := gossipKey(addr)
	t := &GossipTransport{n: n, addr: addr, key: key, packets: make(chan *memberlist.Packet, gossipQueue),
		streams: &listener{n: n, addr: key, conns: make(chan net.Conn, acceptQueue), closed: make(chan struct{})}}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.listeners[key]; ok {
		return nil, &net.OpError{Op: "listen", Net: "memnet", Addr: tcpAddr(addr), Err: syscall.EADDRINUSE}
	}
	n.listeners[key] = t.streams
	n.handlers[key] = t.receive
	return t, nil
}

// Addr returns the transport's address; its String is what
// memberlist.Join takes.
func (t *GossipTransport) Addr() netip.AddrPort { return t.addr }

// FinalAdvertiseAddr returns the transport's address, whatever memberlist
// was configured with: its peers reach it there and nowhere else, so
// Config's BindAddr, BindPort, AdvertiseAddr and AdvertisePort play no part.
func (t *GossipTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IP(t.addr.Addr().AsSlice()), int(t.addr.Port()), nil
}

// WriteTo sends a packet to addr ("IP:PORT"); see WriteToAddress.
func (t *GossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet to a.Addr and returns at once: lost or
// not, as UDP would. It fails only for an address that does not parse or
// once this transport is shut down.
func (t *GossipTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	to, err := t.peer("write", a)
	if err != nil {
		return time.Time{}, err
	}
	t.n.gossipPacket(t.addr, to, b)
	return time.Now(), nil
}

// PacketCh returns the packets sent to the transport.
func (t *GossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout opens a stream to addr ("IP:PORT"); see DialAddressTimeout.
func (t *GossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to a.Addr, or is refused at once when
// no transport is open there, the link is cut either way or the
// receiver's backlog is full; so the timeout is never waited out.
func (t *GossipTransport) DialAddressTimeout(a memberlist.Address, _ time.Duration) (net.Conn, error) {
	to, err := t.peer("dial", a)
	if err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	if t.n.gossipStream(t.addr, to, &conn{Conn: server, local: to, remote: t.addr}) {
		return &conn{Conn: client, local: t.addr, remote: to}, nil
	}
	client.Close()
	server.Close()
	return nil, &net.OpError{Op: "dial", Net: "memnet", Source: tcpAddr(t.addr), Addr: tcpAddr(to), Err: syscall.ECONNREFUSED}
}

// StreamCh returns the streams dialled to the transport.
func (t *GossipTransport) StreamCh() <-chan net.Conn { return t.streams.conns }

// Shutdown closes the transport: packets to it are lost from now on,
// dials to it and its own writes and dials fail, and the streams dialled
// and not yet taken from StreamCh are closed. Memberlist's goroutines
// stop on their own shutdown channel, not on this. It may be called more
// than once; the address may be opened again after it.
func (t *GossipTransport) Shutdown() error {
	t.down.Store(true)
	t.n.mu.Lock()
	if t.n.listeners[t.key] == t.streams { // registered together, removed together
		delete(t.n.listeners, t.key)
		delete(t.n.handlers, t.key)
	}
	t.n.mu.Unlock()
	return t.streams.Close()
}

// peer parses a's address for op, failing once the transport is shut
// down.
func (t *GossipTransport) peer(op string, a memberlist.Address) (netip.AddrPort, error) {
	if t.down.Load() {
		return netip.AddrPort{}, &net.OpError{Op: op, Net: "memnet", Source: tcpAddr(t.addr), Err: net.ErrClosed}
	}
	to, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("memnet: gossip %s to %q: %w", op, a.Addr, err)
	}
	return netip.AddrPortFrom(to.Addr().Unmap(), to.Port()), nil
}

// receive queues a packet for memberlist, or loses it when the queue is
// full. It is the transport's handler in the network's map, called only
// by gossipPacket, under n.mu: a packet is queued while the transport is
// registered or not at all.
func (t *GossipTransport) receive(from netip.AddrPort, frame []byte) {
	p := &memberlist.Packet{Buf: bytes.Clone(frame), From: net.UDPAddrFromAddrPort(from), Timestamp: time.Now()}
	select {
	case t.packets <- p:
	default:
	}
}

// gossipPacket hands a packet from → to to to's transport unless there is
// none, the link from → to is cut or the Drop fault takes it, drawn from
// a generator of its own: memberlist's goroutines send in no set order,
// and the datagrams' fates must follow the seed alone.
func (n *Network) gossipPacket(from, to netip.AddrPort, frame []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.handlers[gossipKey(to)]
	if !ok || n.cut != nil && n.cut(from, to) || n.faults.Drop > 0 && n.gossipRng.Float64() < n.faults.Drop {
		return
	}
	h(from, frame)
}

// gossipStream queues c on to's transport unless there is none, the link
// is cut either way or its backlog is full. It queues under n.mu, so
// nothing is queued after Shutdown has unregistered the transport and
// everything queued before is closed by the listener's Close.
func (n *Network) gossipStream(from, to netip.AddrPort, c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.listeners[gossipKey(to)]
	if !ok || n.cut != nil && (n.cut(from, to) || n.cut(to, from)) {
		return false
	}
	select {
	case l.conns <- c:
		return true
	default:
		return false
	}
}
