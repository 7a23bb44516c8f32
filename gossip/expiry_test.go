package gossip

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expiringCatalog is a catalog where users expires and logs had a
// deadline that was cleared.
func expiringCatalog(t testing.TB) []Entry {
	c := NewCatalog(time.Hour)
	d := CatalogDef{FP: exampleDef.FP, Capacity: 1000, FPRate: 0.01}
	_, err := c.Create("users", d, "n1", epoch)
	require.NoError(t, err)
	_, err = c.Create("logs", d, "n1", epoch)
	require.NoError(t, err)
	_, err = c.SetDeadline("users", epoch.Add(time.Minute), "n1", epoch.Add(time.Second))
	require.NoError(t, err)
	_, err = c.SetDeadline("logs", epoch.Add(time.Minute), "n2", epoch.Add(time.Second))
	require.NoError(t, err)
	_, err = c.SetDeadline("logs", time.Time{}, "n3", epoch.Add(2*time.Second))
	require.NoError(t, err)
	return c.Entries()
}

func TestDeadlines(t *testing.T) {
	c := NewCatalog(time.Hour)
	_, err := c.SetDeadline("nope", epoch, "n1", epoch)
	assert.ErrorIs(t, err, ErrNotFound)
	_, ok := c.Deadline("nope")
	assert.False(t, ok)

	for _, e := range expiringCatalog(t) {
		c.Merge(e, epoch)
	}
	d, ok := c.Deadline("users")
	require.True(t, ok)
	assert.True(t, epoch.Add(time.Minute).Equal(d), "%v", d)
	d, ok = c.Deadline("logs")
	require.True(t, ok)
	assert.True(t, d.IsZero(), "PERSIST cleared it")

	assert.Empty(t, c.DropDue(epoch.Add(time.Minute-time.Millisecond)), "not before its deadline")
	assert.Equal(t, []string{"users"}, c.DropDue(epoch.Add(time.Minute)))
	assert.Empty(t, c.Live("users"))
	e := c.Entry("users")
	require.Len(t, e.Drops, 1)
	assert.Equal(t, Tombstone{Gen: 1, At: epoch.Add(time.Minute).UnixMilli()}, e.Drops[0], "dated at the deadline")
	assert.Empty(t, e.Expiries, "a dropped generation keeps no deadline")
	assert.Empty(t, c.DropDue(epoch.Add(time.Hour)))

	// Created again, the name is a new generation, without a deadline.
	_, err = c.Create("users", CatalogDef{FP: exampleDef.FP, Capacity: 1000, FPRate: 0.01}, "n2", epoch.Add(2*time.Minute))
	require.NoError(t, err)
	d, ok = c.Deadline("users")
	assert.True(t, ok)
	assert.True(t, d.IsZero())
}

