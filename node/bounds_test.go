package node_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/shed"
	"github.com/rmbd/rmbd/internal/sockets"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What a sender can make a node spend is bounded: connections, the
// memory their frames take, the time a frame may take, a flood's share.

// closed reports whether the node closed c (a read ends), within d.
func closed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// pingOver sends a ping on c and reads its pong.
func pingOver(t *testing.T, c net.Conn, id uint32) {
	t.Helper()
	ping, _ := wire.AppendPing(nil, wire.Ping{Type: wire.TypePing, ReqID: id, Version: wire.ProtocolVersion})
	go c.Write(ping)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := wire.DecodePing(readFrame(t, wire.NewFrameReader(c, 4096)))
	require.NoError(t, err)
	assert.Equal(t, id, p.ReqID)
}

// A source holds at most MaxConnsPerSource connections; past MaxConns the
// connection idle longest makes room for the new one.
func TestConnectionLimits(t *testing.T) { inBubble(t, testConnectionLimits) }

func testConnectionLimits(t *testing.T, tn *testNet) {
	cfg := node.DefaultConfig()
	cfg.MaxConns, cfg.MaxConnsPerSource = 4, 2
	n := tn.node(cfg)
	a, b, c, d := tn.remote(), tn.remote(), tn.remote(), tn.remote()

	// Between steps a millisecond of the bubble's clock passes, so that
	// which connection is idle longest is told by time.
	a1 := a.dial(n.Addr())
	pingOver(t, a1, 1)
	<-time.After(time.Millisecond)
	a2 := a.dial(n.Addr())
	pingOver(t, a2, 2)
	<-time.After(time.Millisecond)
	a3 := a.dial(n.Addr())
	assert.True(t, closed(a3, 10*time.Second), "a third from one source is refused")
	tn.settle()
	assert.Equal(t, uint64(1), n.Stats().Count(counter.TCPRefusedPerSource), "counted")

	b1, c1 := b.dial(n.Addr()), c.dial(n.Addr())
	pingOver(t, b1, 3)
	pingOver(t, c1, 4)
	<-time.After(time.Millisecond)
	pingOver(t, a1, 5) // a1 busy again: a2 is now the one idle longest
	<-time.After(time.Millisecond)
	d1 := d.dial(n.Addr())
	pingOver(t, d1, 6)
	assert.True(t, closed(a2, 10*time.Second), "the connection idle longest made room")
	assert.Equal(t, uint64(1), n.Stats().Count(counter.TCPEvicted))
	for _, live := range []net.Conn{a1, b1, c1, d1} {
		assert.False(t, closed(live, 20*time.Millisecond))
	}
	assert.Equal(t, 4, n.Stats().OpenConns)
}

// A frame begun must be finished within FrameTimeout; a connection that
// sends nothing goes after IdleTimeout. Each is counted as what it was.
func TestStreamTimeouts(t *testing.T) { inBubble(t, testStreamTimeouts) }

func testStreamTimeouts(t *testing.T, tn *testNet) {
	cfg := node.DefaultConfig()
	cfg.FrameTimeout, cfg.IdleTimeout = 50*time.Millisecond, 100*time.Millisecond
	n := tn.node(cfg)
	u := tn.remote()

	half := u.dial(n.Addr())
	go half.Write([]byte{byte(wire.TypeHasBatch), 0, 0, 1, 0, 0, 0}) // a header promising 65,536 bytes, and two
	assert.True(t, closed(half, 10*time.Second))
	tn.settle()
	assert.Equal(t, uint64(1), n.Stats().Count(counter.TCPFrameTimeouts), "a frame timeout")

	trickle := u.dial(n.Addr())
	go func() {
		trickle.Write([]byte{byte(wire.TypeHasBatch)})
		for range 20 { // a byte every 10 ms of the bubble's clock: each read is in time, the frame is not
			<-time.After(10 * time.Millisecond)
			if _, err := trickle.Write([]byte{0}); err != nil {
				return
			}
		}
	}()
	assert.True(t, closed(trickle, 10*time.Second))
	tn.settle()
	assert.Equal(t, uint64(2), n.Stats().Count(counter.TCPFrameTimeouts), "a second frame timeout")

	idle := u.dial(n.Addr())
	pingOver(t, idle, 1)
	assert.True(t, closed(idle, 10*time.Second))
	tn.settle()
	assert.Equal(t, uint64(1), n.Stats().Count(counter.TCPIdleTimeouts), "an idle timeout")
}

// Frames are held in memory as their bytes arrive, under the budget:
// connections whose frames would pass it are closed, the others served,
// and every byte lent comes back.
func TestBufferBudget(t *testing.T) { inBubble(t, testBufferBudget) }

