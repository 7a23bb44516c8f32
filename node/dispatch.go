package node

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/store"
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
	sealed bool // the frame in hand came sealed with the cluster key
	reply  []byte
	out    gossip.Outbox
	// sealBuf holds a sealed reply, or gossip frames being sealed.
	sealBuf []byte
	// syncLog and syncPos, when set by an acknowledged add under --fsync
	// always, are the log and position the reply waits for (fsyncwait.go).
	syncLog *store.Log
	syncPos uint64
	// hangUp, set while serving a stream, closes it after the reply: a
	// classic request refused has no reply of its own, so the client
	// gets an error frame naming the reason and the end of the stream
	// rather than waiting.
	hangUp bool
	// shed decides, when the reader falls behind, whose datagrams to drop.
	shed *shedder
	// Scratch for adds with a data directory.
	hashes, missing []uint64
	keys, newKeys   [][]byte
}

// handle serves one frame from `from` (a UDP source or a TCP peer) and
// returns its reply, if any, in w.reply; gossip frames to send go to
// w.out. It never keeps frame.
func (n *Node) handle(w *worker, frame []byte, from netip.AddrPort) []byte {
	c, tcp, out := w.c, w.tcp, w.reply[:0]
	w.syncLog, w.syncPos = nil, 0
	if len(frame) == 0 {
		c.drop(BadFrames)
		return out
	}
	t := wire.Type(frame[0])
	if nodeFrame(t) && n.keyed() && !w.sealed {
		c.drop(Unauthenticated) // a node of this cluster would have sealed it
		return n.refuse(out, frame, wire.CodeUnsealed, "this node has a cluster key: peer requests must be sealed with it (rmbd-cli --cluster-key-file)")
	}
	switch t {
	case wire.TypeAdd:
		key, err := wire.DecodeClassicKey(frame, wire.TypeAdd)
		if err != nil {
			return c.bad(out)
		}
		if !n.mayAdd(from) {
			c.drop(Forbidden)
			return n.refuseClassic(w, out, "add: this address may not add (--allow)")
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
		c.add(AddsNew, uint64(addLogged(w, n.f, n.st, w.keys, bit[:])))
		clear(w.keys) // a slice of a frame about to be reused
	case wire.TypeHas:
		key, err := wire.DecodeClassicKey(frame, wire.TypeHas)
		if err != nil {
			return c.bad(out)
		}
		if !n.mayRead(from) {
			c.drop(Forbidden)
			return n.refuseClassic(w, out, "has: this address may not ask (--allow-read)")
		}
		out, _ = wire.AppendClassicHasReply(out, key, n.has(c, key))
	case wire.TypeAddBatch, wire.TypeHasBatch:
		return n.batch(w, frame, from, out)
	case wire.TypeSealed:
		return n.serveSealed(w, frame, from)
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
		if !n.mayAdmin(from, w.sealed) {
			c.drop(Forbidden)
			return n.refuseClassic(w, out, "peer: this address may not ask (--allow-admin)")
		}
		c.inc(PeerFrames)
		n.addPeer(string(p.Host), p.Port, false, nil)
	case wire.TypePeerRequest:
		return n.peerRequest(w, frame, from, out)
	case wire.TypeNamed:
		return n.namedFrame(w, frame, from, out)
	case wire.TypeFilterReq:
		return n.filterRequest(w, frame, from, out)
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
			Flags: n.pongFlags(), Build: []byte(version.String()),
		})
	case wire.TypeMembersReq:
		id, err := wire.DecodeMembersRequest(frame)
		if err != nil {
			return c.bad(out)
		}
		if !n.mayAdmin(from, w.sealed) {
			c.drop(Forbidden)
			return n.refuse(out, frame, wire.CodeForbidden, "members: this address may not ask (--allow-admin)")
		}
		out, _ = wire.AppendMembers(out, id, n.Members())
	case wire.TypeStatsReq:
		id, err := wire.DecodeStatsRequest(frame)
		if err != nil {
			return c.bad(out)
		}
		if !n.mayAdmin(from, w.sealed) {
			c.drop(Forbidden)
			return n.refuse(out, frame, wire.CodeForbidden, "stats: this address may not ask (--allow-admin)")
		}
		if !tcp && len(frame) < statsReplySize { // cut below anyway: not worth gathering
			return n.tooLarge(w, out, frame, len(frame))
		}
		out, _ = wire.AppendStats(out, id, n.Stats().WireStats())
	default:
		c.drop(Unsupported)
	}
	return out
}

// refuse appends an error frame answering frame, an extended request,
// with code and msg; classic frames get no answer.
func (n *Node) refuse(out, frame []byte, code uint16, msg string) []byte {
	id, ok := reqID(frame)
	if !ok {
		return out
	}
	out, _ = wire.AppendError(out, wire.ErrorFrame{ReqID: id, Code: code, Msg: []byte(msg)})
	return out
}

// refuseClassic refuses a classic request: over UDP in silence (it has
// no error reply), over TCP with an error frame, after which the stream
// is closed — a classic client would misread anything that followed.
func (n *Node) refuseClassic(w *worker, out []byte, msg string) []byte {
	if !w.tcp {
		return out
	}
	w.hangUp = true
	out, _ = wire.AppendError(out, wire.ErrorFrame{Code: wire.CodeForbidden, Msg: []byte(msg)})
	return out
}

