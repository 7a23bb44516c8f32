package gossip

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeltaRingConverges(t *testing.T) {
	nw := newNetwork(t, 4, DefaultConfig(), blocked(t))
	for i := range 4 {
		peerOf(nw.node(i).g, nw.node((i+1)%4).addr)
		for j := range 50 {
			nw.node(i).f.Add(k(fmt.Sprint("ring", i), j))
		}
	}
	nw.roundsUntil(4, nw.converged)
	for i := range 4 {
		for j := range 4 {
			for x := range 50 {
				require.True(t, nw.node(i).f.Has(k(fmt.Sprint("ring", j), x)))
			}
		}
	}
}

// TestConvergesDespiteFaults: loss, duplication and reordering only delay
// convergence. Adds keep coming during the faults; once the network is
// clean again every key is on every node and all filters are identical.
func TestConvergesDespiteFaults(t *testing.T) {
	for _, tc := range []struct {
		name                string
		drop, dup           float64
		shuffle             bool
		nodes, keysPerRound int
	}{
		{"loss", 0.3, 0, false, 3, 20},
		{"duplication", 0, 0.5, false, 3, 20},
		{"reordering", 0, 0, true, 3, 20},
		{"everything", 0.2, 0.2, true, 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.PruneAfter = 1000 // faults must not cost peers here
			nw := newNetwork(t, tc.nodes, cfg, blocked(t))
			nw.peerAll()
			nw.faults(tc.drop, tc.dup, tc.shuffle)
			var keys [][]byte
			for r := range 20 {
				for i := range tc.keysPerRound {
					key := k(fmt.Sprint("f", r), i)
					keys = append(keys, key)
					nw.node(nw.rng.IntN(tc.nodes)).f.Add(key)
				}
				nw.round()
			}
			nw.faults(0, 0, false)
			nw.roundsUntil(5, nw.converged)
			for _, a := range nw.order {
				for _, key := range keys {
					require.True(t, nw.nodes[a].f.Has(key), "node %v lost %s", a, key)
				}
			}
		})
	}
}

// TestPartitionHeals: two groups cut off from each other add different
// keys; after the cut is lifted every node has every key.
func TestPartitionHeals(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PruneAfter = 1000
	nw := newNetwork(t, 6, cfg, blocked(t))
	nw.peerAll()
	side := func(a netip.AddrPort) int { return int(a.Port()-8000) % 2 }
	nw.net.Cut(func(from, to netip.AddrPort) bool { return side(from) != side(to) })
	for r := range 10 {
		for i := range 6 {
			nw.node(i).f.Add(k(fmt.Sprint("p", r, "-", i), i))
		}
		nw.round()
	}
	assert.False(t, nw.converged())
	assert.False(t, nw.node(0).f.Has(k("p0-1", 1)), "the other side's keys have not crossed")
	nw.net.Cut(nil)
	nw.roundsUntil(3, nw.converged)
	for i := range 6 {
		for r := range 10 {
			for j := range 6 {
				require.True(t, nw.node(i).f.Has(k(fmt.Sprint("p", r, "-", j), j)))
			}
		}
	}
}
