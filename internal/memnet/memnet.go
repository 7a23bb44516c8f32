// Package memnet is an in-memory network for tests: datagrams and streams
// between addresses, with no sockets and no clock. Nothing moves on its
// own: a test sends, then calls Deliver, which hands every queued datagram
// (and the replies it causes, until the network is quiet) to its receiver
// on the caller's goroutine. Faults are the test's to choose and are
// drawn from a seeded generator, so a run replays exactly: loss,
// duplication, reordering, delay in delivery rounds, and cut links.
//
//	nw := memnet.New(1)
//	a, b := addr(1), addr(2)
//	nw.Handle(b, func(from netip.AddrPort, frame []byte) { nw.Send(b, from, reply) })
//	nw.Send(a, b, frame)
//	nw.Deliver()
//
// Streams are net.Pipe pairs: Listen registers an address, Dial connects
// to it unless the link is cut. A node served by an Endpoint (see
// endpoint.go) runs on the network as on real sockets.
package memnet

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
)

// Handler receives a datagram. frame is only valid during the call.
type Handler func(from netip.AddrPort, frame []byte)

// Faults are what the network does to datagrams. The zero value delivers
// everything once, in order, at once.
type Faults struct {
	// Drop is the chance a datagram is lost.
	Drop float64
	// Duplicate is the chance a datagram is delivered twice.
	Duplicate float64
	// Reorder delivers each round's datagrams in random order.
	Reorder bool
	// MaxDelay holds each datagram for up to this many delivery rounds.
	MaxDelay int
}

// Stats count what the network did.
type Stats struct {
	Sent, Delivered, Dropped, Duplicated, Cut, Unaddressed int
	Bytes                                                  int // bytes of datagrams delivered
}

// Network is the in-memory network. It is safe for concurrent use; Deliver
// calls handlers one at a time.
type Network struct {
	mu  sync.Mutex
	rng *rand.Rand
	// gossipRng draws the fates of gossip packets, which memberlist's
	// goroutines send in no set order: apart from rng, so that the
	// datagrams' fates still follow the seed alone.
	gossipRng *rand.Rand
	faults    Faults
	cut       func(from, to netip.AddrPort) bool
	tap       func(from, to netip.AddrPort, frame []byte)
	queue     []datagram
	round     uint64
	handlers  map[netip.AddrPort]Handler
	listeners map[netip.AddrPort]*listener
	stats     Stats

	deliver sync.Mutex // one Deliver at a time: handlers never run concurrently
}

type datagram struct {
	from, to netip.AddrPort
	frame    []byte
	due      uint64
}

// maxDeliveries bounds one Deliver: a network that never goes quiet is a
// bug in the test or the code under it.
const maxDeliveries = 10_000_000

// New returns an empty network whose faults are drawn from seed.
func New(seed uint64) *Network {
	return &Network{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), gossipRng: rand.New(rand.NewPCG(seed, 0x90551b)),
		handlers: map[netip.AddrPort]Handler{}, listeners: map[netip.AddrPort]*listener{}}
}

// SetFaults sets what happens to datagrams from now on.
func (n *Network) SetFaults(f Faults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = f
}

// Cut drops every datagram from → to for which cut reports true, and
// refuses streams between the two in either direction; nil heals.
func (n *Network) Cut(cut func(from, to netip.AddrPort) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = cut
}

// Linked reports whether a and b reach each other: no cut either way.
func (n *Network) Linked(a, b netip.AddrPort) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut == nil || !n.cut(a, b) && !n.cut(b, a)
}

// Partition cuts every link between addresses of different groups;
// addresses in no group reach everyone.
func (n *Network) Partition(groups ...[]netip.AddrPort) {
	side := map[netip.AddrPort]int{}
	for i, g := range groups {
		for _, a := range g {
			side[a] = i + 1
		}
	}
	n.Cut(func(from, to netip.AddrPort) bool {
		a, b := side[from], side[to]
		return a != 0 && b != 0 && a != b
	})
}

// Tap calls f with a copy of every datagram sent from now on, as it is
// sent (an eavesdropper, who may replay it later); nil stops.
func (n *Network) Tap(f func(from, to netip.AddrPort, frame []byte)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tap = f
}

// Handle makes h the receiver of datagrams sent to addr; nil removes it.
// An address has one receiver: a second is a bug in the test (it panics).
func (n *Network) Handle(addr netip.AddrPort, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h == nil {
		delete(n.handlers, addr)
		return
	}
	if _, ok := n.handlers[addr]; ok {
		panic("memnet: " + addr.String() + " already has a receiver")
	}
	n.handlers[addr] = h
}

// Send queues a copy of frame from → to.
func (n *Network) Send(from, to netip.AddrPort, frame []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	due := n.round
	if n.faults.MaxDelay > 0 {
		due += uint64(n.rng.IntN(n.faults.MaxDelay + 1))
	}
	n.queue = append(n.queue, datagram{from, to, bytes.Clone(frame), due})
	n.stats.Sent++
	if n.tap != nil {
		n.tap(from, to, bytes.Clone(frame))
	}
}

// Pending returns the datagrams queued and not yet delivered.
func (n *Network) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue)
}

// Stats returns what the network has done so far.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Deliver delivers datagrams round by round until none is queued,
// including those sent by the handlers it calls, and returns how many it
// delivered.
func (n *Network) Deliver() int {
	n.deliver.Lock()
	defer n.deliver.Unlock()
	total := 0
	for {
		batch, ok := n.nextRound()
		if !ok {
			return total
		}
		for _, d := range batch {
			h, copies := n.fate(d)
			for range copies {
				h(d.from, d.frame)
				total++
			}
		}
		if total > maxDeliveries {
			panic(fmt.Sprintf("memnet: over %d deliveries without going quiet", maxDeliveries))
		}
	}
}

// nextRound takes the datagrams due in the current round and moves to the
// next; ok is false when nothing is queued.
func (n *Network) nextRound() (batch []datagram, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.queue) == 0 {
		return nil, false
	}
	rest := n.queue[:0:0]
	for _, d := range n.queue {
		if d.due <= n.round {
			batch = append(batch, d)
		} else {
			rest = append(rest, d)
		}
	}
	n.queue = rest
	n.round++
	if n.faults.Reorder {
		n.rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	}
	return batch, true
}

// fate decides whether d is delivered, to whom, and how many times.
func (n *Network) fate(d datagram) (Handler, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.handlers[d.to]
	switch {
	case !ok:
		n.stats.Unaddressed++
		return nil, 0
	case n.cut != nil && n.cut(d.from, d.to):
		n.stats.Cut++
		return nil, 0
	case n.rng.Float64() < n.faults.Drop:
		n.stats.Dropped++
		return nil, 0
	}
	copies := 1
	if n.rng.Float64() < n.faults.Duplicate {
		copies = 2
		n.stats.Duplicated++
	}
	n.stats.Delivered += copies
	n.stats.Bytes += copies * len(d.frame)
	return h, copies
}