// TestDeadlinesConverge: members that set deadlines concurrently, merge in
// any order and drop at the deadline on their own hold the same catalog.
func TestDeadlinesConverge(t *testing.T) {
	d := CatalogDef{FP: exampleDef.FP, Capacity: 1000, FPRate: 0.01}
	base := NewCatalog(time.Hour)
	_, err := base.Create("f", d, "n1", epoch)
	require.NoError(t, err)
	mk := func() *Catalog {
		c := NewCatalog(time.Hour)
		for _, e := range base.Entries() {
			c.Merge(e, epoch)
		}
		return c
	}
	a, b, c := mk(), mk(), mk()
	_, err = a.SetDeadline("f", epoch.Add(10*time.Second), "a", epoch.Add(time.Second))
	require.NoError(t, err)
	_, err = b.SetDeadline("f", epoch.Add(20*time.Second), "b", epoch.Add(2*time.Second)) // later: wins
	require.NoError(t, err)
	_, err = c.SetDeadline("f", time.Time{}, "c", epoch.Add(time.Second)) // same instant as a's, c > a
	require.NoError(t, err)
	for _, order := range [][]*Catalog{{a, b, c}, {c, b, a}, {b, a, c}} {
		m := mk()
		for _, o := range order {
			for _, e := range o.Entries() {
				m.Merge(e, epoch)
			}
		}
		dl, _ := m.Deadline("f")
		assert.True(t, epoch.Add(20*time.Second).Equal(dl), "%v", dl)
	}
	// Each drops on its own at the deadline; a member that never heard of
	// the deadline takes the tombstone.
	x, y, z := mk(), mk(), mk()
	for _, o := range []*Catalog{x, y} {
		for _, e := range b.Entries() {
			o.Merge(e, epoch)
		}
	}
	assert.Equal(t, []string{"f"}, x.DropDue(epoch.Add(21*time.Second)))
	assert.Equal(t, []string{"f"}, y.DropDue(epoch.Add(25*time.Second)))
	assert.Equal(t, x.Entries(), y.Entries(), "the same tombstone, whenever each noticed")
	for _, e := range x.Entries() {
		z.Merge(e, epoch)
	}
	assert.Empty(t, z.Live("f"))
	assert.Equal(t, x.Entries(), z.Entries())

	// A setting made on a node whose clock is behind still wins there.
	s := mk()
	_, err = s.SetDeadline("f", epoch.Add(time.Hour), "s", epoch.Add(time.Minute))
	require.NoError(t, err)
	_, err = s.SetDeadline("f", time.Time{}, "s", epoch)
	require.NoError(t, err)
	dl, _ := s.Deadline("f")
	assert.True(t, dl.IsZero())
}

func TestExpiryBytes(t *testing.T) {
	in := expiringCatalog(t)
	b, err := AppendCatalog(nil, in)
	require.NoError(t, err)
	assert.NotZero(t, b[0]&(expiresBit>>8))
	out, err := DecodeCatalog(b)
	require.NoError(t, err)
	assert.Equal(t, in, out)
	again, _ := AppendCatalog(nil, out)
	assert.Equal(t, b, again)
	for cut := range len(b) {
		_, err := DecodeCatalog(b[:cut])
		assert.ErrorIs(t, err, ErrCatalog, "cut at %d", cut)
	}

	plain, _ := AppendCatalog(nil, sampleCatalog(t))
	assert.Zero(t, plain[0]&(expiresBit>>8), "a catalog without deadlines is as before")
	marked := bytes.Clone(plain)
	marked[0] |= expiresBit >> 8
	_, err = DecodeCatalog(marked)
	assert.ErrorIs(t, err, ErrCatalog)

	neg := []Entry{{Name: "f", Expiries: []Expiry{{Gen: 1, Deadline: -5, Set: 1, By: "n"}}}}
	b, err = AppendCatalog(nil, neg)
	require.NoError(t, err)
	_, err = DecodeCatalog(b)
	assert.ErrorContains(t, err, "expiry")
}

// TestExpiringOverAndOver: a name made and expired again and again (a
// filter for each batch job) keeps one tombstone, the latest generation's,
// and its catalog still encodes: lower generations' tombstones said
// nothing the latest does not.
func TestExpiringOverAndOver(t *testing.T) {
	c := NewCatalog(24 * time.Hour)
	now := epoch
	for i := range 200 {
		_, err := c.Create("batch", CatalogDef{FP: exampleDef.FP, Capacity: 1000, FPRate: 0.01}, "n1", now)
		require.NoError(t, err)
		if i%3 == 0 { // some dropped by hand
			_, err = c.Drop("batch", now)
		} else {
			_, err = c.SetDeadline("batch", now.Add(time.Millisecond), "n1", now)
			now = now.Add(time.Second)
			c.DropDue(now)
		}
		require.NoError(t, err)
		now = now.Add(time.Second)
	}
	e := c.Entry("batch")
	require.Len(t, e.Drops, 1)
	assert.Equal(t, uint64(200), e.Drops[0].Gen)
	assert.Equal(t, uint64(201), c.NextGen("batch"))
	b, err := AppendCatalog(nil, c.Entries())
	require.NoError(t, err)
	out, err := DecodeCatalog(b)
	require.NoError(t, err)
	assert.Equal(t, c.Entries(), out)
}
