package filter

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rowsOf lists the rows of runs one by one.
func rowsOf(runs []Run) []uint64 {
	var out []uint64
	for _, r := range runs {
		for i := range r.Count {
			out = append(out, r.First+i)
		}
	}
	return out
}

// Against a model that keeps every row's stamp: ChangedRuns(since) lists
// every row stamped after since, never one fewer; and exactly those when
// since is within ageSpan generations of the current one, whatever came
// before.
func TestChangedRunsAgainstAModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		f := newBlocked(t, 20_000, 0.01) // a few hundred rows: busy blocks
		rows := f.Rows()
		stamp := make([]uint64, rows) // the model: generation of each row's last change
		var pending, originNow []uint64
		originAt := map[uint64][]uint64{} // row: generations that originated it
		one := make([]byte, 64)
		for step := range 3000 {
			switch {
			case rng.IntN(4) > 0: // set one bit of a row, most often in a few hot rows
				r := rng.Uint64N(rows)
				if rng.IntN(2) == 0 {
					r = rng.Uint64N(8) * 40
				}
				clear(one)
				bit := rng.IntN(512)
				one[bit/8] = 1 << (bit % 8)
				changed, err := f.MergeRows(f.Fingerprint(), r, one, nil)
				require.NoError(t, err)
				pending = append(pending, changed...)
				if rng.IntN(3) == 0 && len(changed) > 0 { // originated here
					f.Originate(changed)
					originNow = append(originNow, changed...)
				}
			default:
				g := f.Advance()
				for _, r := range pending {
					stamp[r] = g
				}
				for _, r := range originNow {
					originAt[r] = append(originAt[r], g)
				}
				pending, originNow = pending[:0], originNow[:0]
				if len(pending) > 0 || step%7 != 0 {
					continue
				}
				for range 5 {
					since := 1 + rng.Uint64N(g)
					got := rowsOf(slices.Collect(f.ChangedRuns(since)))
					var want []uint64
					for r, s := range stamp {
						if s > since {
							want = append(want, uint64(r))
						}
					}
					var origins []uint32
					for r, gens := range originAt {
						if slices.ContainsFunc(gens, func(g uint64) bool { return g > since }) {
							origins = append(origins, uint32(r))
						}
					}
					slices.Sort(origins)
					gotOrigins, ok := f.OriginatedSince(since, nil)
					require.True(t, ok, "a short history fits the log")
					require.Equal(t, origins, gotOrigins, "seed %d, generation %d, since %d: origins", seed, g, since)
					if g-since <= ageSpan {
						require.Equal(t, want, got, "seed %d, generation %d, since %d: exact", seed, g, since)
						continue
					}
					for _, r := range want {
						_, found := slices.BinarySearch(got, r)
						require.True(t, found, "seed %d, generation %d, since %d: row %d (stamped %d) missing", seed, g, since, r, stamp[r])
					}
				}
			}
		}
	}
}

// A row changed in the same generation as a busy block's latest change
// but long before other rows of its block is still found, and a peer that
// lagged far behind gets only rows with bits set.
func TestChangedRunsOfAnOldRowInABusyBlock(t *testing.T) {
	f := newBlocked(t, 20_000, 0.01)
	one := make([]byte, 64)
	set := func(r uint64, bit int) {
		clear(one)
		one[bit/8] = 1 << (bit % 8)
		_, err := f.MergeRows(f.Fingerprint(), r, one, nil)
		require.NoError(t, err)
	}
	set(3, 0)
	early := f.Advance()
	for i := range 40 { // row 5 of the same block changes every generation
		set(5, i+1)
		f.Advance()
	}
	g := f.Generation()
	assert.Equal(t, []Run{{5, 1}}, slices.Collect(f.ChangedRuns(g-1)), "recent: exact")
	assert.Equal(t, []Run{{3, 1}, {5, 1}}, slices.Collect(f.ChangedRuns(early-1)), "row 3 changed after early-1")
	assert.Equal(t, []Run{{3, 1}, {5, 1}}, slices.Collect(f.ChangedRuns(early)),
		"row 3 is older than the ages tell apart: listed again for a peer that far behind")
	assert.Equal(t, []Run{{5, 1}}, slices.Collect(f.ChangedRuns(g-ageSpan)), "within the span: exact")
}

// Change tracking costs under 1 % of the filter's memory (past a few
// blocks of rows: a tiny filter's words are rounded up).
func TestTrackingIsUnderOnePercent(t *testing.T) {
	for _, n := range []uint64{100_000, 1_000_000, 20_000_000} {
		f := newBlocked(t, n, 0.01)
		assert.LessOrEqual(t, float64(f.TrackingBytes()), 0.01*float64(f.SizeBytes()), "%d keys: %d rows", n, f.Rows())
	}
}

