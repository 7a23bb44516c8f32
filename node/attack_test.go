package node_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The attacks of an address that can reach a node's ports, replayed on
// the in-memory network: poisoning the filter, reflecting traffic to a
// third party, keeping a dead peer alive, costly pulls.

func testKey(t *testing.T) auth.Key {
	k, err := auth.Generate()
	require.NoError(t, err)
	return k
}

// keyed returns cfg with the cluster key k.
func keyed(cfg node.Config, k auth.Key) node.Config {
	cfg.ClusterKeys = []auth.Key{k}
	return cfg
}

// small returns cfg with a small filter, for floods that cover it whole.
func small(cfg node.Config) node.Config {
	if cfg.Profile == node.ProfileDefault {
		cfg.Capacity = 10_000
	}
	return cfg
}

// sink is an address that never answers and counts what it gets: the
// victim of a reflection.
type sink struct{ bytes, frames int }

func (tn *testNet) sink(addr netip.AddrPort) *sink {
	s := &sink{}
	tn.nw.Handle(addr, func(_ netip.AddrPort, frame []byte) { s.bytes += len(frame); s.frames++ })
	return s
}

// allOnes returns what an attacker floods a node with: frames that set
// every bit of a filter like f's, as UDP datagrams (sized as the node
// sends them) and as two large frames for a TCP stream.
func allOnes(t *testing.T, f *filter.Filter) (datagrams, stream [][]byte) {
	fp := f.Fingerprint()
	if fp.Layout == filter.Classic {
		row := make([]byte, int(fp.RowBits)/8)
		for i := range row {
			row[i] = 0xff
		}
		for r := range f.Rows() {
			s, err := wire.AppendClassicSync(nil, uint16(r), row)
			require.NoError(t, err)
			datagrams = append(datagrams, s)
		}
		return datagrams, datagrams
	}
	ones := func(rows uint64) []byte { return bytes.Repeat([]byte{0xff}, int(rows)*f.RowBytes()) }
	for r := uint64(0); r < f.Rows(); r += 21 {
		n := min(21, f.Rows()-r)
		s, err := wire.AppendRowSync(nil, fp, 7, uint32(r), []wire.RowRun{{First: uint32(r), Rows: ones(n)}})
		require.NoError(t, err)
		datagrams = append(datagrams, s)
	}
	perFrame := uint64(wire.MaxFrameBody-64) / uint64(f.RowBytes())
	for r := uint64(0); r < f.Rows(); r += perFrame {
		n := min(perFrame, f.Rows()-r)
		s, err := wire.AppendRowSync(nil, fp, 7, uint32(r), []wire.RowRun{{First: uint32(r), Rows: ones(n)}})
		require.NoError(t, err)
		stream = append(stream, s)
	}
	return datagrams, stream
}

// falsePositives counts never-added keys a node answers true for.
func falsePositives(n *node.Node) int {
	count := 0
	for i := range 1000 {
		if n.Filter().Has(fmt.Appendf(nil, "never-added-%d", i)) {
			count++
		}
	}
	return count
}

// flood sends every poisoning frame there is at n: row syncs (or classic
// syncs) of all ones over UDP from a remote address and from a member's
// address, the same over TCP, and sealed ones under a key the cluster
// does not have and with forged tags.
func flood(t *testing.T, tn *testNet, n *node.Node, member netip.AddrPort, key *auth.Key) {
	datagrams, stream := allOnes(t, n.Filter())
	attacker := tn.remote()
	other := auth.NewSealer(mustRing(t, testKey(t)))
	for _, d := range datagrams {
		attacker.send(n.Addr(), d)
		tn.nw.Send(member, n.Addr(), d) // a member's address, forged
		sealed, err := other.Seal(nil, d, n.SealID(), time.Now())
		require.NoError(t, err)
		attacker.send(n.Addr(), sealed)
		if key != nil { // the cluster's key id, a made-up tag
			forged := bytes.Clone(sealed)
			copy(forged[wire.HeaderSize:], keyID(t, *key))
			attacker.send(n.Addr(), forged)
		}
	}
	tn.deliver()
	before := n.Stats().Count(counter.TCPFrames)
	c := attacker.dial(n.Addr())
	go func() {
		for _, f := range stream {
			if _, err := c.Write(f); err != nil {
				return
			}
		}
	}()
	go io.Copy(io.Discard, c) // acks, if any
	tn.settle()
	want := uint64(len(stream))
	if n.Protected() {
		want = 1 // its first frame, refused: the node hangs up
	}
	require.GreaterOrEqual(t, n.Stats().Count(counter.TCPFrames), before+want, "the stream served")
	c.Close()
}

