package node_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
)

// A member partitioned away for ten minutes while a million keys were
// added elsewhere gets every key within two anti-entropy intervals of the
// heal. (The replication issue's figure, on the in-memory network and the
// bubble's clock.) The bytes moved are at most 1.2 × those of the rows
// that differ: the member pulls each once, and pushes none of them on.
func TestLongPartitionRepair(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys")
	}
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		ns := tn.cluster3(cfg)
		a, b, c := ns[0], ns[1], ns[2]
		away := c.Addr().Addr()
		tn.nw.Cut(func(from, to netip.AddrPort) bool { return from.Addr() == away || to.Addr() == away })
		keys, minutes := 1_000_000, 10
		if raceEnabled { // the same, smaller: the race detector's cost is in every tick
			keys, minutes = 200_000, 2
		}
		for i := range keys {
			k := fmt.Appendf(nil, "k%d", i)
			if i%2 == 0 {
				a.Filter().Add(k)
			} else {
				b.Filter().Add(k)
			}
			if i%(keys/minutes) == keys/minutes-1 { // a minute per slice
				tn.pass(time.Minute, ns...)
			}
		}
		// the whole cluster's rows, and how many c lacks
		f, fc := a.Filter(), c.Filter()
		want, _ := f.CopyRows(nil, 0, f.Rows())
		have, _ := fc.CopyRows(nil, 0, fc.Rows())
		differ := 0
		for r := 0; r < len(want); r += 64 {
			for i := r; i < r+64; i++ {
				if want[i] != have[i] {
					differ++
					break
				}
			}
		}
		before := make([]node.Stats, 3)
		for i, n := range ns {
			before[i] = n.Stats()
		}
		tn.nw.Cut(nil)
		healed := time.Now()
		tn.until("every key on the member back", 2*cfg.AntiEntropyInterval, func() bool {
			got, _ := fc.CopyRows(nil, 0, fc.Rows())
			return string(got) == string(want)
		}, a, b, c)
		took := time.Since(healed)
		tn.pass(2*cfg.AntiEntropyInterval, ns...) // and what else goes to it after
		var moved uint64
		for i, n := range ns {
			st := n.Stats()
			moved += st.SyncBytesSent - before[i].SyncBytesSent
		}
		pulled := c.Stats().Count(counter.AntiEntropyRows) - before[2].Count(counter.AntiEntropyRows)
		moved += pulled * 64 // rows the pulls changed: here, every row pulled
		t.Logf("away %d min while %d keys were added: every key on it %v after the heal; %d of %d rows differed; moved %d bytes = %.2f × (differing rows × 64 B)",
			minutes, keys, took.Round(time.Millisecond), differ, f.Rows(), moved, float64(moved)/float64(differ*64))
		if float64(moved) > 1.2*float64(differ*64) {
			t.Errorf("moved %d bytes, over 1.2 × the %d that differ", moved, differ*64)
		}
	})
}

// pass lets d of fake time go by in steps of a gossip interval, ticking
// ns and settling after each.
func (tn *testNet) pass(d time.Duration, ns ...*node.Node) {
	const step = 200 * time.Millisecond
	for gone := time.Duration(0); gone < d; gone += step {
		tn.settle()
		<-time.After(step)
		tn.round(ns...)
	}
}
