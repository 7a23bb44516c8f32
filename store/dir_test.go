package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// named is blockedDef under another name.
func named(t testing.TB, name string, capacity uint64) (Definition, func() *filter.Filter) {
	def, mk := blockedDef(t, capacity)
	def.Name = name
	return def, mk
}

// One directory, several filters: each in its folder, each with its keys
// after a restart, listed by Definitions.
func TestDirHoldsManyFilters(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	require.NoError(t, err)
	names := []string{"default", "tenant/42", "Ünïcode day"}
	var stores []*Store
	for i, name := range names {
		def, mk := named(t, name, uint64(1000*(i+1)))
		f := mk()
		s, _, err := d.Open(def, f, opts())
		require.NoError(t, err)
		add(s, f, fmt.Sprint(name, "-a"), fmt.Sprint(name, "-b"))
		stores = append(stores, s)
	}
	def0, mk0 := named(t, "default", 1000)
	_, _, err = d.Open(def0, mk0(), opts())
	assert.ErrorContains(t, err, "open already")
	assert.ErrorContains(t, d.Close(), "still open")
	_, err = OpenDir(dir)
	assert.ErrorIs(t, err, ErrLocked, "one process at a time")
	for _, s := range stores {
		require.NoError(t, s.Close())
	}
	require.NoError(t, d.Close())

	d, err = OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	defs, err := d.Definitions()
	require.NoError(t, err)
	var got []string
	for _, def := range defs {
		got = append(got, def.Name)
	}
	assert.Equal(t, []string{"default", "tenant/42", "Ünïcode day"}, got)
	for i, name := range names {
		def, mk := named(t, name, uint64(1000*(i+1)))
		assert.Equal(t, def, defs[i])
		f := mk()
		s, _, err := d.Open(def, f, opts())
		require.NoError(t, err)
		assert.True(t, f.Has([]byte(name+"-a")) && f.Has([]byte(name+"-b")), name)
		assert.False(t, f.Has([]byte(names[(i+1)%3]+"-a")), "%s holds only its own keys", name)
		require.NoError(t, s.Close())
	}
}

// A removed filter is gone, even if the process died while removing it.
func TestDirRemove(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	require.NoError(t, err)
	def, mk := named(t, "gone", 1000)
	f := mk()
	s, _, err := d.Open(def, f, opts())
	require.NoError(t, err)
	add(s, f, "k")
	assert.ErrorContains(t, d.Remove("gone"), "is open")
	require.NoError(t, s.Close())
	require.NoError(t, d.Remove("gone"))
	require.NoError(t, d.Remove("gone"), "removing what is not there is done")
	defs, err := d.Definitions()
	require.NoError(t, err)
	assert.Empty(t, defs)

	// A crash between the rename and the removal leaves a temporary
	// folder: the next OpenDir removes it.
	half := filepath.Join(dir, filtersDir, tempPrefix+"half")
	require.NoError(t, os.MkdirAll(half, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(half, "log-0000000000000001.log"), []byte("x"), 0o644))
	require.NoError(t, d.Close())
	d, err = OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	_, err = os.Stat(half)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCatalogFile(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir)
	require.NoError(t, err)
	defer d.Close()
	got, err := d.ReadCatalog()
	require.NoError(t, err)
	assert.Nil(t, got, "none yet")
	require.NoError(t, d.WriteCatalog([]byte("first")))
	require.NoError(t, d.WriteCatalog([]byte("the catalog")))
	got, err = d.ReadCatalog()
	require.NoError(t, err)
	assert.Equal(t, []byte("the catalog"), got, "replaced whole")

	b, err := os.ReadFile(filepath.Join(dir, catalogFile))
	require.NoError(t, err)
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x10
		_, err := decodeCatalogFile(bad)
		assert.ErrorIs(t, err, ErrDamaged, "byte %d flipped: damage, which --repair sets aside (the version's bytes too)", i)
	}
	for cut := range len(b) {
		_, err := decodeCatalogFile(b[:cut])
		assert.ErrorIs(t, err, ErrDamaged, "cut at %d", cut)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, catalogFile), b[:len(b)-3], 0o644))
	_, err = d.ReadCatalog()
	assert.ErrorIs(t, err, ErrDamaged)
	assert.ErrorContains(t, err, catalogFile)
}

// FuzzCatalogFile: arbitrary bytes are a CATALOG file or refused, never a
// panic; what is taken encodes back the same.
func FuzzCatalogFile(f *testing.F) {
	f.Add(encodeCatalogFile([]byte("payload")))
	f.Add(encodeCatalogFile(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeCatalogFile(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeCatalogFile(p), b) {
			t.Fatalf("%x taken, encodes to %x", b, encodeCatalogFile(p))
		}
	})
}