func mustRing(t *testing.T, keys ...auth.Key) *auth.Keyring {
	r, err := auth.NewKeyring(keys)
	require.NoError(t, err)
	return r
}

// keyID returns the id of a cluster's signing key k, as its sealed frames
// show it.
func keyID(t *testing.T, k auth.Key) []byte {
	r := mustRing(t, k)
	return binary.BigEndian.AppendUint32(nil, r.IDs()[0])
}

// Poisoning: forged row syncs of all ones make a node without a key answer
// true for every key (the attack works, so the test can fail); with a key
// none of them changes a bit, on the node or its cluster.
func TestPoisoning(t *testing.T) {
	for _, profile := range []node.Config{small(node.DefaultConfig()), node.ClassicConfig()} {
		t.Run(string(profile.Profile)+"/no key", func(t *testing.T) {
			inBubble(t, func(t *testing.T, tn *testNet) {
				n := tn.node(profile)
				flood(t, tn, n, tn.remote().addr, nil)
				assert.Equal(t, 1000, falsePositives(n), "poisoned: without a key anyone may sync (--protected-mode=no)")
			})
		})
		t.Run(string(profile.Profile)+"/no key, protected mode", func(t *testing.T) {
			inBubble(t, func(t *testing.T, tn *testNet) {
				tn.protect = true
				n := tn.node(profile)
				flood(t, tn, n, tn.remote().addr, nil)
				assert.Zero(t, falsePositives(n), "a node open beyond loopback with no key takes nothing from beyond it")
				assert.Zero(t, n.Stats().Count(counter.SyncFramesMerged))
				assert.Positive(t, n.Stats().Count(counter.ProtectedRefused))
			})
		})
		t.Run(string(profile.Profile)+"/key", func(t *testing.T) {
			inBubble(t, func(t *testing.T, tn *testNet) {
				k := testKey(t)
				var n *node.Node
				nodes := []*node.Node{}
				member := tn.remote().addr
				if profile.Profile == node.ProfileDefault { // a cluster of two
					n = tn.member(keyed(profile, k))
					m := tn.member(keyed(profile, k), n)
					tn.until("joined", 5*time.Second, func() bool { return len(n.Peers()) == 1 && len(m.Peers()) == 1 })
					nodes, member = append(nodes, n, m), m.Addr()
				} else {
					n = tn.node(keyed(profile, k))
					nodes = append(nodes, n)
				}
				flood(t, tn, n, member, &k)
				for range 5 {
					tn.round(nodes...)
				}
				for _, x := range nodes {
					assert.Zero(t, falsePositives(x), "never-added keys that turned true")
					assert.Zero(t, x.Filter().Stats().SetBits)
				}
				st := n.Stats()
				assert.Positive(t, st.Count(counter.Unauthenticated), "unsealed syncs refused")
				assert.Positive(t, st.Count(counter.AuthFailed), "sealed under another key, forged tags")
				assert.Zero(t, st.Count(counter.SyncFramesMerged))

				u := tn.station() // the node still serves its clients
				u.send(n.Addr(), classicAdd(t, "real"))
				tn.deliver()
				assert.True(t, hasOn(t, u, n, "real"))
			})
		})
	}
}

