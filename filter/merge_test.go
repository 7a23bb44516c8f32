package filter

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// all returns every row of f in MergeRows form.
func all(t testing.TB, f *Filter) []byte {
	t.Helper()
	b, err := f.CopyRows(nil, 0, f.Rows())
	require.NoError(t, err)
	return b
}

// mergeAll ORs all of src into dst.
func mergeAll(t testing.TB, dst, src *Filter) []uint64 {
	t.Helper()
	changed, err := dst.MergeRows(src.Fingerprint(), 0, all(t, src), nil)
	require.NoError(t, err)
	return changed
}

func filled(t testing.TB, seed uint64, n int) *Filter {
	f := newBlocked(t, 5000, 0.01)
	rng := rand.New(rand.NewPCG(seed, seed))
	for range n {
		f.Add(key("m", rng.IntN(1_000_000)))
	}
	return f
}

func TestMergeLaws(t *testing.T) {
	for _, layout := range []Layout{Classic, Blocked} {
		mk := func(seed uint64) *Filter {
			if layout == Classic {
				f := NewClassic()
				rng := rand.New(rand.NewPCG(seed, 0))
				for range 30 {
					f.Add(key("c", rng.IntN(1000)))
				}
				return f
			}
			return filled(t, seed, 2000)
		}
		empty := func() *Filter { f, _ := NewFromFingerprint(mk(0).Fingerprint(), 0); return f }
		union := func(fs ...*Filter) []byte {
			u := empty()
			for _, f := range fs {
				mergeAll(t, u, f)
			}
			return all(t, u)
		}
		a, b, c := mk(1), mk(2), mk(3)
		// commutative
		assert.Equal(t, union(a, b), union(b, a), "%v commutative", layout)
		// associative: (a∪b)∪c = a∪(b∪c)
		ab, bc := empty(), empty()
		mergeAll(t, ab, a)
		mergeAll(t, ab, b)
		mergeAll(t, bc, b)
		mergeAll(t, bc, c)
		assert.Equal(t, union(ab, c), union(a, bc), "%v associative", layout)
		// idempotent
		aa := union(a)
		x := empty()
		mergeAll(t, x, a)
		assert.Empty(t, mergeAll(t, x, a), "second merge changes no row")
		assert.Equal(t, aa, all(t, x), "%v idempotent", layout)
		assert.Equal(t, all(t, a), aa, "merge into empty copies exactly")
	}
}

func TestMergeKeepsKeysAndReportsChangedRows(t *testing.T) {
	a, b := newBlocked(t, 1000, 0.01), newBlocked(t, 1000, 0.01)
	a.Add([]byte("from-a"))
	b.Add([]byte("from-b"))
	changed := mergeAll(t, a, b)
	assert.Len(t, changed, 1, "one key, one row")
	assert.True(t, a.Has([]byte("from-a")))
	assert.True(t, a.Has([]byte("from-b")))
}

func TestMergeRefusals(t *testing.T) {
	f := filled(t, 1, 500)
	before := all(t, f)
	other := filled(t, 2, 500)
	rows := all(t, other)
	rb := f.RowBytes()

	seeded, err := New(Config{Layout: Blocked, Capacity: 5000, FPRate: 0.01, Seed: 7})
	require.NoError(t, err)
	bigger := newBlocked(t, 50_000, 0.01)

	for name, tc := range map[string]struct {
		fp    Fingerprint
		first uint64
		data  []byte
		want  error
	}{
		"seed differs":       {seeded.Fingerprint(), 0, rows[:rb], ErrFingerprint},
		"rows differ":        {bigger.Fingerprint(), 0, rows[:rb], ErrFingerprint},
		"classic into new":   {NewClassic().Fingerprint(), 0, make([]byte, 50), ErrFingerprint},
		"partial row":        {f.Fingerprint(), 0, rows[:rb+1], ErrRowLength},
		"past the end":       {f.Fingerprint(), f.Rows() - 1, rows[:2*rb], ErrRowRange},
		"first out of range": {f.Fingerprint(), f.Rows() + 1, nil, ErrRowRange},
		"whole and one more": {f.Fingerprint(), 0, append(slices.Clone(rows), rows[:rb]...), ErrRowRange},
	} {
		changed, err := f.MergeRows(tc.fp, tc.first, tc.data, nil)
		assert.ErrorIs(t, err, tc.want, name)
		assert.Empty(t, changed, name)
	}
	assert.Equal(t, before, all(t, f), "refused merges change nothing")
	assert.Equal(t, uint64(len(before)/rb), f.Rows(), "never grows")

	_, err = f.CopyRows(nil, f.Rows(), 1)
	assert.ErrorIs(t, err, ErrRowRange)
	_, err = f.MergeRows(seeded.Fingerprint(), 0, rows[:rb], nil)
	assert.ErrorContains(t, err, "filter: fingerprint mismatch: have blocked/xxh3-64")
}

