package forward

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// readBuffer is a connection's read buffer: answers are small (a result
// of 4,096 keys is 523 bytes), and larger frames are read into memory
// that grows with what arrives.
const readBuffer = 4 << 10

// conn is one stream to a member, shared by every forward to it. Forwards
// write on it directly, one frame at a time under wmu; one reader
// goroutine reads the answers and hands each to its waiter by request id.
// Once broken (err set) it never recovers: the next forward dials anew.
type conn struct {
	f    *Forwarder
	p    *peer
	nc   net.Conn
	used atomic.Int64 // when a forward last took it, in ns since f.epoch (to a millisecond)
	dead atomic.Bool  // err is set: the fast path of a forward reads it without mu

	wmu sync.Mutex // one frame at a time: frames must not interleave on the stream

	mu      sync.Mutex // guards waiters, next, err and the idle timer
	waiters map[uint32]*waiter
	next    uint32 // the last request id given out
	err     error  // why the connection broke; set once, failing every waiter
	idle    *time.Timer
}

func newConn(p *peer, nc net.Conn) *conn {
	c := &conn{f: p.f, p: p, nc: nc, waiters: make(map[uint32]*waiter)}
	c.used.Store(p.f.since(time.Now()))
	c.mu.Lock()
	c.idle = time.AfterFunc(p.f.cfg.IdleTimeout, c.idleCheck)
	c.mu.Unlock()
	return c
}

// register gives w a request id unique on the connection and makes it the
// one the answer carrying that id goes to. Id 0 is never given: one-way
// requests travel with it, and a member's error frame that could not
// read a request's id says 0.
func (c *conn) register(w *waiter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	for {
		c.next++
		if _, taken := c.waiters[c.next]; c.next != 0 && !taken {
			break
		}
	}
	w.id = c.next
	c.waiters[w.id] = w
	return nil
}

// claim takes the waiter of request id out of the map, nil if none waits
// (it gave up, or the id is not one this connection gave out).
func (c *conn) claim(id uint32) *waiter {
	c.mu.Lock()
	w := c.waiters[id]
	if w != nil {
		delete(c.waiters, id)
	}
	c.mu.Unlock()
	return w
}

// cancel takes w out of the map, for a forward that stops waiting; false
// if the reader or a failure took it first, and will send on w.done.
func (c *conn) cancel(w *waiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiters[w.id] != w {
		return false
	}
	delete(c.waiters, w.id)
	return true
}

// write sends one frame, by deadline. If it cannot — the connection is
// broken, or breaks writing — it returns why the connection broke: the
// waiters, the writer's included, have been failed with that.
func (c *conn) write(b []byte, deadline time.Time) error {
	c.wmu.Lock()
	err := c.writeLocked(b, deadline)
	c.wmu.Unlock()
	if err != nil {
		c.fail(&Error{Addr: c.p.addr, Op: "write", Err: err}) // a frame cut short leaves the stream unreadable
		c.mu.Lock()
		err = c.err
		c.mu.Unlock()
	}
	return err
}

func (c *conn) writeLocked(b []byte, deadline time.Time) error {
	if c.dead.Load() {
		return ErrConnClosed
	}
	// A write blocks only when the member reads no more; the deadline
	// bounds how long the forwards queued behind it on wmu wait too.
	if err := c.nc.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := c.nc.Write(b)
	return err
}

// fail breaks the connection: every waiter fails with err, the stream is
// closed (which ends the reader), and the member's next forward dials.
func (c *conn) fail(err error) {
	c.mu.Lock()
	first := c.failLocked(err)
	c.mu.Unlock()
	if first {
		c.teardown()
	}
}

// failLocked records err, the first time, and fails the waiters; the
// caller holds mu and calls teardown when it returns true.
func (c *conn) failLocked(err error) bool {
	if c.err != nil {
		return false
	}
	c.err = err
	c.dead.Store(true)
	c.f.stats.conns.Add(-1) // before its waiters hear: no longer open to them
	c.idle.Stop()
	for _, w := range c.waiters {
		w.err = err
		w.done <- struct{}{}
	}
	clear(c.waiters)
	return true
}

