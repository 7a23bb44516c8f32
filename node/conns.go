package node

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// The node's TCP connections. Holding one open costs a sender nothing,
// so the table has two bounds: a source address may hold at most
// MaxConnsPerSource connections (more are refused), and when the table is
// full (MaxConns) the connection idle longest is closed to let a new one
// in — an attacker holding idle connections cannot lock clients out.
// A connection idle for IdleTimeout is closed; one that has begun a frame
// must finish it within FrameTimeout, so half frames and slow trickles
// hold nothing for long.

// conn is an open connection and what the node knows of it.
type conn struct {
	c    net.Conn
	from netip.AddrPort
	last atomic.Int64 // unix nanoseconds: accepted, or last drained its requests
}

// admit registers c, closing the connection idle longest if the table is
// full. It refuses (false) when shutting down or when c's source holds
// MaxConnsPerSource connections already.
func (n *Node) admit(c net.Conn) (*conn, bool) {
	cn := &conn{c: c, from: remoteAddr(c)}
	cn.last.Store(time.Now().UnixNano())
	src := cn.from.Addr()
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if n.ctx.Err() != nil {
		return nil, false
	}
	if n.bySource[src] >= n.cfg.MaxConnsPerSource {
		n.c.inc(TCPRefusedPerSource)
		return nil, false
	}
	if len(n.conns) >= n.cfg.MaxConns {
		var idlest *conn
		for _, o := range n.conns {
			if idlest == nil || o.last.Load() < idlest.last.Load() {
				idlest = o
			}
		}
		n.dropConn(idlest) // its handler finds it closed and returns
		idlest.c.Close()
		n.c.inc(TCPEvicted)
	}
	n.conns[c] = cn
	n.bySource[src]++
	return cn, true
}

// release forgets cn and closes it. It may run after admit evicted cn.
func (n *Node) release(cn *conn) {
	n.connMu.Lock()
	if n.conns[cn.c] == cn {
		n.dropConn(cn)
	}
	n.connMu.Unlock()
	cn.c.Close()
}

// dropConn removes cn from the table; callers hold connMu.
func (n *Node) dropConn(cn *conn) {
	delete(n.conns, cn.c)
	src := cn.from.Addr()
	if n.bySource[src]--; n.bySource[src] <= 0 {
		delete(n.bySource, src)
	}
}

// Closing a connection with bytes from the client still unread makes the
// kernel reset it, and a reset can reach the client before the last reply
// that explains why. So a connection closed for a bad request says it
// sends no more (a FIN after that reply) and reads on, discarding, until
// the client closes too — for at most lingerFor and lingerBytes.
const (
	lingerFor   = 250 * time.Millisecond
	lingerBytes = 1 << 20
)

// lingerClose half-closes c, everything written, and drains what the
// client still sends, within lingerFor and lingerBytes; the caller then
// closes it.
func lingerClose(c net.Conn) {
	tc, ok := c.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(lingerFor))
	var buf [4096]byte
	for left := lingerBytes; left > 0; {
		m, err := c.Read(buf[:])
		left -= m
		if err != nil {
			return
		}
	}
}

// remoteAddr is c's peer address, IPv4-in-IPv6 unmapped.
func remoteAddr(c net.Conn) netip.AddrPort {
	a, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