// frameZoo returns one of each frame type a node may get, as an attacker
// would send it: requests unpadded, peer frames naming target, node
// frames unsealed or sealed under a made-up tag.
func frameZoo(t *testing.T, n *node.Node, target netip.AddrPort) map[string][]byte {
	fp := n.Filter().Fingerprint()
	row := make([]byte, n.Filter().RowBytes())
	row[0] = 1
	m := func(b []byte, err error) []byte {
		require.NoError(t, err)
		return b
	}
	host := []byte(target.Addr().String())
	zoo := map[string][]byte{
		"classic add":      classicAdd(t, "k"),
		"classic has":      classicHas(t, "k"),
		"classic peer":     m(wire.AppendClassicPeer(nil, host, target.Port())),
		"classic ack":      wire.AppendClassicAck(nil),
		"add batch":        m(wire.AppendBatch(nil, wire.TypeAddBatch, 1, wire.FlagAck, [][]byte{[]byte("k")})),
		"has batch":        m(wire.AppendBatch(nil, wire.TypeHasBatch, 1, 0, [][]byte{[]byte("")})),
		"has result":       m(wire.AppendResult(nil, wire.TypeHasResult, 1, 1, []byte{1})),
		"add result":       m(wire.AppendResult(nil, wire.TypeAddResult, 1, 1, []byte{1})),
		"row ack":          m(wire.AppendRowAck(nil, wire.RowAck{Stamp: 1, Seq: 1, Rows: 1})),
		"digest":           m(wire.AppendDigest(nil, fp, 1, 0, []uint64{1})),
		"pull":             m(wire.AppendPull(nil, fp, []filter.Run{{First: 0, Count: 1}})),
		"ping":             m(wire.AppendPing(nil, wire.Ping{Type: wire.TypePing, ReqID: 1, Version: wire.ProtocolVersion})),
		"pong":             m(wire.AppendPing(nil, wire.Ping{Type: wire.TypePong, ReqID: 1, Version: wire.ProtocolVersion})),
		"stats request":    m(wire.AppendStatsRequest(nil, 1)),
		"stats":            m(wire.AppendStats(nil, 1, []wire.Stat{{Name: "x", Value: 1}})),
		"error":            m(wire.AppendError(nil, wire.ErrorFrame{ReqID: 1, Code: 1})),
		"pull done":        m(wire.AppendPullDone(nil, wire.PullDone{Rows: 1})),
		"members request":  m(wire.AppendMembersRequest(nil, 1)),
		"members":          m(wire.AppendMembers(nil, 1, nil)),
		"peer request":     m(wire.AppendPeerRequest(nil, wire.PeerRequest{ReqID: 1, Host: host, Port: target.Port()})),
		"peer result":      m(wire.AppendPeerResult(nil, wire.PeerResult{ReqID: 1, State: wire.PeerKnown})),
		"junk":             []byte("GET / HTTP/1.1\r\n\r\n"),
		"challenge answer": append([]byte{100}, make([]byte, wire.ClassicHasReplySize-1)...),
	}
	for _, name := range []string{"has batch", "add batch", "row ack", "pull", "ping"} {
		zoo["named "+name] = m(wire.AppendNamed(nil, "f", zoo[name]))
		zoo["segment "+name] = m(wire.AppendNamedSegment(nil, "f", 3, zoo[name]))
	}
	if fp.Layout == filter.Classic {
		zoo["classic sync"] = m(wire.AppendClassicSync(nil, 0, make([]byte, 50)))
	} else {
		zoo["row sync"] = m(wire.AppendRowSync(nil, fp, 1, 1, []wire.RowRun{{First: 0, Rows: row}}))
	}
	for _, name := range []string{"classic peer", "peer request", "row ack", "classic ack"} {
		s, start := wire.AppendSealedHead(nil, wire.SealedHead{KeyID: 1, Sender: 2, Seq: 3})
		s = append(s, zoo[name]...)
		s, _ = wire.FinishSealedLength(s, start)
		zoo["sealed "+name] = append(s, make([]byte, wire.TagSize)...)
	}
	return zoo
}

