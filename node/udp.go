package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// newPacketHandler returns what serves datagrams: one worker per reader,
// each with its own counter shard, so that readers on different cores
// share nothing. Replies leave from the listening address. (Reading and
// writing in batches with recvmmsg/sendmmsg was measured and gained
// nothing: on loopback the per-datagram network stack work, not the
// system call, is the cost.)
//
// No datagram gets a reply larger than itself: the source of a datagram
// may be forged, so a reply larger than its request (stats, members, a
// pong) is replaced by an error frame saying to pad the request or use
// TCP, or by nothing if even that is larger. So a datagram with a forged
// source cannot make the node flood a third party — not even a member,
// whose address an attacker could forge as well. Nothing the nodes send
// each other needs more: a row ack is smaller than its row sync.
func (n *Node) newPacketHandler() func(reader int, frame []byte, from netip.AddrPort) {
	n.meters.readers(n.tr.Readers())
	workers := make([]*worker, n.tr.Readers())
	for i := range workers {
		workers[i] = &worker{c: n.meters.udp[i], reader: i, buf: make([]byte, 0, 65535)}
	}
	return func(reader int, frame []byte, from netip.AddrPort) {
		w := workers[reader]
		w.c.Inc(counter.UDPFrames)
		if n.shed[reader].Drop(from.Addr()) {
			w.c.Drop(counter.UDPShed) // over its share while the reader is behind
			return
		}
		if n.policy.Open(from.Addr()) && n.repl.Answer(frame, from) {
			return
		}
		q := &w.q // the worker's: a request made here would be on the heap
		*q = request{frame: frame, from: from, w: w, size: len(frame)}
		r := n.dispatch(q)
		out := r.frame
		if len(out) > len(frame) {
			out = n.tooLarge(w, out, q.frame, len(frame)) // q.frame: the request a seal or a name wrapped
		}
		switch {
		case len(out) == 0:
		case !r.wait.Synced():
			n.replyWhenSynced(reader, bytes.Clone(out), len(frame), from, r.wait)
		default:
			n.sendTo(reader, out, from)
		}
		if cap(out) > cap(w.buf) {
			w.buf = out[:0] // grown: keep it
		}
	}
}

// tooLarge replaces a reply larger than budget, the bytes its request
// leaves for it, with an error frame saying so — or, if the reply is an
// error frame already, that error — and drops the message, then the
// frame, if they do not fit: the code alone names the reason.
func (n *Node) tooLarge(w *worker, out, frame []byte, budget int) []byte {
	w.c.Inc(counter.UDPRepliesCut)
	e := wire.ErrorFrame{Code: wire.CodeUseTCP, Msg: []byte("pad the request or use TCP")}
	if orig, err := wire.DecodeError(out); err == nil {
		e.ReqID, e.Code, e.Msg = orig.ReqID, orig.Code, nil // a refusal, too long to give whole
	} else {
		if inner, ok := wire.NamedInner(frame); ok {
			frame = inner
		}
		id, ok := wire.RequestID(frame)
		if !ok {
			return out[:0]
		}
		e.ReqID = id
	}
	b, _ := wire.AppendError(w.sealBuf[:0], e)
	if len(b) > budget {
		e.Msg = nil
		b, _ = wire.AppendError(b[:0], e)
	}
	w.sealBuf = b
	if len(b) > budget {
		return out[:0]
	}
	return append(out[:0], b...)
}

// replyWhenSynced sends the reply to an acknowledged add once its log
// record is on disk (--fsync always), from the log's writer: the reader
// goes on serving meanwhile, and adds that arrive meanwhile share the
// next fsync. If the log fails, the client gets an error frame instead,
// its message cut to keep it within budget (the request's size).
func (n *Node) replyWhenSynced(reader int, out []byte, budget int, to netip.AddrPort, w store.Wait) {
	w.Then(func(err error) {
		if err != nil {
			e := unkeptError(binary.BigEndian.Uint32(out[wire.HeaderSize:]), "", err)
			if errors.Is(err, store.ErrUnwritable) {
				n.meters.c.Inc(counter.AddsUnkept)
			} else {
				e = wire.ErrorFrame{ReqID: e.ReqID, Code: wire.CodeUnavailable, Msg: []byte("the add is not on disk: " + err.Error())}
			}
			b, _ := wire.AppendError(nil, e)
			if over := len(b) - max(budget, len(out)); over > 0 {
				e.Msg = e.Msg[:max(len(e.Msg)-over, 0)]
				b, _ = wire.AppendError(nil, e)
			}
			out = b
		}
		n.sendTo(reader, out, to)
	})
}
