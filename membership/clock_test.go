package membership

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clockNode is a Membership without memberlist, whose clock reads *now:
// a test calls its delegates itself.
func clockNode(t testing.TB, name string, now *time.Time) *Membership {
	t.Helper()
	clock := func() time.Time { return *now } // wall and monotonic alike: no step but the test's
	return &Membership{cfg: Config{Name: name, Now: clock}, host: newHost(1, name), mono: clock,
		log: slog.New(slog.DiscardHandler), members: map[string]*record{}, clocks: map[string]*clockRing{}}
}

// fakeNode is a member as memberlist hands it over.
func fakeNode(name string) *memberlist.Node {
	return &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: 7946}
}

// join makes the members named alive at m.
func join(m *Membership, names ...string) {
	for _, name := range names {
		(*events)(m).NotifyJoin(fakeNode(name))
	}
}

// ack hands m a ping to name that took rtt and came back with theirs.
func ack(m *Membership, name string, rtt time.Duration, theirs time.Time) {
	(*pings)(m).NotifyPingComplete(fakeNode(name), rtt, appendClock(nil, theirs))
}

func TestClockPayload(t *testing.T) {
	b := appendClock(nil, epoch.Add(1234*time.Nanosecond))
	assert.Len(t, b, clockLen)
	got, err := decodeClock(b)
	require.NoError(t, err)
	assert.True(t, got.Equal(epoch.Add(time.Microsecond)), "to the microsecond: %v", got)

	_, err = decodeClock(nil)
	assert.ErrorIs(t, err, errNoClock)
	for _, bad := range [][]byte{
		{2, 0, 0, 0, 0, 0, 0, 0, 1},         // another version
		{1, 0, 0, 0, 0, 0, 0, 1},            // short
		{1, 0, 0, 0, 0, 0, 0, 0, 1, 0},      // long
		{1, 0xff, 0, 0, 0, 0, 0, 0, 0},      // before 1970
		{1, 0x7f, 0xff, 0, 0, 0, 0, 0, 0},   // past 2262
		appendClock(nil, time.Unix(-1, 0)),  // before 1970
		append([]byte{1}, b[1:len(b)-1]...), // short
	} {
		_, err := decodeClock(bad)
		assert.ErrorIs(t, err, errClock, "%x", bad)
	}
}

// AckPayload tells the node's clock, Config.Now.
func TestAckPayloadIsTheNodesClock(t *testing.T) {
	now := epoch
	m := clockNode(t, "a", &now)
	got, err := decodeClock((*pings)(m).AckPayload())
	require.NoError(t, err)
	assert.True(t, got.Equal(epoch))
}

// The cluster's clock is the median of the members', this node's
// included; with an even count, the mean of the two in the middle.
func TestClockMedian(t *testing.T) {
	now := epoch
	a := clockNode(t, "a", &now)
	assert.Equal(t, Clock{}, a.Clock(), "alone: no offset")

	join(a, "b", "c")
	ack(a, "b", 0, epoch.Add(-time.Second))
	assert.Equal(t, Clock{Offset: time.Second / 2, Members: 1}, a.Clock(), "two clocks: the mean")
	ack(a, "c", 0, epoch.Add(-time.Second))
	assert.Equal(t, Clock{Offset: time.Second, Members: 2}, a.Clock(), "a alone 1 s ahead")
	assert.Equal(t, map[string]time.Duration{"b": -time.Second, "c": -time.Second}, a.Offsets())

	b := clockNode(t, "b", &now) // as b sees it: a 1 s ahead, c with b
	join(b, "a", "c")
	ack(b, "a", 0, epoch.Add(time.Second))
	ack(b, "c", 0, epoch)
	assert.Equal(t, Clock{Offset: 0, Members: 2}, b.Clock())

	join(b, "d")
	ack(b, "d", 0, epoch.Add(3*time.Second)) // 0, 0, 1 s, 3 s
	assert.Equal(t, Clock{Offset: -time.Second / 2, Members: 3}, b.Clock())
}

// Half the round trip is taken off; of the last pings, the one with the
// shortest round trip counts.
func TestClockLowestRoundTrip(t *testing.T) {
	now := epoch
	a := clockNode(t, "a", &now)
	join(a, "b")
	// b's clock is 1 s ahead; it read it halfway through each ping.
	ping := func(rtt time.Duration, skew time.Duration) {
		ack(a, "b", rtt, epoch.Add(-rtt/2+time.Second+skew))
	}
	ping(200*time.Millisecond, 0)
	assert.Equal(t, time.Second, a.Offsets()["b"], "half the round trip off")

	ping(20*time.Millisecond, 0)
	ping(300*time.Millisecond, 140*time.Millisecond) // read late: a slow path one way (by at most half the round trip)
	assert.Equal(t, time.Second, a.Offsets()["b"], "the slow ping does not count")

	ping(20*time.Millisecond, 2*time.Millisecond)
	assert.Equal(t, time.Second+2*time.Millisecond, a.Offsets()["b"], "among equals, the newest")

	for range clockSamples {
		ping(50*time.Millisecond, 5*time.Millisecond)
	}
	assert.Equal(t, time.Second+5*time.Millisecond, a.Offsets()["b"], "the last %d pings only", clockSamples)
	assert.Equal(t, 1, a.Clock().Members)
}

