package client

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// members runs three nodes joined in a cluster on loopback until the
// test ends.
func members(t *testing.T) []*node.Node {
	return nodetest.Cluster(t, 3, node.DefaultConfig())
}

// placedOn creates name on one of ns through the first, and waits until
// its owner holds it ready and every member routes it; it returns the
// owner and another member. The filter is dropped as the test ends,
// before the members stop: a member that leaves holding a placed filter
// waits for the members taking it over.
func placedOn(t *testing.T, ns []*node.Node, name string) (owner, other *node.Node) {
	t.Helper()
	c := dial(t, ns[0].Addr().String())
	f, err := c.CreatePlacedFilter(context.Background(), name, 100_000, 0.01, NonScaling, 1)
	require.NoError(t, err)
	assert.Equal(t, 1, f.Replicas)
	t.Cleanup(func() {
		require.NoError(t, c.DropFilter(context.Background(), name))
		require.Eventually(t, func() bool { return len(owner.Registry().Lookup([]byte(name))) == 0 }, 10*time.Second, 5*time.Millisecond)
	})
	var owners []string
	require.Eventually(t, func() bool { // placement is the members' to decide: they agree on it
		rt, ok := ns[0].Registry().Route([]byte(name))
		if !ok {
			return false
		}
		owners = rt.Owners()
		for _, n := range ns {
			if rt, ok := n.Registry().Route([]byte(name)); !ok || !slices.Equal(rt.Owners(), owners) {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "%s placed", name)
	for _, n := range ns {
		if n.Name() == owners[0] {
			owner = n
		} else {
			other = n
		}
	}
	require.Eventually(t, func() bool {
		vs := owner.Registry().Lookup([]byte(name))
		return len(vs) > 0 && !vs.Winner().Filling()
	}, 10*time.Second, 5*time.Millisecond, "%s held by %s", name, owners[0])
	return owner, other
}

// A Cluster sends a placed filter's keys to its owner, not through the
// member it was given: that member forwards nothing, and a has sees the
// add at once. A filter's description tells its owners and how the
// member asked holds it.
func TestClusterSendsKeysToOwners(t *testing.T) {
	ns := members(t)
	owner, seed := placedOn(t, ns, "placed")
	ctx := context.Background()

	plain := dial(t, seed.Addr().String())
	f, err := plain.DescribeFilter(ctx, "placed")
	require.NoError(t, err)
	assert.Equal(t, []string{owner.Name()}, f.Owners)
	assert.Equal(t, HeldNot, f.Here)
	f, err = dial(t, owner.Addr().String()).DescribeFilter(ctx, "placed")
	require.NoError(t, err)
	assert.Equal(t, HeldReady, f.Here)
	all, err := plain.Filters(ctx)
	require.NoError(t, err)
	for _, f := range all {
		if f.Name == "placed" {
			assert.Equal(t, []string{owner.Name()}, f.Owners, "listed too")
		}
	}

	for i, opts := range [][]Option{nil, {WithTCP()}} {
		cl, err := NewCluster(ctx, seed.Addr().String(), opts...)
		require.NoError(t, err)
		defer cl.Close()
		p := cl.Filter("placed")
		forwards := seed.Stats().Count(counter.Forwards)
		in := keys(fmt.Sprint("direct", i), 5000)
		require.NoError(t, p.Add(ctx, in...))
		got, err := p.Has(ctx, append(in, "never")...)
		require.NoError(t, err)
		assert.NotContains(t, got[:len(in)], false, "an add seen at once")
		assert.False(t, got[len(in)])
		fresh, err := p.AddNew(ctx, in[0], fmt.Sprint("new", i))
		require.NoError(t, err)
		assert.Equal(t, []bool{false, true}, fresh)
		assert.Equal(t, forwards, seed.Stats().Count(counter.Forwards), "nothing went through the seed")
		assert.True(t, owner.Registry().Lookup([]byte("placed")).Has([]byte(in[42])))

		c, _ := cl.target(ctx, "placed")
		assert.NotNil(t, c, "an owner")
		for _, name := range []string{"", "default", "nowhere"} {
			c, _ := cl.target(ctx, name)
			assert.Nil(t, c, "%q: the seed", name)
		}
	}

	// The same keys through the seed alone are forwarded.
	forwards := seed.Stats().Count(counter.Forwards)
	require.NoError(t, plain.Filter("placed").Add(ctx, "through-the-seed"))
	assert.Greater(t, seed.Stats().Count(counter.Forwards), forwards)
}

// An owner that does not answer is left alone, and its keys go to the
// seed, which forwards them; the answers are the same.
func TestClusterFallsBackToTheSeed(t *testing.T) {
	ns := members(t)
	owner, seed := placedOn(t, ns, "placed")
	ctx := context.Background()
	cl, err := NewCluster(ctx, seed.Addr().String())
	require.NoError(t, err)
	defer cl.Close()
	p := cl.Filter("placed")
	require.NoError(t, p.Add(ctx, "first"))

	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.LocalAddr().String()
	l.Close() // nothing answers there
	cl.mu.Lock()
	cl.members[owner.Name()] = closed
	cl.asked, cl.every = time.Now(), time.Hour // not asked again meanwhile
	cl.mu.Unlock()

	forwards := seed.Stats().Count(counter.Forwards)
	require.NoError(t, p.Add(ctx, "second"))
	got, err := p.Has(ctx, "first", "second", "never")
	require.NoError(t, err)
	assert.Equal(t, []bool{true, true, false}, got)
	assert.Greater(t, seed.Stats().Count(counter.Forwards), forwards, "through the seed")
	cl.mu.Lock()
	_, down := cl.down[closed]
	cl.mu.Unlock()
	assert.True(t, down, "left alone for a while")

	// The members, asked again at once, give the owner's address back.
	require.Eventually(t, func() bool {
		_, addr := cl.target(ctx, "placed")
		return addr == owner.Addr().String()
	}, 5*time.Second, 5*time.Millisecond)
	forwards = seed.Stats().Count(counter.Forwards)
	require.NoError(t, p.Add(ctx, "third"))
	assert.Equal(t, forwards, seed.Stats().Count(counter.Forwards), "to the owner again")
}

// A seed that does not list its members to the client (it is no admin
// there), or places no filters (an earlier node), gets every key.
func TestClusterWithoutMembersUsesTheSeed(t *testing.T) {
	for name, flags := range map[string]uint8{"forbidden": wire.PongPlacement, "earlier": wire.PongStages} {
		t.Run(name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			require.NoError(t, err)
			defer pc.Close()
			go func() { // a node: it pongs, refuses members and describes "placed" on another member
				buf := make([]byte, 2048)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					var out []byte
					if p, err := wire.DecodePing(buf[:n]); err == nil {
						out, _ = wire.AppendPing(nil, wire.Ping{Type: wire.TypePong, ReqID: p.ReqID, Version: wire.ProtocolVersion,
							Name: []byte("seed"), Addr: []byte(pc.LocalAddr().String()), Flags: flags})
					} else if id, err := wire.DecodeMembersRequest(buf[:n]); err == nil {
						out, _ = wire.AppendError(nil, wire.ErrorFrame{ReqID: id, Code: wire.CodeForbidden, Msg: []byte("members: this address may not ask (--allow-admin)")})
					} else if q, err := wire.DecodeFilterRequest(buf[:n]); err == nil {
						out, _ = wire.AppendFilters(nil, q.ReqID, wire.FiltersStages|wire.FiltersWindows|wire.FiltersPlacement, []wire.FilterDesc{{
							Name: []byte("placed"), Gen: 1, Origin: []byte("seed"), Capacity: 10, Replicas: 1, Owners: [][]byte{[]byte("other")},
							FP: filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: 6, RowBits: 512, Rows: 4}}})
					}
					pc.WriteTo(out, from)
				}
			}()
			cl, err := NewCluster(context.Background(), pc.LocalAddr().String(), WithTimeout(time.Second))
			require.NoError(t, err)
			defer cl.Close()
			c, _ := cl.target(context.Background(), "placed")
			assert.Nil(t, c)
		})
	}
}

