package node

import "net/netip"

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
		if len(reply) > 0 {
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
