package node

import (
	"time"

	"github.com/rmbd/rmbd/filter"
)

// The filter's statistics (bits set, estimated keys, false-positive
// rate) come from reading the whole filter: 0.7 ms at a million keys,
// tens of milliseconds at a hundred million. A stats request must not
// cost that — a flood of them would take every core — so a background
// loop refreshes them, at most once a second and no more often than
// keeps the reading under 1% of a core, and requests read the copy.

// filterStats is the filter's statistics as of a moment.
type filterStats struct {
	filter.Stats
	at   time.Time
	took time.Duration
}

// minStatsEvery and statsShare bound the refresh: at most once per
// minStatsEvery, and at most statsShare of a core.
const (
	minStatsEvery = time.Second
	statsShare    = 100 // the reading takes at most 1/statsShare of the time
)

// readFilterStats reads the filter's statistics now.
func (n *Node) readFilterStats() *filterStats {
	began := time.Now()
	fs := &filterStats{Stats: n.f.Stats(), at: began}
	fs.took = time.Since(began)
	return fs
}

// refreshFilterStats reads the filter's statistics now, keeps them and
// checks the capacity alarms.
func (n *Node) refreshFilterStats() *filterStats {
	fs := n.readFilterStats()
	n.named.mu.RLock()
	for _, vs := range n.named.byName {
		for _, nf := range vs {
			st := nf.f.Stats()
			nf.stats.Store(&st)
		}
	}
	n.named.mu.RUnlock()
	fs.took = time.Since(fs.at) // the named filters' reading counts toward the budget
	n.fstats.Store(fs)
	n.checkCapacity(fs)
	return fs
}

// cachedFilterStats returns the latest statistics, reading them first if
// none were read yet.
func (n *Node) cachedFilterStats() *filterStats {
	if fs := n.fstats.Load(); fs != nil {
		return fs
	}
	n.fstats.CompareAndSwap(nil, n.readFilterStats()) // the first reading kept, if two race
	return n.fstats.Load()
}

// filterStatsLoop refreshes the statistics until the node stops.
func (n *Node) filterStatsLoop() {
	n.checkCapacity(n.cachedFilterStats()) // a filter loaded full says so at start
	for {
		fs := n.cachedFilterStats()
		wait := max(minStatsEvery, statsShare*fs.took) - time.Since(fs.at)
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		n.refreshFilterStats()
	}
}
