package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// addKeys adds keys to n in acknowledged batches.
func addKeys(t *testing.T, u *station, n *Node, keys [][]byte) {
	for i := 0; i < len(keys); i += 100 {
		f, err := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), wire.FlagAck, keys[i:min(i+100, len(keys))])
		require.NoError(t, err)
		u.ask(n.Addr(), f)
	}
}

func makeKeys(prefix string, count int) [][]byte {
	keys := make([][]byte, count)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return keys
}

func hasAll(n *Node, keys [][]byte) bool {
	for _, k := range keys {
		if !n.Filter().Has(k) {
			return false
		}
	}
	return true
}

// Members with the node's filter are push targets: a key added on one
// reaches the others in one round.
func TestMembersShareKeys(t *testing.T) {
	tn := newNet(t)
	n1, n2, n3 := tn.node(DefaultConfig()), tn.node(DefaultConfig()), tn.node(DefaultConfig())
	u := tn.station()
	join(n1, n2, n3)
	for _, n := range []*Node{n1, n2, n3} {
		assert.Len(t, n.Peers(), 2)
	}
	u.send(n1.Addr(), classicAdd(t, "from-1"))
	tn.deliver()
	tn.round(n1, n2, n3)
	assert.True(t, hasOn(t, u, n2, "from-1"))
	assert.True(t, hasOn(t, u, n3, "from-1"))

	host{n1}.MemberDown(memberOf(n3), false)
	assert.Len(t, n1.Peers(), 1, "a failed member is no longer a target")
	host{n1}.MemberUp(memberOf(n3))
	assert.Len(t, n1.Peers(), 2, "and is again once back")
}

func TestMemberWithAnotherFilterIsNeverSynced(t *testing.T) {
	tn := newNet(t)
	other := DefaultConfig()
	other.Capacity = 5000
	n1, n2 := tn.node(DefaultConfig()), tn.node(other)
	join(n1, n2)
	join(n1, n2) // updates: the mismatch is reported once
	assert.Empty(t, n1.Peers())
	assert.Empty(t, n2.Peers())
	assert.Equal(t, uint64(1), n1.Stats().Count(MemberMismatch))
	assert.Equal(t, uint64(1), n2.Stats().Count(MemberMismatch))

	state, err := wire.DecodeLocalState(host{n2}.AppendState(nil))
	require.NoError(t, err)
	host{n1}.MergeState(memberOf(n2), state, true)
	assert.Empty(t, n1.repairing, "no pull from a member with another filter")
}

// A node killed and restarted empty is filled by one pull from a member,
// and does not push the filter back to members that already have it.
func TestRestartedEmptyNodeCatchesUp(t *testing.T) {
	tn := newNet(t)
	n1, n3 := tn.node(DefaultConfig()), tn.node(DefaultConfig())
	n2, stop2 := tn.nodeAt(netAddr(10), DefaultConfig())
	u := tn.station()
	join(n1, n2, n3)
	keys := makeKeys("k", 3000)
	addKeys(t, u, n1, keys)
	tn.roundsUntil(20, func() bool { return hasAll(n2, keys) && hasAll(n3, keys) }, n1, n2, n3)

	stop2()
	host{n1}.MemberDown(memberOf(n2), false)
	host{n3}.MemberDown(memberOf(n2), false)
	assert.Len(t, n3.Peers(), 1)

	again, _ := tn.nodeAt(netAddr(10), DefaultConfig())
	require.Zero(t, again.Filter().Stats().SetBits, "restarted empty")
	join(n1, again, n3)
	state, err := wire.DecodeLocalState(host{n3}.AppendState(nil))
	require.NoError(t, err)
	again.repair(n3.Name(), n3.Addr(), state.Digests, true)
	assert.True(t, hasAll(again, keys), "one pull fills it")
	assert.Equal(t, uint64(1), again.Stats().Count(AntiEntropyPulls))
	assert.Zero(t, again.Stats().Count(PullsFailed))
	assert.Len(t, n3.Peers(), 2, "a push target again")

	tn.round(again)
	assert.Zero(t, again.Stats().SyncBytesSent, "members have what the pull brought: nothing pushed back")
}