func TestHasDirty(t *testing.T) {
	for i := range 16 {
		for m := range uint64(16) {
			w := uint64(0x1111111111111111)&^(uint64(15)<<(4*i)) | m<<(4*i)
			assert.Equal(t, m >= markDirty, hasDirty(w), "mark %d in nibble %d", m, i)
		}
	}
	assert.False(t, hasDirty(0xdddddddddddddddd), "every age 1")
	assert.True(t, hasDirty(0xeddddddddddddddd))
}

// Rows changed by Add and by Originate are this node's origins; rows
// merged are not. OriginatedSince lists a generation's origins once it is
// stamped, and says when its log does not reach back far enough.
func TestOrigins(t *testing.T) {
	f := newBlocked(t, 20_000, 0.01)
	other := newBlocked(t, 20_000, 0.01)
	since := func(s uint64) ([]uint32, bool) { return f.OriginatedSince(s, nil) }

	g0 := f.Advance()
	got, ok := since(0)
	assert.True(t, ok, "the log reaches back to the start")
	assert.Empty(t, got)
	got, ok = since(g0)
	assert.True(t, ok)
	assert.Empty(t, got)

	f.Add([]byte("mine"))
	other.Add([]byte("theirs"))
	merged := mergeAll(t, f, other)
	require.Len(t, merged, 1)
	got, _ = since(g0)
	assert.Empty(t, got, "origins show once stamped")
	g1 := f.Advance()
	assert.Equal(t, g1, f.LastOriginated())
	mine := uint32(blockedRow(f.KeyHash([]byte("mine")), f.Rows()))
	got, ok = since(g0)
	assert.True(t, ok)
	assert.Equal(t, []uint32{mine}, got, "the add, not the merge")
	assert.Len(t, slices.Collect(f.ChangedRuns(g0)), map[bool]int{true: 1, false: 2}[uint32(merged[0]) == mine], "both are changes")

	f.Originate(merged) // learnt from outside the cluster
	g2 := f.Advance()
	got, _ = since(g1)
	assert.Equal(t, []uint32{uint32(merged[0])}, got)
	got, _ = since(g0)
	assert.Equal(t, slices.Sorted(slices.Values(slices.Compact(slices.Sorted(slices.Values([]uint32{mine, uint32(merged[0])}))))), got, "two generations, sorted, once each")
	f.Advance()
	assert.Equal(t, g2, f.LastOriginated(), "an idle generation originates nothing")
}

// Past originLogRows the log forgets its oldest generations, and says so.
func TestOriginLogIsBounded(t *testing.T) {
	f := newBlocked(t, 100_000_000, 0.01) // 1.9M rows
	g0 := f.Advance()
	next := uint64(0)
	add := func(n int) uint64 { // n rows never originated before
		for range n {
			f.markChanged(next%f.Rows(), true)
			next++
		}
		return f.Advance()
	}
	g1 := add(originLogRows / 2)
	_, ok := f.OriginatedSince(g0, nil)
	assert.True(t, ok)
	g2 := add(originLogRows/2 + 1)
	_, ok = f.OriginatedSince(g0, nil)
	assert.False(t, ok, "the first generation is forgotten")
	rows, ok := f.OriginatedSince(g1, nil)
	assert.True(t, ok)
	assert.NotEmpty(t, rows)
	assert.LessOrEqual(t, f.originLog.rows, originLogRows)
	add(originLogRows + 100)
	_, ok = f.OriginatedSince(g2, nil)
	assert.False(t, ok, "a generation past the bound alone is not kept")
	assert.Zero(t, f.originLog.rows)
}

// Rows loaded from disk were stamped by no generation, yet the filter has
// changed: LastChanged says so (a member to fill gets them), and
// ChangedRuns(0) finds them.
func TestLoadedRowsCountAsChanged(t *testing.T) {
	src := newBlocked(t, 20_000, 0.01)
	src.Add([]byte("x"))
	rows, err := src.CopyRows(nil, 0, src.Rows())
	require.NoError(t, err)
	f := newBlocked(t, 20_000, 0.01)
	assert.Zero(t, f.LastChanged(), "never written")
	require.NoError(t, f.LoadRows(f.Fingerprint(), 0, rows))
	assert.Equal(t, uint64(1), f.LastChanged())
	assert.Len(t, slices.Collect(f.ChangedRuns(0)), 1)
	g := f.Advance()
	assert.Empty(t, slices.Collect(f.ChangedRuns(g-1)), "stamped by no generation")
	assert.Equal(t, uint64(1), f.LastChanged())
}
