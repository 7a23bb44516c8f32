package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func memberNames(n, from int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", 18700+from+i))
	}
	return out
}

func sized(n int, bytes uint64) []Filter {
	var out []Filter
	for i := range n {
		out = append(out, Filter{Name: fmt.Sprintf("f%02d", i), Bytes: bytes + uint64(i%7)*bytes/10, Replicas: 2})
	}
	return out
}

// loads returns each member's bytes, and all bytes placed.
func loads(fs []Filter, placed [][]string) (map[string]uint64, uint64) {
	l := map[string]uint64{}
	var all uint64
	for i, f := range fs {
		for _, m := range placed[i][:f.Replicas] {
			l[m] += f.Bytes
			all += f.Bytes
		}
	}
	return l, all
}

// moved returns the replica bytes whose owner changed between a and b.
func moved(fs []Filter, a, b [][]string) uint64 {
	var out uint64
	for i, f := range fs {
		for _, m := range b[i][:f.Replicas] {
			if !slices.Contains(a[i][:f.Replicas], m) {
				out += f.Bytes
			}
		}
	}
	return out
}

// Over 100 clusters of six members with 60 filters of two replicas, the
// fullest member holds at most the bound over the mean, give or take a
// filter; rendezvous ranking alone leaves it far over.
func TestAssignBoundsLoads(t *testing.T) {
	worstBound, worstPlain := 0.0, 0.0
	for c := range 100 {
		ms, fs := memberNames(6, c*10), sized(60, 1000)
		l, all := loads(fs, Assign(fs, ms, DefaultBound))
		mean := float64(all) / 6
		var plain [][]string
		for _, f := range fs {
			plain = append(plain, Rank(f.Name, ms))
		}
		pl, _ := loads(fs, plain)
		for _, m := range ms {
			worstBound = max(worstBound, float64(l[m])/mean)
			worstPlain = max(worstPlain, float64(pl[m])/mean)
		}
	}
	t.Logf("fullest member over the mean: %.3f bounded, %.3f by rank alone", worstBound, worstPlain)
	assert.LessOrEqual(t, worstBound, DefaultBound+0.03) // one filter is 1.7 % of a member's mean load
	assert.Greater(t, worstPlain, 1.25)
}

// A filter made later moves few made before (the newest of a member it
// fills); a member joining moves about 1/7 of the replica bytes; one
// leaving, its own and a few more (the bound re-balances).
func TestAssignMoves(t *testing.T) {
	var join, leave, leaverOwn, all, late float64
	for c := range 50 {
		ms, fs := memberNames(6, c*10), sized(60, 1000)
		before := Assign(fs, ms, DefaultBound)
		more := Assign(append(slices.Clone(fs), Filter{Name: "late", Bytes: 1000, Replicas: 2}), ms, DefaultBound)
		late += float64(moved(fs, before, more[:len(fs)]))

		joined := Assign(fs, append(slices.Clone(ms), fmt.Sprintf("127.0.0.1:%d", 19900+c)), DefaultBound)
		_, a := loads(fs, before)
		all += float64(a)
		join += float64(moved(fs, before, joined))

		gone := ms[c%6]
		left := Assign(fs, slices.DeleteFunc(slices.Clone(ms), func(m string) bool { return m == gone }), DefaultBound)
		leave += float64(moved(fs, before, left))
		l, _ := loads(fs, before)
		leaverOwn += float64(l[gone])
	}
	t.Logf("a 7th member moves %.3f of the bytes (1/7 = %.3f); a member leaving moves %.3f × its own; a filter made moves %.3f × its size of others",
		join/all, 1.0/7, leave/leaverOwn, late/50/2000)
	if join/all > 1.0/7+0.05 {
		t.Errorf("a 7th member moves %.3f of the bytes, over 1/7 + 5 %%", join/all)
	}
	if leave/leaverOwn > 1.1 {
		t.Errorf("a member leaving moves %.3f × its own bytes", leave/leaverOwn)
	}
}
