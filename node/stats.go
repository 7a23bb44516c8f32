package node

import (
	"sync/atomic"

	"github.com/rmbd/rmbd/wire"
)

// counters are the node's own counts. Each UDP reader has its own shard
// so that readers on different cores never share a cache line; Stats adds
// the shards up.
type counters struct {
	udpFrames, tcpFrames, tcpConns, tcpRefused atomic.Uint64
	adds, addsNew, hasQueries, hasHits         atomic.Uint64
	syncFrames, syncRows, syncRowsChanged      atomic.Uint64
	peerFrames, selfPeers, unresolved          atomic.Uint64
	dropped, badFrames, fingerprintMismatch    atomic.Uint64
	rowRange, unsupported, sendErrors          atomic.Uint64
}

// Stats is a snapshot of what a node has done and holds.
type Stats struct {
	UDPFrames, TCPFrames, TCPConns, TCPRefused uint64
	Adds, AddsNew, HasQueries, HasHits         uint64
	// SyncFrames and SyncRows count sync frames and rows merged;
	// SyncRowsChanged the rows that gained bits.
	SyncFrames, SyncRows, SyncRowsChanged uint64
	// PeerFrames counts peer requests; SelfPeers those naming this node;
	// Unresolved those whose host did not resolve.
	PeerFrames, SelfPeers, Unresolved uint64
	// Dropped counts every frame dropped; BadFrames those that did not
	// decode, FingerprintMismatch those of another filter, RowRange those
	// with rows the filter lacks, Unsupported those the node does not serve.
	Dropped, BadFrames, FingerprintMismatch, RowRange, Unsupported uint64
	SendErrors                                                     uint64
	// Gossip.
	Peers                                  int
	Ticks, SyncSent, SyncBytesSent, Pruned uint64
	Acks, StrayAcks                        uint64
	// Filter.
	FilterBytes, SetBits, TotalBits uint64
	EstimatedKeys, EstimatedFPRate  float64
}

func (c *counters) snapshot() Stats {
	return Stats{
		UDPFrames: c.udpFrames.Load(), TCPFrames: c.tcpFrames.Load(),
		TCPConns: c.tcpConns.Load(), TCPRefused: c.tcpRefused.Load(),
		Adds: c.adds.Load(), AddsNew: c.addsNew.Load(),
		HasQueries: c.hasQueries.Load(), HasHits: c.hasHits.Load(),
		SyncFrames: c.syncFrames.Load(), SyncRows: c.syncRows.Load(), SyncRowsChanged: c.syncRowsChanged.Load(),
		PeerFrames: c.peerFrames.Load(), SelfPeers: c.selfPeers.Load(), Unresolved: c.unresolved.Load(),
		Dropped: c.dropped.Load(), BadFrames: c.badFrames.Load(),
		FingerprintMismatch: c.fingerprintMismatch.Load(), RowRange: c.rowRange.Load(),
		Unsupported: c.unsupported.Load(), SendErrors: c.sendErrors.Load(),
	}
}

// add adds o's counters (not the gossip or filter figures) to s.
func (s *Stats) add(o Stats) {
	s.UDPFrames += o.UDPFrames
	s.TCPFrames += o.TCPFrames
	s.TCPConns += o.TCPConns
	s.TCPRefused += o.TCPRefused
	s.Adds += o.Adds
	s.AddsNew += o.AddsNew
	s.HasQueries += o.HasQueries
	s.HasHits += o.HasHits
	s.SyncFrames += o.SyncFrames
	s.SyncRows += o.SyncRows
	s.SyncRowsChanged += o.SyncRowsChanged
	s.PeerFrames += o.PeerFrames
	s.SelfPeers += o.SelfPeers
	s.Unresolved += o.Unresolved
	s.Dropped += o.Dropped
	s.BadFrames += o.BadFrames
	s.FingerprintMismatch += o.FingerprintMismatch
	s.RowRange += o.RowRange
	s.Unsupported += o.Unsupported
	s.SendErrors += o.SendErrors
}

// wireStats lists s as stats frame counters. Ratios are sent in parts per
// million.
func (s Stats) wireStats() []wire.Stat {
	return []wire.Stat{
		{Name: "udp_frames", Value: s.UDPFrames},
		{Name: "tcp_frames", Value: s.TCPFrames},
		{Name: "tcp_conns", Value: s.TCPConns},
		{Name: "adds", Value: s.Adds},
		{Name: "adds_new", Value: s.AddsNew},
		{Name: "has_queries", Value: s.HasQueries},
		{Name: "has_hits", Value: s.HasHits},
		{Name: "sync_frames_merged", Value: s.SyncFrames},
		{Name: "sync_rows_merged", Value: s.SyncRows},
		{Name: "sync_rows_changed", Value: s.SyncRowsChanged},
		{Name: "dropped", Value: s.Dropped},
		{Name: "bad_frames", Value: s.BadFrames},
		{Name: "fingerprint_mismatch", Value: s.FingerprintMismatch},
		{Name: "row_range", Value: s.RowRange},
		{Name: "unsupported", Value: s.Unsupported},
		{Name: "peers", Value: uint64(s.Peers)},
		{Name: "ticks", Value: s.Ticks},
		{Name: "sync_frames_sent", Value: s.SyncSent},
		{Name: "sync_bytes_sent", Value: s.SyncBytesSent},
		{Name: "peers_pruned", Value: s.Pruned},
		{Name: "acks", Value: s.Acks},
		{Name: "filter_bytes", Value: s.FilterBytes},
		{Name: "set_bits", Value: s.SetBits},
		{Name: "total_bits", Value: s.TotalBits},
		{Name: "estimated_keys", Value: uint64(s.EstimatedKeys)},
		{Name: "estimated_fp_ppm", Value: uint64(s.EstimatedFPRate * 1e6)},
	}
}
