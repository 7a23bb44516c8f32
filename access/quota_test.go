package access

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuotaPerSource(t *testing.T) {
	live := map[string]bool{}
	c := NewCreators(Quota{PerMinute: 5, PerSource: 3}, func(n string) bool { return live[n] })
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		name := fmt.Sprint("f", i)
		require.NoError(t, c.Reserve(a, name, 100, now))
		live[name] = true
		c.Done(a, name, true)
	}
	err := c.Reserve(a, "f3", 100, now)
	require.ErrorIs(t, err, ErrQuota)
	assert.Contains(t, err.Error(), "holds 3 filters")
	require.NoError(t, c.Reserve(netip.MustParseAddr("192.0.2.2"), "g", 100, now), "another source has its own")

	live["f0"] = false // dropped, by anyone
	require.NoError(t, c.Reserve(a, "f3", 100, now))
	c.Done(a, "f3", false) // its create failed
	require.NoError(t, c.Reserve(a, "f4", 100, now))
}

// Creates in flight count: however many a source sends at once, it holds
// no more than its share, whether they made their filter yet or not.
func TestQuotaCountsCreatesInFlight(t *testing.T) {
	live := map[string]bool{}
	c := NewCreators(Quota{PerMinute: 100, PerSource: 2}, func(n string) bool { return live[n] })
	now := time.Unix(1000, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	require.NoError(t, c.Reserve(a, "x", 1, now))
	require.NoError(t, c.Reserve(a, "y", 1, now))
	require.NoError(t, c.Reserve(b, "z", 1, now), "another source's Reserve forgets none of a's in flight")
	require.ErrorIs(t, c.Reserve(a, "w", 1, now), ErrQuota, "two in flight: a's share")
	live["x"], live["y"] = true, true
	c.Done(a, "x", true)
	c.Done(a, "y", true)
	require.ErrorIs(t, c.Reserve(a, "w", 1, now), ErrQuota, "two made")
}

// A create that finds its name made by another create gives the name back
// only if none of its source's made it: two of a's creates of one name at
// once leave it a's; a create racing another source's, or an admin's,
// leaves it theirs.
func TestQuotaRacingCreates(t *testing.T) {
	live := map[string]bool{}
	c := NewCreators(Quota{PerMinute: 100, PerSource: 2}, func(n string) bool { return live[n] })
	now := time.Unix(1000, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	require.NoError(t, c.Reserve(a, "race", 1, now))
	require.NoError(t, c.Reserve(a, "race", 1, now))
	live["race"] = true
	c.Done(a, "race", false) // found it made (or refused: another sizing)
	c.Done(a, "race", true)
	require.NoError(t, c.Reserve(a, "r2", 1, now))
	live["r2"] = true
	c.Done(a, "r2", true)
	require.ErrorIs(t, c.Reserve(a, "r3", 1, now), ErrQuota, "race and r2 are a's")

	require.NoError(t, c.Reserve(b, "race", 1, now))
	c.Done(b, "race", false) // a made it
	require.NoError(t, c.Reserve(b, "b1", 1, now))
	require.NoError(t, c.Reserve(b, "b2", 1, now), "race is not b's")
}

func TestQuotaPerMinute(t *testing.T) {
	c := NewCreators(Quota{PerMinute: 2}, func(string) bool { return false })
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("2001:db8::1")
	same := netip.MustParseAddr("2001:db8::ffff") // the same /64
	require.NoError(t, c.Reserve(a, "x", 1, now))
	require.NoError(t, c.Reserve(same, "y", 1, now))
	err := c.Reserve(a, "z", 1, now)
	require.ErrorIs(t, err, ErrQuota)
	assert.Contains(t, err.Error(), "--creates-per-minute")
	require.ErrorIs(t, c.Reserve(a, "z", 1, now.Add(20*time.Second)), ErrQuota, "a third of a minute: not yet a whole create")
	require.NoError(t, c.Reserve(a, "z", 1, now.Add(31*time.Second)))
	require.NoError(t, c.Reserve(netip.MustParseAddr("2001:db8:0:1::1"), "w", 1, now), "another /64")
}

func TestQuotaShares(t *testing.T) {
	live := map[string]bool{}
	c := NewCreators(Quota{Filters: 4, Bytes: 1000}, func(n string) bool { return live[n] })
	now := time.Unix(1000, 0)
	for i := range 4 {
		name := fmt.Sprint("s", i)
		from := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		require.NoError(t, c.Reserve(from, name, 100, now))
		live[name] = true
		c.Done(from, name, true)
	}
	err := c.Reserve(netip.MustParseAddr("10.0.1.1"), "more", 100, now)
	require.ErrorIs(t, err, ErrQuota)
	assert.Contains(t, err.Error(), "--max-filters")
	live["s0"], live["s1"] = false, false // dropped
	err = c.Reserve(netip.MustParseAddr("10.0.1.1"), "big", 801, now)
	require.ErrorIs(t, err, ErrQuota)
	assert.Contains(t, err.Error(), "--max-memory")
	require.NoError(t, c.Reserve(netip.MustParseAddr("10.0.1.1"), "fits", 800, now))
}

func TestQuotaSourcesBounded(t *testing.T) {
	c := NewCreators(Quota{PerMinute: 1}, func(string) bool { return false })
	now := time.Unix(1000, 0)
	for i := range maxSources + 100 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		require.NoError(t, c.Reserve(a, "n", 1, now.Add(time.Duration(i))))
		c.Done(a, "n", true) // made, then dropped: live says no
	}
	assert.LessOrEqual(t, len(c.src), maxSources)
}
