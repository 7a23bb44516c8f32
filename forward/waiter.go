package forward

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// maxPooledBuffer bounds the write buffers a pooled waiter keeps: a rare
// large frame does not pin its memory in the pool.
const maxPooledBuffer = 64 << 10

// waiter is one forward in flight: the frame it sends, and where its
// answer goes. Waiters are pooled with their channel, timer and buffers,
// so that a forward on an open connection allocates nothing.
//
// A waiter registered on a connection belongs to whoever takes it out of
// the connection's map (conn.claim, conn.fail, conn.cancel): the reader
// or a failing connection fills in dst or err and then sends once on
// done; the forward reads them only after receiving.
type waiter struct {
	req    request
	id     uint32 // the request id the member sees: unique on the connection
	idAt   int    // where the id is in buf
	buf    []byte // the frame to send, named-wrapped, before sealing
	sealed []byte // buf sealed, when the Forwarder seals
	dst    []byte // the caller's dst, which the answer is appended to
	err    error
	done   chan struct{} // one send per registration; capacity 1, so senders never block
	timer  *time.Timer   // the forward's deadline, from dial to answer
}

func newWaiter() *waiter {
	t := time.NewTimer(math.MaxInt64)
	t.Stop()
	return &waiter{done: make(chan struct{}, 1), timer: t}
}

// encode lays out the frame to send: req, addressed to the filter name
// unless name is "", its request id to be set by setID.
func (w *waiter) encode(name string, req []byte) error {
	if name == "" {
		w.buf = append(w.buf[:0], req...)
		w.idAt = wire.HeaderSize
		return nil
	}
	b, err := wire.AppendNamed(w.buf[:0], name, req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRequest, err)
	}
	w.buf, w.idAt = b, len(b)-len(req)+wire.HeaderSize
	return nil
}

// setID writes the id the member sees into the frame.
func (w *waiter) setID(id uint32) { binary.BigEndian.PutUint32(w.buf[w.idAt:], id) }

// reset readies w for the pool: it keeps nothing of the caller's.
func (w *waiter) reset() {
	w.timer.Stop() // since Go 1.23 no stale tick is left behind to be read later
	w.dst, w.err, w.req, w.id = nil, nil, request{}, 0
	if cap(w.buf) > maxPooledBuffer {
		w.buf = nil
	}
	if cap(w.sealed) > maxPooledBuffer {
		w.sealed = nil
	}
}
