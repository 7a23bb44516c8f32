package sim_test

import (
	"testing"
	"time"

	"github.com/rmbd/rmbd/sim"
)

// Histories that found bugs in rmbd, kept as they were shrunk: each
// failed before its fix. The plan is the seed's workload with the one
// fault that broke it, spelled out, so that a change to how plans are
// drawn does not lose it.
var regressions = []struct {
	name   string
	seed   uint64
	faults []sim.Fault
	ttl    time.Duration // the tombstone TTL, when the seed's is not the one
}{
	// A bit flipped in a FILTER file kept the member down even with
	// --repair: listing the data directory's folders read every FILTER
	// file first (store.Dir.Folders now lists them unread).
	{"damaged FILTER file", 4, []sim.Fault{{Kind: sim.Corrupt, Node: 1, At: 10 * time.Second, Dur: time.Second, File: "FILTER"}}, 0},
	// A bit flipped in the CATALOG file kept the member down for good,
	// --repair or not (with --repair it is now set aside, the folders
	// kept, and the catalog learned again from the members).
	{"damaged CATALOG", 77, []sim.Fault{{Kind: sim.Corrupt, Node: 1, At: 14 * time.Second, Dur: time.Second, File: "CATALOG"}}, 0},
	// A bit flipped in the CATALOG's version read as a file of a newer
	// rmbd, which --repair must not touch, so the member stayed down
	// (the checksum is now verified first: it is damage).
	{"CATALOG version flipped", 103, []sim.Fault{{Kind: sim.Corrupt, Node: 2, At: 14 * time.Second, Dur: time.Second,
		File: "/data/CATALOG", Offset: 9}}, 0},
	// A member down longer than the tombstone TTL refused, for good, the
	// filters created while it was away: a version it did not know,
	// created before the TTL, was taken for one dropped and forgotten.
	// (So did any member added a day after a filter was made.)
	{"away past the tombstone TTL", 199, []sim.Fault{{Kind: sim.Crash, Node: 3, At: 4950 * time.Millisecond, Dur: 11 * time.Second,
		After: 3}}, 5 * time.Second},
	// Two members that created one name with the same sizing while apart
	// hold one filter, but rows are exchanged for the earlier version
	// only: the keys the member cut off added to its own never reached
	// the others (its rows are now folded into the earlier version).
	{"same sizing created apart", 8646, []sim.Fault{
		{Kind: sim.Isolate, Node: 3, At: 2400 * time.Millisecond, Dur: 11850 * time.Millisecond},
		{Kind: sim.Isolate, Node: 3, At: 13600 * time.Millisecond, Dur: 4100 * time.Millisecond}}, 0},
	// A member stopped to be corrupted, restarted by a crash meanwhile
	// and down again when the bit flipped: keys it acknowledged between
	// were taken as safe on its disk (the simulator now dates a
	// corruption from the flip too, not only from the stop).
	{"flip after a restart between", 4235, []sim.Fault{
		{Kind: sim.Corrupt, Node: 2, At: 13 * time.Second, Dur: 8400 * time.Millisecond},
		{Kind: sim.Crash, Node: 2, At: 14050 * time.Millisecond, Dur: 2850 * time.Millisecond, After: 2, Tear: true},
		{Kind: sim.Crash, Node: 2, At: 20100 * time.Millisecond, Dur: 1550 * time.Millisecond, After: 5, Tear: true}}, 0},
}

func TestRegressions(t *testing.T) {
	for _, c := range regressions {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := sim.NewPlan(c.seed)
			p.Faults = c.faults
			if c.ttl > 0 {
				p.TombstoneTTL = c.ttl
			}
			if r := run(t, p); r.Failed() {
				report(t, p, r)
			}
		})
	}
}
