package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// A member that gets rows of the next stage, not opened here, opens it
// when their fingerprint is that stage's — one stage a frame: rows of a
// later stage open nothing (one frame cannot make it allocate a filter's
// worth of stages).
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

	fp := func(i int) filter.Fingerprint { return fa.Segments()[i].Rows().Fingerprint() }
	wrong := fp(1)
	wrong.Seed++
	assert.Nil(t, vs.SegmentOrStage(1, wrong), "not the stage's fingerprint")
	assert.Nil(t, vs.SegmentOrStage(3, fp(3)), "not the next stage")
	assert.Nil(t, vs.SegmentOrStage(gossip.MaxStages, fp(3)))
	require.Len(t, vs[0].Segments(), 1, "nothing opened")

	for i, s := range fa.Segments() { // rows come stage by stage, as a member pushes or a pull brings them
		got := vs.SegmentOrStage(uint64(i), fp(i))
		require.NotNil(t, got, "stage %d", i)
		rows, err := s.Rows().CopyRows(nil, 0, s.Rows().Rows())
		require.NoError(t, err)
		_, err = got.Rows().MergeRows(fp(i), 0, rows, nil)
		require.NoError(t, err, "stage %d: the same filter on both", i)
	}
	require.Len(t, vs[0].Segments(), 4)
	for i := range 5000 {
		require.True(t, vs.Has(fmt.Appendf(nil, "k-%d", i)))
	}
}

// A drop while a filter grows gives back every byte it took, the stage
// opened meanwhile included: --max-memory never shrinks for good.
func TestDropWhileGrowing(t *testing.T) {
	r := open(t, testConfig())
	before, _ := r.Memory()
	f := create(t, r, "g", growing(100, 0.01, 2))
	p, err := r.Drop("g")
	require.NoError(t, err) // out of the table; not closed until Apply
	_, err = f.grow(1, false)
	require.ErrorIs(t, err, ErrDropped, "a filter out of the table does not grow")
	r.Apply(p)
	after, _ := r.Memory()
	assert.Equal(t, before, after)
}

// After one stage opens, what was measured of the others' adds to the
// stage before is not judged against the new one: an add opens one stage
// at most, however full a member's rows made the stage before.
func TestOneStageAnAdd(t *testing.T) {
	r := open(t, testConfig())
	f := create(t, r, "g", growing(1000, 0.01, 1))
	r.Tick(1)
	addMany(t, f, "k", 900)
	r.Tick(1)
	src := f.Segments()[0].Rows()
	other, err := filter.NewFromFingerprint(src.Fingerprint(), 0)
	require.NoError(t, err)
	for i := range 5000 {
		other.Add(fmt.Appendf(nil, "o-%d", i))
	}
	rows, _ := other.CopyRows(nil, 0, other.Rows())
	_, err = src.MergeRows(src.Fingerprint(), 0, rows, nil)
	require.NoError(t, err)
	r.Tick(3) // the others added thousands in a round
	for i := range 5 {
		addMany(t, f, fmt.Sprint("x", i), 8)
	}
	assert.Len(t, f.Segments(), 2)
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

// grownOnDisk is a registry in a data directory with a filter "g" of
// capacity 500 grown to hold keys k-0 … k-7999.
func grownOnDisk(t *testing.T) (string, *Registry, *Filter) {
	dir := t.TempDir()
	r, err := openAt(t, dir, false)
	require.NoError(t, err)
	f := create(t, r, "g", growing(500, 0.01, 2))
	addMany(t, f, "k", 8000)
	return dir, r, f
}

// A stage folder missing from between others refuses the start, naming
// the stages; with --repair they open empty and the rest keep their keys.
func TestMissingStageFolder(t *testing.T) {
	dir, r, f := grownOnDisk(t)
	stages := len(f.Segments())
	require.GreaterOrEqual(t, stages, 4)
	keysOf := func(s *Segment) (in []int) {
		for i := range 8000 {
			if s.Rows().Has(fmt.Appendf(nil, "k-%d", i)) {
				in = append(in, i)
			}
		}
		return in
	}
	last := keysOf(f.Segments()[stages-1])
	folder := segmentFolder(f.folder, 1)
	require.NoError(t, r.Close())
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "filters", folder)))

	_, err := openAt(t, dir, false)
	require.ErrorIs(t, err, store.ErrDamaged)
	require.ErrorContains(t, err, "stages [1]")

	r, err = openAt(t, dir, true)
	require.NoError(t, err)
	defer r.Close()
	vs := r.Lookup([]byte("g"))
	require.Len(t, vs[0].Segments(), stages, "every stage, the missing one empty")
	assert.Zero(t, vs[0].Segments()[1].Rows().SetBits())
	for _, i := range last {
		require.True(t, vs.Has(fmt.Appendf(nil, "k-%d", i)), "a key of the last stage")
	}
}

