package gossip

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// FuzzCatalog: arbitrary bytes decode or are refused, never panic; what
// decodes encodes back to the same bytes and merges into a catalog.
func FuzzCatalog(f *testing.F) {
	b, _ := AppendCatalog(nil, sampleCatalog(f))
	f.Add(b)
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 1, 1, 'a', 0, 0})
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
		for _, name := range c.Names() {
			c.Winner(name)
			c.Drop(name, epoch)
		}
	})
}
