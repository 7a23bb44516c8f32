package node_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Cluster membership through memberlist, on the in-memory network and the
// bubble's clock.

// joined waits until each node pushes to n-1 members.
func (tn *testNet) joined(ns ...*node.Node) {
	tn.t.Helper()
	tn.until("every member a push target", 10*time.Second, func() bool {
		for _, n := range ns {
			if len(n.Peers()) != len(ns)-1 {
				return false
			}
		}
		return true
	})
}

// Members with the node's filter are push targets: a key added on one
// reaches the others in one round; a member that stops is no target,
// and is again once back.
func TestMembersShareKeys(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		n1 := tn.member(node.DefaultConfig())
		n2 := tn.member(node.DefaultConfig(), n1)
		n3, stop3 := tn.memberAt(netAddr(3), node.DefaultConfig(), n1)
		tn.joined(n1, n2, n3)
		u := tn.station()
		u.send(n1.Addr(), classicAdd(t, "from-1"))
		tn.deliver()
		tn.round(n1, n2, n3)
		assert.True(t, hasOn(t, u, n2, "from-1"))
		assert.True(t, hasOn(t, u, n3, "from-1"))

		stop3()
		tn.until("n3 gone", 10*time.Second, func() bool { return len(n1.Peers()) == 1 })
		tn.memberAt(netAddr(3), node.DefaultConfig(), n1)
		tn.until("n3 back", 10*time.Second, func() bool { return len(n1.Peers()) == 2 })
	})
}

// A member started with another default sizing is listed, never synced
// with for the default filter — and still shares every named filter:
// named filters have their own sizing.
func TestMemberWithAnotherDefaultSizing(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		other := node.DefaultConfig()
		other.Capacity = 5000
		n1 := tn.member(node.DefaultConfig())
		n2 := tn.member(other, n1)
		u := tn.station()
		tn.until("listed", 10*time.Second, func() bool { return len(n1.Members()) == 2 && len(n2.Members()) == 2 })
		assert.False(t, n1.Members()[1].FPMatch)
		for range 3 {
			tn.round(n1, n2)
		}
		assert.Equal(t, uint64(1), n1.Stats().Count(counter.MemberMismatch), "reported once")
		assert.Equal(t, uint64(1), n2.Stats().Count(counter.MemberMismatch))
		assert.Empty(t, n1.Peers(), "no push target for the default filter")

		// A filter one of them makes — explicitly or by an add — reaches
		// the other, with its keys, both ways.
		_, e := filterOp(t, u, n1, create("shared", 1000, 0.01))
		require.Nil(t, e)
		_, e = namedBatch(t, u, n2, "auto", wire.TypeAddBatch, "a1")
		require.Nil(t, e)
		tn.until("each filter on the other", 10*time.Second, func() bool {
			return len(n2.Registry().Lookup([]byte("shared"))) == 1 && len(n1.Registry().Lookup([]byte("auto"))) == 1
		})
		_, e = namedBatch(t, u, n2, "shared", wire.TypeAddBatch, "s2")
		require.Nil(t, e)
		_, e = namedBatch(t, u, n1, "auto", wire.TypeAddBatch, "a2")
		require.Nil(t, e)
		tn.until("the keys on the other", 10*time.Second, func() bool {
			return namedHasAll(n1, "shared", []string{"s2"}) && namedHasAll(n2, "auto", []string{"a1", "a2"})
		}, n1, n2)
		u.send(n1.Addr(), classicAdd(t, "mine"))
		tn.deliver()
		for range 5 {
			tn.round(n1, n2)
		}
		assert.False(t, hasOn(t, u, n2, "mine"), "the default filters stay apart")
	})
}

