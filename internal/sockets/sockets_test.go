package sockets

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve runs s's readers, collecting the sources of what they read.
func serve(t *testing.T, s *Set) (got func() map[netip.Addr]int) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen := map[netip.Addr]int{}
	done := s.ServePackets(ctx, func(_ int, _ []byte, from netip.AddrPort) {
		mu.Lock()
		seen[from.Addr()]++
		mu.Unlock()
	})
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	return func() map[netip.Addr]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[netip.Addr]int{}
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

func sendFrom(t *testing.T, from, to netip.AddrPort, n int) {
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(from), net.UDPAddrFromAddrPort(to))
	require.NoError(t, err)
	defer c.Close()
	for range n {
		_, err := c.Write([]byte("datagram"))
		require.NoError(t, err)
	}
}

// Blocked sources are dropped by the kernel, counted in the queue's
// drops; the others arrive; lifting the block lets everyone in again.
func TestBlock(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket filters are Linux only")
	}
	s, err := Listen(context.Background(), "127.0.0.1:0", 1)
	require.NoError(t, err)
	got := serve(t, s)
	bad, good := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	require.NoError(t, s.Block(0, []netip.Addr{netip.MustParseAddr("127.0.0.9"), bad, netip.MustParseAddr("::1")}))
	sendFrom(t, netip.AddrPortFrom(bad, 0), s.Addr(), 50)
	sendFrom(t, netip.AddrPortFrom(good, 0), s.Addr(), 50)
	require.Eventually(t, func() bool { return got()[good] == 50 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, got()[bad], "blocked")
	assert.Equal(t, uint64(50), s.Queue(0).Drops, "counted as drops")

	require.NoError(t, s.Block(0, nil))
	require.NoError(t, s.Block(0, nil), "lifting twice is fine")
	sendFrom(t, netip.AddrPortFrom(bad, 0), s.Addr(), 10)
	require.Eventually(t, func() bool { return got()[bad] == 10 }, 5*time.Second, time.Millisecond)
	q := s.Queue(0)
	assert.Positive(t, q.Size)
	assert.GreaterOrEqual(t, q.Bytes, 0)
}

func TestBlockIPv6(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("socket filters are Linux only")
	}
	s, err := Listen(context.Background(), "[::1]:0", 1)
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	got := serve(t, s)
	lo := netip.MustParseAddr("::1")
	require.NoError(t, s.Block(0, []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::2"), lo}))
	sendFrom(t, netip.AddrPortFrom(lo, 0), s.Addr(), 20)
	require.Eventually(t, func() bool { return s.Queue(0).Drops == 20 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, got()[lo])
	require.NoError(t, s.Block(0, []netip.Addr{netip.MustParseAddr("::2")}))
	sendFrom(t, netip.AddrPortFrom(lo, 0), s.Addr(), 5)
	require.Eventually(t, func() bool { return got()[lo] == 5 }, 5*time.Second, time.Millisecond, "another source blocked: ::1 gets in")
}

// The program stays within classic BPF's forward jumps however many
// sources are named.
func TestBlockProgramBounds(t *testing.T) {
	var srcs []netip.Addr
	for i := range 40 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), netip.AddrFrom16([16]byte{0x20, 1, 15: byte(i)}))
	}
	prog := blockProgram(srcs)
	assert.Less(t, len(prog), 256)
}
