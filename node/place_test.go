package node_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// placedBatch is namedBatch for a placed filter: a datagram forwarded
// is answered from a goroutine of its own, once the bubble settles.
func placedBatch(t *testing.T, tn *testNet, u *station, n *node.Node, name string, typ wire.Type, keys ...string) ([]bool, *wire.ErrorFrame) {
	t.Helper()
	u.settled = tn.settle
	defer func() { u.settled = nil }()
	return namedBatch(t, u, n, name, typ, keys...)
}

// placed asks for a filter of name on replicas members.
func placed(name string, replicas uint8) wire.FilterRequest {
	q := create(name, 1000, 0.01)
	q.Growth, q.Replicas = 1, replicas // NONSCALING: sized as asked
	return q
}

// holders returns the members that hold name, ready or not.
func holders(name string, ns ...*node.Node) []string {
	var out []string
	for _, n := range ns {
		if len(n.Registry().Lookup([]byte(name))) > 0 {
			out = append(out, n.Name())
		}
	}
	slices.Sort(out)
	return out
}

// owners returns the members placement puts name on, as every one of
// ns places it (nil while they disagree, or before they know it).
func owners(name string, _ int, ns ...*node.Node) []string {
	var out []string
	for i, n := range ns {
		rt, ok := n.Registry().Route([]byte(name))
		if !ok || len(rt.Ranked) != len(ns) {
			return nil
		}
		o := slices.Sorted(slices.Values(rt.Owners()))
		if i > 0 && !slices.Equal(o, out) {
			return nil
		}
		out = o
	}
	return out
}

// makePlaced creates count filters named prefix0… on replicas members
// through via, and waits until each is on its owners among ns.
func (tn *testNet) makePlaced(u *station, via *node.Node, prefix string, count int, replicas uint8, ns ...*node.Node) []string {
	tn.t.Helper()
	var names []string
	for i := range count {
		name := fmt.Sprintf("%s%d", prefix, i)
		names = append(names, name)
		_, e := filterOp(tn.t, u, via, placed(name, replicas))
		require.Nil(tn.t, e)
	}
	tn.settledOn(names, int(replicas), ns...)
	return names
}

// TestPlacedFiltersAnswerEverywhere: filters on 2 of 4 members are held
// by their owners alone, and every key added through any member answers
// true through every member, forwarded or not; with a write quorum of 2
// an acknowledged add is on both owners before any gossip round.
func TestPlacedFiltersAnswerEverywhere(t *testing.T) {
	t.Run("without a key", func(t *testing.T) { placedEverywhere(t, nil) })
	t.Run("with a cluster key", func(t *testing.T) { placedEverywhere(t, []auth.Key{testKey(t)}) })
}

func placedEverywhere(t *testing.T, keys []auth.Key) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.WriteQuorum, cfg.HandoffGrace, cfg.ClusterKeys = 2, 2*time.Second, keys
		a := tn.member(cfg)
		ns := []*node.Node{a, tn.member(cfg, a), tn.member(cfg, a), tn.member(cfg, a)}
		tn.joined(ns...)
		u := tn.station()
		const filters = 8
		for i := range filters {
			_, e := filterOp(t, u, ns[i%4], placed(fmt.Sprintf("p%d", i), 2))
			require.Nil(t, e)
		}
		var names []string
		for i := range filters {
			names = append(names, fmt.Sprintf("p%d", i))
		}
		tn.settledOn(names, 2, ns...)

		for i := range filters {
			name := fmt.Sprintf("p%d", i)
			for j, n := range ns {
				key := fmt.Sprintf("%s-via-%d", name, j)
				got, e := placedBatch(t, tn, u, n, name, wire.TypeAddBatch, key)
				require.Nil(t, e, "add %s through %s", key, n.Name())
				require.Equal(t, []bool{true}, got)
				for _, o := range ns { // W = 2 = R: on both owners at once
					if vs := o.Registry().Lookup([]byte(name)); len(vs) > 0 {
						assert.True(t, vs.Has([]byte(key)), "%s on owner %s", key, o.Name())
					}
				}
			}
		}
		for i := range filters {
			name := fmt.Sprintf("p%d", i)
			keys := []string{name + "-via-0", name + "-via-1", name + "-via-2", name + "-via-3", name + "-never"}
			for _, n := range ns {
				got, e := placedBatch(t, tn, u, n, name, wire.TypeHasBatch, keys...)
				require.Nil(t, e, "has through %s", n.Name())
				assert.Equal(t, []bool{true, true, true, true, false}, got, "%s through %s", name, n.Name())
			}
		}
		s := ns[0].Stats()
		assert.Positive(t, s.Count(counter.Forwards))
	})
}

