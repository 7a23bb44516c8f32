package sim

import "slices"

// Shrink returns the indexes of the fewest faults of p that still make
// fails report true: each fault in turn is left out, and stays out if the
// history still fails without it, until no single fault can go. The
// workload is kept whole, so the same seed with these faults (Plan.Keep)
// replays the shrunk history.
func Shrink(p Plan, fails func(Plan) bool) []int {
	kept := make([]int, len(p.Faults))
	for i := range kept {
		kept[i] = i
	}
	for changed := true; changed; {
		changed = false
		for j := 0; j < len(kept); j++ {
			try := slices.Delete(slices.Clone(kept), j, j+1)
			if fails(p.Keep(try)) {
				kept, changed = try, true
				j--
			}
		}
	}
	return kept
}
