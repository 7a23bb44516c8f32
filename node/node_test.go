package node_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// 1. add then has → true; never added → false; the reply is byte-exact.
func TestAddHas(t *testing.T) {
	for _, cfg := range []node.Config{node.DefaultConfig(), node.ClassicConfig()} {
		t.Run(string(cfg.Profile), func(t *testing.T) {
			tn := newNet(t)
			n, u := tn.node(cfg), tn.station()
			u.send(n.Addr(), classicAdd(t, "abc"))
			tn.deliver()
			assert.Empty(t, u.take(), "a classic add gets no reply")
			assert.Equal(t, uint64(1), n.Stats().Count(counter.Adds))
			reply := u.ask(n.Addr(), classicHas(t, "abc"))
			want := append(append([]byte{3, 'a', 'b', 'c'}, make([]byte, 136)...), 1)
			assert.Equal(t, want, reply)
			assert.False(t, hasOn(t, u, n, "never added"))
		})
	}
}

func TestExtendedBatches(t *testing.T) {
	tn := newNet(t)
	n, u := tn.node(node.DefaultConfig()), tn.station()
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("a")}
	add, _ := wire.AppendBatch(nil, wire.TypeAddBatch, 7, wire.FlagAck, keys)
	res, err := wire.DecodeResult(u.ask(n.Addr(), add))
	require.NoError(t, err)
	assert.Equal(t, wire.TypeAddResult, res.Type)
	assert.Equal(t, uint32(7), res.ReqID)
	assert.Equal(t, []bool{true, true, false}, []bool{res.Get(0), res.Get(1), res.Get(2)}, "the second a was not new")

	has, _ := wire.AppendBatch(nil, wire.TypeHasBatch, 8, 0, [][]byte{[]byte("a"), []byte("zzz"), []byte("b")})
	res, err = wire.DecodeResult(u.ask(n.Addr(), has))
	require.NoError(t, err)
	assert.Equal(t, uint32(8), res.ReqID)
	assert.Equal(t, []bool{true, false, true}, []bool{res.Get(0), res.Get(1), res.Get(2)})

	// Replies larger than their requests need padded requests over UDP.
	ping, _ := wire.AppendPing(nil, wire.Ping{Type: wire.TypePing, ReqID: 9})
	ping, _ = wire.PadFrame(ping, 0, 1400)
	pong, err := wire.DecodePing(u.ask(n.Addr(), ping))
	require.NoError(t, err)
	assert.Equal(t, wire.TypePong, pong.Type)
	assert.Equal(t, uint32(9), pong.ReqID)
	assert.Equal(t, n.Filter().Fingerprint(), pong.FP)
	assert.Equal(t, n.Addr().String(), string(pong.Addr))

	sreq, _ := wire.AppendStatsRequest(nil, 10)
	sreq, _ = wire.PadFrame(sreq, 0, 4096)
	st, err := wire.DecodeStats(u.ask(n.Addr(), sreq))
	require.NoError(t, err)
	got := map[string]uint64{}
	for name, v := range st.All() {
		got[string(name)] = v
	}
	assert.Equal(t, uint64(3), got["adds"])
	assert.Equal(t, uint64(2), got["adds_new"])
	assert.Equal(t, uint64(3), got["has_queries"])

	mreq, _ := wire.AppendMembersRequest(nil, 11)
	mreq, _ = wire.PadFrame(mreq, 0, 1400)
	ms, err := wire.DecodeMembers(u.ask(n.Addr(), mreq))
	require.NoError(t, err)
	assert.Zero(t, ms.Count, "no membership, no members")
}

// 2. peer A→B: B learns A's keys, A does not learn B's; then both ways.
func TestPeerOneWayThenBoth(t *testing.T) {
	tn := newNet(t)
	a, b, u := tn.node(node.DefaultConfig()), tn.node(node.DefaultConfig()), tn.station()
	u.send(a.Addr(), peerFrame(t, b.Addr()))
	u.send(a.Addr(), classicAdd(t, "from-a"))
	u.send(b.Addr(), classicAdd(t, "from-b"))
	tn.deliver()
	tn.round(a, b)
	assert.True(t, hasOn(t, u, b, "from-a"), "one round carries it")
	for range 5 {
		tn.round(a, b)
	}
	assert.False(t, hasOn(t, u, a, "from-b"), "one-way: A→B only")

	u.send(b.Addr(), peerFrame(t, a.Addr()))
	tn.deliver()
	tn.round(a, b)
	assert.True(t, hasOn(t, u, a, "from-b"))
}

