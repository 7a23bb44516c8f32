package respserver

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a throttle's clock and sleeper: a sleep moves the clock
// on at once, and is recorded.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) sleep(_ context.Context, d time.Duration) bool {
	c.advance(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	return true
}

func (c *fakeClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

func (t *authThrottle) useClock(c *fakeClock) { t.now, t.sleep = c.now, c.sleep }

// attempt is one AUTH as login makes it: admitted (after a wait), then
// done.
func attempt(t *authThrottle, c *fakeClock, from netip.Addr, failed bool) (time.Duration, bool) {
	wait, ok := t.admit(from)
	if !ok {
		return 0, false
	}
	c.advance(wait)
	t.done(from, failed)
	return wait, true
}

// TestAuthThrottleDelays: a source's first 3 wrong passwords are free;
// each further attempt waits, 100 ms doubling to the cap of 5 s; another
// source is not slowed; a quiet minute forgets the source.
func TestAuthThrottleDelays(t *testing.T) {
	c := newFakeClock()
	th := newAuthThrottle(AuthLimits{})
	th.useClock(c)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	var waits []time.Duration
	for range 12 {
		w, ok := attempt(th, c, a, true)
		require.True(t, ok)
		waits = append(waits, w)
	}
	ms := time.Millisecond
	require.Equal(t, []time.Duration{0, 0, 0, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms,
		5000 * ms, 5000 * ms, 5000 * ms}, waits)

	w, ok := attempt(th, c, b, true)
	require.True(t, ok)
	require.Zero(t, w, "another source is not slowed")

	// Attempts at once on many connections take turns, and past the
	// cap are refused at once.
	c.advance(5 * time.Second)
	w1, ok1 := th.admit(a)
	w2, ok2 := th.admit(a)
	_, ok3 := th.admit(a)
	require.True(t, ok1 && ok2)
	require.Equal(t, []time.Duration{0, 5000 * ms}, []time.Duration{w1, w2}, "the second waits for the first's turn")
	require.False(t, ok3, "a wait past the cap is refused")
	th.done(a, true)
	th.done(a, true)

	// A right password still waits its turn, then is let in.
	c.advance(5 * time.Second)
	w, ok = attempt(th, c, a, false)
	require.True(t, ok)
	require.Equal(t, 5*time.Second, w)

	// Quiet for a minute: forgotten, free again.
	c.advance(time.Minute + 5*time.Second)
	w, ok = attempt(th, c, a, true)
	require.True(t, ok)
	require.Zero(t, w)
}

// TestAuthThrottleBounds: an IPv6 source is its /64; the table remembers
// at most Sources, the least recently active making room.
func TestAuthThrottleBounds(t *testing.T) {
	c := newFakeClock()
	th := newAuthThrottle(AuthLimits{Sources: 100})
	th.useClock(c)
	for i := range 3 {
		attempt(th, c, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)), true)
	}
	w, _ := th.admit(netip.MustParseAddr("2001:db8::ffff:1"))
	require.Equal(t, 100*time.Millisecond, w, "one /64, one source")
	th.done(netip.MustParseAddr("2001:db8::ffff:1"), true)
	for i := range 1000 {
		attempt(th, c, netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), true)
		require.LessOrEqual(t, th.sources(), 100)
	}
	w, _ = th.admit(netip.MustParseAddr("2001:db8::1"))
	require.Zero(t, w, "the oldest made room")
}

// TestAuthGuessing: 20,000 wrong passwords pipelined on one connection
// get 3 answers, then the connection closes; each next attempt from the
// source waits twice as long as the last (the throttle's sleeper is
// fake: nothing sleeps), HELLO AUTH and AUTH user pass alike; another
// source is not slowed; after the wait, the right password still works.
func TestAuthGuessing(t *testing.T) {
	ls := startLive(t, 4<<20, "right")
	clock := newFakeClock()
	ls.auth.useClock(clock)

	c, r := ls.dial(t, "127.0.0.1")
	var guesses []byte
	for i := range 20_000 {
		guesses = appendCommand(guesses, "AUTH", fmt.Sprint("wrong", i))
	}
	go c.Write(guesses)
	all, err := io.ReadAll(r)
	require.NoError(t, err, "the node closed the connection")
	require.Equal(t, strings.Repeat("-"+errWrongPass+"\r\n", 3), string(all))
	require.Empty(t, clock.sleeps(), "the first 3 are free")

	// The next connection: each form of AUTH waits, 100 ms, 200, 400.
	c, r = ls.dial(t, "127.0.0.1")
	_, err = c.Write([]byte(string(appendCommand(nil, "AUTH", "default", "wrong")) +
		string(appendCommand(nil, "HELLO", "3", "AUTH", "default", "wrong")) + "AUTH wrong\r\nPING\r\n"))
	require.NoError(t, err)
	all, err = io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("-"+errWrongPass+"\r\n", 3), string(all), "closed after the third: PING unanswered")
	ms := time.Millisecond
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms}, clock.sleeps())

	// Another source: not slowed.
	c, r = ls.dial(t, "127.0.0.2")
	_, err = c.Write([]byte("AUTH wrong\r\n"))
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "-"+errWrongPass+"\r\n", line)
	require.Len(t, clock.sleeps(), 3)

	// The right password, on a new connection: it waits its turn (800 ms)
	// and is let in.
	c, r = ls.dial(t, "127.0.0.1")
	_, err = c.Write([]byte("AUTH right\r\nPING\r\n"))
	require.NoError(t, err)
	for _, want := range []string{"+OK\r\n", "+PONG\r\n"} {
		line, err = r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, want, line)
	}
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms}, clock.sleeps())
	counts := ls.Counts()
	require.Equal(t, uint64(7), counts.AuthFailed)
	require.Equal(t, uint64(4), counts.AuthDelayed)
	require.Zero(t, counts.AuthRefused)
}