// settledOn waits until every filter of names is held by its owners
// among ns alone (after the grace), each filled.
func (tn *testNet) settledOn(names []string, replicas int, ns ...*node.Node) {
	tn.t.Helper()
	why := ""
	defer func() {
		if tn.t.Failed() {
			tn.t.Log("last:", why)
		}
	}()
	tn.until("filters on their owners, filled", 30*time.Second, func() bool {
		for _, name := range names {
			if o := owners(name, replicas, ns...); len(o) != replicas || !slices.Equal(holders(name, ns...), o) {
				why = fmt.Sprintf("%s: held by %v, owners %v", name, holders(name, ns...), o)
				return false
			}
			for _, n := range ns {
				if vs := n.Registry().Lookup([]byte(name)); len(vs) > 0 && (vs.Winner().Filling() || vs.Winner().Unowned()) {
					why = fmt.Sprintf("%s on %s: filling %v, unowned %v", name, n.Name(), vs.Winner().Filling(), vs.Winner().Unowned())
					return false
				}
			}
		}
		return true
	}, ns...)
}

// TestPlacedFiltersMoveWithMembers: a member that joins takes its share
// of the filters, filled from the members that held them, and the old
// owners free theirs after the grace; a member that stops has its
// filters filled on the next member in rank. Every key stays true
// through every member.
func TestPlacedFiltersMoveWithMembers(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.HandoffGrace = 3 * time.Second
		a := tn.member(cfg)
		ns := []*node.Node{a, tn.member(cfg, a), tn.member(cfg, a)}
		tn.joined(ns...)
		u := tn.station()
		var names, keys []string
		for i := range 12 {
			name := fmt.Sprintf("m%d", i)
			names = append(names, name)
			_, e := filterOp(t, u, a, placed(name, 2))
			require.Nil(t, e)
		}
		tn.settledOn(names, 2, ns...)
		for i, name := range names {
			for j := range 20 {
				key := fmt.Sprintf("%s-%d", name, j)
				keys = append(keys, key)
				_, e := placedBatch(t, tn, u, ns[(i+j)%3], name, wire.TypeAddBatch, key)
				require.Nil(t, e)
			}
		}
		allTrue := func(ns ...*node.Node) {
			t.Helper()
			for range 3 { // W = 1: the other owner gets the rows by replication
				tn.round(ns...)
				tn.settle()
			}
			for i, name := range names {
				for _, n := range ns {
					got, e := placedBatch(t, tn, u, n, name, wire.TypeHasBatch, keys[i*20:(i+1)*20]...)
					require.Nil(t, e, "%s through %s", name, n.Name())
					assert.NotContains(t, got, false, "%s through %s", name, n.Name())
				}
			}
		}
		allTrue(ns...)

		d, stopD := tn.memberAt(netAddr(9), cfg, a)
		ns = append(ns, d)
		tn.settledOn(names, 2, ns...)
		allTrue(ns...)
		took := 0
		for _, name := range names {
			if slices.Contains(owners(name, 2, ns...), d.Name()) {
				took++
			}
		}
		assert.Positive(t, took, "the joiner owns some")
		assert.Equal(t, uint64(took), d.Stats().Count(counter.FillsDone), "one fill per filter it took")
		assert.Positive(t, d.Stats().Count(counter.FillBytes))

		stopD()
		ns = ns[:3]
		tn.settledOn(names, 2, ns...)
		allTrue(ns...)
	})
}

