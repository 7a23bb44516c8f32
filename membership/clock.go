package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/wire"
)

// Members tell each other their wall clocks on memberlist's pings: each
// ack carries the clock of the member that sends it (Config.Now), and the
// member that pinged sets it against its own, half the round trip back.
// Of a member's last clockSamples pings the one with the shortest round
// trip counts: a slow ping says little of when the clock was read. The
// cluster's clock is the median of the members', this node's included,
// so that one clock far off moves it little.
//
// A clock that steps is seen at once, not after eight pings: a member's
// sample that disagrees with the kept one by more than their round trips
// allow starts its history anew (its clock, or this node's, stepped), and
// a step of this node's own clock — its wall clock moving otherwise than
// its monotonic clock — moves every member's offset by as much.

// clockVersion is the version of the clock an ack carries.
const clockVersion = 1

// clockLen is the length of a clock in an ack: the version, then
// microseconds since 1970, big-endian.
const clockLen = 1 + 8

// maxClockMicros is the latest clock taken: 2262, past which nanoseconds
// since 1970 overflow.
const maxClockMicros = math.MaxInt64 / 1000

// clockSamples is how many of a member's last pings are kept.
const clockSamples = 8

// maxOffset bounds the offsets kept, so that each may be negated.
const maxOffset = time.Duration(math.MaxInt64)

var (
	// errNoClock is an ack without a clock: a member that sends none.
	errNoClock = errors.New("membership: no clock in the ack")
	// errClock is a clock that does not decode.
	errClock = errors.New("membership: bad clock in the ack")
)

// appendClock appends t as an ack carries it.
func appendClock(dst []byte, t time.Time) []byte {
	dst = append(dst, clockVersion)
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixMicro()))
}

// decodeClock decodes a clock from an ack. An empty one is errNoClock;
// one of another version or length, or before 1970 or past 2262, is
// errClock.
func decodeClock(b []byte) (time.Time, error) {
	switch {
	case len(b) == 0:
		return time.Time{}, errNoClock
	case b[0] != clockVersion:
		return time.Time{}, fmt.Errorf("%w: version %d", errClock, b[0])
	case len(b) != clockLen:
		return time.Time{}, fmt.Errorf("%w: %d bytes", errClock, len(b))
	}
	us := int64(binary.BigEndian.Uint64(b[1:]))
	if us < 0 || us > maxClockMicros {
		return time.Time{}, fmt.Errorf("%w: %d µs since 1970", errClock, us)
	}
	return time.UnixMicro(us), nil
}

// Clock is how far this node's clock is from the cluster's.
type Clock struct {
	// Offset is this node's clock minus the cluster's. The cluster's is
	// the median of the members' clocks, this node's included (with an
	// even count, the mean of the two in the middle).
	Offset time.Duration
	// Members counts the members whose clock was measured. With none,
	// Offset is 0.
	Members int
}

// Clock returns how far this node's clock is from the cluster's, as the
// pings measured it.
func (m *Membership) Clock() Clock {
	offs := m.Offsets()
	all := append(slices.Collect(maps.Values(offs)), 0) // 0: this node
	slices.Sort(all)
	mid := len(all) / 2
	median := all[mid]
	if len(all)%2 == 0 {
		a, b := all[mid-1], all[mid]
		median = a/2 + b/2 + (a%2+b%2)/2 // their mean, without overflow
	}
	return Clock{Offset: -median, Members: len(offs)}
}

// Offsets returns how far each member's clock is from this node's, theirs
// minus this node's, by name. Members whose clock was never measured are
// left out.
func (m *Membership) Offsets() map[string]time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ownStep()
	out := make(map[string]time.Duration, len(m.clocks))
	for name, s := range m.clocks {
		out[name] = s.best()
	}
	return out
}

// clockRing is a member's last clockSamples samples, the oldest
// overwritten.
type clockRing struct {
	offset [clockSamples]time.Duration
	rtt    [clockSamples]time.Duration
	n      int // samples held
	next   int // where the next goes
}

func (r *clockRing) add(offset, rtt time.Duration) {
	if r.n > 0 {
		best, bestRTT := r.best(), r.rtt[r.bestIndex()]
		if (offset - best).Abs() > (rtt+bestRTT)/2+stepTolerance { // a clock stepped: what came before says nothing
			*r = clockRing{}
		}
	}
	r.offset[r.next], r.rtt[r.next] = offset, rtt
	r.next = (r.next + 1) % clockSamples
	r.n = min(r.n+1, clockSamples)
}

// best is the offset of the sample with the shortest round trip; among
// equals, the newest.
func (r *clockRing) best() time.Duration { return r.offset[r.bestIndex()] }

func (r *clockRing) bestIndex() int {
	var best int
	for i := range r.n {
		j := (r.next - 1 - i + clockSamples) % clockSamples // newest first
		if i == 0 || r.rtt[j] < r.rtt[best] {
			best = j
		}
	}
	return best
}

// stepTolerance is how far two samples of one member may disagree beyond
// what their round trips explain before its clock, or this node's, is
// taken to have stepped.
const stepTolerance = 5 * time.Millisecond

// ownStep moves every member's offset by the step this node's wall clock
// took since the last look, if it took one: offsets are theirs less this
// node's. Callers hold m.mu.
func (m *Membership) ownStep() {
	wall, mono := m.cfg.Now().Round(0), m.mono() // Round(0): the wall reading alone
	if !m.stepBase.mono.IsZero() {
		step := wall.Sub(m.stepBase.wall) - mono.Sub(m.stepBase.mono)
		if step.Abs() > stepTolerance {
			for _, r := range m.clocks {
				for i := range r.n {
					r.offset[i] = max(r.offset[i]-step, -maxOffset)
				}
			}
			m.log.Info("this node's clock stepped", "by", step)
		}
	}
	m.stepBase.wall, m.stepBase.mono = wall, mono
}

// pings is Membership as memberlist.PingDelegate.
type pings Membership

// AckPayload is this node's clock, for the member that pinged it.
func (p *pings) AckPayload() []byte {
	return appendClock(make([]byte, 0, clockLen), p.cfg.Now())
}

// NotifyPingComplete takes the clock a member acked with. A clock that
// does not decode is counted and ignored; so is the clock of a member not
// alive (a ping may come back after the member failed).
func (p *pings) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	m := (*Membership)(p)
	now := m.cfg.Now()
	theirs, err := decodeClock(payload)
	if err != nil {
		if !errors.Is(err, errNoClock) {
			m.badClock.Add(1)
			m.log.Debug("ack clock ignored", "member", other.Name, "err", err)
		}
		return
	}
	rtt = max(rtt, 0)
	offset := max(theirs.Sub(now.Add(-rtt/2)), -maxOffset)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ownStep() // before the sample: its offset is against the clock as it is now
	if r, ok := m.members[other.Name]; !ok || r.state != wire.MemberAlive {
		return
	}
	r := m.clocks[other.Name]
	if r == nil {
		r = &clockRing{}
		m.clocks[other.Name] = r
	}
	r.add(offset, rtt)
}
