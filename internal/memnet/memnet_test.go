package memnet

import (
	"context"
	"io"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 8000)
}

// echo makes addr answer every datagram with the same bytes, count times.
func echo(n *Network, a netip.AddrPort, got *[]string) {
	n.Handle(a, func(from netip.AddrPort, frame []byte) {
		*got = append(*got, string(frame))
		if frame[0] > '0' {
			n.Send(a, from, []byte{frame[0] - 1})
		}
	})
}

func TestDeliverUntilQuiet(t *testing.T) {
	n := New(1)
	var atA, atB []string
	echo(n, addr(1), &atA)
	echo(n, addr(2), &atB)
	n.Send(addr(1), addr(2), []byte("4"))
	n.Send(addr(1), addr(9), []byte("x")) // nobody there
	assert.Equal(t, 5, n.Deliver(), "4, 3, 2, 1, 0: replies of replies, all in one call")
	assert.Equal(t, []string{"4", "2", "0"}, atB)
	assert.Equal(t, []string{"3", "1"}, atA)
	assert.Equal(t, 0, n.Pending())
	assert.Equal(t, 1, n.Stats().Unaddressed)
	assert.Equal(t, 0, n.Deliver(), "quiet")
}

func TestFaultsReplay(t *testing.T) {
	run := func() ([]string, Stats) {
		n := New(7)
		n.SetFaults(Faults{Drop: 0.3, Duplicate: 0.2, Reorder: true, MaxDelay: 3})
		var got []string
		n.Handle(addr(2), func(_ netip.AddrPort, f []byte) { got = append(got, string(f)) })
		for i := range 200 {
			n.Send(addr(1), addr(2), []byte{byte(i)})
		}
		n.Deliver()
		return got, n.Stats()
	}
	got, st := run()
	again, st2 := run()
	assert.Equal(t, got, again, "the same seed replays the same run")
	assert.Equal(t, st, st2)
	assert.InDelta(t, 60, st.Dropped, 25)
	assert.InDelta(t, 28, st.Duplicated, 15)
	assert.Equal(t, 200-st.Dropped+st.Duplicated, len(got))
	inOrder := true
	for i := 1; i < len(got); i++ {
		inOrder = inOrder && got[i-1] <= got[i]
	}
	assert.False(t, inOrder, "delays and reordering mix the order")
}

func TestPartitionCutsDatagramsAndStreams(t *testing.T) {
	n := New(1)
	var atB []string
	echo(n, addr(2), &atB)
	l, err := n.Listen(addr(2))
	require.NoError(t, err)
	defer l.Close()

	n.Partition([]netip.AddrPort{addr(1)}, []netip.AddrPort{addr(2)})
	n.Send(addr(1), addr(2), []byte("0"))
	n.Send(addr(3), addr(2), []byte("0")) // in no group: reaches everyone
	n.Deliver()
	assert.Len(t, atB, 1)
	assert.Equal(t, 1, n.Stats().Cut)
	_, err = n.Dial(context.Background(), addr(1), addr(2))
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)

	n.Cut(nil)
	c, err := n.Dial(context.Background(), addr(1), addr(2))
	require.NoError(t, err)
	s, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, addr(1).String(), s.RemoteAddr().String())
	assert.Equal(t, addr(2).String(), c.RemoteAddr().String())
	go c.Write([]byte("hello"))
	buf := make([]byte, 5)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(buf))

	_, err = n.Dial(context.Background(), addr(1), addr(5))
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "nobody listens")
	l.Close()
	_, err = n.Dial(context.Background(), addr(1), addr(2))
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "closed")
}

func TestEndpoint(t *testing.T) {
	n := New(1)
	e, err := n.Endpoint(addr(1))
	require.NoError(t, err)
	_, err = n.Endpoint(addr(1))
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	done := e.ServePackets(ctx, func(reader int, frame []byte, from netip.AddrPort) {
		got = append(got, string(frame))
		e.WriteTo(reader, []byte("re:"+string(frame)), from)
	})
	var replies []string
	n.Handle(addr(2), func(_ netip.AddrPort, f []byte) { replies = append(replies, string(f)) })
	n.Send(addr(2), addr(1), []byte("a"))
	n.Deliver()
	assert.Equal(t, []string{"a"}, got)
	assert.Equal(t, []string{"re:a"}, replies)
	cancel()
	<-done
	n.Send(addr(2), addr(1), []byte("b"))
	n.Deliver()
	assert.Equal(t, []string{"a"}, got, "no longer served")
	require.NoError(t, e.Close())
}

// Tap sees every datagram sent, delivered or cut.
func TestTap(t *testing.T) {
	n := New(1)
	a, b := netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1")
	got := 0
	n.Handle(b, func(netip.AddrPort, []byte) { got++ })
	var seen [][]byte
	n.Tap(func(from, to netip.AddrPort, frame []byte) {
		if from == a && to == b {
			seen = append(seen, frame)
		}
	})
	n.Cut(func(from, to netip.AddrPort) bool { return from == a })
	n.Send(a, b, []byte("cut"))
	n.Deliver()
	n.Cut(nil)
	n.Send(a, b, []byte("sent"))
	n.Deliver()
	n.Tap(nil)
	n.Send(a, b, []byte("untapped"))
	n.Deliver()
	if len(seen) != 2 || string(seen[0]) != "cut" || string(seen[1]) != "sent" || got != 2 {
		t.Fatalf("tapped %q, delivered %d", seen, got)
	}
}
