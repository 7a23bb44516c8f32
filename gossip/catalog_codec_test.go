package gossip

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/docexamples"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/xxh3"
)

func sampleCatalog(t testing.TB) []Entry {
	c := NewCatalog(time.Hour)
	d := CatalogDef{FP: exampleDef.FP, Capacity: 1000, FPRate: 0.01}
	c.Create("users", d, "node-1", epoch)
	c.Create("events/2026-11-23", d, "node-2", epoch.Add(time.Second))
	c.Drop("events/2026-11-23", epoch.Add(time.Minute))
	c.Create("events/2026-11-23", d, "node-2", epoch.Add(2*time.Minute))
	other := NewCatalog(time.Hour)
	d2 := d
	d2.Capacity, d2.FP.Rows = 2000, d.FP.Rows*2
	other.Create("users", d2, "node-3", epoch.Add(time.Hour))
	for _, e := range other.Entries() {
		c.Merge(e, epoch.Add(time.Hour))
	}
	v := c.Live("users")
	require.Len(t, v, 2)
	c.DropVersion("users", v[1].ID(), epoch.Add(2*time.Hour))
	return c.Entries()
}

var exampleDef = func() CatalogDef {
	var d CatalogDef
	d.FP.Layout, d.FP.Hash, d.FP.K, d.FP.RowBits, d.FP.Rows = 2, 2, 7, 512, 1024
	return d
}()

func TestCatalogBytesRoundTrip(t *testing.T) {
	in := sampleCatalog(t)
	b, err := AppendCatalog(nil, in)
	require.NoError(t, err)
	out, err := DecodeCatalog(b)
	require.NoError(t, err)
	assert.Equal(t, in, out)
	again, _ := AppendCatalog(nil, out)
	assert.Equal(t, b, again, "one encoding")

	empty, err := AppendCatalog(nil, nil)
	require.NoError(t, err)
	got, err := DecodeCatalog(empty)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestCatalogBytesRefused(t *testing.T) {
	b, _ := AppendCatalog(nil, sampleCatalog(t))
	for cut := range len(b) {
		_, err := DecodeCatalog(b[:cut])
		assert.ErrorIs(t, err, ErrCatalog, "cut at %d", cut)
	}
	_, err := DecodeCatalog(append(bytes.Clone(b), 0))
	assert.ErrorContains(t, err, "trailing")

	for _, name := range []string{"", strings.Repeat("x", 201), "tab\there", "\xff\xfe"} {
		_, err := AppendCatalog(nil, []Entry{{Name: name}})
		assert.ErrorIs(t, err, ErrCatalog, "%q", name)
	}
	bad := bytes.Clone(b)
	bad[3] = '\n' // in the first name
	_, err = DecodeCatalog(bad)
	assert.ErrorContains(t, err, "filter name")
	huge := []byte{0xff, 0xff}
	_, err = DecodeCatalog(huge)
	assert.ErrorContains(t, err, "too many entries")
}

// TestCatalogFormatDocExample keeps the CATALOG example of
// docs/FORMAT.md honest about the catalog bytes it holds (the store's
// TestFormatDocExamples checks the file around them with the store's own
// code): the filter users, created by node n1 at 2026-01-01T00:00:00Z with
// capacity 1,000 at 1% (the example filter's fingerprint), is the file
// laid out as the document says, and its payload decodes to that catalog.
func TestCatalogFormatDocExample(t *testing.T) {
	examples, err := docexamples.Read("../docs/FORMAT.md")
	require.NoError(t, err)
	got, ok := examples["catalog"]
	require.True(t, ok, "docs/FORMAT.md lacks the catalog example")

	fp := filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: 6, RowBits: 512, Rows: 4}
	c := NewCatalog(time.Hour)
	_, err = c.Create("users", CatalogDef{FP: fp, Capacity: 1000, FPRate: 0.01}, "n1", time.UnixMilli(1_767_225_600_000))
	require.NoError(t, err)
	payload, err := AppendCatalog(nil, c.Entries())
	require.NoError(t, err)
	// The file, as FORMAT.md's table has it: magic, version 1, payload
	// length, payload, xxh3-64 of everything before.
	want := binary.BigEndian.AppendUint32([]byte("RMBDCTLG\x00\x01"), uint32(len(payload)))
	want = append(want, payload...)
	want = binary.BigEndian.AppendUint64(want, xxh3.Hash(want))
	require.True(t, bytes.Equal(want, got), "the catalog example differs from the code; it is:\n%s", docexamples.Hex(want))

	entries, err := DecodeCatalog(got[14 : len(got)-8])
	require.NoError(t, err)
	assert.Equal(t, c.Entries(), entries)
}

