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
	}
	err := c.Reserve(a, "f3", 100, now)
	require.ErrorIs(t, err, ErrQuota)
	assert.Contains(t, err.Error(), "holds 3 filters")
	require.NoError(t, c.Reserve(netip.MustParseAddr("192.0.2.2"), "g", 100, now), "another source has its own")

	live["f0"] = false // dropped, by anyone
	require.NoError(t, c.Reserve(a, "f3", 100, now))
	live["f3"] = true
	c.Cancel(a, "f3", false) // say its create failed
	live["f3"] = false
	require.NoError(t, c.Reserve(a, "f4", 100, now))
	live["f4"] = true

	// Two creates of one name at once from a: one makes it, the other
	// finds it made and cancels — the filter stays counted as a's.
	b := netip.MustParseAddr("192.0.2.3")
	require.NoError(t, c.Reserve(b, "race", 100, now))
	require.NoError(t, c.Reserve(b, "race", 100, now))
	live["race"] = true
	c.Cancel(b, "race", true)
	require.NoError(t, c.Reserve(b, "r2", 100, now))
	live["r2"] = true
	require.NoError(t, c.Reserve(b, "r3", 100, now))
	live["r3"] = true
	err = c.Reserve(b, "r4", 100, now)
	require.ErrorIs(t, err, ErrQuota, "race, r2 and r3 are b's: the cap of 3 a source")
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
		require.NoError(t, c.Reserve(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), name, 100, now))
		live[name] = true
	}
	err := c.Reserve(netip.MustParseAddr("10.0.1.1"), "more", 100, now)
	require.ErrorIs(t, err, ErrQuota)
	assert.Contains(t, err.Error(), "--max-filters")
	live["s0"], live["s1"] = false, false
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
	}
	assert.LessOrEqual(t, len(c.src), maxSources)
}
