package dump

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openRegistry(t testing.TB, node string) *registry.Registry {
	t.Helper()
	r, err := registry.Open(registry.Config{Node: node, Default: registry.Sizing{Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.01},
		MaxFilters: 16, TombstoneTTL: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func creator(r *registry.Registry) Create {
	return func(name string, s registry.Sizing) (*registry.Filter, error) {
		p, err := r.Create(name, s)
		if err != nil {
			return nil, err
		}
		res := r.Apply(p)
		return res.Filter, res.Err
	}
}

func makeFilter(t testing.TB, r *registry.Registry, name string, s registry.Sizing) *registry.Filter {
	t.Helper()
	f, err := creator(r)(name, s)
	require.NoError(t, err)
	return f
}

func addKeys(t testing.TB, f *registry.Filter, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 500 {
		var keys [][]byte
		for j := i; j < min(i+500, n); j++ {
			keys = append(keys, fmt.Appendf(nil, "%s-%d", prefix, j))
		}
		_, _, err := f.Add(keys, make([]byte, (len(keys)+7)/8), &store.Scratch{})
		require.NoError(t, err)
	}
}

// dumpAll scans f to the end and returns its chunks.
func dumpAll(t testing.TB, f *registry.Filter) [][]byte {
	t.Helper()
	var chunks [][]byte
	for it, n := uint64(0), 0; ; n++ {
		require.Less(t, n, 100_000, "a scan that never ends")
		next, chunk, err := Scan(f, it, nil)
		require.NoError(t, err)
		if next == 0 {
			assert.Empty(t, chunk, "the end carries nothing")
			return chunks
		}
		require.LessOrEqual(t, len(chunk), MaxChunk)
		chunks, it = append(chunks, chunk), next
	}
}

// sameRows asserts that every stage of a and b holds the same rows.
func sameRows(t *testing.T, a, b *registry.Filter) {
	t.Helper()
	as, bs := a.Segments(), b.Segments()
	require.Equal(t, len(as), len(bs), "stages")
	for i := range as {
		ra, rb := as[i].Rows(), bs[i].Rows()
		require.Equal(t, ra.Fingerprint(), rb.Fingerprint(), "stage %d", i)
		x, err := ra.CopyRows(nil, 0, ra.Rows())
		require.NoError(t, err)
		y, err := rb.CopyRows(nil, 0, rb.Rows())
		require.NoError(t, err)
		require.True(t, bytes.Equal(x, y), "stage %d's rows", i)
	}
}

// A growing filter of several stages, dumped and loaded into another
// registry under another name: the same stages, row for row, every key
// there; loading it all again changes nothing.
func TestRoundTrip(t *testing.T) {
	src, dst := openRegistry(t, "n1"), openRegistry(t, "n2")
	f := makeFilter(t, src, "users", registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Expansion: 2})
	const n = 12_000
	addKeys(t, f, "k", n)
	require.GreaterOrEqual(t, len(f.Segments()), 3, "grown")

	chunks := dumpAll(t, f)
	h, err := DecodeHeader(chunks[0])
	require.NoError(t, err)
	assert.Equal(t, f.Version().Def, h.Def)
	assert.Equal(t, "users", h.Name)
	assert.Equal(t, uint16(len(f.Segments())), h.Stages)

	loaded := 0
	for i, c := range chunks {
		l, err := Load(dst, creator(dst), "copy", c)
		require.NoError(t, err, "chunk %d", i)
		assert.Equal(t, i == 0, l.Created)
		loaded += l.Changed
	}
	g := dst.Lookup([]byte("copy")).Winner()
	require.NotNil(t, g)
	sameRows(t, f, g)
	for i := range n {
		require.True(t, g.Has(fmt.Appendf(nil, "k-%d", i)), "key %d", i)
	}
	assert.Positive(t, loaded)
	first := g.Segments()[0].Rows()
	first.Advance() // as a gossip tick does
	assert.Positive(t, first.LastOriginated(), "loaded rows are this node's to push")

	for _, c := range chunks {
		l, err := Load(dst, creator(dst), "copy", c)
		require.NoError(t, err)
		assert.Zero(t, l.Changed, "loaded twice: nothing new")
	}
}

// A filter with few keys dumps small: empty rows are left out, and the
// dump of an empty filter is its header and empty rows chunks.
func TestEmptyRowsLeftOut(t *testing.T) {
	src := openRegistry(t, "n1")
	f := makeFilter(t, src, "sparse", registry.Sizing{Layout: filter.Blocked, Capacity: 1_000_000, FPRate: 0.01})
	addKeys(t, f, "k", 10)
	total := 0
	for _, c := range dumpAll(t, f) {
		total += len(c)
	}
	rowBytes := f.Segments()[0].Rows().RowBytes()
	assert.Less(t, total, 200+10*(rowBytes+6)+int(f.Bytes()/maxScanRows/uint64(rowBytes)+1)*100,
		"10 keys of a %d-byte filter: %d bytes of dump", f.Bytes(), total)
}

// A classic filter dumps and loads as a blocked one does.
func TestClassicRoundTrip(t *testing.T) {
	src, dst := openRegistry(t, "n1"), openRegistry(t, "n2")
	f := makeFilter(t, src, "old", registry.Sizing{Layout: filter.Classic})
	addKeys(t, f, "k", 50)
	for _, c := range dumpAll(t, f) {
		_, err := Load(dst, creator(dst), "old", c)
		require.NoError(t, err)
	}
	sameRows(t, f, dst.Lookup([]byte("old")).Winner())
}

// Chunks that are damaged, cut short, out of order or of another filter
// are refused, and change nothing.
func TestBadChunksChangeNothing(t *testing.T) {
	src, dst := openRegistry(t, "n1"), openRegistry(t, "n2")
	f := makeFilter(t, src, "users", registry.Sizing{Layout: filter.Blocked, Capacity: 5000, FPRate: 0.01})
	addKeys(t, f, "k", 3000)
	chunks := dumpAll(t, f)
	require.GreaterOrEqual(t, len(chunks), 2)
	rows := chunks[1]

	_, err := Load(dst, creator(dst), "copy", rows)
	assert.ErrorContains(t, err, "header, first", "rows before their header")
	assert.Empty(t, dst.Lookup([]byte("copy")))

	for _, bad := range [][]byte{flip(chunks[0], 20), chunks[0][:len(chunks[0])-1], append(bytes.Clone(chunks[0]), 0)} {
		_, err := Load(dst, creator(dst), "copy", bad)
		assert.ErrorIs(t, err, ErrChunk)
		assert.Empty(t, dst.Lookup([]byte("copy")), "a bad header makes no filter")
	}
	_, err = Load(dst, creator(dst), "copy", chunks[0])
	require.NoError(t, err)
	g := dst.Lookup([]byte("copy")).Winner()
	for i := 12; i < len(rows); i += len(rows) / 7 {
		_, err := Load(dst, creator(dst), "copy", flip(rows, i))
		assert.ErrorIs(t, err, ErrChunk, "flipped byte %d", i)
	}
	_, err = Load(dst, creator(dst), "copy", rows[:len(rows)/2])
	assert.ErrorIs(t, err, ErrChunk, "cut short")
	assert.Zero(t, g.Segments()[0].Rows().SetBits(), "nothing loaded")

	other := makeFilter(t, src, "other", registry.Sizing{Layout: filter.Blocked, Capacity: 5000, FPRate: 0.01})
	addKeys(t, other, "o", 100)
	_, err = Load(dst, creator(dst), "copy", dumpAll(t, other)[1])
	assert.ErrorIs(t, err, ErrMismatch, "rows of another filter")
	_, err = Load(dst, creator(dst), "copy", dumpAll(t, other)[0])
	assert.ErrorIs(t, err, ErrMismatch, "a header of another filter where one exists")
	assert.Zero(t, g.Segments()[0].Rows().SetBits(), "nothing loaded")
}

// Stages load in order: a stage past the next the filter can open is
// refused.
func TestStagesInOrder(t *testing.T) {
	src, dst := openRegistry(t, "n1"), openRegistry(t, "n2")
	f := makeFilter(t, src, "g", registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Expansion: 2})
	addKeys(t, f, "k", 8000)
	require.GreaterOrEqual(t, len(f.Segments()), 3)
	var byStage [][]byte
	for _, c := range dumpAll(t, f)[1:] {
		r, err := DecodeRows(c)
		require.NoError(t, err)
		if int(r.Stage) == len(byStage) {
			byStage = append(byStage, c)
		}
	}
	_, err := Load(dst, creator(dst), "g", dumpAll(t, f)[0])
	require.NoError(t, err)
	_, err = Load(dst, creator(dst), "g", byStage[2])
	assert.ErrorIs(t, err, ErrMismatch)
	_, err = Load(dst, creator(dst), "g", byStage[1])
	assert.NoError(t, err, "the next stage opens")
}

// Iterators a scan never gives are refused; one past the last stage ends
// the dump.
func TestIterators(t *testing.T) {
	src := openRegistry(t, "n1")
	f := makeFilter(t, src, "f", registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01})
	for _, it := range []uint64{1, 1<<32 - 1, position(0, 1<<31)} {
		_, _, err := Scan(f, it, nil)
		assert.ErrorIs(t, err, ErrIterator, "%d", it)
	}
	next, chunk, err := Scan(f, position(5, 0), nil)
	require.NoError(t, err)
	assert.Zero(t, next)
	assert.Empty(t, chunk)
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// A copy loaded beside its source in one data directory, kill -9 (no
// close) and a start again: both keep every key.
func TestCopyBesideItsSourceRestarts(t *testing.T) {
	path := t.TempDir()
	open := func() *registry.Registry {
		d, err := store.OpenDir(path)
		require.NoError(t, err)
		opts := store.DefaultOptions()
		opts.Fsync = store.FsyncAlways
		r, err := registry.Open(registry.Config{Node: "n1", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.01},
			MaxFilters: 16, TombstoneTTL: time.Hour, Dir: d, Store: opts})
		require.NoError(t, err)
		return r
	}
	r := open()
	f := makeFilter(t, r, "f1", registry.Sizing{Layout: filter.Blocked, Capacity: 3000, FPRate: 0.01})
	addKeys(t, f, "k", 500)
	for _, c := range dumpAll(t, f) {
		_, err := Load(r, creator(r), "f1-copy1", c)
		require.NoError(t, err)
	}
	addKeys(t, f, "late", 50)
	require.NoError(t, r.Close())
	r = open()
	defer r.Close()
	for _, name := range []string{"f1", "f1-copy1"} {
		g := r.Lookup([]byte(name)).Winner()
		require.NotNil(t, g, name)
		for i := range 500 {
			require.True(t, g.Has(fmt.Appendf(nil, "k-%d", i)), "%s: key %d", name, i)
		}
	}
}

