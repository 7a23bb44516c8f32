package forward

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// peer is what the Forwarder keeps of one member: its connection, the
// dial under way, and the forwards in flight to it.
type peer struct {
	f        *Forwarder
	addr     netip.AddrPort
	inflight atomic.Int64         // forwards admitted and not done: at most MaxInFlight
	cur      atomic.Pointer[conn] // the connection forwards share; nil or dead: dial

	mu      sync.Mutex // guards dialing and the install of cur: one dial at a time
	dialing *dial
}

// dial is a dial under way, which every forward wanting the connection
// waits for; done is closed once c or err is set.
type dial struct {
	done chan struct{}
	c    *conn
	err  error
}

// conn returns the member's connection, dialing it if there is none.
// Forwards that come while a dial is under way wait for it, each until
// its own deadline, and share its result, error included.
func (p *peer) conn(ctx context.Context, w *waiter, deadline time.Time) (*conn, error) {
	if c := p.cur.Load(); c != nil && !c.dead.Load() {
		return c, nil
	}
	p.mu.Lock()
	if c := p.cur.Load(); c != nil && !c.dead.Load() {
		p.mu.Unlock()
		return c, nil
	}
	d := p.dialing
	if d == nil {
		if p.f.closed.Load() { // checked under mu: Close shuts each peer under it
			p.mu.Unlock()
			return nil, &Error{Addr: p.addr, Op: "dial", Err: ErrClosed}
		}
		d = &dial{done: make(chan struct{})}
		p.dialing = d
		p.f.wg.Add(1)
		go p.dial(d, deadline)
	}
	p.mu.Unlock()
	select {
	case <-d.done:
		return d.c, d.err
	case <-w.timer.C:
		return nil, &Error{Addr: p.addr, Op: "dial", Err: ErrTimeout}
	case <-ctx.Done():
		return nil, &Error{Addr: p.addr, Op: "dial", Err: ctx.Err()}
	}
}

// dial opens the connection on a goroutine of its own, so that the
// forward that started it gives up at its deadline as the others do. It
// gives up itself at that deadline, or at Close.
func (p *peer) dial(d *dial, deadline time.Time) {
	f := p.f
	defer f.wg.Done()
	ctx, cancel := context.WithDeadline(f.ctx, deadline)
	nc, err := f.cfg.Dial(ctx, p.addr)
	cancel()
	f.stats.dials.Add(1)
	if err == nil && nc == nil {
		err = errors.New("Dial returned no connection")
	}
	p.mu.Lock()
	p.dialing = nil
	if f.closed.Load() {
		if nc != nil {
			nc.Close()
		}
		err = ErrClosed
	}
	if err != nil {
		d.err = &Error{Addr: p.addr, Op: "dial", Err: err}
	} else {
		d.c = newConn(p, nc)
		p.cur.Store(d.c)
		f.stats.conns.Add(1)
		f.wg.Add(1)
		go d.c.read()
	}
	p.mu.Unlock()
	close(d.done)
	if err != nil {
		f.prune(p)
	}
}

// drop forgets c, which has failed.
func (p *peer) drop(c *conn) {
	p.mu.Lock()
	if p.cur.Load() == c {
		p.cur.Store(nil)
	}
	p.mu.Unlock()
	p.f.prune(p)
}

// shut fails the member's connection, for Close.
func (p *peer) shut() {
	p.mu.Lock()
	c := p.cur.Load()
	p.mu.Unlock()
	if c != nil {
		c.fail(&Error{Addr: p.addr, Op: "wait", Err: ErrClosed})
	}
}

// unused reports whether nothing refers to p but the Forwarder's map:
// no connection, no dial, no forward. The caller holds f.mu, under whose
// read lock forwards are admitted, so that none can be admitted meanwhile.
func (p *peer) unused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur.Load() == nil && p.dialing == nil && p.inflight.Load() == 0
}
