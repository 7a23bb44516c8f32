package node

import (
	"errors"
	"net/netip"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// worker is what one goroutine serving frames (a datagram reader or a
// stream) works with: its counter shard, its reply buffer, and the gossip
// frames an ack lets out (ack clocking), sent once the gossip lock is let
// go.
type worker struct {
	c      *counters
	reader int // the datagram reader, whose socket replies leave from
	tcp    bool
	reply  []byte
	out    gossip.Outbox
	// syncPos, when set by an acknowledged add under --fsync always, is
	// the log position the reply waits for.
	syncPos uint64
	// Scratch for adds with a data directory.
	hashes, missing []uint64
	keys, newKeys   [][]byte
}

// handle serves one frame from `from` (a UDP source or a TCP peer) and
// returns its reply, if any, in w.reply; gossip frames to send go to
// w.out. It never keeps frame.
func (n *Node) handle(w *worker, frame []byte, from netip.AddrPort) []byte {
	c, tcp, out := w.c, w.tcp, w.reply[:0]
	w.syncPos = 0
	if len(frame) == 0 {
		c.drop(BadFrames)
		return out
	}
	switch wire.Type(frame[0]) {
	case wire.TypeAdd:
		key, err := wire.DecodeClassicKey(frame, wire.TypeAdd)
		if err != nil {
			return c.bad(out)
		}
		c.inc(Adds)
		if n.st == nil {
			if n.f.Add(key) {
				c.inc(AddsNew)
			}
			break
		}
		var bit [1]byte
		w.keys = append(w.keys[:0], key)
		c.add(AddsNew, uint64(n.addLogged(w, w.keys, bit[:])))
		clear(w.keys) // a slice of a frame about to be reused
	case wire.TypeHas:
		key, err := wire.DecodeClassicKey(frame, wire.TypeHas)
		if err != nil {
			return c.bad(out)
		}
		out, _ = wire.AppendClassicHasReply(out, key, n.has(c, key))
	case wire.TypeAddBatch, wire.TypeHasBatch:
		return n.batch(w, frame, out)
	case wire.TypeSync:
		s, err := wire.DecodeClassicSync(frame)
		if err != nil {
			return c.bad(out)
		}
		ack, changed, err := gossip.MergeClassicSync(n.f, s, out)
		if err != nil {
			return n.mergeFailed(c, out, err)
		}
		c.inc(SyncFramesMerged)
		c.inc(SyncRowsMerged)
		if changed {
			c.inc(SyncRowsChanged)
		}
		return ack
	case wire.TypeRowSync:
		s, err := wire.DecodeRowSync(frame)
		if err != nil {
			return c.bad(out)
		}
		ack, changed, err := gossip.MergeRowSync(n.f, s, out)
		if err != nil {
			return n.mergeFailed(c, out, err)
		}
		c.inc(SyncFramesMerged)
		c.add(SyncRowsMerged, uint64(s.Runs.Rows()))
		c.add(SyncRowsChanged, uint64(changed))
		return ack
	case wire.TypePeer:
		p, err := wire.DecodeClassicPeer(frame)
		if err != nil || p.Port == 0 || len(p.Host) == 0 {
			return c.bad(out)
		}
		c.inc(PeerFrames)
		n.addPeer(string(p.Host), p.Port)
	case wire.TypeAck:
		if wire.DecodeClassicAck(frame) != nil {
			return c.bad(out)
		}
		if !tcp { // acks only mean something from a peer's listening address
			n.mu.Lock()
			n.g.ClassicAck(from)
			n.mu.Unlock()
		}
	case wire.TypeRowAck:
		a, err := wire.DecodeRowAck(frame)
		if err != nil {
			return c.bad(out)
		}
		if !tcp {
			n.mu.Lock()
			n.g.RowAck(from, a, &w.out)
			n.mu.Unlock()
		}
	case wire.TypePing:
		p, err := wire.DecodePing(frame)
		if err != nil {
			return c.bad(out)
		}
		var addr [64]byte
		out, _ = wire.AppendPing(out, wire.Ping{
			Type: wire.TypePong, ReqID: p.ReqID, Version: wire.ProtocolVersion,
			FP: n.f.Fingerprint(), Name: n.name, Addr: n.Addr().AppendTo(addr[:0]),
		})
	case wire.TypeMembersReq:
		id, err := wire.DecodeMembersRequest(frame)
		if err != nil {
			return c.bad(out)
		}
		var ms []wire.Member
		if m := n.mem.Load(); m != nil {
			ms = m.Members()
		}
		out, _ = wire.AppendMembers(out, id, ms)
	case wire.TypeStatsReq:
		id, err := wire.DecodeStatsRequest(frame)
		if err != nil {
			return c.bad(out)
		}
		out, _ = wire.AppendStats(out, id, n.Stats().wireStats())
	default:
		c.drop(Unsupported)
	}
	return out
}

// batch serves an add batch or has batch.
func (n *Node) batch(w *worker, frame []byte, out []byte) []byte {
	c := w.c
	b, err := wire.DecodeBatch(frame)
	if err != nil {
		return c.bad(out)
	}
	// Counted once per frame, not once per key: the counters are atomics.
	var bits [wire.MaxBatchKeys / 8]byte
	i, yes := b.Keys.Len(), 0
	switch {
	case b.Type == wire.TypeAddBatch && n.st != nil:
		keys := w.keys[:0]
		for key := range b.Keys.All() {
			keys = append(keys, key)
		}
		yes = n.addLogged(w, keys, bits[:])
		clear(keys) // slices of a frame about to be reused
		w.keys = keys[:0]
	default: // in memory: the hot loop stays here, inlined
		add, j := b.Type == wire.TypeAddBatch, 0
		for key := range b.Keys.All() {
			var v bool
			if add {
				v = n.f.Add(key)
			} else {
				v = n.f.Has(key)
			}
			if v {
				bits[j/8] |= 1 << (j % 8)
				yes++
			}
			j++
		}
	}
	if b.Type == wire.TypeAddBatch {
		c.add(Adds, uint64(i))
		c.add(AddsNew, uint64(yes))
	} else {
		c.add(HasQueries, uint64(i))
		c.add(HasHits, uint64(yes))
	}
	if b.Flags&wire.FlagAck == 0 {
		w.syncPos = 0 // nobody waits for an unacknowledged add
	}
	switch {
	case b.Type == wire.TypeHasBatch:
		out, _ = wire.AppendResult(out, wire.TypeHasResult, b.ReqID, i, bits[:wire.BitmapLen(i)])
	case b.Flags&wire.FlagAck != 0:
		out, _ = wire.AppendResult(out, wire.TypeAddResult, b.ReqID, i, bits[:wire.BitmapLen(i)])
	}
	return out
}

func (n *Node) has(c *counters, key []byte) bool {
	c.inc(HasQueries)
	if n.f.Has(key) {
		c.inc(HasHits)
		return true
	}
	return false
}

func (c *counters) bad(out []byte) []byte {
	c.drop(BadFrames)
	return out
}

func (n *Node) mergeFailed(c *counters, out []byte, err error) []byte {
	if errors.Is(err, filter.ErrFingerprint) {
		c.drop(FingerprintMismatch)
		n.log.Debug("sync refused", "err", err)
	} else {
		c.drop(RowRange)
	}
	return out
}