// A named filter made before filters grew (no expansion, not NONSCALING:
// it took adds past its capacity) loads as a NONSCALING filter, which is
// how this build makes one that does not grow: its rows are the same.
func TestLegacyFilterLoads(t *testing.T) {
	src, dst := openRegistry(t, "n1"), openRegistry(t, "n2")
	f := makeFilter(t, src, "old", registry.Sizing{Layout: filter.Blocked, Capacity: 2000, FPRate: 0.01})
	addKeys(t, f, "k", 1000)
	legacy := f.Version().Def
	require.True(t, legacy.NonScaling)
	legacy.NonScaling = false
	var chunks [][]byte
	for i, c := range dumpAll(t, f) {
		if i == 0 {
			h, err := DecodeHeader(c)
			require.NoError(t, err)
			h.Def = legacy
			chunks = append(chunks, AppendHeader(nil, h))
			continue
		}
		r, err := DecodeRows(c)
		require.NoError(t, err)
		r.Filter = Identity(legacy)
		w := BeginRows(nil, r)
		for first, rows := range r.Runs() {
			w.Run(first, rows)
		}
		chunks = append(chunks, w.End(r.End))
	}
	for _, c := range chunks {
		_, err := Load(dst, creator(dst), "old", c)
		require.NoError(t, err)
	}
	g := dst.Lookup([]byte("old")).Winner()
	assert.True(t, g.Version().Def.NonScaling)
	sameRows(t, f, g)
}