// A node stopped and restarted empty is filled by the pull its join
// starts, and does not push the filter back to members that already have
// it.
func TestRestartedEmptyNodeCatchesUp(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		n1 := tn.member(node.DefaultConfig())
		n2, stop2 := tn.memberAt(netAddr(10), node.DefaultConfig(), n1)
		n3 := tn.member(node.DefaultConfig(), n1)
		tn.joined(n1, n2, n3)
		u := tn.station()
		keys := makeKeys("k", 3000)
		addKeys(t, u, n1, keys)
		tn.until("every key everywhere", 10*time.Second, func() bool { return hasAll(n2, keys) && hasAll(n3, keys) }, n1, n2, n3)

		stop2()
		tn.until("n2 gone", 10*time.Second, func() bool { return len(n3.Peers()) == 1 })
		again, _ := tn.memberAt(netAddr(10), node.DefaultConfig(), n3)
		tn.until("filled", 10*time.Second, func() bool { return hasAll(again, keys) })
		assert.Equal(t, uint64(1), again.Stats().Count(counter.AntiEntropyPulls), "one pull fills it")
		assert.Zero(t, again.Stats().Count(counter.PullsFailed))
		tn.until("a push target again", 10*time.Second, func() bool { return len(n3.Peers()) == 2 })
		tn.round(again)
		assert.Zero(t, again.Stats().SyncBytesSent, "members have what the pull brought: nothing pushed back")
	})
}

// A pull from a member that cannot serve it fails, is counted, is tried
// again after a second and after two, and then fills the filter once the
// link heals.
func TestFailedPullIsCounted(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.AntiEntropyInterval = time.Hour // the join's pull only
		n2 := tn.member(cfg)
		u := tn.station()
		addKeys(t, u, n2, makeKeys("p", 10))
		tn.nw.Cut(func(from, to netip.AddrPort) bool { return to == n2.Addr() }) // streams to n2's data port
		n1 := tn.member(cfg, n2)
		<-time.After(1500 * time.Millisecond)
		tn.settle()
		assert.Equal(t, uint64(2), n1.Stats().Count(counter.PullsFailed), "tried again after a second, each failure counted")
		assert.Zero(t, n1.Filter().Stats().SetBits)
		tn.nw.Cut(nil) // the link heals while the node waits to try again
		<-time.After(2 * time.Second)
		tn.settle()
		assert.Equal(t, uint64(2), n1.Stats().Count(counter.PullsFailed))
		assert.True(t, hasAll(n1, makeKeys("p", 10)), "the third try filled it")
	})
}

// A member restarted empty gets all of the cluster's keys back from the
// pull its join starts, at any density: anti-entropy runs once an hour
// here, and the seeds hold their keys from before the cluster formed (so
// that no push carries them), so the join's pull alone must do it. The
// densities include the one that broke before: a few keys per thousand
// rows, which made a pull's frames carry more runs than a receiver takes.
func TestSparseRefill(t *testing.T) {
	for _, c := range []struct {
		keys     int
		capacity uint64
	}{{1000, 1_000_000}, {10_000, 1_000_000}, {100_000, 1_000_000}, {20_000, 10_000_000}} {
		t.Run(fmt.Sprintf("%d keys at capacity %d", c.keys, c.capacity), func(t *testing.T) {
			inBubble(t, func(t *testing.T, tn *testNet) {
				cfg := node.DefaultConfig()
				cfg.Capacity, cfg.AntiEntropyInterval = c.capacity, time.Hour
				keys := makeKeys("sparse", c.keys)
				filled := func(seeds ...*node.Node) *node.Node {
					n := tn.member(cfg, seeds...)
					for _, k := range keys {
						n.Filter().Add(k)
					}
					n.Filter().Advance() // history, not news: no round pushes it
					return n
				}
				n1 := filled()
				filled(n1)
				n3, stop3 := tn.memberAt(netAddr(9), cfg, n1)
				tn.until("node 3 filled by its first join", 10*time.Second, func() bool { return hasAll(n3, keys) })
				stop3()

				n, _ := tn.memberAt(netAddr(9), cfg, n1)
				tn.until("the join's pull", 10*time.Second, func() bool { return n.Stats().Count(counter.AntiEntropyPulls) > 0 })
				assert.Zero(t, n.Stats().Count(counter.PullsFailed))
				missing := 0
				for _, k := range keys {
					if !n.Filter().Has(k) {
						missing++
					}
				}
				assert.Zero(t, missing, "keys missing after the join's pull")
			})
		})
	}
}

