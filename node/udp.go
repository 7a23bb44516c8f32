package node

import (
	"errors"
	"net"
	"net/netip"
)

// maxUDPPayload is the largest datagram a reader accepts.
const maxUDPPayload = 65535

// serveUDP reads datagrams from u, one frame each, and answers from the
// same socket, i.e. from the listening address. c is this reader's counter
// shard. (Reading and writing in batches with recvmmsg/sendmmsg was
// measured and gained nothing: on loopback the per-datagram network stack
// work, not the system call, is the cost.)
func (n *Node) serveUDP(u *net.UDPConn, c *counters) {
	defer n.wg.Done()
	buf := make([]byte, maxUDPPayload)
	out := make([]byte, 0, maxUDPPayload)
	for {
		m, from, err := u.ReadFromUDPAddrPort(buf)
		if err != nil {
			if n.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // transient, e.g. a truncated datagram
		}
		c.inc(UDPFrames)
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		out = n.handle(c, buf[:m], from, false, out[:0])
		if len(out) > 0 {
			if _, err := u.WriteToUDPAddrPort(out, from); err != nil {
				c.inc(SendErrors)
			}
		}
	}
}

func (n *Node) stopping() bool {
	select {
	case <-n.stop:
		return true
	default:
		return false
	}
}
