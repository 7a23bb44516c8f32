package node_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Three members add keys to one growing filter at once, each its own:
// every member opens each stage — because its own view of the one before
// is full, or because a member's rows of it came first — and every stage
// ends byte-identical on all three; no key is lost, the false-positive
// rate stays under the filter's, its stages and bytes within bounds.
// 10,000,000 keys (-short: 1,000,000; with the race detector 200,000)
// into a filter reserved for 10,000 at 1 %, expansion 2.
func TestGrowingFilterThreeWriters(t *testing.T) {
	keys := 10_000_000
	switch {
	case raceEnabled:
		keys = 200_000
	case testing.Short():
		keys = 1_000_000
	}
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		ns := tn.cluster3(cfg)
		u := tn.station()
		q := create("grows", 10_000, 0.01)
		q.Growth = 3 // expansion 2
		_, e := filterOp(t, u, ns[0], q)
		require.Nil(t, e)
		tn.everywhere("grows", false, ns...)
		filters := make([]*registry.Filter, 3)
		for i, n := range ns {
			filters[i] = n.Registry().Lookup([]byte("grows")).Winner()
		}
		const slices = 400 // each member adds a slice of its keys, then a gossip round
		per := keys / 3 / slices
		var sc store.Scratch
		batch := make([][]byte, 0, 512)
		bits := make([]byte, 64)
		for s := range slices {
			for i, f := range filters {
				for j := 0; j < per; j += 512 {
					batch = batch[:0]
					for k := j; k < min(j+512, per); k++ {
						batch = append(batch, fmt.Appendf(nil, "k%d-%d", i, s*per+k))
					}
					_, err := f.AddUnacked(batch, bits, &sc)
					require.NoError(t, err)
					clear(bits)
				}
			}
			tn.round(ns...)
		}
		tn.until("every stage byte-identical on every member", time.Minute, func() bool {
			return identicalStages(filters)
		}, ns...)

		stages := filters[0].Segments()
		var bytes uint64
		openedHere := make([]int, len(stages))
		fills := make([]string, len(stages)) // keys estimated ÷ capacity, per stage
		for i, st := range stages {
			bytes += st.Rows().SizeBytes()
			est := st.Rows().Stats().EstimatedKeys
			fills[i] = fmt.Sprintf("%.2f", est/float64(uint64(10_000)<<i))
			if i < len(stages)-1 {
				assert.Less(t, est, 1.1*float64(uint64(10_000)<<i), "stage %d overfilled", i)
			}
			for _, f := range filters {
				if !f.Segments()[i].OpenedByRows() {
					openedHere[i]++
				}
			}
		}
		concurrent := 0
		for _, n := range openedHere[1:] {
			if n > 1 {
				concurrent++
			}
		}
		missing := 0
		for i := range 3 {
			for k := range slices * per {
				if !filters[(i+1)%3].Has(fmt.Appendf(nil, "k%d-%d", i, k)) {
					missing++
				}
			}
		}
		const asked = 1_000_000
		fp := 0
		for k := range asked {
			if filters[k%3].Has(fmt.Appendf(nil, "never-%d", k)) {
				fp++
			}
		}
		t.Logf("%d keys through 3 members: %d stages, %d bytes, each filled to %v of its capacity; stages each member opened for its own view (the rest for a member's rows): %v; opened on two or more members at once: %d; missing %d; false positives %d of %d (%.3f %%)",
			slices*per*3, len(stages), bytes, fills, openedHere, concurrent, missing, fp, asked, 100*float64(fp)/asked)
		assert.Zero(t, missing, "no key lost")
		assert.LessOrEqual(t, float64(fp)/asked, 0.01)
		assert.LessOrEqual(t, len(stages), 12)
		assert.LessOrEqual(t, bytes, uint64(32_000_000))
	})
}

// identicalStages reports whether fs, one filter on several members,
// have the same stages with the same rows.
func identicalStages(fs []*registry.Filter) bool {
	want := fs[0].Segments()
	for _, f := range fs[1:] {
		got := f.Segments()
		if len(got) != len(want) {
			return false
		}
		for i := range want {
			a, b := want[i].Rows(), got[i].Rows()
			if a.Fingerprint() != b.Fingerprint() {
				return false
			}
			ra, _ := a.CopyRows(nil, 0, a.Rows())
			rb, _ := b.CopyRows(nil, 0, b.Rows())
			if string(ra) != string(rb) {
				return false
			}
		}
	}
	return true
}

// A filter made small (an auto-created one: 100 keys) costs each member
// under 4 KiB of memory until keys come: its stage, change tracking,
// catalog entry and replication state. 1,000 of them, made on one member
// of three, measured on the heap (filters this small live there).
func TestSmallFilterCost(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's allocations are not the node's")
	}
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.MaxFilters = 2000
		ns := tn.cluster3(cfg)
		u := tn.station()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const filters = 1000
		for i := range filters {
			_, e := filterOp(t, u, ns[i%3], create(fmt.Sprint("small-", i), cfg.AutoCreateCapacity, cfg.FPRate))
			require.Nil(t, e)
		}
		tn.everywhere(fmt.Sprint("small-", filters-1), false, ns...)
		for range 10 {
			tn.round(ns...)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		each := float64(after.HeapAlloc-before.HeapAlloc) / filters / 3
		t.Logf("a filter of %d keys costs each member %.0f bytes", cfg.AutoCreateCapacity, each)
		assert.Less(t, each, 4096.0)
	})
}