// A clock that does not decode is counted and ignored; an ack without one
// is ignored, not counted.
func TestBadClockIsCountedAndIgnored(t *testing.T) {
	now := epoch
	a := clockNode(t, "a", &now)
	join(a, "b")
	p := (*pings)(a)
	p.NotifyPingComplete(fakeNode("b"), time.Millisecond, nil)
	assert.Zero(t, a.Counters().BadClock, "no clock: a member that sends none")
	for _, b := range [][]byte{{1}, {0xff, 1, 2}, make([]byte, 1000), {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		p.NotifyPingComplete(fakeNode("b"), time.Millisecond, b)
	}
	assert.Equal(t, uint64(4), a.Counters().BadClock)
	assert.Empty(t, a.Offsets())
	assert.Equal(t, Clock{}, a.Clock())
}

// A member that fails or leaves is forgotten, and so are pings that come
// back after; as are pings of a member never seen.
func TestClockForgetsMembersGone(t *testing.T) {
	now := epoch
	a := clockNode(t, "a", &now)
	join(a, "b", "c")
	ack(a, "b", 0, epoch.Add(time.Second))
	ack(a, "c", 0, epoch.Add(time.Second))
	require.Equal(t, 2, a.Clock().Members)

	(*events)(a).NotifyLeave(fakeNode("b"))
	ack(a, "b", 0, epoch.Add(time.Second)) // a ping back late
	ack(a, "x", 0, epoch.Add(time.Second)) // never seen
	assert.Equal(t, map[string]time.Duration{"c": time.Second}, a.Offsets())
	assert.Equal(t, Clock{Offset: -time.Second / 2, Members: 1}, a.Clock())

	join(a, "b") // back
	ack(a, "b", 0, epoch.Add(3*time.Second))
	assert.Equal(t, map[string]time.Duration{"b": 3 * time.Second, "c": time.Second}, a.Offsets(), "measured anew")
}

// Over memberlist, a member whose clock is 2 s ahead sees itself 2 s off
// the cluster, and the others see themselves on time. The members run on
// memnet's gossip, in a bubble: memberlist's timers run on the fake clock,
// and no time passes during a ping.
func TestClockAcrossCluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := memnet.New(1)
		t.Cleanup(func() { time.Sleep(10 * time.Second) }) // memberlist's goroutines outlive its shutdown by a probe (8 s)
		start := func(name string, i byte, now func() time.Time, join ...string) *Membership {
			tr, err := nw.Gossip(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, i}), 7946))
			require.NoError(t, err)
			m, err := New(Config{Name: name, Join: join, PushPullInterval: time.Hour, RejoinInterval: time.Hour,
				Transport: tr, Now: now}, newHost(8000+uint16(i), name))
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			m.Start(ctx, func(f func()) bool { wg.Add(1); go func() { defer wg.Done(); f() }(); return true })
			t.Cleanup(func() { cancel(); wg.Wait(); m.Leave(200 * time.Millisecond) })
			return m
		}
		a := start("a", 1, nil)
		b := start("b", 2, nil, a.Addr())
		c := start("c", 3, func() time.Time { return time.Now().Add(2 * time.Second) }, a.Addr())

		// memberlist pings one member a second: wait, with a deadline.
		began := time.Now()
		for a.Clock().Members < 2 || b.Clock().Members < 2 || c.Clock().Members < 2 {
			require.Less(t, time.Since(began), time.Minute, "every member measured by every other")
			time.Sleep(100 * time.Millisecond)
		}
		const µs = float64(time.Microsecond) // an ack's clock is in microseconds
		assert.InDelta(t, 2*time.Second, c.Clock().Offset, µs, "c is ahead")
		assert.InDelta(t, 0, a.Clock().Offset, µs)
		assert.InDelta(t, 0, b.Clock().Offset, µs)
		assert.InDelta(t, 2*time.Second, a.Offsets()["c"], µs)
		assert.InDelta(t, 0, a.Offsets()["b"], µs)
		assert.InDelta(t, -2*time.Second, c.Offsets()["a"], µs)
		for _, m := range []*Membership{a, b, c} {
			assert.Zero(t, m.Counters().BadClock)
		}
	})
}

// A clock that steps is seen at the next ping of each member, not eight
// pings later: a sample the kept ones' round trips cannot explain starts
// the member's history anew. A step of this node's own clock moves every
// member's offset at once, before any ping.
func TestClockSteps(t *testing.T) {
	now := epoch
	a := clockNode(t, "a", &now)
	join(a, "b", "c")
	for range clockSamples {
		ack(a, "b", 10*time.Millisecond, epoch.Add(-5*time.Millisecond))
		ack(a, "c", time.Millisecond, epoch)
	}
	assert.Equal(t, time.Duration(0), a.Clock().Offset)
	ack(a, "b", 200*time.Millisecond, epoch.Add(-100*time.Millisecond+time.Hour)) // b stepped an hour ahead, on a slow ping
	assert.Equal(t, time.Hour, a.Offsets()["b"], "its history starts anew")
	ack(a, "b", 250*time.Millisecond, epoch.Add(-125*time.Millisecond+time.Hour+100*time.Millisecond))
	assert.Equal(t, time.Hour, a.Offsets()["b"], "within what the round trips explain: the history is kept, the faster ping counts")

	real := time.Now()
	a.cfg.Now, a.mono = func() time.Time { return time.Now().Add(epoch.Sub(real)) }, time.Now // a's wall clock, and a monotonic one beside
	a.stepBase.mono = time.Time{}                                                             // looked at anew
	a.Clock()
	a.cfg.Now = func() time.Time { return time.Now().Add(epoch.Sub(real) + time.Minute) } // a steps a minute ahead
	assert.InDelta(t, (-time.Minute).Seconds(), a.Offsets()["c"].Seconds(), 0.05, "seen before any ping")
	assert.InDelta(t, (time.Hour - time.Minute).Seconds(), a.Offsets()["b"].Seconds(), 0.05)
	assert.Zero(t, a.Clock().Offset, "the median clock is a's now: b is an hour ahead, c a minute behind")
}
