package memnet

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/rmbd/rmbd/internal/sockets"
)

// Endpoint is one address on the network with what a node needs of its
// sockets: datagrams in and out, a stream listener and a dialler. It has
// the methods of node.Transport. Datagrams reach the handler only during
// Network.Deliver, on the caller's goroutine.
type Endpoint struct {
	n     *Network
	addr  netip.AddrPort
	l     net.Listener
	once  sync.Once
	queue atomic.Pointer[sockets.Queue]

	mu      sync.Mutex
	blocked map[netip.Addr]bool
	dropped uint64 // datagrams Block dropped
}

// Endpoint opens addr for datagrams and streams.
func (n *Network) Endpoint(addr netip.AddrPort) (*Endpoint, error) {
	l, err := n.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &Endpoint{n: n, addr: addr, l: l}, nil
}

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() netip.AddrPort { return e.addr }

// Readers returns 1: datagrams are handed over one at a time.
func (e *Endpoint) Readers() int { return 1 }

// Queue returns the receive queue a real socket would report: on this
// network, what SetQueue said (nothing queued by default: datagrams wait
// in the network until Deliver).
func (e *Endpoint) Queue(int) sockets.Queue {
	q := sockets.Queue{Size: 4 << 20}
	if p := e.queue.Load(); p != nil {
		q = *p
	}
	e.mu.Lock()
	q.Drops += e.dropped
	e.mu.Unlock()
	return q
}

// Block drops the datagrams from srcs before the handler sees them, as a
// socket filter does, counting them in Queue's drops.
func (e *Endpoint) Block(_ int, srcs []netip.Addr) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.blocked = map[netip.Addr]bool{}
	for _, a := range srcs {
		e.blocked[a] = true
	}
	return nil
}

// filtered reports whether Block drops a datagram from from, counting it.
func (e *Endpoint) filtered(from netip.AddrPort) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.blocked[from.Addr()] {
		e.dropped++
		return true
	}
	return false
}

// SetQueue makes Queue report q: tests stand in for a filling or
// overflowing socket with it.
func (e *Endpoint) SetQueue(q sockets.Queue) { e.queue.Store(&q) }

// ServePackets makes h the endpoint's datagram handler, as reader 0, until
// ctx ends; the channel it returns is closed then.
func (e *Endpoint) ServePackets(ctx context.Context, h func(reader int, frame []byte, from netip.AddrPort)) <-chan struct{} {
	e.n.Handle(e.addr, func(from netip.AddrPort, frame []byte) {
		if !e.filtered(from) {
			h(0, frame, from)
		}
	})
	done := make(chan struct{})
	context.AfterFunc(ctx, func() {
		e.n.deliver.Lock() // a delivery in progress finishes first
		e.n.Handle(e.addr, nil)
		e.n.deliver.Unlock()
		close(done)
	})
	return done
}

// WriteTo queues a datagram from the endpoint's address.
func (e *Endpoint) WriteTo(_ int, frame []byte, to netip.AddrPort) error {
	e.n.Send(e.addr, to, frame)
	return nil
}

// Listener returns the endpoint's stream listener.
func (e *Endpoint) Listener() net.Listener { return e.l }

// Dial opens a stream from the endpoint to addr.
func (e *Endpoint) Dial(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	return e.n.Dial(ctx, e.addr, to)
}

// Close stops the endpoint's datagrams and its listener.
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		e.n.Handle(e.addr, nil)
		e.l.Close()
	})
	return nil
}