func (c *conn) teardown() {
	c.nc.Close()
	c.p.drop(c)
}

// idleCheck runs IdleTimeout after the connection was last looked at:
// it closes it if no forward has taken it since and none waits on it,
// and otherwise looks again when it could next be idle long enough.
func (c *conn) idleCheck() {
	timeout := c.f.cfg.IdleTimeout
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if unused := time.Duration(c.f.since(time.Now()) - c.used.Load()); len(c.waiters) > 0 || unused < timeout {
		c.idle.Reset(max(timeout-unused, time.Millisecond))
		c.mu.Unlock()
		return
	}
	// Decided under mu: a forward registering from now on finds the
	// connection broken before it sent anything, and dials again.
	first := c.failLocked(&Error{Addr: c.p.addr, Op: "idle", Err: ErrIdle})
	c.mu.Unlock()
	if first {
		c.teardown()
	}
}

// read is the connection's reader goroutine: it hands each answer to its
// waiter until the stream ends or sends what no member should.
func (c *conn) read() {
	defer c.f.wg.Done()
	fr := wire.NewFrameReader(c.nc, readBuffer)
	for {
		frame, err := fr.Next()
		if err != nil {
			c.fail(c.readError(err))
			return
		}
		if err := c.deliver(frame); err != nil {
			c.fail(&Error{Addr: c.p.addr, Op: "read", Err: err})
			return
		}
	}
}

// readError says why reading failed: a stream that cannot be framed, or
// one that ended (or was closed by this side, which has then failed the
// connection already with its own reason).
func (c *conn) readError(err error) error {
	var fe *wire.FrameError
	if errors.As(err, &fe) {
		err = fmt.Errorf("%w: %w", ErrBadReply, err)
	} else {
		err = fmt.Errorf("%w: %w", ErrConnClosed, err)
	}
	return &Error{Addr: c.p.addr, Op: "read", Err: err}
}

// deliver hands one frame read off the stream to the waiter of its
// request id. A frame this side cannot read an id from breaks the
// connection (an error); an answer nobody waits for — late, or not an
// answer at all — is dropped and counted.
func (c *conn) deliver(frame []byte) error {
	switch {
	case c.f.cfg.Open != nil:
		inner, err := c.f.cfg.Open(frame, c.p.addr)
		if err != nil {
			return fmt.Errorf("%w: %v did not open: %w", ErrBadReply, wire.Type(frame[0]), err)
		}
		if n, err := wire.FrameLen(inner); err != nil || n != len(inner) {
			return fmt.Errorf("%w: what a %v opened to is not one frame", ErrBadReply, wire.Type(frame[0]))
		}
		frame = inner
	case wire.Type(frame[0]) == wire.TypeSealed:
		return fmt.Errorf("%w: a sealed frame, and no key to open it", ErrBadReply)
	}
	if wire.Type(frame[0]) == wire.TypeNamed { // an answer may come addressed as its request was
		inner, ok := wire.NamedInner(frame)
		if !ok {
			return fmt.Errorf("%w: a named frame that wraps no frame", ErrBadReply)
		}
		frame = inner
	}
	t := wire.Type(frame[0])
	if !isAnswer(t) {
		c.f.stats.dropped.Add(1)
		return nil
	}
	if len(frame) < wire.HeaderSize+idSize {
		return fmt.Errorf("%w: %v of %d bytes holds no request id", ErrBadReply, t, len(frame))
	}
	w := c.claim(binary.BigEndian.Uint32(frame[wire.HeaderSize:]))
	if w == nil {
		c.f.stats.dropped.Add(1)
		return nil
	}
	if err := checkAnswer(w.req, frame); err != nil {
		w.err = &Error{Addr: c.p.addr, Op: "reply", Err: err}
	} else {
		w.dst = append(w.dst, frame...) // a copy: the reader reuses its buffer
	}
	w.done <- struct{}{}
	return nil
}
