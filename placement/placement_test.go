package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("node-", i)
	}
	return out
}

func filters(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("filter-%d/1", i)
	}
	return out
}

// Every member ranks alike whatever order it lists the members in; the
// owners are the first R, every member for Every or R past the members.
func TestOwnersAreTheSameEverywhere(t *testing.T) {
	ms := names(6)
	owners := Owners("users/1", ms, 2)
	require.Len(t, owners, 2)
	shuffled := slices.Clone(ms)
	slices.Reverse(shuffled)
	assert.Equal(t, owners, Owners("users/1", shuffled, 2))
	assert.Equal(t, []string{"node-0", "node-1", "node-2", "node-3", "node-4", "node-5"}, ms, "the slice given is left as it is")
	assert.ElementsMatch(t, ms, Owners("users/1", ms, Every))
	assert.ElementsMatch(t, ms, Owners("users/1", ms, 9))
	assert.Equal(t, Rank("users/1", ms)[:2], owners)
	assert.Contains(t, Owners("users/1", ms, 2), owners[1])
	assert.Empty(t, Owners("users/1", nil, 2))
	assert.NotEqual(t, Owners("users/1", ms, 6), Owners("users/2", ms, 6), "another generation ranks otherwise")
}

// Each member owns about R/N of the filters.
func TestOwnersAreSpread(t *testing.T) {
	ms, fs := names(6), filters(6000)
	held := map[string]int{}
	for _, f := range fs {
		for _, o := range Owners(f, ms, 2) {
			held[o]++
		}
	}
	for _, m := range ms {
		assert.InDelta(t, 2000, held[m], 200, m) // 2 × 6000 / 6
	}
}

// A seventh member takes about 1/7 of the replicas, each from one of the
// six (never shuffling the others); a member that leaves gives up only
// its own, each filter it held getting one new owner.
func TestMembershipChangesMoveLittle(t *testing.T) {
	six, seven, fs := names(6), names(7), filters(6000)
	moved, total := 0, 0
	for _, f := range fs {
		before, after := Owners(f, six, 2), Owners(f, seven, 2)
		total += len(after)
		for _, o := range after {
			if !slices.Contains(before, o) {
				moved++
				assert.Equal(t, "node-6", o, "only the newcomer takes replicas")
			}
		}
	}
	share := float64(moved) / float64(total)
	assert.LessOrEqual(t, share, 1.0/7+0.05)
	assert.Greater(t, share, 1.0/7-0.05)
	t.Logf("a seventh member takes %.1f%% of the replicas (1/7 = %.1f%%)", 100*share, 100.0/7)

	five := slices.DeleteFunc(slices.Clone(six), func(m string) bool { return m == "node-3" })
	for _, f := range fs {
		before, after := Owners(f, six, 2), Owners(f, five, 2)
		if !slices.Contains(before, "node-3") {
			assert.Equal(t, before, after, "%s: not node-3's, it stays", f)
			continue
		}
		kept := 0
		for _, o := range after {
			if slices.Contains(before, o) {
				kept++
			}
		}
		assert.Equal(t, 1, kept, "%s: its other owner keeps it, one new owner takes node-3's replica", f)
	}
}

func BenchmarkOwners(b *testing.B) {
	ms := names(10)
	for b.Loop() {
		Owners("filter-123/1", ms, 2)
	}
}