// No node is an amplifier: for every frame type, sent again and again
// from a forged source (the victim), the victim and any address the frame
// names get at most the bytes sent, over the following ticks too — with
// or without a key, in both profiles, even when anyone may make admin
// requests.
func TestNoAmplification(t *testing.T) {
	anyone := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	for _, profile := range []node.Config{node.DefaultConfig(), node.ClassicConfig()} {
		for _, withKey := range []bool{false, true} {
			cfg := profile
			cfg.AllowAdmin = anyone
			if withKey {
				cfg = keyed(cfg, testKey(t))
			}
			t.Run(fmt.Sprintf("%s/key=%v", profile.Profile, withKey), func(t *testing.T) {
				victim, named := netip.MustParseAddrPort("192.0.2.100:9000"), netip.MustParseAddrPort("192.0.2.200:9000")
				probe := newNet(t)
				names := frameZoo(t, probe.node(cfg), named)
				for name := range names {
					tn := newNet(t)
					n := tn.node(cfg)
					v, w := tn.sink(victim), tn.sink(named)
					frame := frameZoo(t, n, named)[name]
					sent := 0
					for range 10 {
						tn.nw.Send(victim, n.Addr(), frame)
						sent += len(frame)
						tn.round(n)
					}
					for range 30 {
						tn.round(n)
					}
					got := v.bytes + w.bytes
					t.Logf("%-22s sent %5d B, got back %5d B: ×%.2f", name, sent, got, float64(got)/float64(sent))
					assert.LessOrEqual(t, got, sent, "%s: %d bytes back for %d sent (×%.2f)", name, got, sent, float64(got)/float64(sent))
					if name == "classic peer" && !withKey {
						assert.Equal(t, 10, w.frames, "the named address gets one challenge per peer frame, nothing more")
					}
				}
			})
		}
	}
}

// Replies that fit go out; larger ones need padding or TCP.
func TestReplySizeRule(t *testing.T) {
	tn := newNet(t)
	n, u := tn.node(node.DefaultConfig()), tn.station()
	req, _ := wire.AppendStatsRequest(nil, 5)
	u.send(n.Addr(), req)
	tn.deliver()
	assert.Empty(t, u.take(), "9 bytes: not even an error fits")
	req, _ = wire.PadFrame(req, 0, 60)
	e, err := wire.DecodeError(u.ask(n.Addr(), req))
	require.NoError(t, err)
	assert.Equal(t, wire.CodeUseTCP, e.Code)
	assert.Equal(t, uint32(5), e.ReqID)
	req, _ = wire.PadFrame(req, 0, 4096)
	_, err = wire.DecodeStats(u.ask(n.Addr(), req))
	require.NoError(t, err, "padded to their size, the stats fit")
	assert.Equal(t, uint64(2), n.Stats().Count(counter.UDPRepliesCut))

	c := u.dial(n.Addr()) // over TCP the handshake proved the address: any size
	req, _ = wire.AppendStatsRequest(nil, 6)
	go c.Write(req)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = wire.DecodeStats(readFrame(t, wire.NewFrameReader(c, 1<<16)))
	require.NoError(t, err)
}

// staticPeer is a peer holding the cluster key that answers challenges
// and acks sealed row syncs, keeping the acks it sent.
type staticPeer struct {
	*station
	sealer *auth.Sealer
	opener *auth.Opener
	acks   [][]byte
	silent bool
}

// keyedWithPeer runs a node with key k and a static peer that holds it,
// verified: it answered its challenge.
func (tn *testNet) keyedWithPeer(k auth.Key) (*node.Node, *staticPeer) {
	n := tn.node(keyed(node.DefaultConfig(), k))
	p := tn.staticPeer(k)
	n.AddPeer(p.addr)
	tn.deliver()
	require.True(tn.t, n.Peers()[0].Verified)
	return n, p
}

func (tn *testNet) staticPeer(k auth.Key) *staticPeer {
	t := tn.t
	p := &staticPeer{station: tn.remote()}
	p.sealer = auth.NewSealer(mustRing(t, k))
	p.opener = auth.NewOpener(mustRing(t, k), p.sealer.Sender())
	p.answer = func(from netip.AddrPort, frame []byte) {
		if p.silent {
			return
		}
		if key, err := wire.DecodeClassicKey(frame, wire.TypeHas); err == nil {
			reply, _ := wire.AppendClassicHasReply(nil, key, false)
			p.send(from, reply)
			return
		}
		s, err := p.opener.Open(frame, time.Now())
		if errors.Is(err, auth.ErrReceiver) { // as a node does: a hint of its id
			hint, _ := wire.AppendError(nil, wire.ErrorFrame{Code: wire.CodeReceiver})
			sealed, _ := p.sealer.Seal(nil, hint, s.Sender, time.Now())
			p.send(from, sealed)
			return
		}
		if err != nil || s.InnerType() != wire.TypeRowSync {
			return
		}
		rs, err := wire.DecodeRowSync(s.Inner)
		require.NoError(t, err)
		ack, _ := wire.AppendRowAck(nil, wire.RowAck{Stamp: rs.Stamp, Seq: rs.Seq, Rows: uint32(rs.Runs.Rows())})
		sealed, _ := p.sealer.Seal(nil, ack, s.Sender, time.Now())
		p.acks = append(p.acks, sealed)
		p.send(from, sealed)
	}
	return p
}

