package store

import (
	"context"

	"github.com/rmbd/rmbd/filter"
	bug "github.com/rmbd/rmbd/internal/mutate"
)

// Adds. A local add is logged before it is applied: the keys not yet in
// the filter are appended to the log, inside the store's add barrier (so
// that a checkpoint never copies rows whose records it then deletes), and
// only then set in the filter. A key already present is not logged: its
// bits are on disk through an earlier record or a checkpoint, or came from
// a peer. What an acknowledgement must wait for is returned as a Wait.
// The caller says whether it acknowledges the adds (Add) or not
// (AddUnacked): only the first are refused while the disk fails.

// Scratch is the memory one adder (a goroutine serving requests) reuses
// from add to add. The zero value is ready; it holds nothing between
// calls that the caller must keep.
type Scratch struct {
	hashes, missing []uint64
	keys            [][]byte
}

// Wait is what an acknowledgement of adds waits for: a position in a
// filter's log, and maybe, before it, a Wait of another log (After). The
// zero Wait waits for nothing.
type Wait struct {
	l    *Log
	pos  uint64
	prev *Wait
}

// After returns a Wait for both prev and w: a batch whose adds went to
// two stores (a growing filter's stages) is on disk once both are.
func (w Wait) After(prev Wait) Wait {
	switch {
	case prev.l == nil && prev.prev == nil:
		return w
	case w.l == nil && w.prev == nil:
		return prev
	case prev.l == w.l && prev.prev == nil:
		w.pos = max(w.pos, prev.pos)
		return w
	}
	w.prev = &prev
	return w
}

// Synced reports whether the adds are on disk already (or need not be).
func (w Wait) Synced() bool {
	return (w.prev == nil || w.prev.Synced()) && (w.l == nil || w.l.Synced() >= w.pos)
}

// Wait blocks until the adds are on disk, a log fails or ctx ends.
func (w Wait) Wait(ctx context.Context) error {
	if w.prev != nil {
		if err := w.prev.Wait(ctx); err != nil {
			return err
		}
	}
	if w.l == nil {
		return nil
	}
	return w.l.WaitSynced(ctx, w.pos)
}

// Then calls fn, on a log's writer, once the adds are on disk (at once
// if they are), or with the error a log failed on. fn must not block.
func (w Wait) Then(fn func(error)) {
	if w.prev != nil {
		own := w
		own.prev = nil
		w.prev.Then(func(err error) {
			if err != nil {
				fn(err)
				return
			}
			own.Then(fn)
		})
		return
	}
	if w.l == nil {
		fn(nil)
		return
	}
	w.l.AfterSynced(w.pos, fn)
}

// Add adds keys the caller acknowledges as kept: to the store's filter,
// logging those that change it first. It sets bit i of bits (which must
// hold a bit per key, zeroed) for each key that changed the filter, a
// test-and-set, and returns how many did and, under FsyncAlways, what the
// acknowledgement waits for: the log's end as it is after the add, which
// covers the records of any concurrent add whose bits this one found set.
// While the store cannot write its data directory the add is refused
// before it is applied, with the error Health returns (ErrUnwritable); a
// failure after it was applied comes through the Wait. keys may be slices
// of a frame about to be reused: sc keeps no reference to them.
func (s *Store) Add(keys [][]byte, bits []byte, sc *Scratch) (int, Wait, error) {
	if e := s.l.failure.Load(); e != nil {
		return 0, Wait{}, *e
	}
	fresh := s.add(keys, bits, sc)
	if s.l.Policy() != FsyncAlways || bug.AckUnsynced {
		return fresh, Wait{}, nil
	}
	return fresh, Wait{l: s.l, pos: s.l.End()}, nil
}

// AddUnacked is Add for keys nobody is told were kept. It is never
// refused: while the store cannot write its data directory the keys are
// applied in memory, and the checkpoint that ends the failure writes them.
func (s *Store) AddUnacked(keys [][]byte, bits []byte, sc *Scratch) int {
	return s.add(keys, bits, sc)
}

// add logs and applies keys inside the add barrier.
func (s *Store) add(keys [][]byte, bits []byte, sc *Scratch) int {
	s.adds.RLock()
	defer s.adds.RUnlock()
	if s.f.Fingerprint().Layout == filter.Classic {
		return s.addKeys(keys, bits, sc)
	}
	return s.addHashes(keys, bits, sc)
}

// addHashes is Add for the blocked layout: each key is hashed once, and
// its hash is its log record.
func (s *Store) addHashes(keys [][]byte, bits []byte, sc *Scratch) int {
	f := s.f
	hs, missing := sc.hashes[:0], sc.missing[:0]
	for _, key := range keys {
		h := f.KeyHash(key)
		hs = append(hs, h)
		if !f.HasHash(h) {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		s.l.AppendHashes(missing)
	}
	fresh := 0
	for i, h := range hs {
		if f.AddHash(h) {
			bits[i/8] |= 1 << (i % 8)
			fresh++
		}
	}
	sc.hashes, sc.missing = hs, missing
	return fresh
}

// addKeys is Add for the classic layout, which places keys by their
// bytes: the keys are logged.
func (s *Store) addKeys(keys [][]byte, bits []byte, sc *Scratch) int {
	f := s.f
	missing := sc.keys[:0]
	for _, key := range keys {
		if !f.Has(key) {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		s.l.AppendKeys(missing)
	}
	fresh := 0
	for i, key := range keys {
		if f.Add(key) {
			bits[i/8] |= 1 << (i % 8)
			fresh++
		}
	}
	clear(missing) // slices of the caller's frame
	sc.keys = missing[:0]
	return fresh
}

// Waits gathers, per log, the furthest position replies in hand wait
// for: pipelined requests may add to several filters, each with its own
// log. The zero value is ready.
type Waits []Wait

// Add makes the replies wait for w too.
func (ws *Waits) Add(w Wait) {
	if w.prev != nil {
		ws.Add(*w.prev)
		w.prev = nil
	}
	if w.l == nil || w.pos == 0 {
		return
	}
	for i := range *ws {
		if (*ws)[i].l == w.l {
			(*ws)[i].pos = max((*ws)[i].pos, w.pos)
			return
		}
	}
	*ws = append(*ws, w)
}

// Wait waits until every log is synced up to its position, and forgets
// them. It is not bounded by a context: at shutdown the replies of adds
// in hand still go out once the log has them, which takes one fsync (or
// the log fails, and says so).
func (ws *Waits) Wait() error {
	var first error
	for _, w := range *ws {
		if err := w.Wait(context.Background()); err != nil && first == nil {
			first = err
		}
	}
	clear(*ws)
	*ws = (*ws)[:0]
	return first
}

// Len returns how many logs the replies wait for.
func (ws Waits) Len() int { return len(ws) }
