package node

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startMember runs a clustered node on free loopback ports until stop is
// called or the test ends.
func startMember(t *testing.T, cfg Config, join ...string) (*Node, func()) {
	t.Helper()
	if cfg.Listen == "" || cfg.Listen == DefaultConfig().Listen {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.GossipListen == "" {
		cfg.GossipListen = "127.0.0.1:0"
	}
	cfg.Join = join
	cfg.SyncInterval = 20 * time.Millisecond
	cfg.RejoinInterval = 200 * time.Millisecond
	cfg.UDPSockets = 1
	n, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitFor(t, "gossip up", func() bool { return n.GossipAddr() != "" })
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			began := time.Now()
			cancel()
			require.NoError(t, <-done)
			assert.Less(t, time.Since(began), time.Second, "a clustered node stops within a second too")
		}
	}
	t.Cleanup(stop)
	return n, stop
}

func members(t *testing.T, u *udpClient, n *Node) []wire.Member {
	req, _ := wire.AppendMembersRequest(nil, 1)
	ms, err := wire.DecodeMembers(u.ask(n.Addr(), req))
	require.NoError(t, err)
	var out []wire.Member
	for m := range ms.All() {
		out = append(out, m)
	}
	return out
}

func TestJoinedNodesShareKeys(t *testing.T) {
	n1, _ := startMember(t, DefaultConfig())
	n2, _ := startMember(t, DefaultConfig(), n1.GossipAddr())
	n3, _ := startMember(t, DefaultConfig(), n1.GossipAddr())
	u := newUDP(t)
	waitFor(t, "three push targets each", func() bool {
		return len(n1.Peers()) == 2 && len(n2.Peers()) == 2 && len(n3.Peers()) == 2
	})
	u.send(n1.Addr(), classicAdd(t, "from-1"))
	waitFor(t, "node 3 has node 1's key", func() bool { return hasOn(t, u, n3, "from-1") })

	ms := members(t, u, n2)
	require.Len(t, ms, 3)
	for _, m := range ms {
		assert.Equal(t, wire.MemberAlive, m.State, string(m.Name))
		assert.True(t, m.FPMatch)
	}
}

// A node killed and restarted empty gets everything back from its peers.
func TestRestartedEmptyNodeCatchesUp(t *testing.T) {
	n1, _ := startMember(t, DefaultConfig())
	n2, stop2 := startMember(t, DefaultConfig(), n1.GossipAddr())
	n3, _ := startMember(t, DefaultConfig(), n1.GossipAddr())
	u := newUDP(t)
	keys := make([][]byte, 3000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprint("k", i))
	}
	for i := 0; i < len(keys); i += 100 {
		f, _ := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), wire.FlagAck, keys[i:i+100])
		u.ask(n1.Addr(), f)
	}
	waitFor(t, "node 2 has everything", func() bool { return n2.Filter().Has(keys[len(keys)-1]) })

	addr, gossipAddr, name := n2.Addr().String(), n2.GossipAddr(), n2.Name()
	stop2()
	waitFor(t, "node 2 gone from node 3's targets", func() bool { return len(n3.Peers()) == 1 })

	cfg := DefaultConfig()
	cfg.Listen, cfg.GossipListen, cfg.Name = addr, gossipAddr, name
	again, _ := startMember(t, cfg, n3.GossipAddr())
	waitFor(t, "the restarted node has every key", func() bool {
		for _, k := range keys {
			if !again.Filter().Has(k) {
				return false
			}
		}
		return true
	})
	waitFor(t, "the pull that filled it counted", func() bool { return again.Stats().Count(AntiEntropyPulls) > 0 })
	waitFor(t, "it is a push target again", func() bool { return len(n3.Peers()) == 2 })
}

func TestMemberWithAnotherFilterIsNeverSynced(t *testing.T) {
	n1, _ := startMember(t, DefaultConfig())
	other := DefaultConfig()
	other.Capacity = 5000
	n2, _ := startMember(t, other, n1.GossipAddr())
	u := newUDP(t)
	waitFor(t, "the mismatch seen", func() bool { return n1.Stats().Count(MemberMismatch) == 1 })
	assert.Empty(t, n1.Peers())
	assert.Empty(t, n2.Peers())
	var found bool
	for _, m := range members(t, u, n1) {
		if string(m.Name) == n2.Name() {
			found = true
			assert.False(t, m.FPMatch)
		}
	}
	assert.True(t, found)
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