// Acks keep a peer only if the peer sent them for frames in flight to it:
// once a peer falls silent, replayed sealed acks and forged ones do not
// keep it, and it is pruned as if nobody sent anything.
func TestForgedAndReplayedAcks(t *testing.T) {
	t.Run("key", func(t *testing.T) {
		tn := newNet(t)
		n, p := tn.keyedWithPeer(testKey(t))
		u := tn.station()
		for i := range 5 { // rows flow and are acked
			addKeys(t, u, n, makeKeys(fmt.Sprint("round", i), 50))
			tn.round(n)
		}
		require.Len(t, n.Peers(), 1)
		require.True(t, n.Peers()[0].Verified)
		require.NotEmpty(t, p.acks)

		p.silent = true
		attacker := tn.remote()
		for i := range 40 {
			addKeys(t, u, n, makeKeys(fmt.Sprint("later", i), 5))
			for _, a := range p.acks { // replayed, from the peer's address
				tn.nw.Send(p.addr, n.Addr(), a)
			}
			forged, _ := wire.AppendRowAck(nil, wire.RowAck{Stamp: uint64(i), Seq: 1, Rows: 1})
			tn.nw.Send(p.addr, n.Addr(), forged) // unsealed
			attacker.send(n.Addr(), forged)
			tn.round(n)
		}
		assert.Empty(t, n.Peers(), "pruned")
		assert.Positive(t, n.Stats().Count(counter.Replayed))
		assert.Positive(t, n.Stats().Count(counter.Unauthenticated))
	})
	t.Run("classic", func(t *testing.T) {
		tn := newNet(t)
		n := tn.node(node.ClassicConfig())
		peer := tn.station()
		silent := false
		got := 0
		peer.answer = func(from netip.AddrPort, frame []byte) {
			got += len(frame)
			if silent {
				return
			}
			if key, err := wire.DecodeClassicKey(frame, wire.TypeHas); err == nil {
				reply, _ := wire.AppendClassicHasReply(nil, key, false)
				peer.send(from, reply)
			} else if _, err := wire.DecodeClassicSync(frame); err == nil {
				peer.send(from, wire.AppendClassicAck(nil))
			}
		}
		peer.send(n.Addr(), peerFrame(t, peer.addr))
		tn.deliver()
		for range 3 {
			tn.round(n)
		}
		require.Len(t, n.Peers(), 1)
		require.True(t, n.Peers()[0].Verified)

		silent, got = true, 0
		ticks := 0
		for len(n.Peers()) > 0 && ticks < 100 {
			tn.nw.Send(peer.addr, n.Addr(), wire.AppendClassicAck(nil)) // forged, every tick
			tn.round(n)
			ticks++
		}
		assert.Empty(t, n.Peers(), "pruned: it stopped answering challenges")
		every := gossip.ClassicConfig().ReverifyAfter
		assert.LessOrEqual(t, ticks, every+2, "within a reverification period")
		assert.LessOrEqual(t, got, (every+2)*(5*wire.ClassicSyncSize+wire.ClassicKeyFrameSize), "what the forged acks bought")
	})
}

// Pulls are admin requests: with a key only sealed ones are served; runs
// that overlap are refused before a row is read; two are served at once.
func TestPulls(t *testing.T) { inBubble(t, testPulls) }

