package node

import (
	"bytes"
	"encoding/binary"
	"net/netip"

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
	workers := make([]*worker, n.tr.Readers())
	for i := range workers {
		workers[i] = &worker{c: n.udpC[i], reader: i, reply: make([]byte, 0, 65535), shed: n.shed[i]}
	}
	return func(reader int, frame []byte, from netip.AddrPort) {
		w := workers[reader]
		w.c.inc(UDPFrames)
		if w.shed.drop(from.Addr(), n, reader) {
			w.c.drop(UDPShed) // over its share while the reader is behind
			return
		}
		if n.answer(frame, from) {
			return
		}
		reply := n.handle(w, frame, from)
		if len(reply) > len(frame) {
			reply = n.tooLarge(w, reply, frame, len(frame))
		}
		switch {
		case len(reply) == 0:
		case w.syncLog != nil && w.syncLog.Synced() < w.syncPos:
			n.replyWhenSynced(reader, bytes.Clone(reply), from, w.syncLog, w.syncPos)
		default:
			if err := n.tr.WriteTo(reader, reply, from); err != nil {
				w.c.inc(SendErrors)
			}
		}
		w.reply = reply[:0] // replies are always built in w.reply, maybe grown
		if w.out.Len() > 0 {
			n.send(reader, &w.out, &w.sealBuf)
		}
	}
}

// tooLarge replaces a reply larger than budget, the bytes its request
// leaves for it, with an error frame saying so — or, if the reply is an
// error frame already, that error — and drops the message, then the
// frame, if they do not fit: the code alone names the reason.
func (n *Node) tooLarge(w *worker, reply, frame []byte, budget int) []byte {
	w.c.inc(UDPRepliesCut)
	id, ok := reqID(frame)
	if !ok {
		return reply[:0]
	}
	e := wire.ErrorFrame{ReqID: id, Code: wire.CodeUseTCP, Msg: []byte("pad the request or use TCP")}
	if len(reply) > 0 && wire.Type(reply[0]) == wire.TypeError {
		if orig, err := wire.DecodeError(reply); err == nil {
			e.Code, e.Msg = orig.Code, nil // a refusal, too long to give whole
		}
	}
	out, _ := wire.AppendError(w.sealBuf[:0], e)
	if len(out) > budget {
		e.Msg = nil
		out, _ = wire.AppendError(out[:0], e)
	}
	w.sealBuf = out
	if len(out) > budget {
		return reply[:0]
	}
	return append(reply[:0], out...)
}

// replyWhenSynced sends the reply to an acknowledged add once its log
// record is on disk (--fsync always), from the log's writer: the reader
// goes on serving meanwhile, and adds that arrive meanwhile share the
// next fsync. If the log fails, the client gets an error frame instead.
func (n *Node) replyWhenSynced(reader int, reply []byte, to netip.AddrPort, l *store.Log, pos uint64) {
	l.AfterSynced(pos, func(err error) {
		if err != nil {
			reply, _ = wire.AppendError(reply[:0], wire.ErrorFrame{ReqID: binary.BigEndian.Uint32(reply[wire.HeaderSize:]),
				Code: wire.CodeUnavailable, Msg: []byte("the add is not on disk: " + err.Error())})
		}
		n.sendTo(reader, reply, to)
	})
}
