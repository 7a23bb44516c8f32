package gossip

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/require"
)

// network is an in-memory cluster of filters and gossips on a memnet
// network, driven by logical ticks: no sockets, no sleeping. Frames queue
// up and are delivered by deliver, with whatever faults the test sets.
type network struct {
	t     testing.TB
	net   *memnet.Network
	nodes map[netip.AddrPort]*tnode
	order []netip.AddrPort
	rng   *rand.Rand

	sent map[netip.AddrPort][][]byte // every frame each node received, for inspection
}

type tnode struct {
	addr netip.AddrPort
	f    *filter.Filter
	g    *Gossip
	out  Outbox
	deaf bool // receives but never acks
}

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(8000+i))
}

func newNetwork(t testing.TB, n int, cfg Config, mk func() *filter.Filter) *network {
	nw := &network{t: t, net: memnet.New(uint64(n)), nodes: map[netip.AddrPort]*tnode{},
		rng: rand.New(rand.NewPCG(1, uint64(n))), sent: map[netip.AddrPort][][]byte{}}
	for i := range n {
		cfg.Seed = uint64(i)
		nw.add(addr(i), cfg, mk())
	}
	return nw
}

func (nw *network) add(a netip.AddrPort, cfg Config, f *filter.Filter) *tnode {
	g, err := New(cfg, f)
	require.NoError(nw.t, err)
	n := &tnode{addr: a, f: f, g: g}
	nw.nodes[a] = n
	nw.order = append(nw.order, a)
	nw.net.Handle(a, func(from netip.AddrPort, frame []byte) { nw.receive(n, from, frame) })
	return n
}

func (nw *network) node(i int) *tnode { return nw.nodes[nw.order[i]] }

// faults sets what the network does to frames; the zero value heals.
func (nw *network) faults(drop, dup float64, reorder bool) {
	nw.net.SetFaults(memnet.Faults{Drop: drop, Duplicate: dup, Reorder: reorder})
}

// send hands n's outbox to the network and empties it.
func (nw *network) send(n *tnode) {
	for to, frame := range n.out.All() {
		nw.net.Send(n.addr, to, frame)
	}
	n.out.Reset()
}

// tick ticks every node once, queueing what they send.
func (nw *network) tick() {
	for _, a := range nw.order {
		n := nw.nodes[a]
		n.g.Tick(&n.out)
		nw.send(n)
	}
}

// deliver hands every queued frame (and the replies they cause, until the
// network is quiet) to its receiver.
func (nw *network) deliver() { nw.net.Deliver() }

func (nw *network) receive(n *tnode, from netip.AddrPort, frame []byte) {
	nw.sent[n.addr] = append(nw.sent[n.addr], bytes.Clone(frame))
	reply := func(b []byte) {
		if !n.deaf {
			nw.net.Send(n.addr, from, b)
		}
	}
	switch wire.Type(frame[0]) {
	case wire.TypeRowSync, wire.TypeSparseSync:
		s, err := wire.DecodeRowSync(frame)
		require.NoError(nw.t, err)
		if ack, _, err := MergeRowSync(n.f, s, nil, !n.g.IsMember(from)); err == nil {
			reply(ack)
		}
	case wire.TypeRowAck:
		a, err := wire.DecodeRowAck(frame)
		require.NoError(nw.t, err)
		n.g.RowAck(from, a, &n.out)
		nw.send(n)
	case wire.TypeSync:
		s, err := wire.DecodeClassicSync(frame)
		require.NoError(nw.t, err)
		if ack, _, err := MergeClassicSync(n.f, s, nil); err == nil {
			reply(ack)
		}
	case wire.TypeAck:
		n.g.ClassicAck(from)
	default:
		nw.t.Fatalf("unexpected frame %v", wire.Type(frame[0]))
	}
}

// round ticks and delivers once.
func (nw *network) round() { nw.tick(); nw.deliver() }

// peerAll makes every node push to every other, as static peers.
func (nw *network) peerAll() {
	for _, a := range nw.order {
		for _, b := range nw.order {
			if a != b {
				peerOf(nw.nodes[a].g, b)
			}
		}
	}
}

// joinAll makes every node a cluster member of every other.
func (nw *network) joinAll() {
	for _, a := range nw.order {
		for _, b := range nw.order {
			if a != b {
				nw.nodes[a].g.AddMember(b)
			}
		}
	}
}

// joinAllSparse makes every node a cluster member of every other, each
// taking sparse row syncs.
func (nw *network) joinAllSparse() {
	nw.joinAll()
	for _, a := range nw.order {
		for _, b := range nw.order {
			nw.nodes[a].g.SetSparse(b, true)
		}
	}
}

// antiEntropy has every node compare digests with every other it can reach
// and pull the rows that differ, as the node does over memberlist's
// push/pull and TCP.
func (nw *network) antiEntropy() {
	for _, a := range nw.order {
		for _, b := range nw.order {
			if a == b || nw.cutOff(a, b) {
				continue
			}
			local, remote := nw.nodes[a], nw.nodes[b]
			runs, err := Differing(local.f, AppendDigests(nil, remote.f))
			require.NoError(nw.t, err)
			if len(runs) == 0 {
				continue
			}
			pull, err := wire.AppendPull(nil, remote.f.Fingerprint(), runs)
			require.NoError(nw.t, err)
			p, err := wire.DecodePull(pull)
			require.NoError(nw.t, err)
			_, err = ServePull(remote.f, p, wire.MaxFrame, func(frame []byte) error {
				s, err := wire.DecodeRowSync(frame)
				require.NoError(nw.t, err)
				_, _, err = MergeRowSync(local.f, s, nil, false)
				return err
			})
			require.NoError(nw.t, err)
		}
	}
}

// cutOff reports whether a and b cannot reach each other.
func (nw *network) cutOff(a, b netip.AddrPort) bool { return !nw.net.Linked(a, b) }

// fraction returns the share of nodes whose filter has key.
func (nw *network) fraction(key []byte) float64 {
	n := 0
	for _, a := range nw.order {
		if nw.nodes[a].f.Has(key) {
			n++
		}
	}
	return float64(n) / float64(len(nw.order))
}

// converged reports whether every node's filter equals node 0's.
func (nw *network) converged() bool {
	want, _ := nw.node(0).f.CopyRows(nil, 0, nw.node(0).f.Rows())
	for _, a := range nw.order[1:] {
		f := nw.nodes[a].f
		got, _ := f.CopyRows(nil, 0, f.Rows())
		if !bytes.Equal(want, got) {
			return false
		}
	}
	return true
}

// roundsUntil runs rounds until cond holds, up to max; it returns the
// number run or fails.
func (nw *network) roundsUntil(max int, cond func() bool) int {
	nw.t.Helper()
	for i := 1; i <= max; i++ {
		nw.round()
		if cond() {
			return i
		}
	}
	nw.t.Fatalf("condition not met after %d rounds", max)
	return 0
}

func blocked(t testing.TB) func() *filter.Filter {
	return func() *filter.Filter {
		f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 50_000, FPRate: 0.01})
		require.NoError(t, err)
		return f
	}
}

func k(prefix string, i int) []byte { return fmt.Appendf(nil, "%s-%d", prefix, i) }

// peerOf adds to as a static peer of g that answered its challenge, as
// the node does once the answer comes.
func peerOf(g *Gossip, to netip.AddrPort) {
	g.AddPeer(to)
	g.Verify(to)
}
