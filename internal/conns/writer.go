package conns

import (
	"net"
	"time"

	"github.com/rmbd/rmbd/internal/bufpool"
)

// WriterBuf is the size of the buffer a Writer borrows while replies wait.
const WriterBuf = 64 << 10

// Writer gathers a connection's replies in a buffer borrowed from a pool
// while there are replies to send, and gives it back when they are sent:
// an idle connection holds no write buffer. A write larger than the
// buffer goes straight out; every write to the connection must finish
// within the timeout, so a client that stops reading its replies holds
// the node's memory and goroutine no longer than that.
type Writer struct {
	c       net.Conn
	mem     *bufpool.Pool
	timeout time.Duration
	buf     []byte // nil when none is borrowed
	err     error
}

// NewWriter returns a Writer to c borrowing from mem.
func NewWriter(c net.Conn, mem *bufpool.Pool, timeout time.Duration) *Writer {
	return &Writer{c: c, mem: mem, timeout: timeout}
}

// Available returns how many bytes Write takes without flushing.
func (w *Writer) Available() int {
	if w.buf == nil {
		return WriterBuf
	}
	return cap(w.buf) - len(w.buf)
}

// Write gathers p, flushing first if it does not fit; with no buffer to
// be had, or a p too large for one, it writes p straight out.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) > w.Available() {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	if w.buf == nil && len(p) < WriterBuf {
		if b, ok := w.mem.Get(WriterBuf); ok {
			w.buf = b
		}
	}
	if w.buf == nil || len(p) > w.Available() {
		return len(p), w.write(p)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// Flush writes what is gathered.
func (w *Writer) Flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	err := w.write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *Writer) write(p []byte) error {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	_, w.err = w.c.Write(p)
	return w.err
}

// Take returns a copy of what is gathered and not yet written, and
// forgets it: the caller writes again what it keeps of it.
func (w *Writer) Take() []byte {
	if len(w.buf) == 0 {
		return nil
	}
	out := append([]byte(nil), w.buf...)
	w.buf = w.buf[:0]
	return out
}

// Release gives the buffer back; what it held is dropped.
func (w *Writer) Release() {
	if w.buf != nil {
		w.mem.Put(w.buf)
		w.buf = nil
	}
}
