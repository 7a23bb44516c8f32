package respserver

import (
	"container/list"
	"context"
	"net/netip"
	"sync"
	"time"
)

// Password guessing. With --resp-password-file a wrong AUTH (or HELLO
// AUTH) costs the guesser, not the node:
//
//   - a connection is closed after AuthLimits.PerConn wrong passwords (the
//     last answered first), so pipelining guesses gains nothing;
//   - a source address (an IPv6 one by its /64: one host holds the whole
//     /64) that has failed AuthLimits.Free times has each further attempt
//     wait, Base after its Free-th failure and doubling with each one up
//     to Cap. The attempts of one source are spaced, not each delayed: one
//     checked at t makes the next wait until t plus the delay, however
//     many connections the source opens, and an attempt that would wait
//     longer than Cap is refused at once (ERR ... try again later) and its
//     connection closed. A source is forgotten once it has failed nothing
//     for Forget; at most Sources are remembered, the one active least
//     recently making room for a new one.
//
// The wait is the attempting connection's goroutine asleep, at most Cap
// and ended by shutdown: no other connection waits, and a source holds no
// more than its connections (--max-conns-per-source) asleep. A right
// password is checked after the same wait as a wrong one, so that the
// wait says nothing of the guess.

// AuthLimits bound password guessing over RESP.
type AuthLimits struct {
	// PerConn is how many wrong passwords a connection may give before it
	// is closed.
	PerConn int
	// Free is how many wrong passwords a source may give before its
	// attempts wait.
	Free int
	// Base is the wait after the Free-th failure; each further one doubles
	// it, up to Cap.
	Base, Cap time.Duration
	// Forget is how long a source must fail nothing to be forgotten.
	Forget time.Duration
	// Sources bounds the sources remembered.
	Sources int
}

// DefaultAuthLimits: 3 wrong passwords per connection; per source 3 free,
// then waits from 100 ms doubling to 5 s, forgotten after a quiet minute;
// 4,096 sources remembered (under a megabyte).
func DefaultAuthLimits() AuthLimits {
	return AuthLimits{PerConn: 3, Free: 3, Base: 100 * time.Millisecond, Cap: 5 * time.Second,
		Forget: time.Minute, Sources: 4096}
}

// withDefaults fills zero fields with DefaultAuthLimits'.
func (l AuthLimits) withDefaults() AuthLimits {
	d := DefaultAuthLimits()
	if l.PerConn <= 0 {
		l.PerConn = d.PerConn
	}
	if l.Free <= 0 {
		l.Free = d.Free
	}
	if l.Base <= 0 {
		l.Base = d.Base
	}
	if l.Cap <= 0 {
		l.Cap = d.Cap
	}
	if l.Forget <= 0 {
		l.Forget = d.Forget
	}
	if l.Sources <= 0 {
		l.Sources = d.Sources
	}
	return l
}

// authThrottle is the table of sources that gave wrong passwords. It is
// safe for concurrent use; its lock is held for table updates only, never
// while a connection waits.
type authThrottle struct {
	lim   AuthLimits
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool // false: ctx ended first

	mu    sync.Mutex
	bySrc map[netip.Prefix]*list.Element // of *authSource
	order *list.List                     // active most recently first
}

// authSource is what the throttle knows of one source.
type authSource struct {
	src     netip.Prefix
	fails   int
	pending int       // attempts admitted and not yet done: they count as failures until then
	next    time.Time // its next attempt is checked no earlier
	last    time.Time // its last attempt or failure
}

func newAuthThrottle(lim AuthLimits) *authThrottle {
	return &authThrottle{lim: lim.withDefaults(), now: time.Now, sleep: sleepCtx,
		bySrc: map[netip.Prefix]*list.Element{}, order: list.New()}
}

// sleepCtx sleeps for d, or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sourceOf is the prefix a throttle counts a client address under.
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// admit returns how long an attempt from a must wait before its password
// is checked, or false when it would wait longer than Cap: refused. An
// attempt admitted is to be done. Attempts in flight count as failures
// (a source's free attempts are not to be had by trying them at once on
// many connections), and each one after the free ones takes a turn: the
// one after it is checked a delay later.
func (t *authThrottle) admit(a netip.Addr) (time.Duration, bool) {
	now := t.now()
	src := sourceOf(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.find(src, now)
	if e == nil {
		e = t.insert(src)
	}
	t.order.MoveToFront(t.bySrc[src])
	e.last = now
	tried := e.fails + e.pending
	if tried < t.lim.Free {
		e.pending++
		return 0, true
	}
	start := e.next
	if start.Before(now) {
		start = now
	}
	wait := start.Sub(now)
	if wait > t.lim.Cap {
		return 0, false
	}
	e.pending++
	e.next = start.Add(t.delay(tried))
	return wait, true
}

// done records the end of an attempt admit admitted: failed, a wrong
// password; not, a right one, or none checked.
func (t *authThrottle) done(a netip.Addr, failed bool) {
	now := t.now()
	src := sourceOf(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.find(src, now)
	if e == nil { // made room for others meanwhile
		if !failed {
			return
		}
		e = t.insert(src)
	} else if e.pending > 0 {
		e.pending--
	}
	if !failed {
		return
	}
	e.fails++
	e.last = now
	if e.fails >= t.lim.Free {
		if next := now.Add(t.delay(e.fails)); next.After(e.next) {
			e.next = next
		}
	}
	t.order.MoveToFront(t.bySrc[src])
}

// delay is the wait after a source's fails-th failure (fails ≥ Free).
func (t *authThrottle) delay(fails int) time.Duration {
	d := t.lim.Base
	for i := t.lim.Free; i < fails && d < t.lim.Cap; i++ {
		d *= 2
	}
	return min(d, t.lim.Cap)
}

// find returns src's entry, forgetting it (nil) once it has been quiet
// for Forget; callers hold mu.
func (t *authThrottle) find(src netip.Prefix, now time.Time) *authSource {
	el := t.bySrc[src]
	if el == nil {
		return nil
	}
	e := el.Value.(*authSource)
	if e.pending == 0 && now.Sub(e.last) >= t.lim.Forget && !now.Before(e.next) {
		t.order.Remove(el)
		delete(t.bySrc, src)
		return nil
	}
	return e
}

// insert adds src, making room by forgetting the source active least
// recently; callers hold mu.
func (t *authThrottle) insert(src netip.Prefix) *authSource {
	if len(t.bySrc) >= t.lim.Sources {
		oldest := t.order.Back()
		t.order.Remove(oldest)
		delete(t.bySrc, oldest.Value.(*authSource).src)
	}
	e := &authSource{src: src}
	t.bySrc[src] = t.order.PushFront(e)
	return e
}

// sources returns how many sources the throttle remembers.
func (t *authThrottle) sources() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.bySrc)
}