// TestLeavingHandsOff: a member that leaves gracefully waits until the
// members taking its filters over hold them, filled from it: filters on
// one member each lose no key.
func TestLeavingHandsOff(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.HandoffGrace = 2 * time.Second
		a := tn.member(cfg)
		c, stopC := tn.memberAt(netAddr(7), cfg, a)
		ns := []*node.Node{a, tn.member(cfg, a), c}
		tn.joined(ns...)
		u := tn.station()
		names := tn.makePlaced(u, a, "h", 9, 1, ns...)
		for _, name := range names {
			for _, n := range ns {
				_, e := placedBatch(t, tn, u, n, name, wire.TypeAddBatch, name+"-via-"+n.Name())
				require.Nil(t, e)
			}
		}
		held := 0
		for _, name := range names {
			if slices.Equal(holders(name, ns...), []string{c.Name()}) {
				held++
			}
		}
		require.Positive(t, held, "the member leaving owns some")

		done := make(chan struct{})
		go func() { stopC(); close(done) }()
		for stopped := false; !stopped; {
			select {
			case <-done:
				stopped = true
			case <-time.After(100 * time.Millisecond):
				tn.settle()
			}
		}
		ns = ns[:2]
		tn.settledOn(names, 1, ns...)
		for _, name := range names {
			for _, n := range ns {
				got, e := placedBatch(t, tn, u, n, name, wire.TypeHasBatch, name+"-via-"+a.Name(), name+"-via-"+ns[1].Name(), name+"-via-"+c.Name())
				require.Nil(t, e)
				assert.Equal(t, []bool{true, true, true}, got, "%s through %s", name, n.Name())
			}
		}
		assert.Less(t, c.Stats().Count(counter.PullsServed), uint64(held+1)*3, "pulled once per filter, about")
	})
}

// TestPlacedAcrossAPartition: members cut off from a filter's owners take
// it over, and adds acknowledged by them meanwhile go back to the owners
// once the partition heals — before the stand-ins free it.
func TestPlacedAcrossAPartition(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.WriteQuorum, cfg.HandoffGrace = 2, 3*time.Second
		a := tn.member(cfg)
		ns := []*node.Node{a, tn.member(cfg, a), tn.member(cfg, a), tn.member(cfg, a)}
		tn.joined(ns...)
		u := tn.station()
		names := tn.makePlaced(u, a, "x", 12, 2, ns...)
		add := func(via *node.Node, tag string) {
			for _, name := range names {
				_, e := placedBatch(t, tn, u, via, name, wire.TypeAddBatch, name+tag)
				require.Nil(t, e, "%s through %s", name+tag, via.Name())
			}
		}
		add(a, "-before")
		c, d := ns[2].Addr().Addr(), ns[3].Addr().Addr()
		away := func(x netip.AddrPort) bool { return x.Addr() == c || x.Addr() == d }
		tn.nw.Cut(func(from, to netip.AddrPort) bool { return away(from) != away(to) })
		tn.settledOn(names, 2, ns[:2]...) // a and b stand in for the owners they cannot reach
		add(a, "-during")
		tn.nw.Cut(nil)
		tn.settledOn(names, 2, ns...)
		// The stand-ins' adds reach the owners cut off from them by
		// replication, or at the latest by anti-entropy.
		tn.until("every key through every member", 2*cfg.AntiEntropyInterval, func() bool {
			for _, name := range names {
				for _, n := range ns {
					u.settled = tn.settle
					got, e := namedBatch(t, u, n, name, wire.TypeHasBatch, name+"-before", name+"-during")
					u.settled = nil
					if e != nil || !slices.Equal(got, []bool{true, true}) {
						return false
					}
				}
			}
			return true
		}, ns...)
	})
}