// 3. A→B→C→D→A: a key added anywhere reaches every node, in at most three
// rounds (the ring's diameter).
func TestRingOfFour(t *testing.T) {
	for _, cfg := range []node.Config{node.DefaultConfig(), node.ClassicConfig()} {
		t.Run(string(cfg.Profile), func(t *testing.T) {
			tn := newNet(t)
			var ns []*node.Node
			for range 4 {
				ns = append(ns, tn.node(cfg))
			}
			u := tn.station()
			for i, n := range ns {
				u.send(n.Addr(), peerFrame(t, ns[(i+1)%4].Addr()))
				u.send(n.Addr(), classicAdd(t, fmt.Sprint("key-", i)))
			}
			tn.deliver()
			for range 3 {
				tn.round(ns...)
			}
			for _, n := range ns {
				for i := range ns {
					assert.True(t, hasOn(t, u, n, fmt.Sprint("key-", i)), "%v lacks key-%d", n.Addr(), i)
				}
			}
		})
	}
}

// 4. A classic sync frame is merged and answered with the single byte 0x04.
func TestClassicSyncMergedAndAcked(t *testing.T) {
	tn := newNet(t)
	n, u := tn.node(node.ClassicConfig()), tn.station()
	packed := make([]byte, 50)
	for row, col := range []int{176, 63, 390, 221, 396} { // "abc"
		clear(packed)
		packed[col/8] = 1 << (col % 8)
		frame, err := wire.AppendClassicSync(nil, uint16(row), packed)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x04}, u.ask(n.Addr(), frame))
	}
	assert.True(t, hasOn(t, u, n, "abc"))
}

// 5. Classic profile: a peer that never answers gets one challenge (a
// classic has, smaller than the peer frame) and then nothing; a peer that
// answers the challenge and acks gets five sync frames (rows 0..4) every
// round.
func TestClassicPruning(t *testing.T) {
	tn := newNet(t)
	n := tn.node(node.ClassicConfig())
	silent, acker := tn.station(), tn.station()
	synced := 0
	acker.answer = func(from netip.AddrPort, frame []byte) {
		if from != n.Addr() {
			return
		}
		if key, err := wire.DecodeClassicKey(frame, wire.TypeHas); err == nil {
			reply, _ := wire.AppendClassicHasReply(nil, key, false)
			acker.send(from, reply)
			return
		}
		if _, err := wire.DecodeClassicSync(frame); err == nil {
			synced++
			acker.send(from, wire.AppendClassicAck(nil))
		}
	}
	silent.send(n.Addr(), peerFrame(t, silent.addr))
	silent.send(n.Addr(), peerFrame(t, acker.addr))
	tn.deliver()
	for range 5 {
		tn.round(n)
	}
	in := silent.take()
	require.Len(t, in, 1, "one challenge, nothing more")
	assert.Equal(t, n.Addr(), in[0].from, "it leaves from the listening address")
	key, err := wire.DecodeClassicKey(in[0].frame, wire.TypeHas)
	require.NoError(t, err)
	assert.Len(t, key, 100, "a challenge's key: no frame starts as its reply does")
	assert.Less(t, len(in[0].frame), len(peerFrame(t, silent.addr)), "smaller than the peer frame")
	assert.Equal(t, 25, synced, "five full rounds")
	assert.Equal(t, uint64(1), n.Stats().Pruned)
	require.Len(t, n.Peers(), 1)
	assert.Equal(t, acker.addr, n.Peers()[0].Addr)
}

