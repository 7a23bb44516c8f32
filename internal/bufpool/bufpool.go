// Package bufpool lends byte buffers under a budget: the bytes lent out
// at once never pass a limit, buffers given back are kept for the next
// borrower up to a bound, and what is beyond it goes back to the
// operating system at once. A node's connections borrow their frame
// buffers here, so that what senders make it hold is bounded by the
// budget, not by what their frame headers promise.
//
// Buffers are mapped from the OS (on Unix), outside the garbage-collected
// heap: a burst of them neither grows the heap nor leaves garbage that
// keeps the process large after it. A buffer given back must not be
// touched again: its memory may be unmapped.
package bufpool

import (
	"math/bits"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Sizes: buffers come in powers of two from MinSize to MaxSize; a
// request for more than MaxSize gets exactly what it asks.
const (
	MinSize = 4 << 10
	MaxSize = 1 << 20
)

const classes = 9 // 4 KiB … 1 MiB

// Pool lends buffers. Its zero value is not usable: see New.
type Pool struct {
	limit   int64 // bytes lent at once, at most
	keepMax int64 // bytes kept for reuse, at most

	lent     atomic.Int64 // bytes lent now
	refused  atomic.Uint64
	peak     atomic.Int64
	released atomic.Int64 // bytes dropped since the last hand-back to the OS

	mu     sync.Mutex
	free   [classes + 1][][]byte // by class; the last holds larger buffers
	kept   int64
	mapped map[*byte]bool // every buffer made and not yet unmapped, kept or lent

	lastFree atomic.Int64 // unix nanos of the last hand-back
}

// New returns a pool that lends at most limit bytes at once and keeps at
// most keep bytes of returned buffers for reuse.
func New(limit, keep int64) *Pool {
	return &Pool{limit: limit, keepMax: keep, mapped: map[*byte]bool{}}
}

// class returns the class of a buffer of size bytes and the size it is
// made with.
func class(size int) (int, int) {
	if size <= MinSize {
		return 0, MinSize
	}
	if size > MaxSize {
		return classes, size
	}
	c := bits.Len(uint(size-1)) - bits.Len(MinSize-1)
	return c, MinSize << c
}

// Get lends a buffer of at least size bytes (length 0), or reports false
// when lending it would pass the limit.
func (p *Pool) Get(size int) ([]byte, bool) {
	c, n := class(size)
	lent := p.lent.Add(int64(n))
	if lent > p.limit {
		p.lent.Add(-int64(n))
		p.refused.Add(1)
		return nil, false
	}
	// The peak is what this loan made lent, never more than the limit: a
	// reading of p.lent could hold another's loan about to be refused.
	for {
		peak := p.peak.Load()
		if lent <= peak || p.peak.CompareAndSwap(peak, lent) {
			break
		}
	}
	p.mu.Lock()
	list := p.free[c]
	for i := len(list) - 1; i >= 0; i-- {
		if b := list[i]; cap(b) >= size && (c < classes || cap(b) == n) {
			p.free[c] = append(list[:i], list[i+1:]...)
			p.kept -= int64(cap(b))
			p.mu.Unlock()
			return b[:0], true
		}
	}
	b, err := alloc(n)
	if err != nil {
		p.mu.Unlock()
		p.lent.Add(-int64(n))
		p.refused.Add(1)
		return nil, false
	}
	p.mapped[&b[0]] = true
	p.mu.Unlock()
	return b[:0], true
}

// Put gives back a buffer Get lent. The caller must not touch it again.
// A buffer the pool did not lend is left alone.
func (p *Pool) Put(b []byte) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	n := int64(cap(b))
	c, _ := class(cap(b))
	p.mu.Lock()
	if !p.mapped[&b[0]] {
		p.mu.Unlock()
		return
	}
	p.lent.Add(-n)
	if p.kept+n <= p.keepMax {
		p.free[c] = append(p.free[c], b[:0])
		p.kept += n
		p.mu.Unlock()
		return
	}
	delete(p.mapped, &b[0])
	p.mu.Unlock()
	free(b)
	p.released.Add(n)
}

// Stats is what a pool has done.
type Stats struct {
	Lent, Peak, Kept int64  // bytes lent now, the most ever lent at once, bytes kept for reuse
	Refused          uint64 // requests refused: the limit was reached
}

// Stats returns the pool's figures.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	kept := p.kept
	p.mu.Unlock()
	return Stats{Lent: p.lent.Load(), Peak: p.peak.Load(), Kept: kept, Refused: p.refused.Load()}
}

// Trim hands the heap's free memory back to the operating system when at
// least threshold bytes of buffers have been dropped since it last did,
// and every so often at most: after a burst of connections (whose small
// buffers and goroutines were on the heap), the process shrinks back
// instead of keeping the burst's memory. It reports whether it did.
func (p *Pool) Trim(threshold int64, every time.Duration) bool {
	now := time.Now().UnixNano()
	if p.released.Load() < threshold || now-p.lastFree.Load() < int64(every) {
		return false
	}
	p.released.Store(0)
	p.lastFree.Store(now)
	debug.FreeOSMemory()
	return true
}
