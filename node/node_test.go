package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func classicAdd(t *testing.T, key string) []byte {
	b, err := wire.AppendClassicAdd(nil, []byte(key))
	require.NoError(t, err)
	return b
}

func classicHas(t *testing.T, key string) []byte {
	b, err := wire.AppendClassicHas(nil, []byte(key))
	require.NoError(t, err)
	return b
}

// hasOn asks node n over UDP whether key is present.
func hasOn(t *testing.T, u *udpClient, n *Node, key string) bool {
	reply := u.ask(n.Addr(), classicHas(t, key))
	k, present, err := wire.DecodeClassicHasReply(reply)
	require.NoError(t, err)
	require.Equal(t, key, string(k))
	return present
}

func peerFrame(t *testing.T, to netip.AddrPort) []byte {
	b, err := wire.AppendClassicPeer(nil, []byte(to.Addr().String()), to.Port())
	require.NoError(t, err)
	return b
}

// 1. add then has → true; never added → false; the reply is byte-exact.
func TestAddHas(t *testing.T) {
	for _, cfg := range []Config{DefaultConfig(), ClassicConfig()} {
		t.Run(string(cfg.Profile), func(t *testing.T) {
			n := start(t, cfg)
			u := newUDP(t)
			u.send(n.Addr(), classicAdd(t, "abc"))
			waitFor(t, "add", func() bool { return n.Stats().Count(Adds) == 1 })
			reply := u.ask(n.Addr(), classicHas(t, "abc"))
			want := append(append([]byte{3, 'a', 'b', 'c'}, make([]byte, 136)...), 1)
			assert.Equal(t, want, reply)
			assert.False(t, hasOn(t, u, n, "never added"))
		})
	}
}

func TestExtendedBatchesUDP(t *testing.T) {
	n := start(t, DefaultConfig())
	u := newUDP(t)
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

	ping, _ := wire.AppendPing(nil, wire.Ping{Type: wire.TypePing, ReqID: 9})
	pong, err := wire.DecodePing(u.ask(n.Addr(), ping))
	require.NoError(t, err)
	assert.Equal(t, wire.TypePong, pong.Type)
	assert.Equal(t, uint32(9), pong.ReqID)
	assert.Equal(t, n.Filter().Fingerprint(), pong.FP)
	assert.Equal(t, n.Addr().String(), string(pong.Addr))

	sreq, _ := wire.AppendStatsRequest(nil, 10)
	st, err := wire.DecodeStats(u.ask(n.Addr(), sreq))
	require.NoError(t, err)
	got := map[string]uint64{}
	for name, v := range st.All() {
		got[string(name)] = v
	}
	assert.Equal(t, uint64(3), got["adds"])
	assert.Equal(t, uint64(2), got["adds_new"])
	assert.Equal(t, uint64(3), got["has_queries"])
}

// 2. peer A→B: B learns A's keys, A does not learn B's; then both ways.
func TestPeerOneWayThenBoth(t *testing.T) {
	a, b := start(t, fast(DefaultConfig())), start(t, fast(DefaultConfig()))
	u := newUDP(t)
	u.send(a.Addr(), peerFrame(t, b.Addr()))
	u.send(a.Addr(), classicAdd(t, "from-a"))
	u.send(b.Addr(), classicAdd(t, "from-b"))
	waitFor(t, "B has A's key", func() bool { return hasOn(t, u, b, "from-a") })
	waitFor(t, "A synced a few rounds", func() bool { return a.Stats().Ticks > 5 })
	assert.False(t, hasOn(t, u, a, "from-b"), "one-way: A→B only")

	u.send(b.Addr(), peerFrame(t, a.Addr()))
	waitFor(t, "A has B's key", func() bool { return hasOn(t, u, a, "from-b") })
}

