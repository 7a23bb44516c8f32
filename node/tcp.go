package node

import (
	"errors"
	"net"
	"time"

	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Streams. A connection's own read buffer is small, so that a thousand
// idle connections cost a few megabytes; a busy one borrows a larger
// buffer, and a large frame its memory, from the node's buffer pool
// (--max-buffer-bytes), giving them back when drained. Replies gather in
// a borrowed buffer until the requests in hand are answered.
const (
	connReadBuf = 2 << 10
	connBusyBuf = 64 << 10
)

// serveConn serves pipelined frames on one connection: it answers each in
// order into a buffered writer and flushes whenever it has read
// everything the client sent so far. Nothing written leaves before the
// adds it acknowledges are on disk (--fsync always), and every add
// pipelined before a flush shares one wait per log.
func (n *Node) serveConn(cn *conns.Conn) {
	defer n.conns.Release(cn)
	c := cn.C
	fr := wire.NewFrameReader(c, connReadBuf)
	fr.Borrow(n.bufs, connBusyBuf)
	defer fr.Close()
	framing := false // the read deadline is the frame's, not the idle one
	fr.OnWait(func() {
		if n.life.ctx.Err() == nil { // shutting down: the deadline is now
			framing = true
			c.SetReadDeadline(time.Now().Add(n.cfg.FrameTimeout))
		}
	})
	bw := conns.NewWriter(c, n.bufs, n.cfg.FrameTimeout)
	defer bw.Release()
	w := &worker{c: n.meters.c}
	var waits store.Waits
	flush := func() bool { return waits.Wait() == nil && bw.Flush() == nil }
	var burst time.Time // when the first request of the replies waiting in bw was read
	for {
		if fr.Buffered() == 0 {
			cn.Touch() // before the replies go: a client that has them finds it done
			if !flush() || n.life.ctx.Err() != nil {
				return
			}
			if !burst.IsZero() {
				n.meters.timed(TCPLatency, burst)
				burst = time.Time{}
			}
			fr.Release() // drained: give borrowed memory back while waiting
			bw.Release()
			if cap(w.buf) > 4096 {
				w.buf = nil
			}
			framing = false
			c.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
			if n.life.ctx.Err() != nil { // shutdown may have set its deadline before this one
				return
			}
		}
		frame, err := fr.Next()
		if err != nil {
			n.streamFailed(err, framing)
			var fe *wire.FrameError
			if errors.As(err, &fe) && flush() {
				conns.LingerClose(c) // the error frame reaches the client, not a reset
			}
			return // EOF, idle, a frame too slow or too large, or shutting down
		}
		n.meters.c.inc(TCPFrames)
		if burst.IsZero() {
			burst = time.Now()
		}
		q := request{frame: frame, from: cn.From, w: w, tcp: true}
		r := n.dispatch(&q)
		if r.pull != nil { // a stream of replies, written as it goes
			if !flush() || r.pull(bw) != nil {
				return
			}
			continue
		}
		waits.Add(r.wait)
		if len(r.frame) > bw.Available() && waits.Wait() != nil { // writing it flushes what waits
			return
		}
		if len(r.frame) > 0 {
			if _, err := bw.Write(r.frame); err != nil {
				return
			}
			w.buf = r.frame[:0]
		}
		if r.hangUp {
			if flush() {
				conns.LingerClose(c)
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
		n.meters.c.drop(BadFrames)
	case errors.Is(err, wire.ErrNoMemory):
		n.meters.c.inc(TCPNoMemory)
	case n.life.ctx.Err() != nil:
	case errors.As(err, &ne) && ne.Timeout():
		if framing {
			n.meters.c.inc(TCPFrameTimeouts)
		} else {
			n.meters.c.inc(TCPIdleTimeouts)
		}
	}
}