// 6. Junk is dropped without a reply and counted; the node keeps serving.
func TestJunkIsDropped(t *testing.T) {
	for _, cfg := range []node.Config{node.DefaultConfig(), node.ClassicConfig()} {
		t.Run(string(cfg.Profile), func(t *testing.T) {
			tn := newNet(t)
			n, u := tn.node(cfg), tn.station()
			good := classicHas(t, "k")
			long := append(append([]byte{}, good...), 0)
			badLen := append([]byte{}, good...)
			badLen[1] = 200
			rowTooBig, _ := wire.AppendClassicSync(nil, 5, make([]byte, 50))
			badPort := peerFrame(t, n.Addr())
			badPort[141] = 1
			zeroPort := peerFrame(t, netip.MustParseAddrPort("127.0.0.1:1"))
			zeroPort[143], zeroPort[144] = 0, 0
			notBool, _ := wire.AppendClassicSync(nil, 0, make([]byte, 50))
			notBool[10] = 7
			junk := [][]byte{
				{}, {0xff}, {0x10, 0xff, 0xff, 0xff, 0xff}, []byte("GET / HTTP/1.1\r\n\r\n"),
				good[:100], long, badLen, rowTooBig, badPort, zeroPort, notBool,
				{0x12, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0}, // a has result sent to a node
			}
			for _, j := range junk {
				u.send(n.Addr(), j)
			}
			tn.deliver()
			assert.Equal(t, uint64(len(junk)), n.Stats().Count(counter.Dropped))
			assert.Empty(t, u.take(), "junk gets no reply")
			assert.False(t, hasOn(t, u, n, "k"), "still serving")
			assert.Empty(t, n.Peers(), "no peer from a bad peer frame")
		})
	}
}

// readFrame reads one extended frame from r.
func readFrame(t *testing.T, r *wire.FrameReader) []byte {
	t.Helper()
	f, err := r.Next()
	require.NoError(t, err)
	return f
}

// TCP: classic and extended frames pipelined on one stream, replies in
// order.
func TestTCPPipelining(t *testing.T) {
	tn := newNet(t)
	n := tn.node(node.DefaultConfig())
	c := tn.station().dial(n.Addr())
	var req []byte
	for i := range 500 {
		if i%2 == 0 {
			req, _ = wire.AppendClassicAdd(req, []byte(fmt.Sprint("t", i)))
		}
		req, _ = wire.AppendClassicHas(req, []byte(fmt.Sprint("t", i)))
		req, _ = wire.AppendBatch(req, wire.TypeHasBatch, uint32(i), 0, [][]byte{[]byte(fmt.Sprint("t", i)), []byte("none")})
	}
	go c.Write(req)
	r := wire.NewFrameReader(c, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 500 {
		reply, err := r.Fixed(wire.ClassicHasReplySize)
		require.NoError(t, err)
		key, present, err := wire.DecodeClassicHasReply(reply)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint("t", i), string(key))
		assert.Equal(t, i%2 == 0, present, "key %d", i)

		res, err := wire.DecodeResult(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, uint32(i), res.ReqID)
		assert.Equal(t, []bool{i%2 == 0, false}, []bool{res.Get(0), res.Get(1)})
	}
}

func TestTCPJunkClosesOnlyThatConnection(t *testing.T) {
	tn := newNet(t)
	n, u := tn.node(node.DefaultConfig()), tn.station()
	for _, junk := range [][]byte{
		{0xee, 1, 2, 3},                // an unknown type byte cannot be resynchronised
		{0x11, 0xff, 0xff, 0xff, 0xff}, // a length over the limit is refused before reading it
	} {
		c := u.dial(n.Addr())
		go c.Write(junk)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "closed")
	}
	assert.False(t, hasOn(t, u, n, "x"), "still serving")
	assert.Equal(t, uint64(2), n.Stats().Count(counter.BadFrames))
}

