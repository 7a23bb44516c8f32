package conns

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pair returns the server's end of a stream from `from` on nw.
func pair(t *testing.T, nw *memnet.Network, l net.Listener, from netip.AddrPort) net.Conn {
	t.Helper()
	c, err := nw.Dial(context.Background(), from, netip.MustParseAddrPort(l.Addr().String()))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	s, err := l.Accept()
	require.NoError(t, err)
	return s
}

// A source holds at most MaxPerSource connections; a full table closes
// the connection idle longest to let a new one in.
func TestAdmit(t *testing.T) {
	nw := memnet.New(1)
	l, err := nw.Listen(netip.MustParseAddrPort("10.0.0.1:80"))
	require.NoError(t, err)
	tb := New(Config{Max: 3, MaxPerSource: 2})
	a := netip.MustParseAddrPort
	c1, ok := tb.Admit(pair(t, nw, l, a("192.0.2.1:1")))
	require.True(t, ok)
	assert.Equal(t, a("192.0.2.1:1"), c1.From)
	_, ok = tb.Admit(pair(t, nw, l, a("192.0.2.1:2")))
	require.True(t, ok)
	_, ok = tb.Admit(pair(t, nw, l, a("192.0.2.1:3")))
	assert.False(t, ok, "a third from one source")
	c1.last.Store(time.Now().Add(-time.Hour).UnixNano()) // idle longest
	c3, ok := tb.Admit(pair(t, nw, l, a("192.0.2.2:1")))
	require.True(t, ok)
	c4, ok := tb.Admit(pair(t, nw, l, a("192.0.2.3:1")))
	require.True(t, ok, "the table full: the idlest goes")
	assert.Equal(t, 3, tb.Len())
	_, err = c1.C.Read(make([]byte, 1))
	assert.Error(t, err, "the idlest was closed")
	tb.Release(c1) // its handler releases it too: harmless
	assert.Equal(t, 3, tb.Len())
	tb.Release(c3)
	tb.Release(c4)
	assert.Equal(t, 1, tb.Len())
	assert.Equal(t, Counts{Refused: 1, Evicted: 1}, tb.Counts())

	tb.Drain()
	_, ok = tb.Admit(pair(t, nw, l, a("192.0.2.4:1")))
	assert.False(t, ok, "draining: none admitted")
}
