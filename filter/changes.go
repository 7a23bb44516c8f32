package filter

import (
	"iter"
	"math/bits"
	"sync/atomic"
)

// Change tracking for delta sync.
//
// Writers (Add, MergeRows) set a row's dirty bit after flipping one of its
// bits. Advance, called by the replication driver once per round, opens a
// new generation: it swaps the dirty bits out and stamps each dirty row
// with the new generation. ChangedRuns(s) then lists rows stamped after s,
// visiting only blocks of 64 rows whose stamp moved, never every row.
//
// Why this cannot lose a change: the dirty bit is set after the data bit,
// and Advance clears dirty bits before the caller copies rows. A bit set
// before the swap is visible to the copy; a bit set after it leaves its row
// dirty for the next generation.

// Run is a run of consecutive rows.
type Run struct {
	First uint64
	Count uint64
}

func (f *Filter) markDirty(row uint64) {
	w, m := &f.dirty[row/64], uint64(1)<<(row%64)
	if atomic.LoadUint64(w)&m == 0 {
		atomic.OrUint64(w, m)
	}
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
	for b := range f.dirty {
		if atomic.LoadUint64(&f.dirty[b]) == 0 {
			continue
		}
		d := atomic.SwapUint64(&f.dirty[b], 0)
		f.lastChanged = f.gen
		for d != 0 {
			i := uint64(bits.TrailingZeros64(d))
			d &= d - 1
			f.stamps[uint64(b)*64+i] = f.gen
		}
		f.blockStamps[b] = f.gen
	}
	return f.gen
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
			for r := first; r < last; r++ {
				if f.stamps[r] <= since {
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