// Owners are taken in rank: the first one not down, the seed itself if
// it comes first; a member with no address is skipped.
func TestClusterOwnerOrder(t *testing.T) {
	cl := &Cluster{self: "s", every: time.Minute, members: map[string]string{"s": "s:1", "a": "a:1", "b": "b:1"},
		down: map[string]time.Time{}}
	for _, tc := range []struct {
		owners []string
		down   []string
		addr   string
		seed   bool
	}{
		{[]string{"a", "b"}, nil, "a:1", false},
		{[]string{"a", "b"}, []string{"a:1"}, "b:1", false},
		{[]string{"s", "a"}, nil, "", true},
		{[]string{"gone", "b"}, nil, "b:1", false},
		{[]string{"a", "b"}, []string{"a:1", "b:1"}, "", false},
		{nil, nil, "", false},
	} {
		clear(cl.down)
		for _, d := range tc.down {
			cl.down[d] = time.Now()
		}
		addr, seed := cl.ownerAddr(&where{owners: tc.owners})
		assert.Equal(t, tc.addr, addr, "%v down %v", tc.owners, tc.down)
		assert.Equal(t, tc.seed, seed, "%v down %v", tc.owners, tc.down)
	}
	cl.down["a:1"] = time.Now().Add(-time.Hour)
	addr, _ := cl.ownerAddr(&where{owners: []string{"a"}})
	assert.Equal(t, "a:1", addr, "down long enough ago: tried again")
}

// A placed filter's create goes only to a node whose pong says it
// places filters; replicas out of range are refused before anything is
// sent.
func TestCreatePlacedAsksFirst(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	go func() { // an earlier build's node: pongs without PongPlacement
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if p, err := wire.DecodePing(buf[:n]); err == nil {
				out, _ := wire.AppendPing(nil, wire.Ping{Type: wire.TypePong, ReqID: p.ReqID, Version: wire.ProtocolVersion,
					Name: []byte("old"), Addr: []byte("127.0.0.1:1"), Flags: wire.PongStages | wire.PongWindows})
				pc.WriteTo(out, from)
			}
		}
	}()
	c := dial(t, pc.LocalAddr().String(), WithTimeout(2*time.Second))
	_, err = c.CreatePlacedFilter(context.Background(), "p", 1000, 0.01, DefaultExpansion, 2)
	require.ErrorIs(t, err, ErrNoPlacement)
	for _, r := range []int{0, 256, -1} {
		_, err = c.CreatePlacedFilter(context.Background(), "p", 1000, 0.01, DefaultExpansion, r)
		assert.ErrorContains(t, err, "a filter lives on 1 to 255 members")
	}
}