func testPulls(t *testing.T, tn *testNet) {
	k := testKey(t)
	n := tn.node(keyed(node.DefaultConfig(), k))
	for _, key := range makeKeys("p", 300_000) { // most rows set: a pull's answer is large
		n.Filter().Add(key)
	}
	fp := n.Filter().Fingerprint()
	sealer := auth.NewSealer(mustRing(t, k))
	opener := auth.NewOpener(mustRing(t, k), sealer.Sender())
	ask := func(frame []byte) (reply []byte) {
		c := tn.remote().dial(n.Addr())
		go c.Write(frame)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return readFrame(t, wire.NewFrameReader(c, 1<<20))
	}
	refusal := func(reply []byte) uint16 {
		if wire.Type(reply[0]) == wire.TypeSealed {
			s, err := opener.Open(reply, time.Now())
			require.NoError(t, err)
			reply = s.Inner
		}
		e, err := wire.DecodeError(reply)
		require.NoError(t, err)
		return e.Code
	}

	whole, _ := wire.AppendPull(nil, fp, []filter.Run{{First: 0, Count: n.Filter().Rows()}})
	assert.Equal(t, wire.CodeUnsealed, refusal(ask(whole)), "unsealed")

	overlapping := make([]filter.Run, wire.MaxPullRuns)
	for i := range overlapping {
		overlapping[i] = filter.Run{First: 0, Count: n.Filter().Rows()}
	}
	req, _ := wire.AppendPull(nil, fp, overlapping)
	sealed, _ := sealer.Seal(nil, req, n.SealID(), time.Now())
	reply := ask(sealed)
	assert.Equal(t, wire.CodeRowRange, refusal(reply), "overlapping runs")
	assert.Less(t, len(reply), len(sealed), "refused cheaply")
	assert.Zero(t, n.Stats().Count(counter.PullsServed))

	// Two pulls whose readers do not read hold both places; a third is busy.
	for range 2 {
		c := tn.remote().dial(n.Addr())
		s, _ := sealer.Seal(nil, whole, n.SealID(), time.Now())
		go c.Write(s)
	}
	tn.settle() // two pulls in progress, blocked on readers that do not read
	s, _ := sealer.Seal(nil, whole, n.SealID(), time.Now())
	assert.Equal(t, wire.CodeBusy, refusal(ask(s)))
	assert.Equal(t, uint64(1), n.Stats().Count(counter.PullsBusy))
}

// Without a key, pulls are served to loopback and members only.
func TestPullsWithoutKey(t *testing.T) {
	tn := newNet(t)
	n := tn.node(small(node.DefaultConfig()))
	whole, _ := wire.AppendPull(nil, n.Filter().Fingerprint(), []filter.Run{{First: 0, Count: n.Filter().Rows()}})
	c := tn.remote().dial(n.Addr())
	go c.Write(whole)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	e, err := wire.DecodeError(readFrame(t, wire.NewFrameReader(c, 1<<20)))
	require.NoError(t, err)
	assert.Equal(t, wire.CodeForbidden, e.Code)
	assert.Equal(t, uint64(1), n.Stats().Count(counter.Forbidden))
}

// With a key, node frames that come unsealed change nothing: not the
// filter, not the peer table, not a peer's timers.
func TestUnsealedNodeFramesChangeNothing(t *testing.T) {
	tn := newNet(t)
	n, p := tn.keyedWithPeer(testKey(t))
	before := n.Peers()
	u := tn.station() // loopback: an operator's tool, without the key
	sent := 0
	for name, frame := range frameZoo(t, n, tn.remote().addr) {
		switch name {
		case "peer request":
			frame, _ = wire.PadFrame(frame, 0, 1400) // room for the answer
			fallthrough
		case "classic peer", "row sync", "row ack", "classic ack", "classic sync":
			u.send(n.Addr(), frame)
			tn.nw.Send(p.addr, n.Addr(), frame) // and from the peer's own address
			sent += 2
		}
	}
	tn.deliver()
	assert.Equal(t, before, n.Peers(), "the peer table and its timers as they were")
	assert.Zero(t, n.Filter().Stats().SetBits)
	assert.Equal(t, uint64(sent), n.Stats().Count(counter.Unauthenticated))
	reply := u.take()
	require.Len(t, reply, 1, "the peer request alone is answered")
	e, err := wire.DecodeError(reply[0].frame)
	require.NoError(t, err)
	assert.Equal(t, wire.CodeUnsealed, e.Code)
}
