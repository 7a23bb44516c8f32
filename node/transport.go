package node

import (
	"context"
	"net"
	"net/netip"

	"github.com/rmbd/rmbd/internal/sockets"
)

// Transport carries a node's datagrams and streams, all on one address.
// The real one is UDP and TCP sockets (internal/sockets); tests run nodes
// on an in-memory network (internal/memnet) through the same interface.
type Transport interface {
	// Addr is where datagrams and streams arrive, and where every reply
	// and push leaves from.
	Addr() netip.AddrPort
	// Readers returns how many datagram readers ServePackets runs.
	Readers() int
	// Queue returns reader's receive queue: how full it is, and how many
	// datagrams it dropped because it was full. It may cost a system call.
	Queue(reader int) sockets.Queue
	// Block makes reader's socket drop, unread, the datagrams from srcs
	// (none: lift it); errors.ErrUnsupported where it cannot.
	Block(reader int, srcs []netip.Addr) error
	// ServePackets calls h with every datagram received, on the goroutine
	// of the reader that got it, until ctx ends; the channel is closed
	// once no reader will call h again. h must not keep frame.
	ServePackets(ctx context.Context, h func(reader int, frame []byte, from netip.AddrPort)) <-chan struct{}
	// WriteTo sends a datagram from Addr through the given reader's socket.
	WriteTo(reader int, frame []byte, to netip.AddrPort) error
	// Listener accepts streams on Addr.
	Listener() net.Listener
	// Dial opens a stream to addr.
	Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// Close releases everything.
	Close() error
}

// Resolver looks up host names; *net.Resolver is one. Tests inject their
// own so that no test asks the system's DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}
