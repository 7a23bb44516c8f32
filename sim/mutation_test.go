//go:build simmutate

package sim_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/rmbd/rmbd/internal/mutate"
	"github.com/rmbd/rmbd/sim"
)

// The simulator must be able to fail: with each deliberate bug of
// package mutate switched on, a history among the first 200 seeds
// breaks an invariant. (make sim-mutants; a normal build holds none of
// these bugs.)
func TestMutationsAreFound(t *testing.T) {
	for _, m := range []struct {
		name string
		on   *bool
	}{
		{"ack before fsync", &mutate.AckUnsynced},
		{"tombstones ignored", &mutate.IgnoreTombstones},
		{"a load loses rows", &mutate.LoadLosesRows},
		{"deadlines missed", &mutate.DeadlinesMissed},
		{"slices kept forever", &mutate.SlicesKeptForever},
		{"a member's slice rows refused", &mutate.SliceRowsRefused},
		{"an add acknowledged by one owner of W", &mutate.QuorumOfOne},
		{"a new owner filled without pulling", &mutate.FillSkipped},
	} {
		t.Run(m.name, func(t *testing.T) {
			*m.on = true
			defer func() { *m.on = false }()
			var found atomic.Uint64
			t.Run("seeds", func(t *testing.T) {
				for seed := uint64(1); seed <= 200; seed++ {
					t.Run("", func(t *testing.T) {
						t.Parallel()
						if found.Load() != 0 {
							t.Skip("found")
						}
						var r *sim.Report
						synctest.Test(t, func(t *testing.T) { r = sim.Run(sim.PlanFor(seed)) })
						if r.Failed() {
							found.CompareAndSwap(0, seed)
							t.Logf("seed %d: %s", seed, r.Failures[0])
						}
					})
				}
			})
			if found.Load() == 0 {
				t.Fatalf("no history among 200 seeds failed with %q on", m.name)
			}
			t.Logf("%q found by seed %d", m.name, found.Load())
		})
	}
}
