package node

import (
	"errors"
	"net"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// Stream buffers. A connection's own read buffer is small, so that a
// thousand idle connections cost a few megabytes; a busy one borrows a
// larger buffer, and a large frame its memory, from the node's buffer
// pool (--max-buffer-bytes), giving them back when drained. Replies
// gather in a borrowed buffer of replyBuf bytes until the requests in
// hand are answered.
const (
	connReadBuf = 2 << 10
	connBusyBuf = 64 << 10
	replyBuf    = 64 << 10
)

// acceptLoop admits l's connections into the TCP table (conns.go),
// counting each in accepted, and serves each with serve on its own
// goroutine, until l closes.
func (n *Node) acceptLoop(l net.Listener, accepted Counter, serve func(*conn)) {
	defer n.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("accept failed", "addr", l.Addr().String(), "err", err)
			select { // e.g. out of file descriptors: let some close
			case <-time.After(10 * time.Millisecond):
			case <-n.ctx.Done():
				return
			}
			continue
		}
		cn, ok := n.admit(c)
		if !ok {
			c.Close()
			continue
		}
		n.c.inc(accepted)
		n.wg.Add(1)
		go serve(cn)
	}
}

// serveConn serves pipelined frames on one connection: it answers each in
// order into a buffered writer and flushes whenever it has read everything
// the client sent so far.
func (n *Node) serveConn(cn *conn) {
	defer n.wg.Done()
	defer n.release(cn)
	c, from := cn.c, cn.from
	fr := wire.NewFrameReader(c, connReadBuf)
	fr.Borrow(n.bufs, connBusyBuf)
	defer fr.Close()
	framing := false // the read deadline is the frame's, not the idle one
	fr.OnWait(func() {
		if n.ctx.Err() == nil { // shutting down: the deadline is now
			framing = true
			c.SetReadDeadline(time.Now().Add(n.cfg.FrameTimeout))
		}
	})
	bw := &connWriter{c: c, mem: n.bufs, timeout: n.cfg.FrameTimeout}
	defer bw.release()
	w := &worker{c: n.c, tcp: true}
	// unsynced is what the replies in bw wait for (--fsync always):
	// nothing in bw leaves before the adds it acknowledges are on disk,
	// and every add pipelined before a flush shares one wait per log.
	var unsynced logWaits
	synced := func() bool {
		return len(unsynced) == 0 || unsynced.wait() == nil
	}
	var burst time.Time // when the first request of the replies waiting in bw was read
	for {
		if fr.Buffered() == 0 {
			cn.last.Store(time.Now().UnixNano()) // before the replies go: a client that has them finds it done
			if !synced() || bw.Flush() != nil || n.ctx.Err() != nil {
				return
			}
			if !burst.IsZero() {
				n.timed(TCPLatency, burst)
				burst = time.Time{}
			}
			// Drained: give borrowed memory back while waiting.
			fr.Release()
			bw.release()
			if cap(w.reply) > 4096 {
				w.reply = nil
			}
			framing = false
			c.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
			if n.ctx.Err() != nil { // shutdown may have set its deadline before this one
				return
			}
		}
		frame, err := fr.Next()
		if err != nil {
			n.streamFailed(err, framing)
			var fe *wire.FrameError
			if errors.As(err, &fe) && synced() && bw.Flush() == nil {
				lingerClose(c) // the error frame reaches the client, not a reset
			}
			return // EOF, idle, a frame too slow or too large, or shutting down
		}
		n.c.inc(TCPFrames)
		if burst.IsZero() {
			burst = time.Now()
		}
		var reply []byte
		switch wire.Type(frame[0]) {
		case wire.TypePull: // a stream of replies, written as it goes
			if !synced() || n.servePull(frame, false, from, bw) != nil {
				return
			}
			continue
		case wire.TypeNamed:
			if f, pull, ok := n.namedPull(frame); ok {
				if !synced() || n.servePullOf(f, pull, false, from, bw) != nil {
					return
				}
				continue
			}
			reply = n.handle(w, frame, from)
		case wire.TypeSealed:
			s, err := n.open(w, frame)
			f, pull, named := n.namedPull(s.Inner)
			switch {
			case err != nil:
				reply = n.sealRefused(w, frame, err)
			case s.InnerType() == wire.TypePull:
				if !synced() || n.servePull(s.Inner, true, from, bw) != nil {
					return
				}
				continue
			case named:
				if !synced() || n.servePullOf(f, pull, true, from, bw) != nil {
					return
				}
				continue
			default:
				reply = n.serveOpened(w, s, from)
			}
		default:
			reply = n.handle(w, frame, from)
		}
		unsynced.add(w.syncLog, w.syncPos)
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
			if synced() && bw.Flush() == nil {
				lingerClose(c)
			}
			return
		}
	}
}

// streamFailed counts why a stream's next frame could not be read.
func (n *Node) streamFailed(err error, framing bool) {
	var fe *wire.FrameError
	var ne net.Error
	switch {
	case errors.As(err, &fe): // without a length the stream cannot be resynchronised
		n.c.drop(BadFrames)
	case errors.Is(err, wire.ErrNoMemory):
		n.c.inc(TCPNoMemory)
	case n.ctx.Err() != nil:
	case errors.As(err, &ne) && ne.Timeout():
		if framing {
			n.c.inc(TCPFrameTimeouts)
		} else {
			n.c.inc(TCPIdleTimeouts)
		}
	}
}