// A filter grown past a --max-filter-bytes lowered since keeps its stages
// at the next start, and grows no more.
func TestRestoreUnderALowerBound(t *testing.T) {
	dir, r, f := grownOnDisk(t)
	stages, bytes := len(f.Segments()), f.Bytes()
	require.NoError(t, r.Close())

	d, err := store.OpenDir(dir)
	require.NoError(t, err)
	c := testConfig()
	c.Store, c.Dir, c.MaxFilterBytes = store.DefaultOptions(), d, bytes/2
	r, err = Open(c)
	require.NoError(t, err)
	defer r.Close()
	vs := r.Lookup([]byte("g"))
	require.Len(t, vs[0].Segments(), stages)
	for i := range 8000 {
		require.True(t, vs.Has(fmt.Appendf(nil, "k-%d", i)))
	}
	var errFull error
	for i := 0; errFull == nil && i < 100; i++ {
		keys := make([][]byte, 100)
		for j := range keys {
			keys[j] = fmt.Appendf(nil, "more-%d-%d", i, j)
		}
		_, errFull = vs[0].AddUnacked(keys, make([]byte, 13), &store.Scratch{})
	}
	require.ErrorIs(t, errFull, ErrFull)
	assert.Len(t, vs[0].Segments(), stages, "no stage past the bound")
}

// A batch that spans two stages waits for both stores' logs: once its
// wait is over, every record it wrote is on disk (--fsync always), and
// the add never blocked on the first store's disk itself.
func TestBatchAcrossStagesWaitsForBoth(t *testing.T) {
	d, err := store.OpenDir(t.TempDir())
	require.NoError(t, err)
	c := testConfig()
	c.Store, c.Dir = store.DefaultOptions(), d
	c.Store.Fsync = store.FsyncAlways
	r, err := Open(c)
	require.NoError(t, err)
	defer r.Close()
	r.Start()
	f := create(t, r, "g", growing(100, 0.01, 2))
	keys := make([][]byte, 400)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "k-%d", i)
	}
	_, wait, err := f.Add(keys, make([]byte, 50), &store.Scratch{})
	require.NoError(t, err)
	segs := f.Segments()
	require.Greater(t, len(segs), 2)
	var ws store.Waits
	ws.Add(wait)
	assert.Equal(t, len(segs), ws.Len(), "one log a stage written, each waited for")
	require.NoError(t, wait.Wait(t.Context()))
	for _, s := range segs {
		l := s.Store().Log()
		assert.GreaterOrEqual(t, l.Synced(), l.End(), "stage %d on disk", s.ID())
	}
}

// A key an older stage holds is not new: adding it again answers 0 and
// takes no room in the newest stage, as RedisBloom's filters do.
func TestOlderStagesAnswerForTheirKeys(t *testing.T) {
	r := open(t, testConfig())
	f := create(t, r, "g", growing(500, 0.01, 2))
	addMany(t, f, "k", 3000)
	require.Greater(t, len(f.Segments()), 2)
	newest := f.Segments()[len(f.Segments())-1]
	before := newest.Rows().SetBits()
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "k-%d", i) // in the first stages
	}
	bits := make([]byte, 125)
	fresh, _, err := f.Add(keys, bits, &store.Scratch{})
	require.NoError(t, err)
	assert.Zero(t, fresh)
	assert.Equal(t, make([]byte, 125), bits)
	assert.Equal(t, before, newest.Rows().SetBits(), "no room taken")

	mixed := [][]byte{[]byte("k-1"), []byte("brand-new"), []byte("k-2"), []byte("another")}
	bits = make([]byte, 1)
	fresh, _, err = f.Add(mixed, bits, &store.Scratch{})
	require.NoError(t, err)
	assert.Equal(t, 2, fresh)
	assert.Equal(t, byte(0b1010), bits[0])
}

// A filter from a catalog of before filters grew (no expansion, not
// NONSCALING) takes adds past its capacity, as it did, and alarms.
func TestFilterFromBeforeGrowthTakesAdds(t *testing.T) {
	r := open(t, testConfig())
	other := gossip.NewCatalog(time.Hour)
	def, err := blocked(100, 0.01).def("old", 1, 0)
	require.NoError(t, err)
	def.NonScaling = false // as decoded from a catalog written before
	_, err = other.Create("old", def, "n0", time.Now())
	require.NoError(t, err)
	require.NoError(t, r.Apply(r.Merge(other.Entries())).Err)
	f := r.Lookup([]byte("old")).Winner()
	require.NotNil(t, f)
	addMany(t, f, "k", 1000)
	assert.Len(t, f.Segments(), 1)
}
