package node

import "github.com/rmbd/rmbd/internal/latency"

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

// LatencyBounds are the histograms' bucket upper bounds.
var LatencyBounds = latency.Bounds

// Histogram is a snapshot of a latency histogram.
type Histogram = latency.Snapshot
