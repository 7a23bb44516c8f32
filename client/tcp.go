package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/rmbd/rmbd/wire"
)

// tcpTransport pipelines requests on one connection: replies come back in
// request order, so a queue pairs them. A broken connection fails what is
// queued and is dialled again by the next call.
type tcpTransport struct {
	addr string
	mu   sync.Mutex // guards c and done, and orders queueing with writing
	c    *tcpConn
	done bool
	wg   sync.WaitGroup // readers
}

// tcpConn is one connection and the requests awaiting replies on it.
type tcpConn struct {
	conn  net.Conn
	bw    *bufio.Writer
	queue chan *request
	quit  chan struct{} // closed by close()
}

// maxQueued bounds requests in flight on one connection.
const maxQueued = 4096

func dialTCP(ctx context.Context, addr string) (*tcpTransport, error) {
	t := &tcpTransport{addr: addr}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.connect(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// connect dials; t.mu is held.
func (t *tcpTransport) connect(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		if ctx.Err() != nil {
			return ctxErr(ctx)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && !op.Timeout() {
			return errors.Join(ErrUnreachable, err)
		}
		return err
	}
	c := &tcpConn{conn: conn, bw: bufio.NewWriterSize(conn, 64<<10),
		queue: make(chan *request, maxQueued), quit: make(chan struct{})}
	t.c = c
	t.wg.Add(1)
	go t.read(c)
	return nil
}

// read pairs each reply on c with the oldest queued request.
func (t *tcpTransport) read(c *tcpConn) {
	defer t.wg.Done()
	fr := wire.NewFrameReader(c.conn, 64<<10)
	// fail forgets c before failing anything, so that a retry dials anew.
	fail := func(current *request, err error) {
		c.conn.Close()
		t.mu.Lock()
		if t.c == c {
			t.c = nil
		}
		if t.done {
			err = ErrClosed
		}
		t.mu.Unlock()
		if current != nil {
			current.reply <- reply{err: err}
		}
		for { // nobody queues on c any more: fail what is there
			select {
			case r := <-c.queue:
				r.reply <- reply{err: err}
			default:
				return
			}
		}
	}
	for {
		var r *request
		select {
		case r = <-c.queue:
		case <-c.quit:
			fail(nil, ErrClosed)
			return
		}
		frame, err := readReply(fr, r.match.classic)
		if err != nil {
			fail(r, err)
			return
		}
		var rerr error
		if !r.match.classic && wire.Type(frame[0]) == wire.TypeError {
			if e, err := wire.DecodeError(frame); err == nil {
				rerr = &ServerError{Code: e.Code, Msg: string(e.Msg)}
			}
		}
		r.reply <- reply{frame: frame, err: rerr}
	}
}

// readReply reads one reply and copies it: it goes to another goroutine.
func readReply(fr *wire.FrameReader, classic bool) ([]byte, error) {
	if classic {
		b, err := fr.Fixed(wire.ClassicHasReplySize)
		return bytes.Clone(b), err
	}
	b, err := fr.Next()
	if err != nil {
		var fe *wire.FrameError
		if errors.As(err, &fe) {
			return nil, errors.Join(ErrProtocol, err)
		}
		return nil, err
	}
	if !wire.Type(b[0]).Extended() {
		return nil, fmt.Errorf("%w: a %v frame", ErrProtocol, wire.Type(b[0]))
	}
	return bytes.Clone(b), nil
}

// write queues r (if not nil) and writes frame, dialling first if needed.
func (t *tcpTransport) write(ctx context.Context, r *request, frame []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return ErrClosed
	}
	if t.c == nil {
		if err := t.connect(ctx); err != nil {
			return err
		}
	}
	c := t.c
	if r != nil {
		c.queue <- r // blocks only with maxQueued in flight; the reader drains it
	}
	_, err := c.bw.Write(frame)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.conn.Close() // the reader fails the queue
		if r != nil {
			return nil // r gets the reader's error
		}
	}
	return err
}

// roundTrip sends r and waits for its reply. If the connection breaks
// first — typically a connection the node closed while idle, found out
// only by using it — r is sent once more on a new one: every request is
// idempotent.
func (t *tcpTransport) roundTrip(ctx context.Context, r *request) ([]byte, error) {
	for try := 0; ; try++ {
		frame, err := t.once(ctx, r)
		var se *ServerError
		if err == nil || try > 0 || ctx.Err() != nil || errors.Is(err, ErrClosed) || errors.As(err, &se) {
			return frame, err
		}
		r.reply = make(chan reply, 1)
	}
}

func (t *tcpTransport) once(ctx context.Context, r *request) ([]byte, error) {
	if err := t.write(ctx, r, r.frame); err != nil {
		return nil, err
	}
	select {
	case rep := <-r.reply:
		return rep.frame, rep.err
	case <-ctx.Done():
		return nil, ctxErr(ctx) // the reply, when it comes, is dropped
	}
}

func (t *tcpTransport) send(ctx context.Context, frame []byte) error {
	return t.write(ctx, nil, frame)
}

func (t *tcpTransport) close() error {
	t.mu.Lock()
	t.done = true
	var err error
	if t.c != nil {
		close(t.c.quit)
		if err = t.c.conn.Close(); errors.Is(err, net.ErrClosed) {
			err = nil // the reader got there first
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}
