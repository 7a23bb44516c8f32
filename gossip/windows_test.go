package gossip

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// windowedCatalog is a catalog with a windowed filter beside a growing
// one and a fixed one.
func windowedCatalog(t testing.TB) []Entry {
	c := NewCatalog(time.Hour)
	for _, e := range growingCatalog(t) {
		c.Merge(e, epoch)
	}
	w := CatalogDef{FP: exampleDef.FP, Capacity: 100_000, FPRate: 0.01, Window: 10_000, Slices: 10}
	w.FP.Seed = WindowSeed(1, w.Window, w.Slices)
	_, err := c.Create("recent", w, "node-1", epoch)
	require.NoError(t, err)
	return c.Entries()
}

// A catalog with a windowed filter says so in its count's bit 13 and
// carries each version's window among its extensions; one without is
// written as before, and a window no filter may have is refused both
// ways, as is an extension this build does not know (a newer rmbd's).
func TestWindowedCatalogBytes(t *testing.T) {
	in := windowedCatalog(t)
	b, err := AppendCatalog(nil, in)
	require.NoError(t, err)
	require.Equal(t, byte(0x20), b[0]&0x20)
	out, err := DecodeCatalog(b)
	require.NoError(t, err)
	assert.Equal(t, in, out)
	for _, e := range out {
		assert.Equal(t, e.Name == "recent", e.Versions[0].Def.Windowed(), e.Name)
	}

	g, err := AppendCatalog(nil, growingCatalog(t))
	require.NoError(t, err)
	require.Zero(t, g[0]&0x20, "no windowed filter: the format of before")
	flagged := append([]byte{}, g...)
	flagged[0] |= 0x20
	_, err = DecodeCatalog(flagged)
	require.ErrorIs(t, err, ErrCatalog)

	for _, bad := range []func(d *CatalogDef){
		func(d *CatalogDef) { d.Slices = 0 },
		func(d *CatalogDef) { d.Slices = MaxSlices + 1 },
		func(d *CatalogDef) { d.Window = 50 },
		func(d *CatalogDef) { d.Expansion = 2 },
		func(d *CatalogDef) { d.Window = uint64(MaxWindow/time.Millisecond) + 1000 },
	} {
		es := windowedCatalog(t)
		bad(&es[3].Versions[0].Def)
		_, err := AppendCatalog(nil, es)
		assert.ErrorIs(t, err, ErrCatalog, "%+v", es[3].Versions[0].Def)
	}

	// The same refusals reading: slices of 0 written over a good window.
	at := len(b) - 2 - 1 // the last version's slices, then its drops' count
	require.Equal(t, uint16(10), binary.BigEndian.Uint16(b[at:]))
	bad := append([]byte{}, b...)
	binary.BigEndian.PutUint16(bad[at:], 0)
	_, err = DecodeCatalog(bad)
	assert.ErrorIs(t, err, ErrCatalog)

	ext := at - 8 - 2 - 1 // the last version's extensions: length, tag, length, window, slices
	require.Equal(t, []byte{12, extWindow, extWindowLen}, b[ext:ext+3])
	for what, mutate := range map[string]func([]byte) []byte{
		"an unknown tag": func(b []byte) []byte { b[ext+1] = 9; return b },
		"a short value":  func(b []byte) []byte { b[ext+2] = 9; return b },
		"a value past the block": func(b []byte) []byte {
			b[ext+2] = 11
			return b
		},
		"a second window, out of order": func(b []byte) []byte {
			out := append(append([]byte{}, b[:ext]...), 24)
			out = append(out, b[ext+1:ext+13]...)
			out = append(out, b[ext+1:ext+13]...)
			return append(out, b[ext+13:]...)
		},
	} {
		_, err := DecodeCatalog(mutate(append([]byte{}, b...)))
		assert.ErrorIs(t, err, ErrCatalog, what)
	}
	_, err = DecodeCatalog(func(b []byte) []byte { b[ext+1] = 9; return b }(append([]byte{}, b...)))
	assert.ErrorContains(t, err, "extension 9 of 10 bytes (a newer rmbd's field?)")
}

// Slices are a pure function of the time and the definition: numbered
// from the Unix epoch, kept from L+1 before the current to the next.
func TestSlices(t *testing.T) {
	d := CatalogDef{Capacity: 100_000, FPRate: 0.01, Window: 10_000, Slices: 10}
	assert.Equal(t, time.Second, d.SliceLength())
	assert.Equal(t, 10*time.Second, d.WindowLength())
	assert.Equal(t, uint64(1_800_000_000), d.SliceAt(time.UnixMilli(1_800_000_000_999)))
	assert.Equal(t, uint64(1_800_000_001), d.SliceAt(time.UnixMilli(1_800_000_001_000)))
	assert.Equal(t, uint64(0), d.SliceAt(time.UnixMilli(-5)))
	lo, hi := d.Kept(100)
	assert.Equal(t, []uint64{89, 101}, []uint64{lo, hi})
	lo, hi = d.Kept(3)
	assert.Equal(t, []uint64{0, 4}, []uint64{lo, hi})
	assert.Equal(t, uint64(10_000), d.SliceCapacity())
	d.Capacity = 5
	assert.Equal(t, uint64(1), d.SliceCapacity())
	assert.NotEqual(t, WindowSeed(1, 10_000, 10), WindowSeed(1, 10_000, 20))

	assert.NoError(t, CheckWindow(0, 0))
	assert.NoError(t, CheckWindow(time.Second, 10))
	assert.Error(t, CheckWindow(time.Second, 11), "slices under 100 ms")
	assert.Error(t, CheckWindow(1500*time.Microsecond*1000+1, 1), "not whole ms")
	assert.Error(t, CheckWindow(MaxWindow+time.Hour, 10))
}

// placedCatalog is windowedCatalog with a filter on two members.
func placedCatalog(t testing.TB) []Entry {
	c := NewCatalog(time.Hour)
	for _, e := range windowedCatalog(t) {
		c.Merge(e, epoch)
	}
	p := exampleDef
	p.Replicas = 2
	_, err := c.Create("placed", p, "node-1", epoch)
	require.NoError(t, err)
	return c.Entries()
}

// A placed filter's replicas travel in its version's extensions (tag 2),
// after a window's; 0 replicas, or replicas on a windowed filter, are
// refused.
func TestPlacedCatalogBytes(t *testing.T) {
	in := placedCatalog(t)
	b, err := AppendCatalog(nil, in)
	require.NoError(t, err)
	out, err := DecodeCatalog(b)
	require.NoError(t, err)
	require.Equal(t, in, out)
	var placed int
	for _, e := range out {
		if e.Versions[0].Def.Replicas == 2 {
			placed++
		}
	}
	require.Equal(t, 1, placed)
	i := bytes.Index(b, []byte{extReplicas, 1, 2})
	require.Positive(t, i)
	bad := bytes.Clone(b)
	bad[i+2] = 0
	_, err = DecodeCatalog(bad)
	require.Error(t, err, "0 replicas")
}