// 3. A→B→C→D→A: a key added anywhere reaches every node.
func TestRingOfFour(t *testing.T) {
	for _, cfg := range []Config{fast(DefaultConfig()), fast(ClassicConfig())} {
		t.Run(string(cfg.Profile), func(t *testing.T) {
			var ns []*Node
			for range 4 {
				ns = append(ns, start(t, cfg))
			}
			u := newUDP(t)
			for i, n := range ns {
				u.send(n.Addr(), peerFrame(t, ns[(i+1)%4].Addr()))
				u.send(n.Addr(), classicAdd(t, fmt.Sprint("key-", i)))
			}
			for _, n := range ns {
				for i := range ns {
					key := fmt.Sprint("key-", i)
					waitFor(t, key, func() bool { return hasOn(t, u, n, key) })
				}
			}
		})
	}
}

// 4. A classic sync frame is merged and answered with the single byte 0x04.
func TestClassicSyncMergedAndAcked(t *testing.T) {
	n := start(t, ClassicConfig())
	u := newUDP(t)
	packed := make([]byte, 50)
	for row, col := range []int{176, 63, 390, 221, 396} { // "abc"
		for i := range packed {
			packed[i] = 0
		}
		packed[col/8] = 1 << (col % 8)
		frame, err := wire.AppendClassicSync(nil, uint16(row), packed)
		require.NoError(t, err)
		assert.Equal(t, []byte{0x04}, u.ask(n.Addr(), frame))
	}
	assert.True(t, hasOn(t, u, n, "abc"))
}

// 5. Classic profile: a peer that never acks gets exactly one round (5
// sync frames, rows 0..4) and then nothing; a peer that acks keeps getting
// them.
func TestClassicPruning(t *testing.T) {
	n := start(t, fast(ClassicConfig()))
	silent, acker := newUDP(t), newUDP(t)
	ctl := newUDP(t)
	ctl.send(n.Addr(), peerFrame(t, silent.addr()))
	ctl.send(n.Addr(), peerFrame(t, acker.addr()))

	fiveRounds := make(chan struct{})
	go func() { // acks every sync until its socket closes
		count := 0
		for {
			frame, from := acker.recv(5 * time.Second)
			if frame == nil {
				return
			}
			if _, err := wire.DecodeClassicSync(frame); err == nil && from == n.Addr() {
				acker.c.WriteToUDPAddrPort(wire.AppendClassicAck(nil), from)
				if count++; count == 25 {
					close(fiveRounds)
				}
			}
		}
	}()

	waitFor(t, "the silent peer pruned", func() bool { return n.Stats().Pruned == 1 })
	ticks := n.Stats().Ticks
	waitFor(t, "more rounds", func() bool { return n.Stats().Ticks >= ticks+3 })
	var rows []uint16
	for {
		frame, from := silent.recv(50 * time.Millisecond)
		if frame == nil {
			break
		}
		assert.Equal(t, n.Addr(), from, "pushes leave from the listening address")
		s, err := wire.DecodeClassicSync(frame)
		require.NoError(t, err)
		rows = append(rows, s.Row)
	}
	assert.Equal(t, []uint16{0, 1, 2, 3, 4}, rows)
	select {
	case <-fiveRounds: // the acking peer got five full rounds and counting
	case <-time.After(5 * time.Second):
		t.Fatal("the acking peer stopped receiving rows")
	}
	require.Len(t, n.Peers(), 1)
	assert.Equal(t, acker.addr(), n.Peers()[0].Addr)
}

// 6. Junk is dropped without a reply and counted; the node keeps serving.
func TestJunkIsDropped(t *testing.T) {
	for _, cfg := range []Config{DefaultConfig(), ClassicConfig()} {
		t.Run(string(cfg.Profile), func(t *testing.T) {
			n := start(t, cfg)
			u := newUDP(t)
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
			before := n.Stats().Count(Dropped)
			for _, j := range junk {
				u.send(n.Addr(), j)
			}
			waitFor(t, "every junk frame counted", func() bool { return n.Stats().Count(Dropped)-before == uint64(len(junk)) })
			assert.False(t, hasOn(t, u, n, "k"), "still serving")
			for {
				extra, _ := u.recv(20 * time.Millisecond)
				if extra == nil {
					break
				}
				t.Errorf("junk got a reply: %x", extra[:min(len(extra), 16)])
			}
			assert.Empty(t, n.Peers(), "no peer from a bad peer frame")
		})
	}
}