func TestChangeTracking(t *testing.T) {
	f := newBlocked(t, 10_000, 0.01)
	collect := func(since uint64) []Run { return slices.Collect(f.ChangedRuns(since)) }

	g0 := f.Advance()
	assert.Empty(t, collect(0), "nothing changed yet")

	f.Add([]byte("x"))
	assert.Empty(t, collect(g0), "changes show after Advance")
	g1 := f.Advance()
	runs := collect(g0)
	require.Len(t, runs, 1)
	row := runs[0].First
	assert.Equal(t, uint64(1), runs[0].Count)

	g2 := f.Advance()
	assert.Empty(t, collect(g1), "idle generations carry nothing")
	f.Add([]byte("x"))
	assert.Equal(t, g2+1, f.Advance())
	assert.Empty(t, collect(g2), "an add that flips no bit is no change")

	// Merged rows are changes too: they spread onward.
	other := newBlocked(t, 10_000, 0.01)
	other.Add([]byte("y"))
	changed := mergeAll(t, f, other)
	g3 := f.Advance()
	got := collect(g3 - 1)
	require.Len(t, got, 1)
	assert.Equal(t, changed[0], got[0].First)
	assert.Len(t, collect(0), map[bool]int{true: 1, false: 2}[changed[0] == row])
	assert.Equal(t, g3, f.Generation())
	assert.Equal(t, g3, f.LastChanged())
	f.Advance()
	assert.Equal(t, g3, f.LastChanged(), "an idle generation changes nothing")
}

func TestChangedRunsCoalesce(t *testing.T) {
	f := newBlocked(t, 10_000, 0.01)
	data := make([]byte, 3*f.RowBytes())
	for i := range data {
		data[i] = 1
	}
	_, err := f.MergeRows(f.Fingerprint(), 62, data, nil) // crosses a block edge
	require.NoError(t, err)
	_, err = f.MergeRows(f.Fingerprint(), 100, data[:f.RowBytes()], nil)
	require.NoError(t, err)
	f.Advance()
	assert.Equal(t, []Run{{62, 3}, {100, 1}}, slices.Collect(f.ChangedRuns(0)))
	n := 0
	for range f.ChangedRuns(0) {
		n++
		break
	}
	assert.Equal(t, 1, n, "stops when the loop does")
}