func TestClusterConfigErrors(t *testing.T) {
	c := node.ClassicConfig()
	c.Join = []string{"127.0.0.1:7946"}
	_, err := node.New(c)
	assert.ErrorContains(t, err, "needs the default profile")
	c = node.DefaultConfig()
	c.Join = []string{"nope"}
	_, err = node.New(c)
	assert.ErrorIs(t, err, node.ErrConfig)
}

// Real sockets, the second of the package's three smoke tests: a gossip
// port in use fails Run, not silently; nodes join through memberlist and
// share keys; a member stopped and restarted empty is filled again
// through memberlist's push/pull and a pull over TCP. Waits are for
// conditions, bounded, never fixed.
func TestClusterOverRealSockets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := node.DefaultConfig()
	c.Listen, c.GossipListen = "127.0.0.1:0", l.Addr().String()
	n, err := node.New(c)
	require.NoError(t, err)
	assert.Error(t, n.Run(context.Background()), "the gossip port is taken")
	l.Close()

	n1, _ := startReal(t, quickLeave())
	n2, stop2 := startReal(t, node.DefaultConfig(), n1.GossipAddr()) // leaves, and is seen leaving
	n3, _ := startReal(t, quickLeave(), n1.GossipAddr())
	waitFor(t, "two push targets each", func() bool {
		return len(n1.Peers()) == 2 && len(n2.Peers()) == 2 && len(n3.Peers()) == 2
	})
	ms := n2.Members()
	require.Len(t, ms, 3)
	assert.Equal(t, n2.Name(), string(ms[0].Name), "the node itself first")
	for _, m := range ms {
		assert.Equal(t, wire.MemberAlive, m.State, string(m.Name))
		assert.True(t, m.FPMatch)
	}
	keys := makeKeys("real", 2000)
	for _, k := range keys {
		n1.Filter().Add(k)
	}
	waitFor(t, "node 2 has node 1's keys", func() bool { return hasAll(n2, keys) })

	addr, gossip, name := n2.Addr().String(), n2.GossipAddr(), n2.Name()
	stop2()
	waitFor(t, "node 2 gone from node 3's targets", func() bool { return len(n3.Peers()) == 1 })
	waitFor(t, "node 2 listed as left", func() bool {
		for _, m := range n3.Members() {
			if string(m.Name) == name {
				return m.State == wire.MemberLeft
			}
		}
		return false
	})
	cfg := quickLeave()
	cfg.Listen, cfg.GossipListen, cfg.Name = addr, gossip, name
	again, _ := startReal(t, cfg, n3.GossipAddr())
	waitFor(t, "the restarted node has every key", func() bool { return hasAll(again, keys) })
	waitFor(t, "it is a push target again", func() bool { return len(n3.Peers()) == 2 })
}

// startReal runs a clustered node on real loopback sockets and a real
// memberlist until stop is called or the test ends.
func startReal(t *testing.T, cfg node.Config, join ...string) (*node.Node, func()) {
	t.Helper()
	if cfg.Listen == "" || cfg.Listen == node.DefaultConfig().Listen {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.GossipListen == "" {
		cfg.GossipListen = "127.0.0.1:0"
	}
	cfg.Join, cfg.Resolver = join, resolver{}
	cfg.SyncInterval, cfg.RejoinInterval, cfg.UDPSockets = 20*time.Millisecond, 200*time.Millisecond, 1
	// A node restarted on its old ports may find one taken for a moment
	// by another test's socket: try again, as an operator would.
	var n *node.Node
	var stop func()
	var err error
	started := func() bool {
		if n, err = node.New(cfg); err == nil {
			stop, err = tryRun(t, n)
		}
		return err == nil || !strings.Contains(err.Error(), "address already in use")
	}
	require.Eventually(t, started, 5*time.Second, 20*time.Millisecond, "ports still taken")
	require.NoError(t, err)
	return n, stop
}

// quickLeave is DefaultConfig leaving the cluster without waiting for
// the news to spread: members then see it fail rather than leave.
func quickLeave() node.Config {
	c := node.DefaultConfig()
	c.LeaveTimeout = 20 * time.Millisecond
	return c
}

// waitFor waits, polling, until cond holds over real sockets, or fails
// the test after ten seconds (the real-socket smoke tests only).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, "timed out waiting for %s", what)
}
