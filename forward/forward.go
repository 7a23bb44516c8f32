package forward

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// Forwarder forwards requests to cluster members over one multiplexed
// connection per member. It is safe for concurrent use.
type Forwarder struct {
	cfg    Config
	epoch  time.Time          // connections' use times count from it (monotonic)
	ctx    context.Context    // ends at Close: aborts dials under way
	cancel context.CancelFunc //
	closed atomic.Bool
	once   sync.Once      // Close
	wg     sync.WaitGroup // dial and reader goroutines, which Close waits for
	pool   sync.Pool      // *waiter

	// mu guards peers. Forwards are admitted under its read lock, and a
	// peer is removed under its write lock once unused, so that no forward
	// is ever admitted to a peer that was removed.
	mu    sync.RWMutex
	peers map[netip.AddrPort]*peer

	stats struct {
		done, failed, busy, timeouts, dropped, dials atomic.Uint64
		conns                                        atomic.Int64
	}
}

// Stats counts what a Forwarder did, for metrics.
type Stats struct {
	Done     uint64 // forwards answered (an error frame relayed is an answer)
	Failed   uint64 // forwards that returned an error, Busy and Timeouts included
	Busy     uint64 // forwards refused for MaxInFlight
	Timeouts uint64 // forwards that ran out of time, dialing or waiting
	Dropped  uint64 // frames members sent that nobody waited for: late answers, unknown ids, frames that answer nothing
	Dials    uint64 // connections dialed, whether they opened or not
	InFlight int    // forwards under way now
	Conns    int    // connections open now
}

// New returns a Forwarder; zero fields of cfg take their defaults.
func New(cfg Config) *Forwarder {
	f := &Forwarder{cfg: cfg.withDefaults(), epoch: time.Now(), peers: make(map[netip.AddrPort]*peer)}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.pool.New = func() any { return newWaiter() }
	return f
}

