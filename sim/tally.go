package sim

import (
	"fmt"
	"strings"
	"time"
)

// slowAfter is two thirds of convergeWithin: a history slower than it
// counts as slow in the tally.
const slowAfter = convergeWithin * 2 / 3

// maxSlowSeeds is how many slow histories the tally names.
const maxSlowSeeds = 10

// Tally sums the reports of many histories: what they exercised and
// what they found.
type Tally struct {
	Histories, Failed                           int
	Faults                                      [numFaultKinds]int
	Requests                                    int
	Acked, Stable, Unsynced, Corrupted, Dropped int
	Asked, Refused, DropsLost                   int
	// Full is the filters measured at least half full; FPRatio the
	// highest measured ÷ target false-positive rate among them.
	Full    int
	FPRatio float64
	// Grown is the filters that grew stages; Stages the most stages one
	// had.
	Grown, Stages int
	// Converged is the longest any history took to converge after its
	// last fault healed or its last request.
	Converged time.Duration
	// SlowestSeed is the seed of the history that took Converged.
	SlowestSeed uint64
	// Slow counts the histories that took more than slowAfter: how close
	// the bound is to being missed; SlowSeeds names the first few, and
	// SlowFaults counts the faults they had, by kind.
	Slow       int
	SlowSeeds  []uint64
	SlowFaults [numFaultKinds]int
	// Simulated is the fake time every history ran for together.
	Simulated time.Duration
	// Answers and Errors sum the reports'.
	Answers [numOpKinds]int
	Errors  map[uint16]int
	// Windowed is the windowed histories, Window what they measured
	// together (MaxBytes: the most of any).
	Windowed int
	Window   WindowReport
	// Placed is the placement histories (WriteAll of them with W = R),
	// Placement what they measured together (Placed and Settled: the
	// longest of any).
	Placed, WriteAll int
	Placement        PlacementReport
}

// Add counts r.
func (t *Tally) Add(r *Report) {
	t.Histories++
	if r.Failed() {
		t.Failed++
	}
	for _, f := range r.Plan.Faults {
		t.Faults[f.Kind]++
	}
	t.Requests += len(r.Plan.Ops)
	t.Acked += r.Acked
	t.Stable += r.Stable
	t.Unsynced += r.Unsynced
	t.Corrupted += r.Corrupted
	t.Dropped += r.Dropped
	t.Asked += r.Asked
	t.Refused += r.Refused
	t.DropsLost += r.DropsLost
	t.Full += r.Full
	t.Grown += r.Grown
	t.Stages = max(t.Stages, r.Stages)
	for k, n := range r.Answers {
		t.Answers[k] += n
	}
	if t.Errors == nil {
		t.Errors = map[uint16]int{}
	}
	for code, n := range r.Errors {
		t.Errors[code] += n
	}
	t.FPRatio = max(t.FPRatio, r.FPRatio)
	if r.Converged > t.Converged {
		t.Converged, t.SlowestSeed = r.Converged, r.Plan.Seed
	}
	if r.Converged > slowAfter {
		t.Slow++
		if len(t.SlowSeeds) < maxSlowSeeds {
			t.SlowSeeds = append(t.SlowSeeds, r.Plan.Seed)
		}
		for _, f := range r.Plan.Faults {
			t.SlowFaults[f.Kind]++
		}
	}
	t.Simulated += max(r.Plan.Length, r.Plan.quiet()+r.Converged)
	if w := r.Window; w != nil {
		t.Windowed++
		t.Window.Missing, t.Window.Late = t.Window.Missing+w.Missing, t.Window.Late+w.Late
		t.Window.Old, t.Window.OldTrue = t.Window.Old+w.Old, t.Window.OldTrue+w.OldTrue
		t.Window.Never, t.Window.NeverTrue = t.Window.Never+w.Never, t.Window.NeverTrue+w.NeverTrue
		t.Window.MaxBytes = max(t.Window.MaxBytes, w.MaxBytes)
	}
	if p := r.Placement; p != nil {
		t.Placed++
		if p.WriteAll {
			t.WriteAll++
		}
		s := &t.Placement
		s.Acked, s.Lost, s.Orphaned, s.Steady = s.Acked+p.Acked, s.Lost+p.Lost, s.Orphaned+p.Orphaned, s.Steady+p.Steady
		s.Departed += p.Departed
		s.Requests, s.Forwards, s.ForwardsFailed = s.Requests+p.Requests, s.Forwards+p.Forwards, s.ForwardsFailed+p.ForwardsFailed
		s.Fills, s.FillBytes, s.FillsFailed = s.Fills+p.Fills, s.FillBytes+p.FillBytes, s.FillsFailed+p.FillsFailed
		s.Asked, s.Never, s.NeverTrue = s.Asked+p.Asked, s.Never+p.Never, s.NeverTrue+p.NeverTrue
		s.Placed, s.Settled = max(s.Placed, p.Placed), max(s.Settled, p.Settled)
	}
}

