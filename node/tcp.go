package node

import (
	"errors"
	"net"
	"time"

	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/internal/counter"
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

// stream is one connection being served.
type stream struct {
	n       *Node
	cn      *conns.Conn
	fr      *wire.FrameReader
	bw      *conns.Writer
	w       *worker
	waits   store.Waits // what the replies in bw wait for (--fsync always)
	framing bool        // the read deadline is the frame's, not the idle one
	burst   time.Time   // when the first request of the replies in bw was read
}

// serveConn serves pipelined frames on one connection: it answers each in
// order into a buffered writer and flushes whenever it has read
// everything the client sent so far. Nothing written leaves before the
// adds it acknowledges are on disk (--fsync always), and every add
// pipelined before a flush shares one wait per log.
func (n *Node) serveConn(cn *conns.Conn) {
	defer n.conns.Release(cn)
	s := &stream{n: n, cn: cn, fr: wire.NewFrameReader(cn.C, connReadBuf), w: &worker{c: n.meters.c},
		bw: conns.NewWriter(cn.C, n.bufs, n.cfg.FrameTimeout)}
	s.fr.Borrow(n.bufs, connBusyBuf)
	defer s.fr.Close()
	defer s.bw.Release()
	s.fr.OnWait(func() {
		if n.life.ctx.Err() == nil { // shutting down: the deadline is now
			s.framing = true
			cn.C.SetReadDeadline(time.Now().Add(n.cfg.FrameTimeout))
		}
	})
	for {
		if s.fr.Buffered() == 0 && !s.drained() {
			return
		}
		frame, err := s.fr.Next()
		if err != nil {
			n.streamFailed(err, s.framing)
			var fe *wire.FrameError
			if errors.As(err, &fe) && s.flush() {
				conns.LingerClose(cn.C) // the error frame reaches the client, not a reset
			}
			return // EOF, idle, a frame too slow or too large, or shutting down
		}
		n.meters.c.Inc(counter.TCPFrames)
		if s.burst.IsZero() {
			s.burst = time.Now()
		}
		q := &s.w.q
		*q = request{frame: frame, from: cn.From, w: s.w, tcp: true}
		if !s.answer(n.dispatch(q)) {
			return
		}
	}
}

// flush sends the replies gathered, once what they wait for is on disk.
// If the data directory could not be written meanwhile, the adds' results
// among them become error frames saying the adds are not kept; on any
// other failure (the node stopping) the connection closes unanswered.
func (s *stream) flush() bool {
	if err := s.waits.Wait(); err != nil {
		if !errors.Is(err, store.ErrUnwritable) {
			return false
		}
		s.unkept(err)
	}
	return s.bw.Flush() == nil
}

// unkept rewrites the replies gathered: each add result an error frame
// saying why its adds are not kept, every other reply as it was.
func (s *stream) unkept(why error) {
	pending := s.bw.Take()
	for len(pending) > 0 {
		l, err := wire.FrameLen(pending)
		if err != nil || l > len(pending) {
			return // cannot happen: the node wrote them
		}
		reply := pending[:l]
		switch wire.Type(reply[0]) {
		case wire.TypeAddResult:
			if r, err := wire.DecodeResult(reply); err == nil {
				reply, _ = wire.AppendError(nil, unkeptError(r.ReqID, "", why))
				s.n.meters.c.Inc(counter.AddsUnkept)
			}
		case wire.TypeSealed: // a member's forwarded add: an error frame it cannot take unsealed, which fails the forward
			if sl, err := wire.DecodeSealed(reply); err == nil && sl.InnerType() == wire.TypeAddResult {
				reply, _ = wire.AppendError(nil, unkeptError(0, "", why))
				s.n.meters.c.Inc(counter.AddsUnkept)
			}
		}
		s.bw.Write(reply)
		pending = pending[l:]
	}
}

// drained runs when the client's requests in hand are all read: the
// replies go, borrowed memory goes back, and the idle deadline is set. It
// reports whether to go on.
func (s *stream) drained() bool {
	n := s.n
	s.cn.Touch() // before the replies go: a client that has them finds it done
	if !s.flush() || n.life.ctx.Err() != nil {
		return false
	}
	if !s.burst.IsZero() {
		n.meters.timed(TCPLatency, s.burst)
		s.burst = time.Time{}
	}
	s.fr.Release() // give borrowed memory back while waiting
	s.bw.Release()
	if cap(s.w.buf) > 4096 {
		s.w.buf = nil
	}
	s.framing = false
	s.cn.C.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
	return n.life.ctx.Err() == nil // shutdown may have set its deadline before this one
}

// answer writes a reply, or streams a pull's; it reports whether to go on.
func (s *stream) answer(r reply) bool {
	if r.pull != nil { // a stream of replies, written as it goes
		return s.flush() && r.pull(s.bw) == nil
	}
	s.waits.Add(r.wait)
	if len(r.frame) > s.bw.Available() && !s.flush() { // what waits goes first
		return false
	}
	if len(r.frame) > 0 {
		if _, err := s.bw.Write(r.frame); err != nil {
			return false
		}
		s.w.buf = r.frame[:0]
	}
	if r.hangUp {
		if s.flush() {
			conns.LingerClose(s.cn.C)
		}
		return false
	}
	return true
}

// streamFailed counts why a stream's next frame could not be read.
func (n *Node) streamFailed(err error, framing bool) {
	var fe *wire.FrameError
	var ne net.Error
	switch {
	case errors.As(err, &fe): // without a length the stream cannot be resynchronised
		n.meters.c.Drop(counter.BadFrames)
	case errors.Is(err, wire.ErrNoMemory):
		n.meters.c.Inc(counter.TCPNoMemory)
	case n.life.ctx.Err() != nil:
	case errors.As(err, &ne) && ne.Timeout():
		if framing {
			n.meters.c.Inc(counter.TCPFrameTimeouts)
		} else {
			n.meters.c.Inc(counter.TCPIdleTimeouts)
		}
	}
}