// TestConcurrentDeltaReplication runs adders and a merger against a filter
// while a replicator ships deltas (Advance, ChangedRuns, CopyRows) to a
// replica. When the writers stop and one last round runs, the replica must
// equal the source: no change is ever lost between generations.
func TestConcurrentDeltaReplication(t *testing.T) {
	src := newBlocked(t, 20_000, 0.01)
	replica := newBlocked(t, 20_000, 0.01)
	other := newBlocked(t, 20_000, 0.01)
	for i := range 3000 {
		other.Add(key("o", i))
	}
	otherRows := all(t, other)

	var since uint64
	ship := func() {
		g := src.Advance()
		for run := range src.ChangedRuns(since) {
			b, err := src.CopyRows(nil, run.First, run.Count)
			require.NoError(t, err)
			_, err = replica.MergeRows(src.Fingerprint(), run.First, b, nil)
			require.NoError(t, err)
		}
		since = g
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := key("w", w*10_000+i)
				src.Add(k)
				if !src.Has(k) {
					t.Errorf("false negative right after add")
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rb := src.RowBytes()
		for r := uint64(0); r < src.Rows(); r += 7 {
			_, err := src.MergeRows(src.Fingerprint(), r, otherRows[r*uint64(rb):(r+1)*uint64(rb)], nil)
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				ship()
				_ = src.Stats()
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	ship()
	assert.Equal(t, all(t, src), all(t, replica), "replica holds every change")
	for w := range 4 {
		for i := range 5000 {
			require.True(t, replica.Has(key("w", w*10_000+i)))
		}
	}
}

func TestLoadRowsIsMergeRows(t *testing.T) {
	for _, src := range []*Filter{filled(t, 7, 3000), func() *Filter {
		c := NewClassic()
		c.Add([]byte("abc"))
		return c
	}()} {
		merged, _ := NewFromFingerprint(src.Fingerprint(), 0)
		loaded, _ := NewFromFingerprint(src.Fingerprint(), 0)
		mergeAll(t, merged, src)
		require.NoError(t, loaded.LoadRows(src.Fingerprint(), 0, all(t, src)))
		require.NoError(t, loaded.LoadRows(src.Fingerprint(), 1, all(t, src)[src.RowBytes():]), "twice, from row 1: idempotent")
		assert.Equal(t, all(t, merged), all(t, loaded))
		merged.Advance()
		loaded.Advance()
		assert.Equal(t, slices.Collect(merged.ChangedRuns(0)), slices.Collect(loaded.ChangedRuns(0)), "loaded rows count as changed")

		other, _ := New(Config{Layout: Blocked, Capacity: 10, FPRate: 0.5})
		assert.ErrorIs(t, loaded.LoadRows(other.Fingerprint(), 0, nil), ErrFingerprint)
		assert.ErrorIs(t, loaded.LoadRows(src.Fingerprint(), src.Rows(), make([]byte, src.RowBytes())), ErrRowRange)
		assert.ErrorIs(t, loaded.LoadRows(src.Fingerprint(), 0, make([]byte, src.RowBytes()+1)), ErrRowLength)
	}
}

func TestChangedRunsFrom(t *testing.T) {
	f := filled(t, 3, 500)
	f.Advance()
	all := slices.Collect(f.ChangedRuns(0))
	for _, from := range []uint64{0, 1, 63, 64, 65, all[len(all)/2].First, all[len(all)/2].First + 1, f.Rows()} {
		var want []Run
		for _, r := range all {
			if end := r.First + r.Count; end > from {
				lo := max(r.First, from)
				want = append(want, Run{First: lo, Count: end - lo})
			}
		}
		assert.Equal(t, want, slices.Collect(f.ChangedRunsFrom(0, from)), "from %d", from)
	}
}

func TestHashVariants(t *testing.T) {
	f := newBlocked(t, 1000, 0.01)
	h := f.KeyHash([]byte("k"))
	assert.False(t, f.HasHash(h))
	assert.True(t, f.AddHash(h))
	assert.True(t, f.Has([]byte("k")), "AddHash(KeyHash(k)) is Add(k)")
	assert.False(t, f.Add([]byte("k")))
	assert.True(t, f.HasHash(f.KeyHash([]byte("k"))))
}

// TestConcurrentWritersLoseNoBit runs adders and bulk mergers against one
// filter at once, every one of them writing the same stripes. Writes are
// read-modify-writes: if two of them ever interleaved on a word, a bit
// would be lost and the filter would differ from the OR of what was
// written. Classic filters, whose rows all share one stripe, too.
func TestConcurrentWritersLoseNoBit(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func() *Filter
	}{
		{"blocked", func() *Filter { return newBlocked(t, 20_000, 0.01) }},
		{"classic", NewClassic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, want := tc.new(), tc.new()
			dst.CountBits()
			const writers, keys = 4, 3000
			srcs := make([][]byte, writers)
			for w := range writers {
				s := tc.new()
				for i := range keys {
					s.Add(key(fmt.Sprint("m", w), i))
					want.Add(key(fmt.Sprint("m", w), i))
					want.Add(key(fmt.Sprint("a", w), i))
				}
				srcs[w] = all(t, s)
			}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range keys {
						dst.Add(key(fmt.Sprint("a", w), i))
					}
				})
				wg.Go(func() {
					rb, rows := uint64(dst.RowBytes()), dst.Rows()
					for first := uint64(0); first < rows; first += 37 { // runs across stripes and words of marks
						n := min(37, rows-first)
						if _, err := dst.MergeRows(dst.Fingerprint(), first, srcs[w][first*rb:(first+n)*rb], nil); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			require.Equal(t, all(t, want), all(t, dst), "every bit written is held")
			require.Equal(t, dst.scanBits(), dst.SetBits(), "every bit set is counted once")
			g := dst.Advance()
			var rows uint64
			for run := range dst.ChangedRuns(0) {
				rows += run.Count
			}
			assert.NotZero(t, g)
			assert.Equal(t, nonEmptyRows(dst), rows, "every changed row is stamped")
		})
	}
}

// nonEmptyRows counts the rows of f with a bit set.
func nonEmptyRows(f *Filter) uint64 {
	var n uint64
	for r := range f.Rows() {
		if f.rowSet(r) {
			n++
		}
	}
	return n
}

// SetBits counts bits as they are set once CountBits is on, and by a scan
// of every word otherwise; loading rows turns counting off until asked
// again.
func TestSetBits(t *testing.T) {
	f := newBlocked(t, 10_000, 0.01)
	for i := range 500 {
		f.Add(key("s", i))
	}
	scanned := f.SetBits()
	require.NotZero(t, scanned)
	f.CountBits()
	require.Equal(t, scanned, f.SetBits())
	other := filled(t, 3, 2000)
	other.CountBits()
	for i := range 500 {
		f.Add(key("t", i))
	}
	_, err := f.MergeRows(other.Fingerprint(), 0, all(t, other), nil)
	require.Error(t, err, "another sizing")
	g := newBlocked(t, 5000, 0.01)
	g.CountBits()
	mergeAll(t, g, other)
	require.Equal(t, other.SetBits(), g.SetBits())
	require.Equal(t, f.scanBits(), f.SetBits())

	require.NoError(t, f.LoadRows(f.Fingerprint(), 0, all(t, newBlocked(t, 10_000, 0.01))))
	require.False(t, f.counting)
	require.Equal(t, f.scanBits(), f.SetBits())
}