// ratio is a/b, 0 when b is.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// String says what the histories did, on a few lines.
func (t *Tally) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d histories, %d failed, %v simulated\n", t.Histories, t.Failed, t.Simulated.Round(time.Second))
	fmt.Fprintf(&b, "faults:")
	for k, n := range t.Faults {
		fmt.Fprintf(&b, " %v %d", FaultKind(k), n)
	}
	fmt.Fprintf(&b, "\n%d requests; keys acknowledged %d: stable %d, lost 0 allowed: unsynced (everysec crash) %d, "+
		"only copy corrupted %d, filter dropped %d\n", t.Requests, t.Acked, t.Stable, t.Unsynced, t.Corrupted, t.Dropped)
	fmt.Fprintf(&b, "has requests checked %d; starts refused on a corrupted disk %d; drops and creates whose only copy was a corrupted CATALOG %d; "+
		"slowest convergence %v after the last fault or request (seed %d; over %v: %d)\n", t.Asked, t.Refused, t.DropsLost, t.Converged, t.SlowestSeed, slowAfter, t.Slow)
	if t.Slow > 0 {
		fmt.Fprintf(&b, "slow histories: seeds %v; their faults:", t.SlowSeeds)
		for k, n := range t.SlowFaults {
			if n > 0 {
				fmt.Fprintf(&b, " %v %d", FaultKind(k), n)
			}
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "answered:")
	for k, n := range t.Answers {
		if OpKind(k) != OpAddNoAck { // never answered
			fmt.Fprintf(&b, " %v %d", OpKind(k), n)
		}
	}
	fmt.Fprintf(&b, "; error answers by code %v\n", t.Errors)
	fmt.Fprintf(&b, "filters measured at least half full %d: false-positive rate at most %.2f × target; grown past their first stage %d, to %d stages at most\n",
		t.Full, t.FPRatio, t.Grown, t.Stages)
	w := t.Window
	fmt.Fprintf(&b, "windowed histories %d: keys missing within the window %d (late on a lossy network %d); present out of it %.2f%% of %d asked, never added %.2f%% of %d; most bytes a window took %d\n",
		t.Windowed, w.Missing, w.Late, 100*ratio(w.OldTrue, w.Old), w.Old, 100*ratio(w.NeverTrue, w.Never), w.Never, w.MaxBytes)
	p := t.Placement
	fmt.Fprintf(&b, "placement histories %d (W = R %d): keys acknowledged %d (%d while stable), lost %d (allowed: the one copy left with a member cut off %d; "+
		"every copy down or cut off for a while, back since %d); "+
		"requests forwarded %.0f%% of %d (failed %d); fills %d, %d bytes (attempts that found no holder %d); has judged %d, never added present %.2f%% of %d; "+
		"placed at most %v after the heal, settled %v after that\n",
		t.Placed, t.WriteAll, p.Acked, p.Steady, p.Lost, p.Departed, p.Orphaned, 100*ratio(int(p.Forwards), int(p.Requests)), p.Requests, p.ForwardsFailed,
		p.Fills, p.FillBytes, p.FillsFailed, p.Asked, 100*ratio(p.NeverTrue, p.Never), p.Never, p.Placed, p.Settled)
	return b.String()
}
