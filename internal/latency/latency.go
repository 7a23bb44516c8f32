// Package latency keeps histograms of durations cheap enough to observe
// on a hot path: fixed buckets, a binary search and two atomic adds.
package latency

import (
	"sort"
	"sync/atomic"
	"time"
)

// Bounds are the buckets' upper bounds: 25 µs to 10 s, about three per
// decade.
var Bounds = []time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// Histogram counts observations per bucket of Bounds, the last counting
// those above every bound. The zero value is empty and ready; it is safe
// for concurrent use.
type Histogram struct {
	counts [19]atomic.Uint64 // len(Bounds)+1
	sum    atomic.Int64      // nanoseconds
}

// Observe counts d.
func (h *Histogram) Observe(d time.Duration) {
	i := sort.Search(len(Bounds), func(i int) bool { return d <= Bounds[i] })
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the counts so far.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Counts: make([]uint64, len(h.counts)), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	return s
}

// Snapshot is a histogram's counts at one moment.
type Snapshot struct {
	// Counts[i] is the observations at most Bounds[i], not cumulative;
	// the last entry counts those above every bound.
	Counts []uint64
	// Sum is the total of every observation.
	Sum time.Duration
}

// Count returns the number of observations.
func (s Snapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}