// reqID returns the request id of an extended request, which every one
// carries first.
func reqID(frame []byte) (uint32, bool) {
	switch wire.Type(frame[0]) {
	case wire.TypeAddBatch, wire.TypeHasBatch, wire.TypePing, wire.TypeStatsReq, wire.TypeMembersReq, wire.TypePeerRequest, wire.TypeFilterReq:
		if len(frame) >= wire.HeaderSize+4 {
			return binary.BigEndian.Uint32(frame[wire.HeaderSize:]), true
		}
	}
	return 0, false
}

// peerRequest serves an extended peer request: a peer result once the
// address is taken (challenged), an error frame saying why not.
func (n *Node) peerRequest(w *worker, frame []byte, from netip.AddrPort, out []byte) []byte {
	c := w.c
	p, err := wire.DecodePeerRequest(frame)
	if err != nil {
		return c.bad(out)
	}
	if !n.mayAdmin(from, w.sealed) {
		c.drop(Forbidden)
		return n.refuse(out, frame, wire.CodeForbidden, "peer: this address may not ask (--allow-admin)")
	}
	c.inc(PeerFrames)
	answer := func(o peerOutcome, dst []byte) []byte {
		if o.code != 0 {
			dst, _ = wire.AppendError(dst, wire.ErrorFrame{ReqID: p.ReqID, Code: o.code, Msg: []byte(o.why)})
			return dst
		}
		var a [64]byte
		dst, _ = wire.AppendPeerResult(dst, wire.PeerResult{ReqID: p.ReqID, State: o.state, Addr: o.addr.AppendTo(a[:0])})
		return dst
	}
	// Over UDP the request's source may be forged: what goes back to it
	// and the challenge to the address named, together, are no more bytes
	// than the request (which is at least as large as the challenge).
	budget := func(o peerOutcome) int {
		if o.challenged {
			return len(frame) - wire.ClassicKeyFrameSize
		}
		return len(frame)
	}
	if _, err := netip.ParseAddr(string(p.Host)); err == nil || w.tcp {
		// An address, or a stream that may wait for the lookup: answer now.
		var o peerOutcome
		done := make(chan struct{})
		n.addPeer(string(p.Host), p.Port, false, func(r peerOutcome) { o = r; close(done) })
		<-done
		out = answer(o, out)
		if !w.tcp && len(out) > budget(o) {
			out = n.tooLarge(w, out, frame, budget(o))
		}
		return out
	}
	// A host name over UDP: the reader goes on, the answer follows the lookup.
	reader, sealed := w.reader, w.sealed
	n.addPeer(string(p.Host), p.Port, false, func(o peerOutcome) {
		reply := answer(o, nil)
		if len(reply) > budget(o) {
			n.c.inc(UDPRepliesCut)
			return
		}
		if sealed {
			reply = n.seal(nil, reply)
		}
		n.sendTo(reader, reply, from)
	})
	return out
}

// pongFlags says what a pong tells about the node.
func (n *Node) pongFlags() uint8 {
	var f uint8
	if n.keyed() {
		f |= wire.PongAuthenticated
	}
	a := n.alarms()
	if a.OverCapacity {
		f |= wire.PongOverCapacity
	}
	if a.FPHigh {
		f |= wire.PongFPHigh
	}
	return f
}

// batch serves an add batch or has batch to the default filter.
func (n *Node) batch(w *worker, frame []byte, from netip.AddrPort, out []byte) []byte {
	c := w.c
	b, err := wire.DecodeBatch(frame)
	if err != nil {
		return c.bad(out)
	}
	if !n.mayBatch(b.Type, from) {
		return n.refuseBatch(c, b.Type, frame, out)
	}
	return n.batchOn(w, n.f, n.st, b, out)
}

// mayBatch reports whether from may send a batch of type t.
func (n *Node) mayBatch(t wire.Type, from netip.AddrPort) bool {
	return t == wire.TypeAddBatch && n.mayAdd(from) || t == wire.TypeHasBatch && n.mayRead(from)
}

func (n *Node) refuseBatch(c *counters, t wire.Type, frame, out []byte) []byte {
	c.drop(Forbidden)
	return n.refuse(out, frame, wire.CodeForbidden, "this address may not "+map[bool]string{true: "add (--allow)", false: "ask (--allow-read)"}[t == wire.TypeAddBatch])
}

// batchOn serves batch b on filter f, logged to st if there is one.
func (n *Node) batchOn(w *worker, f *filter.Filter, st *store.Store, b wire.Batch, out []byte) []byte {
	c := w.c
	// Counted once per frame, not once per key: the counters are atomics.
	var bits [wire.MaxBatchKeys / 8]byte
	i, yes := b.Keys.Len(), 0
	switch {
	case b.Type == wire.TypeAddBatch && st != nil:
		keys := w.keys[:0]
		for key := range b.Keys.All() {
			keys = append(keys, key)
		}
		yes = addLogged(w, f, st, keys, bits[:])
		clear(keys) // slices of a frame about to be reused
		w.keys = keys[:0]
	default: // in memory: the hot loop stays here, inlined
		add, j := b.Type == wire.TypeAddBatch, 0
		for key := range b.Keys.All() {
			var v bool
			if add {
				v = f.Add(key)
			} else {
				v = f.Has(key)
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
		w.syncLog, w.syncPos = nil, 0 // nobody waits for an unacknowledged add
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
