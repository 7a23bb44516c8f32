package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWindowAcrossTheCluster: three members, a filter of 100,000 keys per
// 10 s window in 1 s slices at 1 %, keys added through all three at a
// steady 10,000 a second for 30 s of the bubble's time. At every check,
// on every member: every key added between 10 s and 1 s ago answers true;
// keys added over 12 s ago, and keys never added, answer true at no more
// than 1.25 %; the filter takes at most 1.2 × 1.3·n·(−log10 p) bytes.
func TestWindowAcrossTheCluster(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		ns := tn.cluster3(node.DefaultConfig())
		u := tn.station()
		q := create("recent", 100_000, 0.01)
		q.Window, q.Slices = 10_000, 10
		_, e := filterOp(t, u, ns[0], q)
		require.Nil(t, e)
		tn.everywhere("recent", false, ns...)

		type batch struct {
			at   time.Time
			keys [][]byte
		}
		var batches []batch
		const step, perStep = 200 * time.Millisecond, 2000
		var sc store.Scratch
		bits := make([]byte, perStep/8)
		never := 0
		for s := range 150 {
			b := batch{at: time.Now()}
			for i := range perStep {
				b.keys = append(b.keys, fmt.Appendf(nil, "key-%d-%d", s, i))
			}
			for i, n := range ns { // a third through each
				part := b.keys[i*perStep/3 : (i+1)*perStep/3]
				_, _, err := n.Registry().Lookup([]byte("recent")).Winner().Add(part, bits, &sc)
				require.NoError(t, err)
			}
			batches = append(batches, b)
			<-time.After(step)
			tn.round(ns...)
			tn.settle()
			if s%25 != 24 {
				continue
			}
			now := time.Now()
			for i, n := range ns {
				f := n.Registry().Lookup([]byte("recent")).Winner()
				assert.LessOrEqual(t, f.Bytes(), uint64(1.2*1.3*100_000*2), "n%d's bytes", i)
				old, oldTrue := 0, 0
				for _, b := range batches {
					age := now.Sub(b.at)
					for j := 0; j < len(b.keys); j += 5 {
						switch has := f.Has(b.keys[j]); {
						case age >= time.Second && age <= 10*time.Second:
							require.True(t, has, "n%d lost %s, added %v ago", i, b.keys[j], age)
						case age > 12*time.Second:
							old++
							if has {
								oldTrue++
							}
						}
					}
				}
				fp := 0
				for range 20_000 {
					never++
					if f.Has(fmt.Appendf(nil, "never-%d", never)) {
						fp++
					}
				}
				assert.LessOrEqual(t, float64(fp)/20_000, 0.0125, "n%d: false positives at %v", i, now)
				if old > 0 {
					assert.LessOrEqual(t, float64(oldTrue)/float64(old), 0.0125, "n%d: keys out of the window", i)
				}
				t.Logf("n%d at %v: %d bytes in %d slices, fp %.3f%%, %d of %d old keys true", i, now.Sub(batches[0].at).Round(time.Second),
					f.Bytes(), len(f.Segments()), 100*float64(fp)/20_000, oldTrue, old)
			}
		}
	})
}

// TestWindowClockSkew: a member whose clock is 2 s ahead of the others'
// learns it from their pings: it refuses adds to a windowed filter of 1 s
// slices, saying why, is not ready, and says its offset in its stats;
// the others take the adds, and every member takes adds to other filters.
func TestWindowClockSkew(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		a := tn.member(cfg)
		b := tn.member(cfg, a)
		ahead := cfg
		ahead.Now = func() time.Time { return time.Now().Add(2 * time.Second) }
		c := tn.member(ahead, a)
		ns := []*node.Node{a, b, c}
		tn.joined(ns...)
		u := tn.station()
		q := create("recent", 1000, 0.01)
		q.Window, q.Slices = 10_000, 10
		_, e := filterOp(t, u, a, q)
		require.Nil(t, e)
		_, e = filterOp(t, u, a, create("plain", 1000, 0.01))
		require.Nil(t, e)
		tn.everywhere("recent", false, ns...)
		tn.everywhere("plain", false, ns...)

		tn.until("each knows how far its clock is", 30*time.Second, func() bool { // once each has pinged both others
			return c.Registry().ClockOffset() > 1900*time.Millisecond &&
				a.Registry().ClockOffset().Abs() < 10*time.Millisecond && b.Registry().ClockOffset().Abs() < 10*time.Millisecond
		}, ns...)
		assert.InDelta(t, 0, a.Registry().ClockOffset().Seconds(), 0.01)
		assert.InDelta(t, 2, c.Stats().ClockOffset.Seconds(), 0.01)
		h := c.Health()
		assert.False(t, h.Ready)
		assert.Contains(t, h.Why, "clock is 2s off the cluster's, past the 500ms its windowed filters tolerate")
		assert.True(t, a.Health().Ready)

		_, e = namedBatch(t, u, c, "recent", wire.TypeAddBatch, "k")
		require.NotNil(t, e, "c refuses windowed adds")
		assert.Equal(t, wire.CodeRefused, e.Code) // its words cut to the request's size over UDP; in full:
		_, _, err := c.Registry().Lookup([]byte("recent")).Winner().Add([][]byte{[]byte("k")}, make([]byte, 1), &store.Scratch{})
		assert.ErrorContains(t, err, "this node's clock is too far from the cluster's for windowed filters: it is 2s off")
		got, e := namedBatch(t, u, c, "plain", wire.TypeAddBatch, "k")
		require.Nil(t, e)
		assert.Equal(t, []bool{true}, got)
		got, e = namedBatch(t, u, a, "recent", wire.TypeAddBatch, "k")
		require.Nil(t, e)
		assert.Equal(t, []bool{true}, got)
	})
}
