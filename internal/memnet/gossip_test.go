package memnet

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gossipAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 7946)
}

// startMember runs a memberlist named m<i> at gossipAddr(i) on nw.
func startMember(t *testing.T, nw *Network, i int) *memberlist.Memberlist {
	tr, err := nw.Gossip(gossipAddr(i))
	require.NoError(t, err)
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = fmt.Sprintf("m%d", i)
	cfg.Transport = tr
	cfg.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(cfg)
	require.NoError(t, err)
	return ml
}

// linger is how long memberlist's goroutines may outlive its Shutdown,
// which does not wait for them: a probe waits out its probe interval
// (stretched by awareness) and a stream its TCP timeout.
func linger(cfg *memberlist.Config) time.Duration {
	return max(cfg.TCPTimeout, cfg.ProbeInterval*time.Duration(cfg.AwarenessMaxMultiplier))
}

// startCluster starts n members, each joining the first, and waits until
// all see all. When the test ends it shuts them down and waits for their
// goroutines: the bubble's clock stops when its function returns, and a
// goroutine still waiting on a timer then is a deadlock.
func startCluster(t *testing.T, nw *Network, n int) []*memberlist.Memberlist {
	ms := make([]*memberlist.Memberlist, n)
	for i := range ms {
		ms[i] = startMember(t, nw, i+1)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.Shutdown()
		}
		time.Sleep(linger(memberlist.DefaultLANConfig()))
	})
	for _, m := range ms[1:] {
		_, err := m.Join([]string{gossipAddr(1).String()})
		require.NoError(t, err)
	}
	for _, m := range ms {
		waitFor(t, time.Minute, func() bool { return m.NumMembers() == n })
	}
	return ms
}

// waitFor polls ok on the bubble's fake clock, failing after limit.
func waitFor(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("not within %v", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestGossipJoinAndLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ms := startCluster(t, New(1), 3)
		t.Logf("3 members joined in %v", time.Since(start))

		start = time.Now()
		require.NoError(t, ms[2].Leave(time.Second))
		assert.Less(t, time.Since(start), time.Second, "Leave returns when a gossip round has sent it")
		require.NoError(t, ms[2].Shutdown())
		for _, m := range ms[:2] {
			// Faster than failure detection could be: it takes a probe
			// and a suspicion, seconds.
			waitFor(t, time.Second, func() bool { return m.NumMembers() == 2 })
		}
		for _, m := range ms[:2] {
			require.NoError(t, m.Shutdown())
		}
	})
}

func TestGossipPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := New(1)
		ms := startCluster(t, nw, 3)

		start := time.Now()
		nw.Partition([]netip.AddrPort{gossipAddr(3)}, []netip.AddrPort{gossipAddr(1), gossipAddr(2)})
		for _, m := range ms[:2] {
			waitFor(t, 15*time.Second, func() bool { return m.NumMembers() == 2 })
		}
		waitFor(t, 15*time.Second, func() bool { return ms[2].NumMembers() == 1 })
		// A failed probe (ProbeTimeout, 0.5s) and a suspicion of at least
		// SuspicionMult·log10(3)·ProbeInterval, 1.9s.
		t.Logf("m3 and the others failed each other after %v", time.Since(start))
		assert.Greater(t, time.Since(start), 2*time.Second, "by failure detection, not at once")

		nw.Cut(nil)
		start = time.Now()
		_, err := ms[2].Join([]string{gossipAddr(1).String()})
		require.NoError(t, err)
		for _, m := range ms {
			waitFor(t, 10*time.Second, func() bool { return m.NumMembers() == 3 })
		}
		t.Logf("healed in %v", time.Since(start))
	})
}

func TestGossipToShutDownNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := New(1)
		a, err := nw.Gossip(gossipAddr(1))
		require.NoError(t, err)
		b, err := nw.Gossip(gossipAddr(2))
		require.NoError(t, err)
		full, err := nw.Gossip(gossipAddr(3)) // nobody reads it
		require.NoError(t, err)
		require.NoError(t, b.Shutdown())
		require.NoError(t, b.Shutdown(), "twice is fine")

		start := time.Now()
		for range 10 * gossipQueue {
			_, err := a.WriteTo([]byte("ping"), gossipAddr(2).String())
			require.NoError(t, err, "lost, as UDP is")
			_, err = a.WriteTo([]byte("ping"), gossipAddr(3).String())
			require.NoError(t, err)
		}
		assert.Zero(t, time.Since(start), "no write waited")
		assert.Empty(t, b.PacketCh(), "nothing reaches a shut-down transport")
		assert.Len(t, full.PacketCh(), gossipQueue, "a full queue loses the rest")

		_, err = a.DialTimeout(gossipAddr(2).String(), time.Second)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
		_, err = b.WriteTo([]byte("ping"), gossipAddr(1).String())
		assert.ErrorIs(t, err, net.ErrClosed, "a shut-down transport sends nothing")
		_, err = b.DialTimeout(gossipAddr(1).String(), time.Second)
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.Empty(t, a.PacketCh())

		// A stream queued and not taken is closed, so its dialler is not
		// left writing into it.
		c, err := a.DialTimeout(gossipAddr(3).String(), time.Second)
		require.NoError(t, err)
		require.NoError(t, full.Shutdown())
		_, err = c.Write([]byte("x"))
		assert.ErrorIs(t, err, io.ErrClosedPipe)
		assert.Zero(t, time.Since(start))
	})
}

func TestGossipPacketsAndStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := New(1)
		a, err := nw.Gossip(gossipAddr(1))
		require.NoError(t, err)
		b, err := nw.Gossip(gossipAddr(2))
		require.NoError(t, err)

		frame := []byte("ping")
		_, err = a.WriteToAddress(frame, memberlist.Address{Addr: "10.0.0.2:7946", Name: "b"})
		require.NoError(t, err)
		frame[0] = 'X'
		p := <-b.PacketCh()
		assert.Equal(t, "ping", string(p.Buf), "the packet is a copy")
		assert.Equal(t, "10.0.0.1:7946", p.From.String())

		c, err := a.DialTimeout("10.0.0.2:7946", time.Second)
		require.NoError(t, err)
		s := <-b.StreamCh()
		assert.Equal(t, "10.0.0.1:7946", s.RemoteAddr().String())
		assert.Equal(t, "10.0.0.2:7946", c.RemoteAddr().String())
		go c.Write([]byte("hello"))
		buf := make([]byte, 5)
		_, err = io.ReadFull(s, buf)
		require.NoError(t, err)
		assert.Equal(t, "hello", string(buf))
		c.Close()
		s.Close()

		_, err = a.WriteTo(frame, "nowhere")
		assert.ErrorContains(t, err, `memnet: gossip write to "nowhere"`)
		_, err = a.WriteTo(frame, "10.0.0.9:7946")
		assert.NoError(t, err, "nobody there: lost")
		_, err = a.DialTimeout("10.0.0.9:7946", time.Second)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)

		ip, port, err := a.FinalAdvertiseAddr("192.0.2.1", 1)
		require.NoError(t, err)
		assert.Equal(t, "10.0.0.1:7946", net.JoinHostPort(ip.String(), fmt.Sprint(port)), "its own address, whatever the config")
	})
}

func TestGossipHonoursCutsAndDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := New(1)
		a, err := nw.Gossip(gossipAddr(1))
		require.NoError(t, err)
		b, err := nw.Gossip(gossipAddr(2))
		require.NoError(t, err)
		send := func(from *GossipTransport, to netip.AddrPort, count int) {
			for range count {
				_, err := from.WriteTo([]byte("p"), to.String())
				require.NoError(t, err)
			}
		}

		nw.Cut(func(from, to netip.AddrPort) bool { return from == gossipAddr(1) })
		send(a, gossipAddr(2), 1)
		send(b, gossipAddr(1), 1)
		assert.Empty(t, b.PacketCh(), "a → b is cut")
		assert.Len(t, a.PacketCh(), 1, "b → a is not")
		<-a.PacketCh()
		for _, d := range []func() (net.Conn, error){
			func() (net.Conn, error) { return a.DialTimeout(gossipAddr(2).String(), time.Second) },
			func() (net.Conn, error) { return b.DialTimeout(gossipAddr(1).String(), time.Second) },
		} {
			_, err := d()
			assert.ErrorIs(t, err, syscall.ECONNREFUSED, "streams are cut either way")
		}

		nw.Cut(nil)
		nw.SetFaults(Faults{Drop: 0.5})
		send(a, gossipAddr(2), 200)
		assert.InDelta(t, 100, len(b.PacketCh()), 30, "about half dropped")
		_, err = a.DialTimeout(gossipAddr(2).String(), time.Second)
		assert.NoError(t, err, "streams are not dropped")
		assert.Zero(t, nw.Stats(), "gossip is not counted with datagrams")
	})
}

func TestGossipAddressesApartFromData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := New(1)
		shared := gossipAddr(1)
		ep, err := nw.Endpoint(shared)
		require.NoError(t, err)
		defer ep.Close()
		g, err := nw.Gossip(shared)
		require.NoError(t, err, "the same address, another namespace")
		_, err = nw.Gossip(shared)
		assert.ErrorIs(t, err, syscall.EADDRINUSE)
		_, err = nw.Gossip(netip.MustParseAddrPort("[::ffff:10.0.0.1]:7946"))
		assert.ErrorIs(t, err, syscall.EADDRINUSE, "an IPv4-mapped address is the IPv4 one")

		other, err := nw.Gossip(gossipAddr(2))
		require.NoError(t, err)
		_, err = other.DialTimeout(shared.String(), time.Second)
		require.NoError(t, err)
		_, err = nw.Dial(context.Background(), gossipAddr(2), shared)
		require.NoError(t, err)
		assert.Len(t, g.StreamCh(), 1, "the gossip dial reached the transport")
		c, err := ep.Listener().Accept()
		require.NoError(t, err, "the data dial reached the endpoint")
		c.Close()

		var data int
		ep.ServePackets(t.Context(), func(int, []byte, netip.AddrPort) { data++ })
		_, err = other.WriteTo([]byte("p"), shared.String())
		require.NoError(t, err)
		assert.Len(t, g.PacketCh(), 1)
		assert.Zero(t, nw.Pending(), "gossip does not wait for Deliver")
		nw.Deliver()
		assert.Zero(t, data, "the endpoint saw no gossip")

		require.NoError(t, g.Shutdown())
		g2, err := nw.Gossip(shared)
		require.NoError(t, err, "open again after shutdown")
		require.NoError(t, g.Shutdown(), "again, stale")
		_, err = other.WriteTo([]byte("p"), shared.String())
		require.NoError(t, err)
		assert.Len(t, g2.PacketCh(), 1, "a stale shutdown leaves the new transport open")
		require.NoError(t, g2.Shutdown())
	})
}
