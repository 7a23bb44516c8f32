package sim_test

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/sim"
)

var (
	seeds  = flag.Int("sim.seeds", 3, "how many seeded histories TestSim runs (make sim: 200)")
	first  = flag.Uint64("sim.first", 1, "the first seed TestSim runs")
	only   = flag.Uint64("sim.seed", 0, "run this seed alone (a replay)")
	keep   = flag.String("sim.keep", "", "with -sim.seed: keep only these faults, by index (a shrunk replay), e.g. 0,3")
	shrink = flag.Bool("sim.shrink", true, "shrink a failing history to the fewest faults that still fail")
	tally  = flag.Bool("sim.tally", false, "print what the histories exercised and found (make sim)")
	nokey  = flag.Bool("sim.nokey", false, "run every history without a cluster key, and so no key rotation (tells a bug of sealing from others)")
)

// run runs plan p in a bubble of its own.
func run(t *testing.T, p sim.Plan) *sim.Report {
	var r *sim.Report
	synctest.Test(t, func(t *testing.T) { r = sim.Run(p) })
	return r
}

// TestSim runs seeded histories of a cluster under faults and checks
// every invariant in each (package doc). A failure prints the seed, the
// command that replays it, and the history shrunk to the fewest faults
// that still fail.
func TestSim(t *testing.T) {
	var sum sim.Tally
	var mu sync.Mutex
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range seedList() {
			t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
				t.Parallel()
				p := plan(seed)
				r := run(t, p)
				mu.Lock()
				sum.Add(r)
				mu.Unlock()
				if r.Failed() {
					report(t, p, r)
				}
			})
		}
	})
	if *tally {
		fmt.Print(sum.String())
	} else {
		t.Log(sum.String())
	}
}

func seedList() []uint64 {
	if *only != 0 {
		return []uint64{*only}
	}
	var s []uint64
	for i := range *seeds {
		s = append(s, *first+uint64(i))
	}
	return s
}

// plan is the seed's plan, with only the faults -sim.keep names.
func plan(seed uint64) sim.Plan {
	p := sim.PlanFor(seed)
	if *nokey { // and no key to rotate
		p.Keyed = false
		p = p.Without(func(i int) bool { return p.Faults[i].Kind == sim.Rotate })
	}
	if *only == 0 || *keep == "" {
		return p
	}
	var idx []int
	for _, f := range strings.Split(*keep, ",") {
		if i, err := strconv.Atoi(f); err == nil {
			idx = append(idx, i)
		}
	}
	return p.Keep(idx)
}

// report fails t with the history, what broke, and how to replay it,
// shrunk when it can be.
func report(t *testing.T, p sim.Plan, r *sim.Report) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s", p)
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "FAIL %s\n", f)
	}
	fmt.Fprintf(&b, "replay: go test ./sim -run 'TestSim$' -sim.seed=%d%s%s -v\n", p.Seed, keepFlag(p, *keep), nokeyFlag())
	if *shrink && *keep == "" && len(p.Faults) > 0 {
		kept := sim.Shrink(p, func(q sim.Plan) bool { return run(t, q).Failed() })
		fmt.Fprintf(&b, "shrunk to %d of %d faults:\n%sreplay: go test ./sim -run 'TestSim$' -sim.seed=%d -sim.keep=%s%s -v\n",
			len(kept), len(p.Faults), p.Keep(kept), p.Seed, joinInts(kept), nokeyFlag())
	}
	// What broke comes last too: a CI log keeps only its tail.
	t.Errorf("%s\nlast warnings of each member:\n%s\n%s", b.String(), r.Logs, b.String())
}

func keepFlag(p sim.Plan, keep string) string {
	if keep == "" {
		return ""
	}
	return " -sim.keep=" + keep
}

func nokeyFlag() string {
	if *nokey {
		return " -sim.nokey"
	}
	return ""
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

var figures = flag.Bool("sim.figures", false, "run TestSimWindowFigures (make sim)")

// TestSimWindowFigures runs the windowed history the documents quote:
// three members, clocks ±100 ms apart, a 10 s window in 1 s slices of
// 100,000 keys at 1 %, keys added through all three at a steady rate for
// 60 s, 5 % of datagrams lost (and some duplicated and reordered) the
// whole time. Every windowed invariant is checked, and the figures
// printed.
func TestSimWindowFigures(t *testing.T) {
	if !*figures {
		t.Skip("-sim.figures")
	}
	p := sim.NewWindowPlan(1)
	p.Nodes, p.Length, p.Window.Capacity = 3, 60*time.Second, 100_000
	p.Fsync = p.Fsync[:3]
	p.Faults = []sim.Fault{{Kind: sim.Lossy, At: 0, Dur: 60 * time.Second, Net: memnet.Faults{Drop: 0.05, Duplicate: 0.02, Reorder: true, MaxDelay: 2}}}
	r := run(t, p)
	if r.Failed() {
		report(t, p, r)
	}
	w := r.Window
	t.Logf("%d keys acknowledged; keys missing within the window %d (late %d); out of the window present %.3f%% of %d; never added present %.3f%% of %d; most bytes a member's window took %d",
		r.Acked, w.Missing, w.Late, 100*float64(w.OldTrue)/float64(w.Old), w.Old, 100*float64(w.NeverTrue)/float64(w.Never), w.Never, w.MaxBytes)
}
