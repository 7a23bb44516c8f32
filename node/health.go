package node

import (
	"math"
	"sync"
)

// Health and capacity: whether the node serves, whether it is ready to
// be sent traffic, and whether its filter still answers as it was sized.

// Health says whether the node serves and whether it is ready.
type Health struct {
	// Serving: the node is running and not shutting down.
	Serving bool
	// Ready: serving, its filter loaded, and, with Join, joined to the
	// cluster and the first pull from it done.
	Ready bool
	// Why says what readiness waits for ("" when ready).
	Why string
}

// Health reports whether the node serves and is ready.
func (n *Node) Health() Health {
	select {
	case <-n.ready:
	default:
		return Health{Why: "starting"}
	}
	if n.ctx.Err() != nil {
		return Health{Why: "shutting down"}
	}
	h := Health{Serving: true}
	switch {
	case len(n.cfg.Join) > 0 && !n.joined():
		h.Why = "joining: no member of the cluster reached yet"
	case len(n.cfg.Join) > 0 && !n.joinPulled.Load():
		h.Why = "joining: the first pull from the cluster is not done"
	default:
		h.Ready = true
	}
	return h
}

// joined reports whether membership knows another live member.
func (n *Node) joined() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.members) > 0
}

// Alarms are the filter's capacity warnings.
type Alarms struct {
	// OverCapacity: the estimated keys are past the capacity.
	OverCapacity bool
	// FPHigh: the estimated false-positive rate is over twice the target.
	FPHigh bool
}

// alarmState is what checkCapacity last logged.
type alarmState struct {
	mu                 sync.Mutex
	keysLevel, fpLevel int // doublings past the limit logged so far
}

// Capacity alarm bits in Node.alarms.
const (
	alarmOverCapacity uint32 = 1 << iota
	alarmFPHigh
)

// alarms returns the current capacity alarms.
func (n *Node) alarms() Alarms {
	a := n.alarmBits.Load()
	return Alarms{OverCapacity: a&alarmOverCapacity != 0, FPHigh: a&alarmFPHigh != 0}
}

// doublings returns how many times over limit v is, in doublings: 0 at
// or under the limit, 1 past it, 2 past twice it, and so on.
func doublings(v, limit float64) int {
	if limit <= 0 || !(v > limit) {
		return 0
	}
	return 1 + int(math.Floor(math.Log2(v/limit)))
}

// checkCapacity sets the alarms from fresh filter statistics and logs a
// warning each time the keys or the false-positive rate double past
// their limit: once per doubling, not once per add. The classic filter
// has no stated capacity and never alarms.
func (n *Node) checkCapacity(fs *filterStats) {
	if n.cfg.Profile == ProfileClassic {
		return
	}
	capacity, target := float64(n.cfg.Capacity), n.cfg.FPRate
	keys, fp := doublings(fs.EstimatedKeys, capacity), doublings(fs.EstimatedFPRate, 2*target)
	var bits uint32
	if keys > 0 {
		bits |= alarmOverCapacity
	}
	if fp > 0 {
		bits |= alarmFPHigh
	}
	n.alarmBits.Store(bits)
	n.alarm.mu.Lock()
	defer n.alarm.mu.Unlock()
	if keys > n.alarm.keysLevel {
		n.log.Warn("the filter holds more keys than it was sized for: false positives rise; give a new filter a larger --capacity",
			"estimated_keys", uint64(fs.EstimatedKeys), "capacity", n.cfg.Capacity,
			"estimated_fp_rate", fs.EstimatedFPRate, "target_fp_rate", target)
	}
	if fp > n.alarm.fpLevel {
		n.log.Warn("the filter's false-positive rate is past twice its target",
			"estimated_fp_rate", fs.EstimatedFPRate, "target_fp_rate", target,
			"estimated_keys", uint64(fs.EstimatedKeys), "capacity", n.cfg.Capacity)
	}
	n.alarm.keysLevel, n.alarm.fpLevel = max(n.alarm.keysLevel, keys), max(n.alarm.fpLevel, fp)
}
