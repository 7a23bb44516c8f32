package registry

import (
	"math"
	"sync"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/store"
)

// Statistics and capacity alarms, per filter. Reading a filter's
// statistics reads all of it (0.7 ms at a million keys, tens of
// milliseconds at a hundred million), so they are read in the background
// (RefreshStats, paced by the caller) and requests read the copy.

// Stats are a filter's figures as of a moment.
type Stats struct {
	filter.Stats
	// At is when they were read.
	At time.Time
	// Alarms say whether the filter is past what it was sized for.
	Alarms Alarms
}

// Alarms are a filter's capacity warnings. A filter without a stated
// capacity (the classic layout) never alarms.
type Alarms struct {
	// OverCapacity: the estimated keys are past the capacity (of a
	// windowed filter, the keys of its last window).
	OverCapacity bool
	// FPHigh: the estimated false-positive rate is over twice the target.
	FPHigh bool
}

// alarmState is what the alarms last logged.
type alarmState struct {
	mu                 sync.Mutex
	keysLevel, fpLevel int // doublings past the limit logged so far
}

// Reading every filter whole must not happen per request — a flood of
// stats requests would take every core — so RefreshStatsUntil refreshes
// them in the background, at most once a second and no more often than
// keeps the reading under 1% of a core, and requests read the copy.
const (
	minStatsEvery = time.Second
	statsShare    = 100 // the reading takes at most 1/statsShare of the time
)

// RefreshStatsUntil refreshes the filters' statistics and alarms, paced
// as above, until done is closed.
func (r *Registry) RefreshStatsUntil(done <-chan struct{}) {
	for {
		took := r.RefreshStats() // a filter loaded full says so at start
		select {
		case <-done:
			return
		case <-time.After(max(minStatsEvery, statsShare*took)):
		}
	}
}

// ReadStats reads f's statistics now, over every segment: it reads all
// of f.
func (f *Filter) ReadStats() filter.Stats {
	var s filter.Stats
	miss := 1.0 // the chance no segment answers a never-added key
	for _, seg := range f.Segments() {
		st := seg.f.Stats()
		s.SetBits += st.SetBits
		s.TotalBits += st.TotalBits
		s.EstimatedKeys += st.EstimatedKeys
		miss *= 1 - st.EstimatedFPRate
	}
	if s.TotalBits > 0 {
		s.Fill = float64(s.SetBits) / float64(s.TotalBits)
	}
	s.EstimatedFPRate = 1 - miss
	return s
}

// RefreshStats reads every filter's statistics now, keeps them, sets each
// filter's alarms and logs a warning each time its keys or false-positive
// rate double past their limit. It returns how long it took.
func (r *Registry) RefreshStats() time.Duration {
	began := time.Now()
	for _, f := range r.All() {
		r.refresh(f, time.Now())
	}
	return time.Since(began)
}

// refresh reads f's statistics and checks its alarms.
func (r *Registry) refresh(f *Filter, now time.Time) {
	st := &Stats{Stats: f.ReadStats(), At: now}
	def := f.version.Def
	if def.Capacity == 0 { // classic: no stated capacity
		f.stats.Store(st)
		return
	}
	// A growing filter's capacity is its stages': it is over it only
	// when it cannot grow. A windowed filter's is per window: it holds
	// the keys of the last window, and it is over when they are.
	capacity := f.Capacity()
	if f.windowed() {
		st.EstimatedKeys = f.windowKeys()
	}
	keys, fp := doublings(st.EstimatedKeys, float64(capacity)), doublings(st.EstimatedFPRate, 2*def.FPRate)
	st.Alarms = Alarms{OverCapacity: keys > 0, FPHigh: fp > 0}
	f.stats.Store(st)
	a := &f.alarm
	a.mu.Lock()
	defer a.mu.Unlock()
	if keys > a.keysLevel {
		msg := "a filter holds more keys than it was sized for: false positives rise; give a new filter a larger capacity"
		if f.windowed() {
			msg = "a windowed filter's last window holds more keys than it was sized for: false positives rise; give a new filter a larger capacity per window"
		}
		r.log.Warn(msg, "filter", f.name, "estimated_keys", uint64(st.EstimatedKeys), "capacity", capacity,
			"estimated_fp_rate", st.EstimatedFPRate, "target_fp_rate", def.FPRate)
	}
	if fp > a.fpLevel {
		r.log.Warn("a filter's false-positive rate is past twice its target",
			"filter", f.name, "estimated_fp_rate", st.EstimatedFPRate, "target_fp_rate", def.FPRate,
			"estimated_keys", uint64(st.EstimatedKeys), "capacity", capacity)
	}
	a.keysLevel, a.fpLevel = max(a.keysLevel, keys), max(a.fpLevel, fp)
}

// StatsNow returns f's statistics as of the last refresh, reading them
// first if none were read yet.
func (r *Registry) StatsNow(f *Filter) *Stats {
	if st := f.stats.Load(); st != nil {
		return st
	}
	r.refresh(f, time.Now())
	return f.stats.Load()
}

// doublings returns how many times over limit v is, in doublings: 0 at
// or under the limit, 1 past it, 2 past twice it, and so on.
func doublings(v, limit float64) int {
	if limit <= 0 || !(v > limit) {
		return 0
	}
	return 1 + int(math.Floor(math.Log2(v/limit)))
}

// StoreStats returns what the data directories of every filter did
// together (zero without a data directory).
func (r *Registry) StoreStats() store.Stats {
	var sum store.Stats
	for _, f := range r.All() {
		for _, seg := range f.Segments() {
			if st := seg.Store(); st != nil {
				sum = sum.Plus(st.Stats())
			}
		}
	}
	return sum
}
