package node

import (
	"sort"
	"sync/atomic"
	"time"
)

// Latency histograms, kept where taking the time costs nothing measurable:
// once per gossip round, once per pull, once per burst of pipelined TCP
// requests. Buckets are fixed; observing is a binary search and two
// atomic adds.

// Latency names one of the node's latency histograms.
type Latency int

// Latencies.
const (
	SyncRoundLatency  Latency = iota // one gossip round: deciding what to send and sending it
	PullServedLatency                // a pull served to a member, from request to last frame written
	PullMadeLatency                  // a pull made to repair the filter, from dial to last row merged
	TCPLatency                       // a burst of pipelined TCP requests, from the first read to the replies flushed
	numLatencies
)

var latencyNames = [numLatencies]string{"sync_round", "pull_served", "pull_made", "tcp_request"}

// String returns the histogram's name.
func (l Latency) String() string {
	if l >= 0 && l < numLatencies {
		return latencyNames[l]
	}
	return "latency(?)"
}

// LatencyBounds are the histograms' bucket upper bounds: 25 µs to 10 s,
// about three per decade.
var LatencyBounds = []time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// histogram counts observations per bucket of LatencyBounds, the last
// counting those above every bound.
type histogram struct {
	counts [19]atomic.Uint64 // len(LatencyBounds)+1
	sum    atomic.Int64      // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	i := sort.Search(len(LatencyBounds), func(i int) bool { return d <= LatencyBounds[i] })
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Histogram is a snapshot of a latency histogram.
type Histogram struct {
	// Counts[i] is the observations at most LatencyBounds[i], not
	// cumulative; the last entry counts those above every bound.
	Counts []uint64
	// Sum is the total of every observation.
	Sum time.Duration
}

// Count returns the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Counts: make([]uint64, len(h.counts)), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	return s
}