// A pull from a member that cannot serve it fails, is counted, and leaves
// the filter as it was.
func TestFailedPullIsCounted(t *testing.T) {
	tn := newNet(t)
	n1, n2 := tn.node(DefaultConfig()), tn.node(DefaultConfig())
	join(n1, n2) // pulls are served to members only
	u := tn.station()
	addKeys(t, u, n2, makeKeys("p", 10))
	state, err := wire.DecodeLocalState(host{n2}.AppendState(nil))
	require.NoError(t, err)
	tn.nw.Partition([]netip.AddrPort{n1.Addr()}, []netip.AddrPort{n2.Addr()})
	n1.repair(n2.Name(), n2.Addr(), state.Digests, false)
	assert.Equal(t, uint64(pullAttempts), n1.Stats().Count(PullsFailed), "tried again, each failure counted")
	assert.Zero(t, n1.Filter().Stats().SetBits)

	n1.after = func(time.Duration) <-chan time.Time { // the link heals while the node waits to try again
		tn.nw.Cut(nil)
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	tn.nw.Partition([]netip.AddrPort{n1.Addr()}, []netip.AddrPort{n2.Addr()})
	n1.repair(n2.Name(), n2.Addr(), state.Digests, false)
	assert.Equal(t, uint64(pullAttempts+1), n1.Stats().Count(PullsFailed), "one more failure")
	assert.True(t, hasAll(n1, makeKeys("p", 10)), "then the retry filled it")
}

// startMember runs a clustered node on real loopback sockets and a real
// memberlist until stop is called or the test ends.
func startMember(t *testing.T, cfg Config, join ...string) (*Node, func()) {
	t.Helper()
	return startMemberFilled(t, cfg, nil, join...)
}

// startMemberWith is startMember calling fill between New and Run.
func startMemberWith(t *testing.T, cfg Config, fill func(*Node), join ...string) *Node {
	t.Helper()
	n, _ := startMemberFilled(t, cfg, fill, join...)
	return n
}

func startMemberFilled(t *testing.T, cfg Config, fill func(*Node), join ...string) (*Node, func()) {
	t.Helper()
	if cfg.Listen == "" || cfg.Listen == DefaultConfig().Listen {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.GossipListen == "" {
		cfg.GossipListen = "127.0.0.1:0"
	}
	cfg.Join, cfg.Resolver = join, resolver{}
	cfg.SyncInterval = 20 * time.Millisecond
	cfg.RejoinInterval = 200 * time.Millisecond
	cfg.UDPSockets = 1
	// A node restarted on its old ports may find one taken for a moment
	// by another test's socket: try again, as an operator would.
	for attempt := 1; ; attempt++ {
		n, err := New(cfg)
		if err == nil {
			if fill != nil {
				fill(n)
			}
			var stop func()
			if stop, err = tryRun(t, n); err == nil {
				return n, stop
			}
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 50 {
			require.NoError(t, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quickLeave is DefaultConfig leaving the cluster without waiting for
// the news to spread: members then see it fail rather than leave.
func quickLeave() Config {
	c := DefaultConfig()
	c.LeaveTimeout = 20 * time.Millisecond
	return c
}

// waitFor polls cond over real sockets until it holds or the deadline
// passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func realMembers(t *testing.T, n *Node) []wire.Member {
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer u.Close()
	req, _ := wire.AppendMembersRequest(nil, 1)
	req, _ = wire.PadFrame(req, 0, 1400) // a larger reply needs a padded request
	_, err = u.WriteToUDPAddrPort(req, n.Addr())
	require.NoError(t, err)
	u.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65536)
	m, _, err := u.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	ms, err := wire.DecodeMembers(buf[:m])
	require.NoError(t, err)
	var out []wire.Member
	for m := range ms.All() {
		out = append(out, m)
	}
	return out
}

// The smoke test of membership over real sockets: nodes join through
// memberlist and share keys; a member stopped and restarted empty is
// filled again through memberlist's push/pull and a pull over TCP.
func TestClusterOverRealSockets(t *testing.T) {
	n1, _ := startMember(t, quickLeave())
	n2, stop2 := startMember(t, DefaultConfig(), n1.GossipAddr()) // leaves, and is seen leaving
	n3, _ := startMember(t, quickLeave(), n1.GossipAddr())
	waitFor(t, "two push targets each", func() bool {
		return len(n1.Peers()) == 2 && len(n2.Peers()) == 2 && len(n3.Peers()) == 2
	})
	ms := realMembers(t, n2)
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

	addr, gossipAddr, name := n2.Addr().String(), n2.GossipAddr(), n2.Name()
	stop2()
	waitFor(t, "node 2 gone from node 3's targets", func() bool { return len(n3.Peers()) == 1 })
	waitFor(t, "node 2 listed as left", func() bool {
		for _, m := range realMembers(t, n3) {
			if string(m.Name) == name {
				return m.State == wire.MemberLeft
			}
		}
		return false
	})
	cfg := quickLeave()
	cfg.Listen, cfg.GossipListen, cfg.Name = addr, gossipAddr, name
	again, _ := startMember(t, cfg, n3.GossipAddr())
	waitFor(t, "the restarted node has every key", func() bool { return hasAll(again, keys) })
	waitFor(t, "it is a push target again", func() bool { return len(n3.Peers()) == 2 })
}

func TestClusterConfigErrors(t *testing.T) {
	c := ClassicConfig()
	c.Join = []string{"127.0.0.1:7946"}
	_, err := New(c)
	assert.ErrorContains(t, err, "needs the default profile")
	c = DefaultConfig()
	c.Join = []string{"nope"}
	_, err = New(c)
	assert.ErrorIs(t, err, ErrConfig)

	// A gossip port in use fails Run, not silently.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	c = DefaultConfig()
	c.Listen, c.GossipListen = "127.0.0.1:0", l.Addr().String()
	n, err := New(c)
	require.NoError(t, err)
	assert.Error(t, n.Run(context.Background()))
}

// A member restarted empty gets all of the cluster's keys back from the
// pull its join starts, at any density: anti-entropy runs once an hour
// here, and the seeds hold their keys from before the cluster formed (so
// that no push carries them), so the join's pull alone must do it. The
// densities include the one that broke before: a few keys per thousand
// rows, which made a pull's frames carry more runs than a receiver takes.
func TestSparseRefillOverRealSockets(t *testing.T) {
	for _, c := range []struct {
		keys     int
		capacity uint64
	}{{1000, 1_000_000}, {10_000, 1_000_000}, {100_000, 1_000_000}, {100_000, 10_000_000}} {
		if raceEnabled && c.capacity > 1_000_000 {
			c.keys = 20_000 // as sparse, a fifth of the work: the race detector makes atomics slow
		}
		t.Run(fmt.Sprintf("%d keys at capacity %d", c.keys, c.capacity), func(t *testing.T) {
			cfg := quickLeave()
			cfg.Capacity, cfg.AntiEntropyInterval = c.capacity, time.Hour
			keys := makeKeys("sparse", c.keys)
			filled := func(join ...string) *Node {
				return startMemberWith(t, cfg, func(n *Node) {
					for _, k := range keys {
						n.Filter().Add(k)
					}
					n.Filter().Advance() // history, not news: no round pushes it
				}, join...)
			}
			n1 := filled()
			filled(n1.GossipAddr())
			n3, stop3 := startMember(t, cfg, n1.GossipAddr())
			waitFor(t, "node 3 filled by its first join", func() bool { return hasAll(n3, keys) })
			addr, gossipAddr, name := n3.Addr().String(), n3.GossipAddr(), n3.Name()
			stop3()

			again := cfg
			again.Listen, again.GossipListen, again.Name = addr, gossipAddr, name
			n, _ := startMember(t, again, n1.GossipAddr())
			waitFor(t, "the join's pull", func() bool { return n.Stats().Count(AntiEntropyPulls) > 0 })
			assert.Zero(t, n.Stats().Count(PullsFailed))
			missing := 0
			for _, k := range keys {
				if !n.Filter().Has(k) {
					missing++
				}
			}
			assert.Zero(t, missing, "keys missing after the join's pull")
		})
	}
}