// FuzzCatalog: arbitrary bytes decode or are refused, never panic; what
// decodes encodes back to the same bytes and merges into a catalog.
func FuzzCatalog(f *testing.F) {
	b, _ := AppendCatalog(nil, sampleCatalog(f))
	f.Add(b)
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 1, 1, 'a', 0, 0})
	g, _ := AppendCatalog(nil, growingCatalog(f))
	f.Add(g)
	x, _ := AppendCatalog(nil, expiringCatalog(f))
	f.Add(x)
	w, _ := AppendCatalog(nil, windowedCatalog(f))
	f.Add(w)
	pl, _ := AppendCatalog(nil, placedCatalog(f))
	f.Add(pl)
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeCatalog(b)
		if err != nil {
			return
		}
		again, err := AppendCatalog(nil, es)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, encodes to %x, %v", b, again, err)
		}
		c := NewCatalog(time.Hour)
		for _, e := range es {
			c.Merge(e, epoch)
		}
		c.DropDue(epoch.Add(time.Hour))
		for _, name := range c.Names() {
			c.Winner(name)
			c.Deadline(name)
			c.Drop(name, epoch)
		}
	})
}

// growingCatalog is a catalog with a growing filter beside a fixed one.
func growingCatalog(t testing.TB) []Entry {
	c := NewCatalog(time.Hour)
	fixed := CatalogDef{FP: exampleDef.FP, Capacity: 1000, FPRate: 0.01}
	grows := fixed
	grows.FP.Seed, grows.Expansion = GrowingSeed(0, 2), 2
	_, err := c.Create("fixed", fixed, "node-1", epoch)
	require.NoError(t, err)
	_, err = c.Create("grows", grows, "node-1", epoch)
	require.NoError(t, err)
	fixed.NonScaling = true
	_, err = c.Create("nonscaling", fixed, "node-1", epoch)
	require.NoError(t, err)
	return c.Entries()
}

// A catalog with a growing filter says so in its count's top bit and
// carries each version's expansion; one without is written as before
// growing filters were, so that members that know none still read it.
func TestGrowingCatalogBytes(t *testing.T) {
	in := growingCatalog(t)
	b, err := AppendCatalog(nil, in)
	require.NoError(t, err)
	require.Equal(t, byte(0x80), b[0]&0x80)
	out, err := DecodeCatalog(b)
	require.NoError(t, err)
	assert.Equal(t, in, out)

	old, err := AppendCatalog(nil, sampleCatalog(t))
	require.NoError(t, err)
	require.Zero(t, old[0]&0x80, "no growing filter: the format of before")

	flagged := append([]byte{}, old...)
	flagged[0] |= 0x80
	_, err = DecodeCatalog(flagged)
	require.ErrorIs(t, err, ErrCatalog, "the flag without a growing filter: not the one encoding (and the lengths are off)")

	assert.True(t, out[2].Versions[0].Def.NonScaling)
	assert.False(t, out[0].Versions[0].Def.NonScaling, "a filter of before")

	bad := in
	bad[1].Versions[0].Def.Expansion = MaxExpansion + 1
	_, err = AppendCatalog(nil, bad)
	require.ErrorIs(t, err, ErrCatalog)
}

// Stages are a pure function of the definition: capacity × expansion^i,
// rate × (1−T)·T^i, a seed drawn from stage 0's; pinned, since members
// must size them alike.
func TestStages(t *testing.T) {
	d := CatalogDef{Capacity: 10_000, FPRate: 0.01, Expansion: 2}
	fp0, err := filter.BlockedFingerprint(filter.Config{Layout: filter.Blocked, Capacity: 10_000, FPRate: d.StageRate(0), Seed: 7})
	require.NoError(t, err)
	d.FP = fp0
	s0, err := d.Stage(0, 0)
	require.NoError(t, err)
	require.Equal(t, d, s0)
	var total uint64
	var rate float64
	for i := range uint64(10) {
		s, err := d.Stage(i, 0)
		require.NoError(t, err)
		require.Equal(t, uint64(10_000)<<i, s.Capacity)
		require.Equal(t, StageSeed(7, i), s.FP.Seed)
		total += s.FP.SizeBytes()
		rate += d.StageRate(i)
	}
	assert.Less(t, rate, d.FPRate, "the stages' rates add up to less than the filter's")
	assert.Less(t, total, uint64(32_000_000), "10 stages (10.2M keys) in under 32 MB")
	s1, _ := d.Stage(1, 0)
	assert.Equal(t, "blocked/xxh3-64 R=559 W=512 k=9 seed=0xf086c6c799ec7e76", s1.FP.String(), "pinned: members size stages alike")

	_, err = d.Stage(MaxStages, 0)
	require.ErrorIs(t, err, filter.ErrTooLarge)
	_, err = d.Stage(9, 1<<20)
	require.ErrorIs(t, err, filter.ErrTooLarge, "a stage over the bytes a filter may have")
	_, err = CatalogDef{Capacity: 1 << 39, FPRate: 0.01, Expansion: 4}.Stage(1, 0)
	require.ErrorIs(t, err, filter.ErrTooLarge, "a capacity past filter.MaxCapacity")
	_, err = CatalogDef{Capacity: 10, FPRate: 0.01}.Stage(1, 0)
	require.Error(t, err, "a fixed filter has no stages")
}
