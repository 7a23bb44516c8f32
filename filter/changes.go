package filter

import (
	"iter"
	"math/bits"
	"sync/atomic"
)

// Change tracking for delta sync.
//
// Each generation is a stamp: Advance, called by the replication driver
// once per round, opens a new one and stamps with it every row changed
// since the one before. ChangedRuns(s) then lists the rows stamped after
// s, visiting only blocks of 64 rows whose stamp moved, never every row.
//
// Stamps cost under 1 % of the filter: not a generation per row (8 bytes
// for 64), but one per block of 64 rows — the generation of its last
// change — and 4 bits per row, its mark:
//
//   - dirty: changed since the last Advance, not yet stamped; "dirty,
//     originated" when the change was this node's own (origin.go);
//   - an age, 1 to maxAge: stamped at the block's stamp minus (age − 1);
//   - old: stamped at the block's stamp minus maxAge or earlier, or never.
//
// When Advance stamps a block, every other row of the block ages by the
// generations that passed. A row is thus known exactly while it is less
// than maxAge generations older than its block's last change; past that,
// ChangedRuns(s) lists it (if it has a bit set) whenever s is not known
// to be later: a peer that lags that far behind a busy block gets a few
// rows again, never one too few.
//
// Writers (Add, MergeRows) mark the row dirty after flipping one of its
// bits, then set their block's dirty bit. Why this cannot lose a change:
// Advance swaps the dirty bits out before it stamps the rows marked dirty,
// and the caller copies rows after Advance. A bit set before a row's mark
// is stamped is visible to the copy; a bit set after it marks the row
// again and leaves its block dirty for the next generation. A writer that
// finds the row already marked relies on the writer that marked it, which
// sets the block's dirty bit after marking.

// Run is a run of consecutive rows.
type Run struct {
	First uint64
	Count uint64
}

// Marks, 4 bits a row, 16 to a word. Zeroed memory is "old": an empty
// filter costs no pages of marks until its rows change.
const (
	markOld         = 0
	maxAge          = 13 // ages 1..maxAge are kept as 14 − age
	markDirty       = 14
	markOriginDirty = 15
	// ageSpan is how many generations before its block's stamp a row's
	// stamp is known exactly.
	ageSpan = maxAge - 1
)

// newMarks returns the marks of rows rows, all old.
func newMarks(rows uint64) []uint64 { return make([]uint64, (rows+15)/16) }

// mark returns row r's mark.
func (f *Filter) mark(r uint64) uint64 {
	return atomic.LoadUint64(&f.marks[r/16]) >> (r % 16 * 4) & 15
}

// markChanged marks row changed since the last Advance — originated here
// when origin is true — then sets its block's dirty bit.
func (f *Filter) markChanged(row uint64, origin bool) {
	f.markRows(row/16, 1<<(row%16), origin)
}

// markRows is markChanged for the rows of marks word i whose bits are set
// in rows (bit j: row 16i + j): one read-modify-write of the word for up
// to 16 rows, so that a bulk merge pays one per 1 KiB, not one per row.
func (f *Filter) markRows(i uint64, rows uint16, origin bool) {
	w := &f.marks[i]
	if origin {
		var m uint64
		for b := rows; b != 0; b &= b - 1 {
			m |= markOriginDirty << (bits.TrailingZeros16(b) * 4)
		}
		if atomic.LoadUint64(w)&m != m {
			atomic.OrUint64(w, m)
		}
	} else {
		for {
			old := atomic.LoadUint64(w)
			nw := old
			for b := rows; b != 0; b &= b - 1 {
				shift := bits.TrailingZeros16(b) * 4
				if nw>>shift&15 < markDirty { // old or aged: dirty now
					nw = nw&^(15<<shift) | markDirty<<shift
				}
			}
			if nw == old || atomic.CompareAndSwapUint64(w, old, nw) {
				break
			}
		}
	}
	d, m := &f.dirty[i/256], uint64(1)<<(i/4%64)
	if atomic.LoadUint64(d)&m == 0 {
		atomic.OrUint64(d, m)
	}
}

// TrackingBytes returns the memory change tracking takes: marks, dirty
// bits and block stamps (the origin log, bounded apart, not counted).
func (f *Filter) TrackingBytes() uint64 {
	return 8 * uint64(len(f.marks)+len(f.dirty)+len(f.blockStamps))
}

// noteLoaded records rows set without being marked (LoadRows, Adopt):
// the filter changed though no generation stamped it, and LastChanged,
// at least 1 from now on, tells it from a filter never written.
// ChangedRuns(0) finds such rows.
func (f *Filter) noteLoaded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen = max(f.gen, 1)
	f.lastChanged = max(f.lastChanged, 1)
}

// Generation returns the current generation: the stamp Advance last gave.
func (f *Filter) Generation() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

// LastChanged returns the generation of the latest change: a peer that
// has every row as of this generation has everything.
func (f *Filter) LastChanged() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastChanged
}

// Advance opens a new generation and returns it. Every row changed since the
// previous Advance now carries this stamp. Copy rows after calling Advance,
// never before, so that the copy holds every change the stamp covers.
func (f *Filter) Advance() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	var origins []uint32
	for i := range f.dirty {
		if atomic.LoadUint64(&f.dirty[i]) == 0 {
			continue
		}
		d := atomic.SwapUint64(&f.dirty[i], 0)
		for d != 0 {
			b := uint64(i)*64 + uint64(bits.TrailingZeros64(d))
			d &= d - 1
			var stamped bool
			if origins, stamped = f.stampBlock(b, origins); stamped {
				f.lastChanged = f.gen
			}
		}
	}
	f.originLog.add(f.gen, origins)
	return f.gen
}

