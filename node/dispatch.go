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
}

// handle serves one frame from `from` (a UDP source or a TCP peer) and
// returns its reply, if any, in w.reply; gossip frames to send go to
// w.out. It never keeps frame.
func (n *Node) handle(w *worker, frame []byte, from netip.AddrPort) []byte {
	c, tcp, out := w.c, w.tcp, w.reply[:0]
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
		n.add(c, key)
	case wire.TypeHas:
		key, err := wire.DecodeClassicKey(frame, wire.TypeHas)
		if err != nil {
			return c.bad(out)
		}
		out, _ = wire.AppendClassicHasReply(out, key, n.has(c, key))
	case wire.TypeAddBatch, wire.TypeHasBatch:
		return n.batch(c, frame, out)
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
func (n *Node) batch(c *counters, frame []byte, out []byte) []byte {
	b, err := wire.DecodeBatch(frame)
	if err != nil {
		return c.bad(out)
	}
	// Counted once per frame, not once per key: the counters are atomics.
	var bits [wire.MaxBatchKeys / 8]byte
	i, yes := 0, 0
	add := b.Type == wire.TypeAddBatch
	for key := range b.Keys.All() {
		var v bool
		if add {
			v = n.f.Add(key)
		} else {
			v = n.f.Has(key)
		}
		if v {
			bits[i/8] |= 1 << (i % 8)
			yes++
		}
		i++
	}
	if add {
		c.add(Adds, uint64(i))
		c.add(AddsNew, uint64(yes))
	} else {
		c.add(HasQueries, uint64(i))
		c.add(HasHits, uint64(yes))
	}
	switch {
	case b.Type == wire.TypeHasBatch:
		out, _ = wire.AppendResult(out, wire.TypeHasResult, b.ReqID, i, bits[:wire.BitmapLen(i)])
	case b.Flags&wire.FlagAck != 0:
		out, _ = wire.AppendResult(out, wire.TypeAddResult, b.ReqID, i, bits[:wire.BitmapLen(i)])
	}
	return out
}

func (n *Node) add(c *counters, key []byte) bool {
	c.inc(Adds)
	if n.f.Add(key) {
		c.inc(AddsNew)
		return true
	}
	return false
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