// Do forwards req — an extended request frame (its request id at
// wire.HeaderSize), addressed to the filter name (wrapped with
// wire.AppendNamed by Do; name "" sends it as is) — to the member at
// addr, and appends the member's answer (a result or error frame, with
// req's own request id put back) to dst.
//
// The member sees a request id of the connection's choosing, so that
// forwards from many clients, whose ids may collide, share the
// connection. An answer is checked before it is relayed: it decodes and
// answers req (a result of as many keys, or an error frame); a named
// answer is relayed unwrapped.
//
// An add batch without wire.FlagAck is one-way, as it is to a member: Do
// returns dst unchanged once it is written, and an error frame refusing
// it is dropped.
//
// Errors are *Error, naming the member and the step that failed; they
// wrap ErrBusy, ErrClosed, ErrTimeout, ErrConnClosed, ErrBadReply,
// ErrRequest, the context's error or the dial's. The forward takes at
// most Timeout, or until ctx's deadline if earlier.
func (f *Forwarder) Do(ctx context.Context, addr netip.AddrPort, name string, req, dst []byte) ([]byte, error) {
	r, err := parseRequest(req)
	if err != nil {
		return dst, f.failed(&Error{Addr: addr, Op: "request", Err: err})
	}
	if err := ctx.Err(); err != nil { // nothing is sent for a caller gone
		return dst, f.failed(&Error{Addr: addr, Op: "admit", Err: err})
	}
	p, err := f.admit(addr)
	if err != nil {
		return dst, f.failed(err)
	}
	defer f.release(p)
	w := f.pool.Get().(*waiter)
	defer f.putWaiter(w)
	w.req = r
	if err := w.encode(name, req); err != nil {
		return dst, f.failed(&Error{Addr: addr, Op: "request", Err: err})
	}
	now := time.Now()
	deadline := now.Add(f.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	w.timer.Reset(deadline.Sub(now))
	start := len(dst)
	w.dst = dst
	if err := f.forward(ctx, p, w, now, deadline); err != nil {
		return dst, f.failed(err)
	}
	dst = w.dst
	if len(dst) > start { // an answer (one-way requests have none): its id is the caller's again
		binary.BigEndian.PutUint32(dst[start+wire.HeaderSize:], r.id)
	}
	f.stats.done.Add(1)
	return dst, nil
}

// forward sends w's frame on the member's connection and waits for the
// answer.
func (f *Forwarder) forward(ctx context.Context, p *peer, w *waiter, now time.Time, deadline time.Time) error {
	var c *conn
	for try := 0; ; try++ {
		var err error
		if c, err = p.conn(ctx, w, deadline); err != nil {
			return err
		}
		if used := f.since(now); used-c.used.Load() > int64(time.Millisecond) { // a shared write spared most of the time
			c.used.Store(used)
		}
		if w.req.oneWay {
			w.id = 0 // no waiter has it: an error frame refusing the add is dropped
			break
		}
		if err = c.register(w); err == nil {
			break
		}
		// The connection broke before anything was sent (the member
		// hung up an idle stream, or it idled out here): once more, on a
		// new one.
		if try > 0 || f.closed.Load() {
			return err
		}
	}
	w.setID(w.id)
	frame := w.buf
	if f.cfg.Seal != nil {
		w.sealed = f.cfg.Seal(w.sealed[:0], w.buf, p.addr)
		frame = w.sealed
	}
	err := c.write(frame, deadline) // on failure, w has failed too
	if w.req.oneWay {
		return err
	}
	return f.wait(ctx, c, w)
}

// wait waits for w's answer, its deadline, or ctx. A forward that stops
// waiting takes its waiter out of the map, and an answer coming later is
// dropped; if the reader took the waiter first, its answer is on the way
// and is the forward's after all.
func (f *Forwarder) wait(ctx context.Context, c *conn, w *waiter) error {
	var why error
	select {
	case <-w.done:
		return w.err
	case <-w.timer.C:
		why = ErrTimeout
	case <-ctx.Done():
		why = ctx.Err()
	}
	if c.cancel(w) {
		return &Error{Addr: c.p.addr, Op: "wait", Err: why}
	}
	<-w.done
	return w.err
}

// admit counts a forward in flight to the member at addr, refusing it
// past MaxInFlight.
func (f *Forwarder) admit(addr netip.AddrPort) (*peer, error) {
	if f.closed.Load() {
		return nil, &Error{Addr: addr, Op: "admit", Err: ErrClosed}
	}
	var n int64
	f.mu.RLock()
	p := f.peers[addr]
	if p != nil {
		n = p.inflight.Add(1)
	}
	f.mu.RUnlock()
	if p == nil {
		f.mu.Lock()
		if p = f.peers[addr]; p == nil {
			p = &peer{f: f, addr: addr}
			f.peers[addr] = p
		}
		n = p.inflight.Add(1)
		f.mu.Unlock()
	}
	if n > int64(f.cfg.MaxInFlight) {
		f.release(p)
		f.stats.busy.Add(1)
		return nil, &Error{Addr: addr, Op: "admit", Err: ErrBusy}
	}
	return p, nil
}

// release counts a forward to p done, and forgets p once nothing refers
// to it: members that left cost nothing.
func (f *Forwarder) release(p *peer) {
	if p.inflight.Add(-1) == 0 && p.cur.Load() == nil {
		f.prune(p)
	}
}

// prune removes p from the map if it is unused.
func (f *Forwarder) prune(p *peer) {
	f.mu.Lock()
	if f.peers[p.addr] == p && p.unused() {
		delete(f.peers, p.addr)
	}
	f.mu.Unlock()
}

func (f *Forwarder) putWaiter(w *waiter) {
	w.reset()
	f.pool.Put(w)
}

// failed counts a failed forward and returns its error.
func (f *Forwarder) failed(err error) error {
	f.stats.failed.Add(1)
	if e, ok := err.(*Error); ok && e.Timeout() {
		f.stats.timeouts.Add(1)
	}
	return err
}

// since returns t as the ns since f.epoch, monotonic.
func (f *Forwarder) since(t time.Time) int64 { return int64(t.Sub(f.epoch)) }

// Close closes every connection; Do fails afterwards (ErrClosed), and
// forwards in flight fail at once. It returns once the Forwarder's
// goroutines have ended.
func (f *Forwarder) Close() error {
	f.once.Do(func() {
		f.closed.Store(true)
		f.cancel()
		f.mu.RLock()
		peers := make([]*peer, 0, len(f.peers))
		for _, p := range f.peers {
			peers = append(peers, p)
		}
		f.mu.RUnlock()
		for _, p := range peers {
			p.shut()
		}
		f.wg.Wait()
	})
	return nil
}

// Stats returns the Forwarder's counters.
func (f *Forwarder) Stats() Stats {
	s := Stats{
		Done: f.stats.done.Load(), Failed: f.stats.failed.Load(), Busy: f.stats.busy.Load(),
		Timeouts: f.stats.timeouts.Load(), Dropped: f.stats.dropped.Load(), Dials: f.stats.dials.Load(),
		Conns: int(f.stats.conns.Load()),
	}
	f.mu.RLock()
	for _, p := range f.peers {
		s.InFlight += int(p.inflight.Load())
	}
	f.mu.RUnlock()
	return s
}