// TestForwardingDoesNotStallDatagrams: a datagram forwarded to an owner
// that does not answer waits on a goroutine of its own; the datagrams
// behind it are served at once, and it gets its error in time.
func TestForwardingDoesNotStallDatagrams(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.HandoffGrace = 2 * time.Second
		a := tn.member(cfg)
		ns := []*node.Node{a, tn.member(cfg, a)}
		tn.joined(ns...)
		u := tn.station()
		name := ""
		for i := 0; name == "" && i < 20; i++ { // a filter a does not own
			n := fmt.Sprintf("s%d", i)
			_, e := filterOp(t, u, a, placed(n, 1))
			require.Nil(t, e)
			tn.settledOn([]string{n}, 1, ns...)
			if slices.Equal(owners(n, 1, ns...), []string{ns[1].Name()}) {
				name = n
			}
		}
		require.NotEmpty(t, name)
		owner := ns[1].Addr()
		tn.nw.Cut(func(from, to netip.AddrPort) bool { return to == owner && from.Addr() == a.Addr().Addr() })

		began := time.Now()
		b, err := wire.AppendBatch(nil, wire.TypeHasBatch, 9, 0, [][]byte{[]byte("k")})
		require.NoError(t, err)
		frame, err := wire.AppendNamed(nil, name, b)
		require.NoError(t, err)
		u.send(a.Addr(), frame)
		tn.deliver()
		u.send(a.Addr(), classicHas(t, "other"))
		tn.deliver()
		var classic, forwarded int
		count := func() {
			for _, d := range u.take() {
				if wire.Type(d.frame[0]) == wire.TypeError {
					e, err := wire.DecodeError(d.frame)
					require.NoError(t, err)
					assert.Equal(t, wire.CodeUnavailable, e.Code, "an error: its owner did not answer")
					forwarded++
				} else {
					classic++
				}
			}
		}
		count()
		assert.Equal(t, 1, classic, "the default filter answers meanwhile")
		assert.Less(t, time.Since(began), cfg.ForwardTimeout, "at once")
		tn.settle()
		<-time.After(cfg.ForwardTimeout)
		tn.settle()
		count()
		assert.Equal(t, 1, forwarded, "the forwarded has, answered")
	})
}

// TestLastMemberLeavesAtOnce: a member whose placed filters nobody is
// left to take stops at once, and a named ping of a placed filter answers
// on a member that does not hold it.
func TestLastMemberLeavesAtOnce(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.HandoffGrace = 2 * time.Second
		a, stopA := tn.memberAt(netAddr(7), cfg)
		b, stopB := tn.memberAt(netAddr(8), cfg, a)
		ns := []*node.Node{a, b}
		tn.joined(ns...)
		u := tn.station()
		var names []string
		for i := range 4 {
			names = append(names, fmt.Sprintf("l%d", i))
			_, e := filterOp(t, u, a, placed(names[i], 1))
			require.Nil(t, e)
		}
		tn.settledOn(names, 1, ns...)
		for _, name := range names {
			for _, n := range ns {
				assert.NotZero(t, ping(t, u, n, name).Flags&wire.PongPlacement, "%s on %s", name, n.Name())
			}
		}
		began := time.Now()
		stop := make(chan struct{})
		go func() { stopB(); close(stop) }()
		for done := false; !done; {
			select {
			case <-stop:
				done = true
			case <-time.After(100 * time.Millisecond):
				tn.settle()
			}
		}
		assert.Less(t, time.Since(began), 5*time.Second, "b handed its filters to a")
		began = time.Now()
		stopA()
		assert.Less(t, time.Since(began), 2*time.Second, "a, the last, has nobody to hand to")
	})
}

// TestCatalogDatagrams: a member tells the others of a catalog change in
// a datagram too; one from an address that is no member's is dropped and
// counted, its filter never made.
func TestCatalogDatagrams(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		ns := tn.cluster3(node.DefaultConfig())
		u := tn.station()
		_, e := filterOp(t, u, ns[0], placed("told", 2))
		require.Nil(t, e)
		tn.deliver() // the datagrams, before any gossip round
		synctest.Wait()
		tn.deliver()
		for _, n := range ns {
			_, ok := n.Registry().Route([]byte("told"))
			assert.True(t, ok, "%s knows it", n.Name())
		}

		entries := ns[0].Registry().Entries()
		entries[0].Name = "forged"
		b, err := gossip.AppendCatalog(nil, entries[:1])
		require.NoError(t, err)
		frame, err := wire.AppendCatalogFrame(nil, b)
		require.NoError(t, err)
		before := ns[1].Stats().Count(counter.Forbidden)
		u.send(ns[1].Addr(), frame)
		tn.settle()
		_, ok := ns[1].Registry().Route([]byte("forged"))
		assert.False(t, ok)
		assert.Equal(t, before+1, ns[1].Stats().Count(counter.Forbidden))
	})
}
