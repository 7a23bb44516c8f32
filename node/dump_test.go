package node_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A growing filter dumped over a stream from one member and loaded into
// another name on the same cluster: the loaded filter reaches every
// member, every key in it. A dump asked over UDP is told to use TCP.
func TestLoadedFilterReplicates(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		ns := tn.cluster3(node.DefaultConfig())
		a, b, c := ns[0], ns[1], ns[2]
		u := tn.station()
		q := create("src", 200, 0.01)
		q.Growth = 3 // expansion 2
		_, e := filterOp(t, u, a, q)
		require.Nil(t, e)
		var keys []string
		for i := range 1000 {
			keys = append(keys, fmt.Sprint("k", i))
		}
		got, e := namedBatch(t, u, a, "src", wire.TypeAddBatch, keys...)
		require.Nil(t, e)
		require.Len(t, got, len(keys))

		req, err := wire.AppendDumpRequest(nil, wire.DumpRequest{ReqID: 1, Name: []byte("src"), Pad: 1400})
		require.NoError(t, err)
		ef, err := wire.DecodeError(u.ask(a.Addr(), req))
		require.NoError(t, err)
		assert.Equal(t, wire.CodeUseTCP, ef.Code)

		conn := u.dial(a.Addr())
		fr := wire.NewFrameReader(conn, 1<<16)
		roundTrip := func(frame []byte) []byte {
			go conn.Write(frame)
			tn.settle()
			reply, err := fr.Next()
			require.NoError(t, err)
			return append([]byte(nil), reply...)
		}
		var chunks [][]byte
		for it := uint64(0); ; {
			req, err := wire.AppendDumpRequest(nil, wire.DumpRequest{ReqID: 2, Name: []byte("src"), Iterator: it})
			require.NoError(t, err)
			d, err := wire.DecodeDumpChunk(roundTrip(req))
			require.NoError(t, err)
			if d.Iterator == 0 {
				break
			}
			chunks, it = append(chunks, d.Chunk), d.Iterator
		}
		require.Greater(t, len(a.Registry().Lookup([]byte("src")).Winner().Segments()), 1, "grown")
		for i, ch := range chunks {
			req, err := wire.AppendLoadRequest(nil, wire.LoadRequest{ReqID: 3, Name: []byte("copy"), Chunk: ch})
			require.NoError(t, err)
			l, err := wire.DecodeLoaded(roundTrip(req))
			require.NoError(t, err, "chunk %d", i)
			assert.Equal(t, i == 0, l.Flags&wire.LoadedCreated != 0)
		}
		tn.until("the loaded filter on every member", 20*time.Second, func() bool {
			return namedHasAll(a, "copy", keys) && namedHasAll(b, "copy", keys) && namedHasAll(c, "copy", keys)
		}, ns...)
	})
}

// A load writes rows as they come: an admin's request, over TCP. A
// client beyond loopback that may add and read may dump, not load.
func TestLoadIsForAdmins(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		n := tn.node(cfg)
		r := tn.remote()
		chunks := [][]byte{}
		f := n.Registry().Default()
		for it := uint64(0); ; {
			next, chunk, err := dump.Scan(f, it, nil)
			require.NoError(t, err)
			if next == 0 {
				break
			}
			chunks, it = append(chunks, chunk), next
		}
		req, err := wire.AppendLoadRequest(nil, wire.LoadRequest{ReqID: 5, Chunk: chunks[0]})
		require.NoError(t, err)
		ef, err := wire.DecodeError(r.ask(n.Addr(), req))
		require.NoError(t, err)
		assert.Equal(t, wire.CodeForbidden, ef.Code)
		assert.Contains(t, string(ef.Msg), "--allow-admin")
		assert.Equal(t, uint64(1), n.Stats().Count(counter.Forbidden))

		u := tn.station()
		ef, err = wire.DecodeError(u.ask(n.Addr(), req))
		require.NoError(t, err)
		assert.Equal(t, wire.CodeUseTCP, ef.Code, "from loopback, over UDP: chunks go over TCP")

		conn := u.dial(n.Addr())
		go conn.Write(req)
		tn.settle()
		reply, err := wire.NewFrameReader(conn, 1<<16).Next()
		require.NoError(t, err)
		l, err := wire.DecodeLoaded(reply)
		require.NoError(t, err, "from loopback, over TCP: an admin's")
		assert.Zero(t, l.Flags&wire.LoadedCreated, "the default filter exists")
	})
}

// A sealed admin request over UDP whose answer is larger than it (here a
// peers list) is told to use TCP, plainly — not dropped, which left the
// client waiting out its timeout — and over a stream it is answered.
func TestSealedLargeAnswerSaysUseTCP(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		k := testKey(t)
		n := tn.node(keyed(node.DefaultConfig(), k))
		sealer := auth.NewSealer(mustRing(t, k))
		for i := range 40 {
			n.AddPeer(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i + 1)}), 8000))
		}
		req, err := wire.AppendPeersRequest(nil, 7)
		require.NoError(t, err)
		sealed, err := sealer.Seal(nil, req, n.SealID(), time.Now())
		require.NoError(t, err)
		r := tn.remote()
		reply := r.ask(n.Addr(), sealed)
		e, err := wire.DecodeError(reply)
		require.NoError(t, err, "a plain error frame")
		assert.Equal(t, wire.CodeUseTCP, e.Code)
		assert.Equal(t, uint32(7), e.ReqID)

		c := r.dial(n.Addr())
		again, err := sealer.Seal(nil, req, n.SealID(), time.Now()) // a seal is good once
		require.NoError(t, err)
		go c.Write(again)
		tn.settle()
		b, err := wire.NewFrameReader(c, 1<<16).Next()
		require.NoError(t, err)
		s, err := auth.NewOpener(mustRing(t, k), sealer.Sender()).Open(b, time.Now())
		require.NoError(t, err)
		ps, err := wire.DecodePeers(s.Inner)
		require.NoError(t, err)
		assert.Len(t, ps.List, 40)
	})
}
