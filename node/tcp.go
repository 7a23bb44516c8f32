package node

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/wire"
)

const tcpBufSize = 64 << 10

func (n *Node) acceptTCP() {
	defer n.wg.Done()
	for {
		c, err := n.l.TCP.AcceptTCP()
		if err != nil {
			if n.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("accept failed", "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
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
	if len(n.conns) >= n.cfg.MaxConns || n.stopping() {
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
func (n *Node) serveConn(c *net.TCPConn) {
	defer n.wg.Done()
	defer n.untrack(c)
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	br := bufio.NewReaderSize(c, tcpBufSize)
	bw := bufio.NewWriterSize(c, tcpBufSize)
	out := make([]byte, 0, 4096)
	var big []byte // frames larger than br's buffer
	for {
		if br.Buffered() == 0 {
			if bw.Flush() != nil || n.stopping() {
				return
			}
			c.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
		}
		head, err := br.Peek(1)
		if err != nil {
			return // EOF, idle, or shutting down
		}
		if wire.Type(head[0]).Extended() {
			if head, err = br.Peek(wire.HeaderSize); err != nil {
				return
			}
		}
		size, err := wire.FrameLen(head)
		if err != nil {
			// Without a length the stream cannot be resynchronised.
			n.c.drop(BadFrames)
			bw.Flush()
			return
		}
		var frame []byte
		if size <= br.Size() {
			if frame, err = br.Peek(size); err != nil {
				return
			}
		} else {
			if cap(big) < size {
				big = make([]byte, size)
			}
			frame = big[:size]
			if _, err := io.ReadFull(br, frame); err != nil {
				return
			}
		}
		n.c.inc(TCPFrames)
		if wire.Type(frame[0]) == wire.TypePull { // a stream of replies, written as it goes
			err := n.servePull(frame, bw)
			if size <= br.Size() {
				br.Discard(size)
			}
			if err != nil {
				return
			}
			continue
		}
		out = n.handle(n.c, frame, from, true, out[:0])
		if size <= br.Size() {
			br.Discard(size)
		}
		if len(out) > 0 {
			if _, err := bw.Write(out); err != nil {
				return
			}
		}
	}
}
