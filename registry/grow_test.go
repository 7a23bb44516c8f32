package registry

import (
	"fmt"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func growing(capacity uint64, fp float64, x uint32) Sizing {
	return Sizing{Layout: filter.Blocked, Capacity: capacity, FPRate: fp, Expansion: x}
}

// addMany adds keys prefix-0 … prefix-(n-1) in batches of 100.
func addMany(t *testing.T, f *Filter, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 100 {
		var keys [][]byte
		for j := i; j < min(i+100, n); j++ {
			keys = append(keys, fmt.Appendf(nil, "%s-%d", prefix, j))
		}
		_, _, err := f.Add(keys, make([]byte, (len(keys)+7)/8), &store.Scratch{})
		require.NoError(t, err)
	}
}

// A growing filter opens a stage each time its newest holds what it was
// sized for: capacity × expansion^i keys each; every key stays, and the
// false-positive rate stays near the one asked for.
func TestGrowingFilter(t *testing.T) {
	r := open(t, testConfig())
	f := create(t, r, "grows", growing(1000, 0.01, 2))
	const n = 30_000
	addMany(t, f, "k", n)
	segs := f.Segments()
	require.Len(t, segs, 5, "1,000 + 2,000 + 4,000 + 8,000 + 16,000 ≥ 30,000 > 15,000")
	var bytes uint64
	for i, s := range segs {
		assert.Equal(t, uint64(1000)<<i, s.def.Capacity)
		assert.Equal(t, uint64(i), s.ID())
		bytes += s.Rows().SizeBytes()
		if i < len(segs)-1 {
			est := s.Rows().Stats().EstimatedKeys
			assert.InEpsilon(t, float64(s.def.Capacity), est, 0.05, "stage %d filled to its capacity", i)
		}
	}
	assert.Equal(t, bytes, f.Bytes())
	used, _ := r.Memory()
	assert.Equal(t, r.Default().Bytes()+bytes, used, "every stage counted against --max-memory")
	for i := range n {
		require.True(t, f.Has(fmt.Appendf(nil, "k-%d", i)))
	}
	fp := 0
	for i := range 100_000 {
		if f.Has(fmt.Appendf(nil, "never-%d", i)) {
			fp++
		}
	}
	assert.Less(t, float64(fp)/100_000, 0.01)
}

// Stages are bounded: by --max-filter-bytes and by --max-memory; past
// them adds are refused, ErrFull saying why, and the filter keeps what it
// has. A filter that does not grow refuses adds once it holds its
// capacity.
func TestGrowthBounds(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFilterBytes = 64 << 10
	r := open(t, cfg)
	f := create(t, r, "capped", growing(1000, 0.01, 2))
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		keys := make([][]byte, 100)
		for j := range keys {
			keys[j] = fmt.Appendf(nil, "k-%d-%d", i, j)
		}
		_, _, err = f.Add(keys, make([]byte, 13), &store.Scratch{})
	}
	require.ErrorIs(t, err, ErrFull)
	assert.ErrorContains(t, err, "--max-filter-bytes")
	assert.LessOrEqual(t, f.Bytes(), uint64(64<<10))

	fixed := create(t, r, "fixed", blocked(1000, 0.01))
	err = nil
	for i := 0; err == nil && i < 100; i++ {
		keys := make([][]byte, 100)
		for j := range keys {
			keys[j] = fmt.Appendf(nil, "k-%d-%d", i, j)
		}
		_, err = fixed.AddUnacked(keys, make([]byte, 13), &store.Scratch{})
	}
	require.ErrorIs(t, err, ErrFull)
	assert.ErrorContains(t, err, "NONSCALING")
	assert.Len(t, fixed.Segments(), 1)
}

// A member that gets rows of a stage it has not opened opens it — and
// those before it — when their fingerprint is that stage's; any other
// fingerprint opens nothing.
func TestStageOpenedByItsRows(t *testing.T) {
	a, b := open(t, testConfig()), open(t, testConfig())
	fa := create(t, a, "g", growing(500, 0.01, 2))
	addMany(t, fa, "k", 5000) // stages 0–3
	require.Len(t, fa.Segments(), 4)

	p := b.Merge(a.cat.Entries())
	require.NoError(t, b.Apply(p).Err)
	vs := b.Lookup([]byte("g"))
	require.Len(t, vs, 1)
	require.Len(t, vs[0].Segments(), 1)

	s3 := fa.Segments()[3]
	wrong := s3.Rows().Fingerprint()
	wrong.Seed++
	assert.Nil(t, vs.SegmentOrStage(3, wrong), "not the stage's fingerprint")
	assert.Nil(t, vs.SegmentOrStage(gossip.MaxStages, s3.Rows().Fingerprint()))
	require.Len(t, vs[0].Segments(), 1, "nothing opened")

	got := vs.SegmentOrStage(3, s3.Rows().Fingerprint())
	require.NotNil(t, got)
	require.Len(t, vs[0].Segments(), 4)
	for i, s := range fa.Segments() {
		rows, err := s.Rows().CopyRows(nil, 0, s.Rows().Rows())
		require.NoError(t, err)
		dst := vs[0].Segments()[i].Rows()
		_, err = dst.MergeRows(s.Rows().Fingerprint(), 0, rows, nil)
		require.NoError(t, err, "stage %d: the same filter on both", i)
	}
	for i := range 5000 {
		require.True(t, vs.Has(fmt.Appendf(nil, "k-%d", i)))
	}
}

// A growing filter's stages live in folders of their own and come back
// at the next start, every key with them.
func TestStagesRestored(t *testing.T) {
	dir := t.TempDir()
	r, err := openAt(t, dir, false)
	require.NoError(t, err)
	r.Start()
	f := create(t, r, "g", growing(500, 0.01, 3))
	addMany(t, f, "k", 8000)
	stages := len(f.Segments())
	require.GreaterOrEqual(t, stages, 3)
	require.NoError(t, r.Close())

	r, err = openAt(t, dir, false)
	require.NoError(t, err)
	defer r.Close()
	vs := r.Lookup([]byte("g"))
	require.Len(t, vs, 1)
	require.Len(t, vs[0].Segments(), stages)
	for i := range 8000 {
		require.True(t, vs.Has(fmt.Appendf(nil, "k-%d", i)), "k-%d", i)
	}
	used, _ := r.Memory()
	assert.Equal(t, r.Default().Bytes()+vs[0].Bytes(), used)
	addMany(t, vs[0], "more", 100)
}

// One batch far larger than a stage is cut into chunks of a sixteenth of
// the stage's capacity, the stage looked at between them: no stage is
// overfilled by more than a chunk.
func TestLargeBatchFillsStagesInTurn(t *testing.T) {
	r := open(t, testConfig())
	f := create(t, r, "g", growing(100, 0.01, 2))
	keys := make([][]byte, 5000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "k-%d", i)
	}
	bits := make([]byte, len(keys)/8)
	fresh, _, err := f.Add(keys, bits, &store.Scratch{})
	require.NoError(t, err)
	assert.Greater(t, fresh, 4950)
	segs := f.Segments()
	require.Len(t, segs, 6, "100+…+1,600 < 5,000 ≤ …+3,200")
	for _, s := range segs[:len(segs)-1] {
		est := s.Rows().Stats().EstimatedKeys
		assert.Less(t, est, 1.1*float64(s.def.Capacity)+8, "stage %d: %.0f keys for %d", s.ID(), est, s.def.Capacity)
	}
	for _, k := range keys {
		require.True(t, f.Has(k))
	}
}