func TestNeverPeersWithItself(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) { // host lookups run in the background
		n, u := tn.node(node.DefaultConfig()), tn.station()
		u.send(n.Addr(), peerFrame(t, n.Addr()))
		b, _ := wire.AppendClassicPeer(nil, []byte(hostName(n)), n.Addr().Port()) // resolves to n
		u.send(n.Addr(), b)
		tn.settle()
		assert.Equal(t, uint64(2), n.Stats().Count(counter.SelfPeers))
		assert.Empty(t, n.Peers())

		other := tn.node(node.DefaultConfig())
		b, _ = wire.AppendClassicPeer(nil, []byte(hostName(other)), other.Addr().Port())
		u.send(n.Addr(), b)
		nx, _ := wire.AppendClassicPeer(nil, []byte("nohost.invalid"), 1)
		u.send(n.Addr(), nx)
		tn.settle()
		require.Len(t, n.Peers(), 1, "a name resolves to a peer")
		assert.Equal(t, other.Addr(), n.Peers()[0].Addr)
		assert.Equal(t, uint64(1), n.Stats().Count(counter.Unresolved))
	})
}

func TestConfigErrors(t *testing.T) {
	for _, mut := range []func(*node.Config){
		func(c *node.Config) { c.Listen = "nope" },
		func(c *node.Config) { c.Listen = "127.0.0.1:70000" },
		func(c *node.Config) { c.Profile = "x" },
		func(c *node.Config) { c.SyncInterval = 0 },
		func(c *node.Config) { c.PruneAfter = 0 },
		func(c *node.Config) { c.Peers = []string{"host"} },
		func(c *node.Config) { c.Peers = []string{"host:0"} },
		func(c *node.Config) { c.FPRate = 1 },
		func(c *node.Config) { c.Capacity = 0 },
	} {
		c := node.DefaultConfig()
		mut(&c)
		_, err := node.New(c)
		assert.ErrorIs(t, err, node.ErrConfig)
	}
}

// Real sockets, the first of the package's three smoke tests: UDP and TCP
// on one port, replies from the listening address, a connection closed
// for a bad frame that drains rather than resets, and a shutdown that
// ends idle connections gracefully.
func TestRealSockets(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.UDPSockets, cfg.ShutdownTimeout = "127.0.0.1:0", 2, 10*time.Second
	n, err := node.New(cfg)
	require.NoError(t, err)
	stop := run(t, n)

	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer u.Close()
	add, _ := wire.AppendBatch(nil, wire.TypeAddBatch, 1, wire.FlagAck, [][]byte{[]byte("k")})
	_, err = u.WriteToUDPAddrPort(add, n.Addr())
	require.NoError(t, err)
	u.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	m, from, err := u.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	assert.Equal(t, n.Addr(), from)
	res, err := wire.DecodeResult(buf[:m])
	require.NoError(t, err)
	assert.True(t, res.Get(0))

	c, err := net.Dial("tcp", n.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	go c.Write(classicHas(t, "k"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply := make([]byte, wire.ClassicHasReplySize)
	_, err = io.ReadFull(bufio.NewReader(c), reply)
	require.NoError(t, err)
	_, present, err := wire.DecodeClassicHasReply(reply)
	require.NoError(t, err)
	assert.True(t, present)

	// A client that pipelines a request, then bytes that cannot be
	// framed, then more, reads the answer to its request and then the end
	// of the stream — not a reset that would take the answer with it.
	for range 20 {
		c, err := net.Dial("tcp", n.Addr().String())
		require.NoError(t, err)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req, _ := wire.AppendBatch(nil, wire.TypeHasBatch, 7, 0, [][]byte{[]byte("k")})
		req = append(req, 0xEE) // no such frame type
		req = append(req, make([]byte, 256<<10)...)
		go c.Write(req)
		r := wire.NewFrameReader(c, 4096)
		frame, err := r.Next()
		require.NoError(t, err, "the answer before the close")
		res, err := wire.DecodeResult(frame)
		require.NoError(t, err)
		require.Equal(t, uint32(7), res.ReqID)
		_, err = r.Next()
		require.ErrorIs(t, err, io.EOF)
		c.Close()
	}

	stop() // with the connection still open, idle
	assert.Zero(t, n.Stats().Count(counter.ForcedShutdowns), "idle connections end without the timeout")
	_, err = net.Dial("tcp", n.Addr().String())
	assert.Error(t, err, "no longer accepting")
}
