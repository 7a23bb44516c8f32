package node_test

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --allow, --allow-read and --allow-admin: who may add, ask and
// administer. Refusals are counted and named: in an error frame for
// extended requests and over TCP, where the stream then ends; classic
// datagrams get nothing.
func TestAllowLists(t *testing.T) {
	tn := newNet(t)
	cfg := node.DefaultConfig()
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")}
	cfg.AllowRead = []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24"), netip.MustParsePrefix("192.0.2.0/24")}
	n := tn.node(cfg)
	u, reader, stranger := tn.station(), tn.remote(), tn.stationAt(netip.MustParseAddrPort("198.51.100.1:9000"))
	code := func(reply []byte) uint16 {
		t.Helper()
		e, err := wire.DecodeError(reply)
		require.NoError(t, err)
		return e.Code
	}

	reader.send(n.Addr(), classicAdd(t, "x"))
	tn.deliver()
	assert.Empty(t, reader.take(), "a classic add refused over UDP: no reply to give")
	add, _ := wire.AppendBatch(nil, wire.TypeAddBatch, 1, wire.FlagAck, [][]byte{[]byte("x")})
	assert.Equal(t, wire.CodeForbidden, code(reader.ask(n.Addr(), add)), "the code fits a small datagram")
	assert.False(t, n.Filter().Has([]byte("x")))
	assert.False(t, hasOn(t, reader, n, "x"), "it may ask")

	has, _ := wire.AppendBatch(nil, wire.TypeHasBatch, 2, 0, [][]byte{[]byte("a long enough key to carry the reason in the reply")})
	e, err := wire.DecodeError(stranger.ask(n.Addr(), has))
	require.NoError(t, err)
	assert.Equal(t, wire.CodeForbidden, e.Code)
	assert.Equal(t, "this address may not ask (--allow-read)", string(e.Msg))

	// Over TCP: the reason, then the end of the stream.
	for _, frame := range [][]byte{classicAdd(t, "x"), add} {
		c := reader.dial(n.Addr())
		go c.Write(frame)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := wire.NewFrameReader(c, 4096)
		e, err := wire.DecodeError(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, wire.CodeForbidden, e.Code)
		assert.Contains(t, string(e.Msg), "--allow")
		if wire.Type(frame[0]) == wire.TypeAdd {
			_, err = r.Next()
			assert.ErrorIs(t, err, io.EOF, "a refused classic request ends the stream")
		}
	}
	assert.False(t, n.Filter().Has([]byte("x")))

	u.send(n.Addr(), classicAdd(t, "y"))
	tn.deliver()
	assert.True(t, hasOn(t, u, n, "y"), "loopback may add")
	assert.Equal(t, uint64(5), n.Stats().Count(counter.Forbidden))

	// Admin: loopback yes, others only with --allow-admin.
	stats, _ := wire.AppendStatsRequest(nil, 3)
	stats, _ = wire.PadFrame(stats, 0, 4096)
	assert.Equal(t, wire.CodeForbidden, code(reader.ask(n.Addr(), stats)))
	_, err = wire.DecodeStats(u.ask(n.Addr(), stats))
	require.NoError(t, err)
	cfg.AllowAdmin = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	admin := tn.node(cfg)
	_, err = wire.DecodeStats(reader.ask(admin.Addr(), stats))
	require.NoError(t, err, "--allow-admin")
}
