package node

import (
	"net"
	"time"

	"github.com/rmbd/rmbd/internal/bufpool"
)

// connWriter gathers a connection's replies in a buffer borrowed from the
// node's pool while there are replies to send, and gives it back when
// they are sent: an idle connection holds no write buffer. A write larger
// than the buffer goes straight out; every write to the connection must
// finish within timeout, so a client that stops reading its replies
// holds the node's memory and goroutine no longer than that.
type connWriter struct {
	c       net.Conn
	mem     *bufpool.Pool
	timeout time.Duration
	buf     []byte // nil when none is borrowed
	err     error
}

// Available returns how many bytes Write takes without flushing.
func (w *connWriter) Available() int {
	if w.buf == nil {
		return replyBuf
	}
	return cap(w.buf) - len(w.buf)
}

// Write gathers p, flushing first if it does not fit; with no buffer to
// be had, or a p too large for one, it writes p straight out.
func (w *connWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) > w.Available() {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	if w.buf == nil && len(p) < replyBuf {
		if b, ok := w.mem.Get(replyBuf); ok {
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
func (w *connWriter) Flush() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	err := w.write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *connWriter) write(p []byte) error {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	_, w.err = w.c.Write(p)
	return w.err
}

// release gives the buffer back; what it held is dropped.
func (w *connWriter) release() {
	if w.buf != nil {
		w.mem.Put(w.buf)
		w.buf = nil
	}
}

// housekeep runs the node's periodic chores until it stops: datagram
// blocks whose sources stopped are lifted (shed.go), and after a burst of
// connections holding buffers the memory they held goes back to the
// operating system — if at least trimAfter bytes of buffers were dropped
// since it last did, and at most every trimEvery.
func (n *Node) housekeep() {
	t := time.NewTicker(housekeepEvery)
	defer t.Stop()
	var expired time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			for i, s := range n.shed {
				s.review(n, i, now)
			}
			n.bufs.Trim(trimAfter, trimEvery)
			if now.Sub(expired) >= expireEvery {
				n.expireTombstones(now)
				expired = now
			}
		}
	}
}

// expireTombstones forgets dropped filters' tombstones past
// --tombstone-ttl (keeping each name's dropped generation).
func (n *Node) expireTombstones(now time.Time) {
	nm := n.named
	nm.mu.Lock()
	defer nm.mu.Unlock()
	before := nm.cat.Tombstones()
	nm.cat.Expire(now)
	if gone := before - nm.cat.Tombstones(); gone > 0 {
		n.saveCatalog()
		n.log.Debug("tombstones expired", "tombstones", gone)
	}
}

const (
	housekeepEvery = 250 * time.Millisecond
	trimAfter      = 8 << 20
	trimEvery      = 2 * time.Second
	expireEvery    = time.Minute
)