// stampBlock stamps with the current generation the rows of block b
// marked dirty and ages the others; it appends to origins the rows
// originated here, and reports whether any row was dirty.
func (f *Filter) stampBlock(b uint64, origins []uint32) ([]uint32, bool) {
	words := f.marks[b*4 : min(b*4+4, uint64(len(f.marks)))]
	dirty := false
	for i := range words {
		dirty = dirty || hasDirty(atomic.LoadUint64(&words[i]))
	}
	if !dirty {
		return origins, false
	}
	passed := min(f.gen-f.blockStamps[b], maxAge+1)
	for i := range words {
		var out uint64
		var orig uint16
		for {
			old := atomic.LoadUint64(&words[i])
			out, orig = aged(old, passed)
			if atomic.CompareAndSwapUint64(&words[i], old, out) {
				break
			}
		}
		for ; orig != 0 && len(origins) <= originLogRows; orig &= orig - 1 { // past it, the log forgets
			origins = append(origins, uint32((b*4+uint64(i))*16+uint64(bits.TrailingZeros16(orig))))
		}
	}
	f.blockStamps[b] = f.gen
	return origins, true
}

// hasDirty reports whether some 4-bit mark in w is dirty (14 or 15: its
// three high bits set).
func hasDirty(w uint64) bool {
	return w&(w>>1)&(w>>2)&0x2222222222222222 != 0
}

// aged returns the 16 marks in w once a block's stamp moves passed
// generations on — dirty marks become age 1 (the new stamp), ages grow
// by passed, past maxAge to old — and which of them were originated here,
// a bit each.
func aged(w, passed uint64) (uint64, uint16) {
	var out uint64
	var orig uint16
	for i := range uint64(16) {
		m := w >> (4 * i) & 15
		switch {
		case m >= markDirty:
			if m == markOriginDirty {
				orig |= 1 << i
			}
			m = 14 - 1
		case m != markOld:
			if age := 14 - m + passed; age <= maxAge {
				m = 14 - age
			} else {
				m = markOld
			}
		}
		out |= m << (4 * i)
	}
	return out, orig
}

// changedSince reports whether row r of a block stamped bs was stamped
// after since, or may have been (see above); a dirty row counts, since it
// changed after every stamp.
func (f *Filter) changedSince(r, bs, since uint64) bool {
	switch m := f.mark(r); {
	case m >= markDirty:
		return true
	case m == markOld: // stamped at bs − maxAge or before (bs > maxAge), or never
		return bs > maxAge && bs-maxAge > since && f.rowSet(r)
	default:
		return bs-(14-m-1) > since
	}
}

// ChangedRuns yields, in ascending order, the runs of rows whose stamp is
// greater than since. ChangedRuns(0) yields every row that has ever
// changed, i.e. every row with a bit set: it reads the rows themselves,
// not the change index, so that rows loaded from disk (LoadRows, which
// stamps nothing) are found too. The loop body must not call Advance; for
// since > 0 the change index stays locked while it runs.
func (f *Filter) ChangedRuns(since uint64) iter.Seq[Run] { return f.ChangedRunsFrom(since, 0) }

// ChangedRunsFrom is ChangedRuns starting at row from: a caller that must
// not hold the change index for long walks it a piece at a time.
func (f *Filter) ChangedRunsFrom(since, from uint64) iter.Seq[Run] {
	if since == 0 {
		return f.setRunsFrom(from)
	}
	return func(yield func(Run) bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var run Run
		for b := from / 64; b < uint64(len(f.blockStamps)); b++ {
			if f.blockStamps[b] <= since {
				continue
			}
			first := max(b*64, from)
			last := min(b*64+64, f.rows)
			bs := f.blockStamps[b]
			for r := first; r < last; r++ {
				if !f.changedSince(r, bs, since) {
					continue
				}
				if run.Count > 0 && run.First+run.Count == r {
					run.Count++
					continue
				}
				if run.Count > 0 && !yield(run) {
					return
				}
				run = Run{First: r, Count: 1}
			}
		}
		if run.Count > 0 {
			yield(run)
		}
	}
}

// setRunsFrom yields the runs of rows from row from on that have a bit
// set, reading every word atomically; it takes no lock.
func (f *Filter) setRunsFrom(from uint64) iter.Seq[Run] {
	return func(yield func(Run) bool) {
		var run Run
		for r := from; r < f.rows; r++ {
			if !f.rowSet(r) {
				continue
			}
			if run.Count > 0 && run.First+run.Count == r {
				run.Count++
				continue
			}
			if run.Count > 0 && !yield(run) {
				return
			}
			run = Run{First: r, Count: 1}
		}
		if run.Count > 0 {
			yield(run)
		}
	}
}

// rowSet reports whether row r has a bit set.
func (f *Filter) rowSet(r uint64) bool {
	row := f.words[r*f.wpr : (r+1)*f.wpr]
	for i := range row {
		if atomic.LoadUint64(&row[i]) != 0 {
			return true
		}
	}
	return false
}