func testBufferBudget(t *testing.T, tn *testNet) {
	const minBufferBytes = 4 << 20 // the least budget a node takes
	cfg := node.DefaultConfig()
	cfg.MaxBufferBytes = minBufferBytes
	n := tn.node(cfg)
	head := make([]byte, wire.HeaderSize)
	head[0] = byte(wire.TypeAddBatch)
	binary.BigEndian.PutUint32(head[1:], wire.MaxFrameBody)
	body := make([]byte, 900_000)
	var conns []net.Conn
	for range 6 { // six frames of 900 KB on their way: more than 4 MiB
		c := tn.remote().dial(n.Addr())
		conns = append(conns, c)
		go func() {
			c.Write(head)
			c.Write(body)
		}()
	}
	tn.settle()
	assert.GreaterOrEqual(t, n.Stats().Count(counter.TCPNoMemory), uint64(2), "some closed for memory")
	st := n.Stats()
	assert.LessOrEqual(t, st.Buffers.Peak, int64(minBufferBytes))
	assert.Positive(t, st.Buffers.Refused)

	// Served whole: a frame of the largest size still fits once the
	// others are gone.
	for _, c := range conns {
		c.Close()
	}
	tn.settle()
	assert.Zero(t, n.Stats().Buffers.Lent, "every byte back")
	keys := make([][]byte, 0, wire.MaxBatchKeys)
	for i := range wire.MaxBatchKeys {
		keys = append(keys, binary.BigEndian.AppendUint32(make([]byte, 200), uint32(i)))
	}
	big, err := wire.AppendBatch(nil, wire.TypeAddBatch, 9, wire.FlagAck, keys)
	require.NoError(t, err)
	require.Greater(t, len(big), 800_000)
	c := tn.remote().dial(n.Addr())
	go c.Write(big)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := wire.DecodeResult(readFrame(t, wire.NewFrameReader(c, 4096)))
	require.NoError(t, err)
	assert.Equal(t, wire.MaxBatchKeys, res.Count)
	c.Close()
	tn.settle()
	assert.Zero(t, n.Stats().Buffers.Lent, "its memory back")
}

// A reader that falls behind sheds the source flooding it: the kernel (a
// socket filter, here the network standing in for it) drops that source,
// the other clients are served; when the flood stops the block is lifted.
func TestFloodIsShed(t *testing.T) { inBubble(t, testFloodIsShed) }

func testFloodIsShed(t *testing.T, tn *testNet) {
	const shedWindow = shed.Window
	ep, err := tn.nw.Endpoint(netAddr(1))
	require.NoError(t, err)
	n := tn.nodeWith(ep, node.DefaultConfig())
	flooder, client := tn.remote(), tn.remote()
	has := func(id uint32) []byte {
		b, _ := wire.AppendBatch(nil, wire.TypeHasBatch, id, 0, [][]byte{[]byte("k")})
		return b
	}
	ep.SetQueue(sockets.Queue{Bytes: 3 << 20, Size: 4 << 20}) // the socket is filling: the reader is behind
	for i := range 2 * shedWindow {
		flooder.send(n.Addr(), has(uint32(i)))
		if i%512 == 0 {
			client.send(n.Addr(), has(uint32(i)))
		}
	}
	tn.deliver()
	assert.Equal(t, uint64(1), n.Stats().Count(counter.UDPBlocked), "the flooder, and it alone")
	assert.Equal(t, 1, n.Stats().UDPBlockedNow)
	answered := 0
	for _, d := range client.take() {
		if _, err := wire.DecodeResult(d.frame); err == nil {
			answered++
		}
	}
	assert.Equal(t, 2*shedWindow/512, answered, "every request of the other client answered")
	assert.Less(t, len(flooder.take()), shedWindow+shedWindow/8, "the flood not: blocked after a window")
	assert.Positive(t, n.Stats().UDPQueueDrops, "the blocked datagrams count as the kernel's drops")

	// Still flooding when the block's time is up: renewed. Then quiet: lifted.
	ep.SetQueue(sockets.Queue{Size: 4 << 20})
	for i := range 5000 {
		flooder.send(n.Addr(), has(uint32(i)))
	}
	tn.deliver()
	<-time.After(shed.BlockFor + 300*time.Millisecond) // the housekeeping reviews the block
	tn.settle()
	assert.Equal(t, 1, n.Stats().UDPBlockedNow, "renewed")
	<-time.After(shed.BlockFor + time.Second)
	tn.settle()
	assert.Zero(t, n.Stats().UDPBlockedNow, "lifted")
	flooder.take()
	flooder.send(n.Addr(), has(1))
	tn.deliver()
	assert.Len(t, flooder.take(), 1, "served again")
}

