package gossip

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/require"
)

// network is an in-memory cluster of filters and gossips, driven by
// logical ticks: no sockets, no sleeping. Frames queue up and are
// delivered by deliver, which may drop, duplicate or reorder them.
type network struct {
	t     testing.TB
	nodes map[netip.AddrPort]*tnode
	order []netip.AddrPort
	queue []msg
	rng   *rand.Rand

	dropRate float64 // chance each message is lost
	dupRate  float64 // chance each message is delivered twice
	shuffle  bool    // deliver in random order
	cut      func(from, to netip.AddrPort) bool

	sent map[netip.AddrPort][]msg // every frame each node received, for inspection
}

type tnode struct {
	addr netip.AddrPort
	f    *filter.Filter
	g    *Gossip
	deaf bool // receives but never acks
}

type msg struct {
	from, to netip.AddrPort
	frame    []byte
}

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(8000+i))
}

func newNetwork(t testing.TB, n int, cfg Config, mk func() *filter.Filter) *network {
	nw := &network{t: t, nodes: map[netip.AddrPort]*tnode{}, rng: rand.New(rand.NewPCG(1, uint64(n))), sent: map[netip.AddrPort][]msg{}}
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
	return n
}

func (nw *network) node(i int) *tnode { return nw.nodes[nw.order[i]] }

// tick ticks every node once, queueing what they emit.
func (nw *network) tick() {
	for _, a := range nw.order {
		n := nw.nodes[a]
		n.g.Tick(func(to netip.AddrPort, frame []byte) {
			nw.queue = append(nw.queue, msg{a, to, bytes.Clone(frame)})
		})
	}
}

// deliver hands every queued message (and the replies they cause, until
// the queue is empty) to its receiver, subject to loss, duplication,
// reordering and cuts.
func (nw *network) deliver() {
	for len(nw.queue) > 0 {
		q := nw.queue
		nw.queue = nil
		if nw.shuffle {
			nw.rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
		}
		for _, m := range q {
			if nw.cut != nil && nw.cut(m.from, m.to) || nw.rng.Float64() < nw.dropRate {
				continue
			}
			nw.receive(m)
			if nw.rng.Float64() < nw.dupRate {
				nw.receive(m)
			}
		}
	}
}

func (nw *network) receive(m msg) {
	n, ok := nw.nodes[m.to]
	if !ok {
		return
	}
	nw.sent[m.to] = append(nw.sent[m.to], m)
	reply := func(b []byte) {
		if !n.deaf {
			nw.queue = append(nw.queue, msg{m.to, m.from, bytes.Clone(b)})
		}
	}
	switch wire.Type(m.frame[0]) {
	case wire.TypeRowSync:
		s, err := wire.DecodeRowSync(m.frame)
		require.NoError(nw.t, err)
		if ack, _, err := MergeRowSync(n.f, s, nil); err == nil {
			reply(ack)
		}
	case wire.TypeRowAck:
		a, err := wire.DecodeRowAck(m.frame)
		require.NoError(nw.t, err)
		n.g.RowAck(m.from, a, func(to netip.AddrPort, frame []byte) {
			nw.queue = append(nw.queue, msg{m.to, to, bytes.Clone(frame)})
		})
	case wire.TypeSync:
		s, err := wire.DecodeClassicSync(m.frame)
		require.NoError(nw.t, err)
		if ack, _, err := MergeClassicSync(n.f, s, nil); err == nil {
			reply(ack)
		}
	case wire.TypeAck:
		n.g.ClassicAck(m.from)
	default:
		nw.t.Fatalf("unexpected frame %v", wire.Type(m.frame[0]))
	}
}

// round ticks and delivers once.
func (nw *network) round() { nw.tick(); nw.deliver() }

// peerAll makes every node push to every other, as static peers.
func (nw *network) peerAll() {
	for _, a := range nw.order {
		for _, b := range nw.order {
			if a != b {
				nw.nodes[a].g.AddPeer(b)
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

// antiEntropy has every node compare digests with every other it can reach
// and pull the rows that differ, as the node does over memberlist's
// push/pull and TCP.
func (nw *network) antiEntropy() {
	for _, a := range nw.order {
		for _, b := range nw.order {
			if a == b || nw.cut != nil && (nw.cut(a, b) || nw.cut(b, a)) {
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
				_, _, err = MergeRowSync(local.f, s, nil)
				return err
			})
			require.NoError(nw.t, err)
		}
	}
}

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