// TCP: classic and extended frames pipelined on one stream, replies in
// order.
func TestTCPPipelining(t *testing.T) {
	n := start(t, DefaultConfig())
	c, err := net.Dial("tcp", n.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	var req []byte
	for i := range 500 {
		if i%2 == 0 {
			req, _ = wire.AppendClassicAdd(req, []byte(fmt.Sprint("t", i)))
		}
		req, _ = wire.AppendClassicHas(req, []byte(fmt.Sprint("t", i)))
		req, _ = wire.AppendBatch(req, wire.TypeHasBatch, uint32(i), 0, [][]byte{[]byte(fmt.Sprint("t", i)), []byte("none")})
	}
	go c.Write(req)
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 500 {
		reply := make([]byte, wire.ClassicHasReplySize)
		_, err := io.ReadFull(r, reply)
		require.NoError(t, err)
		key, present, err := wire.DecodeClassicHasReply(reply)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint("t", i), string(key))
		assert.Equal(t, i%2 == 0, present, "key %d", i)

		head := make([]byte, wire.HeaderSize)
		_, err = io.ReadFull(r, head)
		require.NoError(t, err)
		size, err := wire.FrameLen(head)
		require.NoError(t, err)
		frame := append(head, make([]byte, size-wire.HeaderSize)...)
		_, err = io.ReadFull(r, frame[wire.HeaderSize:])
		require.NoError(t, err)
		res, err := wire.DecodeResult(frame)
		require.NoError(t, err)
		assert.Equal(t, uint32(i), res.ReqID)
		assert.Equal(t, []bool{i%2 == 0, false}, []bool{res.Get(0), res.Get(1)})
	}
}

func TestTCPJunkClosesOnlyThatConnection(t *testing.T) {
	n := start(t, DefaultConfig())
	c, err := net.Dial("tcp", n.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte{0xee, 1, 2, 3})
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "an unknown type byte cannot be resynchronised: closed")

	huge := []byte{0x11, 0xff, 0xff, 0xff, 0xff}
	c2, err := net.Dial("tcp", n.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	c2.Write(huge)
	c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c2.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "a length over the limit is refused before reading it")
	assert.False(t, hasOn(t, newUDP(t), n, "x"), "still serving")
	assert.GreaterOrEqual(t, n.Stats().Count(BadFrames), uint64(2))
}

func TestNeverPeersWithItself(t *testing.T) {
	n := start(t, fast(DefaultConfig()))
	u := newUDP(t)
	u.send(n.Addr(), peerFrame(t, n.Addr()))
	b, _ := wire.AppendClassicPeer(nil, []byte("localhost"), n.Addr().Port())
	u.send(n.Addr(), b)
	waitFor(t, "both peer frames seen", func() bool { return n.Stats().Count(SelfPeers) == 2 })
	assert.Empty(t, n.Peers())
}

func TestShutdownIsPrompt(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	n, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	idle, err := net.Dial("tcp", n.Addr().String())
	require.NoError(t, err)
	defer idle.Close()
	u := newUDP(t)
	require.False(t, hasOn(t, u, n, "x"))
	waitFor(t, "connection accepted", func() bool { return n.Stats().Count(TCPConns) == 1 })
	began := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
		assert.Less(t, time.Since(began), time.Second)
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return")
	}
	_, err = net.Dial("tcp", n.Addr().String())
	assert.Error(t, err, "no longer accepting")
}

func TestConfigErrors(t *testing.T) {
	for _, mut := range []func(*Config){
		func(c *Config) { c.Listen = "nope" },
		func(c *Config) { c.Listen = "127.0.0.1:70000" },
		func(c *Config) { c.Profile = "x" },
		func(c *Config) { c.SyncInterval = 0 },
		func(c *Config) { c.PruneAfter = 0 },
		func(c *Config) { c.Peers = []string{"host"} },
		func(c *Config) { c.Peers = []string{"host:0"} },
		func(c *Config) { c.FPRate = 1 },
		func(c *Config) { c.Capacity = 0 },
	} {
		c := DefaultConfig()
		mut(&c)
		_, err := New(c)
		assert.ErrorIs(t, err, ErrConfig)
	}
}