// A client alone on a quiet socket sends every datagram the reader sees,
// and is still no flood: under shedRate a second nobody is shed.
func TestQuietClientsAreNotShed(t *testing.T) { inBubble(t, testQuietClientsAreNotShed) }

func testQuietClientsAreNotShed(t *testing.T, tn *testNet) {
	ep, err := tn.nw.Endpoint(netAddr(1))
	require.NoError(t, err)
	n := tn.nodeWith(ep, node.DefaultConfig())
	u := tn.remote()
	ep.SetQueue(sockets.Queue{Bytes: 3 << 20, Size: 4 << 20})
	for i := range 300 {
		u.send(n.Addr(), classicHas(t, "k"))
		tn.deliver()
		u.take()
		if i%64 == 0 {
			<-time.After(100 * time.Millisecond) // a window of the bubble's clock: 64 datagrams, far under 2,000 a second
		}
	}
	assert.Zero(t, n.Stats().Count(counter.UDPBlocked))
	assert.Zero(t, n.Stats().Count(counter.UDPShed))
}

// Stats requests read the statistics the background refresh keeps: a
// flood of them never reads the filter.
func TestStatsDoNotReadTheFilter(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		n, u := tn.node(node.DefaultConfig()), tn.station()
		tn.settle()
		before := n.Registry().Default().Stats()
		require.NotNil(t, before, "read once at start")
		req, _ := wire.AppendStatsRequest(nil, 1)
		req, _ = wire.PadFrame(req, 0, 4096)
		for range 100 {
			u.ask(n.Addr(), req)
			n.Stats()
		}
		assert.Same(t, before, n.Registry().Default().Stats(), "no refresh came from a request")
		tn.refresh()
		assert.NotSame(t, before, n.Registry().Default().Stats(), "the background refresh did")
	})
}

// Junk fills the peer table — addresses that never answer — and a real
// peer still gets in: the junk is put out to make room.
func TestJunkPeersMakeRoom(t *testing.T) {
	tn := newNet(t)
	n, other, u := tn.node(node.DefaultConfig()), tn.node(node.DefaultConfig()), tn.station()
	for i := range 1100 {
		junk := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 250)}), uint16(1000+i))
		u.send(n.Addr(), peerFrame(t, junk))
	}
	tn.deliver()
	req, _ := wire.AppendPeerRequest(nil, wire.PeerRequest{ReqID: 1, Host: []byte(other.Addr().Addr().String()), Port: other.Addr().Port(), Pad: 1300})
	res, err := wire.DecodePeerResult(u.ask(n.Addr(), req))
	require.NoError(t, err, "taken, not refused")
	assert.Equal(t, wire.PeerChallenged, res.State)
	tn.deliver()
	st := n.Stats()
	assert.Positive(t, st.PeersEvicted)
	assert.Equal(t, 1024, st.Peers)
	verified := false
	for _, p := range n.Peers() {
		verified = verified || p.Addr == other.Addr() && p.Verified
	}
	assert.True(t, verified, "the real peer answered its challenge")
}

// A table full of peers that answered their challenges and acknowledged
// rows refuses a newcomer, and says so in the peer result.
func TestFullPeerTableRefuses(t *testing.T) {
	tn := newNet(t)
	cfg := node.DefaultConfig()
	cfg.MaxPeers = 2
	n, u := tn.node(cfg), tn.station()
	a, b, c := tn.node(node.DefaultConfig()), tn.node(node.DefaultConfig()), tn.node(node.DefaultConfig())
	u.send(n.Addr(), peerFrame(t, a.Addr()))
	u.send(n.Addr(), peerFrame(t, b.Addr()))
	u.send(n.Addr(), classicAdd(t, "k"))
	tn.deliver()
	tn.roundsUntil(10, func() bool { return hasOn(t, u, a, "k") && hasOn(t, u, b, "k") }, n, a, b)
	tn.round(n, a, b) // the acks are in

	req, _ := wire.AppendPeerRequest(nil, wire.PeerRequest{ReqID: 7, Host: []byte(c.Addr().Addr().String()), Port: c.Addr().Port(), Pad: 1300})
	e, err := wire.DecodeError(u.ask(n.Addr(), req))
	require.NoError(t, err, "an error frame answers")
	assert.Equal(t, uint32(7), e.ReqID)
	assert.Equal(t, wire.CodeRefused, e.Code)
	assert.Contains(t, string(e.Msg), "peer table is full")
	assert.Len(t, n.Peers(), 2)
	assert.Zero(t, n.Stats().PeersEvicted, "peers that work are never put out")
}
