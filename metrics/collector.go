// Package metrics serves a node's figures to Prometheus, with health and
// readiness checks, on a listener of its own (rmbd --metrics-listen).
//
// Nothing is counted twice: every value is read at scrape time from the
// node's own counters (node.Stats), the same ones a stats frame carries,
// so the request path pays nothing for metrics.
package metrics

import (
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
)

// Source is what the metrics read: a *node.Node.
type Source interface {
	Stats() node.Stats
	Peers() []gossip.PeerStatus
	Members() []wire.Member
	Health() node.Health
}

// collector is a Source as a prometheus.Collector.
type collector struct {
	src   Source
	stats map[string]*stat // by stats frame name
	hist  [len(node.Stats{}.Latency)]*prometheus.Desc
	peer  struct{ verified, missed, inflight, lastAck *prometheus.Desc }
	mem   struct{ up, age, lastSync, match *prometheus.Desc }
	named struct{ keys, fill, capacity, bytes, versions, overCapacity, fpHigh *prometheus.Desc }
	build *prometheus.Desc
}

// stat is how one stats frame value is exported.
type stat struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	// value, if set, reads the value from Stats instead of the frame's
	// integer (ratios and estimates keep their fractions).
	value func(node.Stats) float64
}

func newCollector(src Source) (*collector, error) {
	c := &collector{src: src, stats: map[string]*stat{}}
	for i := range node.Counter(len(node.Stats{}.Counts)) {
		c.stats[i.String()] = &stat{desc: desc("rmbd_"+i.String()+"_total", i.Help()), kind: prometheus.CounterValue}
	}
	for name, e := range exports {
		c.stats[name] = &stat{desc: desc(e.metric, e.help), kind: e.kind, value: e.value}
	}
	for _, s := range (node.Stats{}).WireStats() {
		if c.stats[s.Name] == nil {
			return nil, fmt.Errorf("metrics: stat %q has no metric", s.Name)
		}
	}
	for i := range c.hist {
		l := node.Latency(i)
		c.hist[i] = desc("rmbd_"+l.String()+"_duration_seconds", latencyHelp[l])
	}
	pl := []string{"peer", "kind"}
	c.peer.verified = prometheus.NewDesc("rmbd_peer_verified", "1 if the push target answered its challenge (static peers) or is a member.", pl, nil)
	c.peer.missed = prometheus.NewDesc("rmbd_peer_missed_rounds", "Rounds in a row the push target has not acknowledged.", pl, nil)
	c.peer.inflight = prometheus.NewDesc("rmbd_peer_inflight_rows", "Rows sent to the push target and not yet acknowledged.", pl, nil)
	c.peer.lastAck = prometheus.NewDesc("rmbd_peer_last_ack_age_seconds", "Seconds since the push target last acknowledged rows (absent if it never did).", pl, nil)
	ml := []string{"member"}
	c.mem.up = prometheus.NewDesc("rmbd_member_up", "1 if the cluster member is alive, 0 if suspect, dead or left.", ml, nil)
	c.mem.age = prometheus.NewDesc("rmbd_member_state_age_seconds", "Seconds the cluster member has been in its state.", []string{"member", "state"}, nil)
	c.mem.lastSync = prometheus.NewDesc("rmbd_member_last_sync_age_seconds", "Seconds since the cluster member last acknowledged rows from this node (absent if it never did).", ml, nil)
	c.mem.match = prometheus.NewDesc("rmbd_member_filter_match", "1 if the cluster member holds this node's filter (only those are synced with).", ml, nil)
	fl := []string{"filter"}
	c.named.keys = prometheus.NewDesc("rmbd_named_filter_estimated_keys", "Distinct keys the named filter holds, estimated (refreshed about once a second).", fl, nil)
	c.named.fill = prometheus.NewDesc("rmbd_named_filter_fill_ratio", "Share of the named filter's bits set.", fl, nil)
	c.named.capacity = prometheus.NewDesc("rmbd_named_filter_capacity_keys", "Keys the named filter was sized for.", fl, nil)
	c.named.bytes = prometheus.NewDesc("rmbd_named_filter_bytes", "Bytes the named filter's bits take.", fl, nil)
	c.named.versions = prometheus.NewDesc("rmbd_named_filter_versions", "Live versions of the name: more than 1 is a conflict of concurrent creations.", fl, nil)
	c.named.overCapacity = prometheus.NewDesc("rmbd_named_filter_over_capacity", "1 if the named filter holds more keys than it was sized for.", fl, nil)
	c.named.fpHigh = prometheus.NewDesc("rmbd_named_filter_fp_over_target", "1 if the named filter's estimated false-positive rate is over twice its target.", fl, nil)
	c.build = prometheus.NewDesc("rmbd_build_info", "The running build: 1, labelled with its version and Go's.", []string{"version", "goversion"}, nil)
	return c, nil
}

