package node

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/rmbd/rmbd/wire"
)

// newPacketHandler returns what serves datagrams: one worker per reader,
// each with its own counter shard, so that readers on different cores
// share nothing. Replies leave from the listening address. (Reading and
// writing in batches with recvmmsg/sendmmsg was measured and gained
// nothing: on loopback the per-datagram network stack work, not the
// system call, is the cost.)
func (n *Node) newPacketHandler() func(reader int, frame []byte, from netip.AddrPort) {
	workers := make([]*worker, n.tr.Readers())
	for i := range workers {
		workers[i] = &worker{c: n.udpC[i], reader: i, reply: make([]byte, 0, 65535)}
	}
	return func(reader int, frame []byte, from netip.AddrPort) {
		w := workers[reader]
		w.c.inc(UDPFrames)
		reply := n.handle(w, frame, from)
		switch {
		case len(reply) == 0:
		case w.syncPos > 0 && n.st.Log().Synced() < w.syncPos:
			n.replyWhenSynced(reader, bytes.Clone(reply), from, w.syncPos)
		default:
			if err := n.tr.WriteTo(reader, reply, from); err != nil {
				w.c.inc(SendErrors)
			}
		}
		w.reply = reply[:0]
		if w.out.Len() > 0 {
			n.send(reader, &w.out)
		}
	}
}

// replyWhenSynced sends the reply to an acknowledged add once its log
// record is on disk (--fsync always), from the log's writer: the reader
// goes on serving meanwhile, and adds that arrive meanwhile share the
// next fsync. If the log fails, the client gets an error frame instead.
func (n *Node) replyWhenSynced(reader int, reply []byte, to netip.AddrPort, pos uint64) {
	n.st.Log().AfterSynced(pos, func(err error) {
		if err != nil {
			reply, _ = wire.AppendError(reply[:0], wire.ErrorFrame{ReqID: binary.BigEndian.Uint32(reply[wire.HeaderSize:]),
				Code: wire.CodeUnavailable, Msg: []byte("the add is not on disk: " + err.Error())})
		}
		n.sendTo(reader, reply, to)
	})
}