// A rows chunk that carries no row opens no stage; a stage the node may
// not open (--max-memory) is refused saying why.
func TestStagesOpenForRowsOnly(t *testing.T) {
	src := openRegistry(t, "n1")
	f := makeFilter(t, src, "g", registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Expansion: 4})
	addKeys(t, f, "k", 6000)
	require.GreaterOrEqual(t, len(f.Segments()), 3)
	chunks := dumpAll(t, f)

	r, err := registry.Open(registry.Config{Node: "n2", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01},
		MaxFilters: 16, TombstoneTTL: time.Hour, MaxMemory: 12 << 10})
	require.NoError(t, err)
	defer r.Close()
	_, err = Load(r, creator(r), "g", chunks[0])
	require.NoError(t, err)
	empty, err := DecodeRows(chunks[1])
	require.NoError(t, err)
	empty.Stage, empty.First, empty.End = 1, 0, 0
	empty.FP = f.Segments()[1].Rows().Fingerprint()
	l, err := Load(r, creator(r), "g", BeginRows(nil, empty).End(0))
	require.NoError(t, err)
	assert.Len(t, r.Lookup([]byte("g")).Winner().Segments(), 1, "no stage opened for no rows")
	assert.Zero(t, l.Rows)

	var lastErr error
	for _, c := range chunks[1:] {
		if _, lastErr = Load(r, creator(r), "g", c); lastErr != nil {
			break
		}
	}
	require.Error(t, lastErr, "a stage past --max-memory")
	assert.Contains(t, lastErr.Error(), "cannot be opened")
	assert.NotErrorIs(t, lastErr, ErrMismatch)
	t.Log(lastErr)
}

// A windowed filter is not dumped: its keys age out slice by slice, and a
// dump has no place for them. Scan says so from its first chunk.
func TestWindowedIsNotDumped(t *testing.T) {
	r := openRegistry(t, "n1")
	f := makeFilter(t, r, "recent", registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Window: time.Minute})
	addKeys(t, f, "k", 10)
	for _, it := range []uint64{0, position(0, 0)} {
		_, chunk, err := Scan(f, it, nil)
		require.ErrorIs(t, err, ErrWindowed)
		assert.ErrorContains(t, err, `filter "recent": a windowed filter is not dumped`)
		assert.Empty(t, chunk)
	}
}
