package node

import (
	"time"

	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/latency"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Counter names one of the node's own counts (package counter lists
// them).
type Counter = counter.Counter

// Stats is a snapshot of what a node has done and holds.
type Stats struct {
	// Counts holds the node's counters; see Count.
	Counts [counter.Num]uint64
	// OpenConns is the TCP connections open now.
	OpenConns int
	// Buffers is what the connections' buffer pool lends (--max-buffer-bytes).
	Buffers bufpool.Stats
	// UDPQueueDrops is the datagrams the kernel dropped on the UDP sockets:
	// their receive queue was full, or their source blocked (Linux).
	UDPQueueDrops uint64
	// UDPBlockedNow is the flooding sources blocked now.
	UDPBlockedNow int
	// Gossip.
	Peers                                                int
	Ticks, SyncSent, SyncBytesSent, SyncRowsSent, Pruned uint64
	PeersEvicted                                         uint64 // put out of a full table: they never acked
	Resent, Acks, StrayAcks                              uint64
	// Filter.
	FilterBytes, SetBits, TotalBits uint64
	EstimatedKeys, EstimatedFPRate  float64
	// Data directory (zero without one): every filter's together.
	Store store.Stats
	// Unwritable is the filters whose data directory cannot be written
	// now: they refuse adds to keep until it can.
	Unwritable int
	// Authenticated: the node has a cluster key.
	Authenticated bool
	// ClockOffset is the node's clock less the cluster's, as last measured.
	ClockOffset time.Duration
	// Filling and Leaving count the placed filters held here that await
	// their rows, and that this node gave up and keeps for the grace.
	Filling, Leaving int
	// Capacity and TargetFPRate are what the filter was sized for (zero
	// for the classic filter); Alarms says whether it is past them.
	Capacity     uint64
	TargetFPRate float64
	Alarms       Alarms
	// Health says whether the node serves and is ready.
	Health Health
	// SyncInterval is the gossip tick, the unit of peers' AckedTicksAgo.
	SyncInterval time.Duration
	// Named describes the named filters, by name.
	Named []NamedStats
	// Latency holds the latency histograms, by Latency.
	Latency [numLatencies]Histogram
}

// NamedStats is one named filter's figures, as of the last background
// refresh.
type NamedStats struct {
	Name          string
	Capacity      uint64
	FPRate        float64
	Bytes         uint64
	EstimatedKeys float64
	Fill          float64
	Versions      int // live versions: more than one is a conflict
	// Alarms say whether the filter is past what it was sized for.
	Alarms Alarms
}

// Alarms are a filter's capacity warnings.
type Alarms = registry.Alarms

// meters are the node's counts: a shard of counters shared by TCP,
// peers and gossip, one per datagram reader, and the latency histograms.
type meters struct {
	c   *counter.Shard
	udp []*counter.Shard
	lat [numLatencies]latency.Histogram
}

func newMeters() *meters { return &meters{c: new(counter.Shard)} }

// readers makes a counter shard for each of n datagram readers.
func (m *meters) readers(n int) {
	m.udp = make([]*counter.Shard, n)
	for i := range m.udp {
		m.udp[i] = new(counter.Shard)
	}
}

// timed observes the time since began in histogram l.
func (m *meters) timed(l Latency, began time.Time) { m.lat[l].Observe(time.Since(began)) }

// Count returns counter c.
func (s Stats) Count(c Counter) uint64 {
	if c < 0 || c >= counter.Num {
		return 0
	}
	return s.Counts[c]
}

func (s *Stats) addShard(c *counter.Shard) { c.AddTo(&s.Counts) }

// statsReplySize is the size of a stats frame: always the same, the names
// being fixed and the values eight bytes each.
var statsReplySize = func() int {
	b, _ := wire.AppendStats(nil, 0, Stats{}.WireStats())
	return len(b)
}()

// WireStats lists s as a stats frame carries it, names fixed and in
// order. Ratios are sent in parts per million.
func (s Stats) WireStats() []wire.Stat {
	out := make([]wire.Stat, 0, counter.Num+20)
	for c := range counter.Num {
		out = append(out, wire.Stat{Name: c.String(), Value: s.Counts[c]})
	}
	return append(out,
		wire.Stat{Name: "peers", Value: uint64(s.Peers)},
		wire.Stat{Name: "ticks", Value: s.Ticks},
		wire.Stat{Name: "sync_frames_sent", Value: s.SyncSent},
		wire.Stat{Name: "sync_bytes_sent", Value: s.SyncBytesSent},
		wire.Stat{Name: "sync_rows_sent", Value: s.SyncRowsSent},
		wire.Stat{Name: "sync_frames_resent", Value: s.Resent},
		wire.Stat{Name: "peers_pruned", Value: s.Pruned},
		wire.Stat{Name: "peers_evicted", Value: s.PeersEvicted},
		wire.Stat{Name: "acks", Value: s.Acks},
		wire.Stat{Name: "stray_acks", Value: s.StrayAcks},
		wire.Stat{Name: "filter_bytes", Value: s.FilterBytes},
		wire.Stat{Name: "set_bits", Value: s.SetBits},
		wire.Stat{Name: "total_bits", Value: s.TotalBits},
		wire.Stat{Name: "estimated_keys", Value: uint64(s.EstimatedKeys)},
		wire.Stat{Name: "estimated_fp_ppm", Value: uint64(s.EstimatedFPRate * 1e6)},
		wire.Stat{Name: "log_fsyncs", Value: s.Store.Fsyncs},
		wire.Stat{Name: "log_bytes", Value: s.Store.LogBytes},
		wire.Stat{Name: "checkpoints", Value: s.Store.Checkpoints},
		wire.Stat{Name: "checkpoint_bytes", Value: s.Store.CheckpointBytes},
		wire.Stat{Name: "checkpoint_rows", Value: s.Store.CheckpointRows},
		wire.Stat{Name: "log_unwritable", Value: s.Store.Unwritable},
		wire.Stat{Name: "unwritable_filters", Value: uint64(s.Unwritable)},
		wire.Stat{Name: "cluster_authenticated", Value: counter.Flag(s.Authenticated)},
		wire.Stat{Name: "tcp_open_conns", Value: uint64(s.OpenConns)},
		wire.Stat{Name: "udp_kernel_drops", Value: s.UDPQueueDrops},
		wire.Stat{Name: "udp_blocked_now", Value: uint64(s.UDPBlockedNow)},
		wire.Stat{Name: "buffer_bytes_lent", Value: uint64(s.Buffers.Lent)},
		wire.Stat{Name: "buffer_bytes_peak", Value: uint64(s.Buffers.Peak)},
		wire.Stat{Name: "buffer_refusals", Value: s.Buffers.Refused},
		wire.Stat{Name: "capacity", Value: s.Capacity},
		wire.Stat{Name: "target_fp_ppm", Value: uint64(s.TargetFPRate * 1e6)},
		wire.Stat{Name: "over_capacity", Value: counter.Flag(s.Alarms.OverCapacity)},
		wire.Stat{Name: "fp_over_target", Value: counter.Flag(s.Alarms.FPHigh)},
		wire.Stat{Name: "ready", Value: counter.Flag(s.Health.Ready)},
		wire.Stat{Name: "named_filters", Value: uint64(len(s.Named))},
		wire.Stat{Name: "clock_offset_us", Value: uint64(s.ClockOffset.Microseconds())}, // two's complement
		wire.Stat{Name: "placed_filling", Value: uint64(s.Filling)},
		wire.Stat{Name: "placed_leaving", Value: uint64(s.Leaving)},
	)
}

// Stats returns a snapshot of the node's counters, its gossip and its
// filters. The filters' figures (bits set, estimated keys and
// false-positive rate) are as of the last background refresh, at most a
// second or so old: Stats costs the same whatever the filters' sizes.
func (n *Node) Stats() Stats {
	var s Stats
	s.addShard(n.meters.c)
	for _, c := range n.meters.udp {
		s.addShard(c)
	}
	gc := n.repl.Counters()
	s.Peers = len(n.repl.Peers())
	s.Ticks, s.SyncSent, s.SyncBytesSent, s.SyncRowsSent, s.Pruned = gc.Ticks, gc.Frames, gc.Bytes, gc.Rows, gc.Pruned
	s.Resent, s.Acks, s.StrayAcks, s.PeersEvicted = gc.Resent, gc.Acks, gc.StrayAcks, gc.Evicted
	s.Counts[counter.ChallengesSent] += gc.Challenges
	s.Counts[counter.PeersVerified] += gc.Verified
	s.Counts[counter.StrayAnswers] += gc.StrayAnswers
	if m := n.mem.Load(); m != nil {
		mc := m.Counters()
		s.Counts[counter.MemberBadMeta] += mc.BadMeta
		s.Counts[counter.MemberBadState] += mc.BadState
		s.Counts[counter.MemberBadClock] += mc.BadClock
	}
	cc := n.conns.Counts()
	s.Counts[counter.TCPRefusedPerSource] += cc.Refused
	s.Counts[counter.TCPEvicted] += cc.Evicted
	s.OpenConns, s.Buffers = n.conns.Len(), n.bufs.Stats()
	for i, sh := range n.shed {
		s.UDPBlockedNow += sh.Blocked()
		s.Counts[counter.UDPBlocked] += sh.Blocks()
		s.UDPQueueDrops += n.tr.Queue(i).Drops
	}
	if n.resp != nil {
		n.addRESPStats(&s)
	}
	n.addFilterStats(&s)
	s.Authenticated, s.ClockOffset = n.keyed(), n.reg.ClockOffset()
	s.Health, s.SyncInterval = n.Health(), n.cfg.SyncInterval
	for i := range s.Latency {
		s.Latency[i] = n.meters.lat[i].Snapshot()
	}
	return s
}

// addFilterStats adds the filters' figures: the default filter's as the
// node's own, and each named filter's.
func (n *Node) addFilterStats(s *Stats) {
	s.Store, s.Unwritable = n.reg.StoreStats(), len(n.reg.Unwritable())
	fs := n.reg.StatsNow(n.reg.Default())
	s.FilterBytes, s.SetBits, s.TotalBits = n.reg.Default().Bytes(), fs.SetBits, fs.TotalBits
	s.EstimatedKeys, s.EstimatedFPRate, s.Alarms = fs.EstimatedKeys, fs.EstimatedFPRate, fs.Alarms
	def := n.reg.Default().Version().Def
	s.Capacity, s.TargetFPRate = def.Capacity, def.FPRate
	for _, name := range n.reg.Names() {
		vs := n.reg.Lookup([]byte(name))
		if len(vs) == 0 {
			continue
		}
		w := vs.Winner()
		s.Filling += int(counter.Flag(w.Filling()))
		s.Leaving += int(counter.Flag(w.Unowned()))
		d := w.Version().Def
		ns := NamedStats{Name: name, Capacity: w.Capacity(), FPRate: d.FPRate, Bytes: w.Bytes(), Versions: len(vs)}
		if st := w.Stats(); st != nil {
			ns.EstimatedKeys, ns.Fill, ns.Alarms = st.EstimatedKeys, st.Fill, st.Alarms
		}
		s.Named = append(s.Named, ns)
	}
}