func desc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

var latencyHelp = map[node.Latency]string{
	node.SyncRoundLatency:  "Time one gossip round takes: deciding what to send and sending it.",
	node.PullServedLatency: "Time a pull served to a member takes, from request to last frame written.",
	node.PullMadeLatency:   "Time a pull made to repair this node's filter takes, from dial to last row merged.",
	node.TCPLatency:        "Time a burst of pipelined TCP requests takes, from its first read to its replies flushed.",
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.stats {
		ch <- s.desc
	}
	for _, d := range c.hist {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{c.peer.verified, c.peer.missed, c.peer.inflight, c.peer.lastAck,
		c.mem.up, c.mem.age, c.mem.lastSync, c.mem.match, c.build,
		c.named.keys, c.named.fill, c.named.capacity, c.named.bytes, c.named.versions, c.named.overCapacity, c.named.fpHigh} {
		ch <- d
	}
}

// Collect reads the node now.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	for _, w := range s.WireStats() {
		st := c.stats[w.Name]
		if st == nil {
			continue // refused by newCollector
		}
		v := float64(w.Value)
		if st.value != nil {
			v = st.value(s)
		}
		ch <- prometheus.MustNewConstMetric(st.desc, st.kind, v)
	}
	for i, h := range s.Latency {
		if len(h.Counts) != len(node.LatencyBounds)+1 {
			continue // not measured
		}
		buckets := make(map[float64]uint64, len(node.LatencyBounds))
		var cum uint64
		for j, b := range node.LatencyBounds {
			cum += h.Counts[j]
			buckets[b.Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.hist[i], h.Count(), h.Sum.Seconds(), buckets)
	}
	for _, p := range c.src.Peers() {
		labels := []string{p.Addr.String(), kindName(p.Kind)}
		ch <- prometheus.MustNewConstMetric(c.peer.verified, prometheus.GaugeValue, b2f(p.Verified), labels...)
		ch <- prometheus.MustNewConstMetric(c.peer.missed, prometheus.GaugeValue, float64(p.Missed), labels...)
		ch <- prometheus.MustNewConstMetric(c.peer.inflight, prometheus.GaugeValue, float64(p.Inflight), labels...)
		if p.AckedTicksAgo >= 0 {
			ago := time.Duration(p.AckedTicksAgo) * s.SyncInterval
			ch <- prometheus.MustNewConstMetric(c.peer.lastAck, prometheus.GaugeValue, ago.Seconds(), labels...)
		}
	}
	seen := map[string]bool{}
	for _, m := range c.src.Members() {
		name := string(m.Name)
		if seen[name] { // names are unique; a series twice would fail the scrape
			continue
		}
		seen[name] = true
		ch <- prometheus.MustNewConstMetric(c.mem.up, prometheus.GaugeValue, b2f(m.State == wire.MemberAlive), name)
		ch <- prometheus.MustNewConstMetric(c.mem.age, prometheus.GaugeValue, float64(m.Age), name, stateName(m.State))
		ch <- prometheus.MustNewConstMetric(c.mem.match, prometheus.GaugeValue, b2f(m.FPMatch), name)
		if m.LastSync != wire.NeverSynced {
			ch <- prometheus.MustNewConstMetric(c.mem.lastSync, prometheus.GaugeValue, float64(m.LastSync)/1000, name)
		}
	}
	for _, f := range s.Named {
		ch <- prometheus.MustNewConstMetric(c.named.keys, prometheus.GaugeValue, f.EstimatedKeys, f.Name)
		ch <- prometheus.MustNewConstMetric(c.named.fill, prometheus.GaugeValue, f.Fill, f.Name)
		ch <- prometheus.MustNewConstMetric(c.named.capacity, prometheus.GaugeValue, float64(f.Capacity), f.Name)
		ch <- prometheus.MustNewConstMetric(c.named.bytes, prometheus.GaugeValue, float64(f.Bytes), f.Name)
		ch <- prometheus.MustNewConstMetric(c.named.versions, prometheus.GaugeValue, float64(f.Versions), f.Name)
		ch <- prometheus.MustNewConstMetric(c.named.overCapacity, prometheus.GaugeValue, b2f(f.Alarms.OverCapacity), f.Name)
		ch <- prometheus.MustNewConstMetric(c.named.fpHigh, prometheus.GaugeValue, b2f(f.Alarms.FPHigh), f.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.build, prometheus.GaugeValue, 1, version.String(), runtime.Version())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func kindName(k gossip.Kind) string {
	if k == gossip.Member {
		return "member"
	}
	return "static"
}

func stateName(s uint8) string {
	switch s {
	case wire.MemberAlive:
		return "alive"
	case wire.MemberSuspect:
		return "suspect"
	case wire.MemberDead:
		return "dead"
	case wire.MemberLeft:
		return "left"
	}
	return "unknown"
}
