package node

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/wire"
)

const tcpBufSize = 64 << 10

func (n *Node) acceptStreams() {
	defer n.wg.Done()
	l := n.tr.Listener()
	for {
		c, err := l.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("accept failed", "err", err)
			select { // e.g. out of file descriptors: let some close
			case <-time.After(10 * time.Millisecond):
			case <-n.ctx.Done():
				return
			}
			continue
		}
		if !n.track(c) {
			n.c.inc(TCPRefused)
			c.Close()
			continue
		}
		n.c.inc(TCPConns)
		n.wg.Add(1)
		go n.serveConn(c)
	}
}

// track registers c for shutdown; it refuses past MaxConns.
func (n *Node) track(c net.Conn) bool {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if len(n.conns) >= n.cfg.MaxConns || n.ctx.Err() != nil {
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *Node) untrack(c net.Conn) {
	n.connMu.Lock()
	delete(n.conns, c)
	n.connMu.Unlock()
	c.Close()
}

// serveConn serves pipelined frames on one connection: it answers each in
// order into a buffered writer and flushes whenever it has read everything
// the client sent so far.
func (n *Node) serveConn(c net.Conn) {
	defer n.wg.Done()
	defer n.untrack(c)
	from := remoteAddr(c)
	fr := wire.NewFrameReader(c, tcpBufSize)
	bw := bufio.NewWriterSize(c, tcpBufSize)
	w := &worker{c: n.c, tcp: true, reply: make([]byte, 0, 4096)}
	// unsynced is the log position the replies in bw wait for (--fsync
	// always): nothing in bw leaves before the adds it acknowledges are on
	// disk, and every add pipelined before a flush shares one wait.
	var unsynced uint64
	synced := func() bool {
		if unsynced == 0 {
			return true
		}
		// Not bounded by n.ctx: at shutdown the replies of adds in hand still
		// go out once the log has them, which takes one fsync (or the log
		// fails, and says so).
		err := n.st.Log().WaitSynced(context.Background(), unsynced)
		unsynced = 0
		return err == nil
	}
	for {
		if fr.Buffered() == 0 {
			if !synced() || bw.Flush() != nil || n.ctx.Err() != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
		}
		frame, err := fr.Next()
		if err != nil {
			var fe *wire.FrameError
			if errors.As(err, &fe) { // without a length the stream cannot be resynchronised
				n.c.drop(BadFrames)
				bw.Flush()
			}
			return // EOF, idle, or shutting down
		}
		n.c.inc(TCPFrames)
		var reply []byte
		switch wire.Type(frame[0]) {
		case wire.TypePull: // a stream of replies, written as it goes
			if !synced() || n.servePull(frame, false, from, bw) != nil {
				return
			}
			continue
		case wire.TypeSealed:
			s, err := n.open(w, frame)
			switch {
			case err != nil:
				reply = n.sealRefused(w, frame, err)
			case s.InnerType() == wire.TypePull:
				if !synced() || n.servePull(s.Inner, true, from, bw) != nil {
					return
				}
				continue
			default:
				reply = n.serveOpened(w, s, from)
			}
		default:
			reply = n.handle(w, frame, from)
		}
		unsynced = max(unsynced, w.syncPos)
		if len(reply) > bw.Available() && !synced() { // writing it flushes what waits
			return
		}
		if len(reply) > 0 {
			if _, err := bw.Write(reply); err != nil {
				return
			}
		}
		w.reply = reply[:0]
		if w.hangUp {
			if synced() {
				bw.Flush()
			}
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
