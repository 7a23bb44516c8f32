package gossip

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func def(t *testing.T, capacity uint64, fpRate float64) CatalogDef {
	t.Helper()
	cfg := filter.DefaultConfig()
	cfg.Capacity, cfg.FPRate = capacity, fpRate
	f, err := filter.New(cfg)
	require.NoError(t, err)
	return CatalogDef{FP: f.Fingerprint(), Capacity: capacity, FPRate: fpRate}
}

// sync gives b everything a holds, and a everything b holds.
func sync(a, b *Catalog, now time.Time) {
	for _, e := range a.Entries() {
		b.Merge(e, now)
	}
	for _, e := range b.Entries() {
		a.Merge(e, now)
	}
}

func TestCreateIsIdempotentAndRefusesAnotherDefinition(t *testing.T) {
	c := NewCatalog(24 * time.Hour)
	small, big := def(t, 1000, 0.01), def(t, 100_000, 0.01)
	v, err := c.Create("users", small, "n1", epoch)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), v.Gen)
	again, err := c.Create("users", small, "n2", epoch.Add(time.Second))
	require.NoError(t, err, "the same definition: nothing to do")
	assert.Equal(t, v, again, "the first creation stands")
	_, err = c.Create("users", big, "n1", epoch)
	assert.ErrorIs(t, err, ErrExists)
	assert.ErrorContains(t, err, "capacity 1000")
	assert.ErrorContains(t, err, "capacity 100000")
	assert.Equal(t, []string{"users"}, c.Names())
}

// The same name created on both sides of a partition with different
// sizing: once they hear of each other, both sides hold both versions,
// the same winner (created first), and the loser until it is dropped.
func TestConcurrentCreatesConflictDeterministically(t *testing.T) {
	a, b := NewCatalog(24*time.Hour), NewCatalog(24*time.Hour)
	va, err := a.Create("events", def(t, 1000, 0.01), "a", epoch.Add(2*time.Second))
	require.NoError(t, err)
	vb, err := b.Create("events", def(t, 5000, 0.001), "b", epoch.Add(time.Second))
	require.NoError(t, err)
	sync(a, b, epoch.Add(time.Minute))
	assert.Equal(t, a.Entries(), b.Entries(), "the same catalog on both sides")
	for _, c := range []*Catalog{a, b} {
		w, ok := c.Winner("events")
		require.True(t, ok)
		assert.Equal(t, vb.ID(), w.ID(), "created first wins, whoever created it")
		assert.Equal(t, []ID{vb.ID(), va.ID()}, ids(c.Answering("events")), "the loser still answers")
	}
	require.NoError(t, a.DropVersion("events", va.ID(), epoch.Add(2*time.Minute)))
	sync(a, b, epoch.Add(3*time.Minute))
	assert.Equal(t, []ID{vb.ID()}, ids(b.Answering("events")), "the loser dropped everywhere")
	assert.Equal(t, a.Entries(), b.Entries())

	// A tie in time is broken by the origin's name.
	c, d := NewCatalog(time.Hour), NewCatalog(time.Hour)
	c.Create("x", def(t, 1000, 0.01), "node-b", epoch)
	d.Create("x", def(t, 2000, 0.01), "node-a", epoch)
	sync(c, d, epoch)
	w, _ := c.Winner("x")
	assert.Equal(t, "node-a", w.Origin)
}

// Two creations with the same definition are one filter: their rows merge,
// and the earlier names it.
func TestConcurrentSameDefinition(t *testing.T) {
	a, b := NewCatalog(time.Hour), NewCatalog(time.Hour)
	d := def(t, 1000, 0.01)
	a.Create("f", d, "a", epoch.Add(time.Second))
	b.Create("f", d, "b", epoch)
	sync(a, b, epoch.Add(time.Minute))
	live := a.Answering("f")
	require.Len(t, live, 2, "both versions answer: their rows are one filter's")
	assert.Equal(t, "b", live[0].Origin)
	assert.Equal(t, live[0].Def.FP, live[1].Def.FP)
	_, err := a.Create("f", d, "c", epoch.Add(time.Hour))
	assert.NoError(t, err)
}

// A drop made while a member was cut off wins when it comes back: its
// version of the dropped generation does not come back, and a filter
// re-created under the name is a new generation the old rows never reach.
func TestDropDuringPartitionThenRecreate(t *testing.T) {
	a, b := NewCatalog(24*time.Hour), NewCatalog(24*time.Hour)
	old, _ := a.Create("tenant", def(t, 1000, 0.01), "a", epoch)
	sync(a, b, epoch.Add(time.Second))
	// Partition: a drops and re-creates; b keeps using the old one.
	gen, err := a.Drop("tenant", epoch.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, uint64(1), gen)
	assert.Empty(t, a.Answering("tenant"))
	again, err := a.Create("tenant", def(t, 1000, 0.01), "a", epoch.Add(2*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), again.Gen)
	_, err = b.Create("tenant", def(t, 1000, 0.01), "b", epoch.Add(3*time.Minute))
	require.NoError(t, err, "b still has generation 1: nothing to create")

	sync(b, a, epoch.Add(time.Hour)) // healed
	for _, c := range []*Catalog{a, b} {
		assert.Equal(t, []ID{again.ID()}, ids(c.Answering("tenant")), "only generation 2 lives")
		assert.NotContains(t, ids(c.Answering("tenant")), old.ID())
	}
	assert.Equal(t, a.Entries(), b.Entries())
}

// Tombstones go after the TTL; a member away longer than that comes back
// with a version nobody knows any more, created before the horizon: it is
// refused, not resurrected.
func TestMemberAwayPastTheTTL(t *testing.T) {
	ttl := 24 * time.Hour
	a, b := NewCatalog(ttl), NewCatalog(ttl)
	a.Create("day-1", def(t, 1000, 0.01), "a", epoch)
	sync(a, b, epoch.Add(time.Second))
	a.Drop("day-1", epoch.Add(time.Hour))
	assert.Empty(t, a.Expire(epoch.Add(2*time.Hour)), "within the TTL the tombstone stays")
	assert.Equal(t, []string{"day-1"}, a.Expire(epoch.Add(ttl+2*time.Hour)), "then it goes")

	refused := 0
	for _, e := range b.Entries() { // b comes back, a day and more later
		refused += a.Merge(e, epoch.Add(ttl+3*time.Hour))
	}
	assert.Equal(t, 1, refused)
	assert.Empty(t, a.Answering("day-1"), "not resurrected")

	// The name's dropped generation outlives its tombstone: created again,
	// it is generation 2, with another seed, so the old rows never fit.
	again, err := a.Create("day-1", def(t, 1000, 0.01), "a", epoch.Add(ttl+5*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), again.Gen)
	assert.NotEqual(t, FilterSeed("day-1", 1), FilterSeed("day-1", 2))
	assert.Equal(t, FilterSeed("day-1", 2), FilterSeed("day-1", 2))
	assert.NotEqual(t, FilterSeed("day-1", 1), FilterSeed("day-2", 1))
	for _, e := range b.Entries() { // and b's generation 1 stays dead, however it comes
		e.Versions[0].Created = epoch.Add(ttl + 5*time.Hour).UnixMilli()
		a.Merge(e, epoch.Add(ttl+6*time.Hour))
	}
	assert.Equal(t, []ID{again.ID()}, ids(a.Answering("day-1")), "below the floor: dead")

	// A version created recently is taken, known or not.
	c := NewCatalog(ttl)
	fresh, _ := c.Create("day-2", def(t, 1000, 0.01), "c", epoch.Add(ttl+3*time.Hour))
	for _, e := range c.Entries() {
		assert.Zero(t, a.Merge(e, epoch.Add(ttl+4*time.Hour)))
	}
	assert.Equal(t, []ID{fresh.ID()}, ids(a.Answering("day-2")))
}

// A catalog restarted from what it had (its entries, as the data
// directory keeps them) is the same catalog.
func TestCatalogRestart(t *testing.T) {
	a := NewCatalog(time.Hour)
	a.Create("one", def(t, 1000, 0.01), "a", epoch)
	a.Create("two", def(t, 2000, 0.01), "a", epoch)
	a.Drop("two", epoch.Add(time.Minute))
	restarted := NewCatalog(time.Hour)
	for _, e := range a.Entries() {
		restarted.Merge(e, epoch.Add(2*time.Minute))
	}
	assert.Equal(t, a.Entries(), restarted.Entries())
	assert.Equal(t, []string{"one"}, restarted.Names())
}

// Random operations on five nodes, gossiped in random pairs with entries
// lost, duplicated and reordered: once everyone has heard from everyone,
// every catalog is the same, and it is what the rules say.
func TestCatalogConvergesUnderLossAndReordering(t *testing.T) {
	expired := 0
	defer func() { assert.Positive(t, expired, "no filter expired in any history") }()
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			const nodes = 5
			cs := make([]*Catalog, nodes)
			for i := range cs {
				cs[i] = NewCatalog(24 * time.Hour)
			}
			defs := []CatalogDef{def(t, 1000, 0.01), def(t, 2000, 0.01), def(t, 1000, 0.001)}
			names := []string{"a", "b", "c", "d"}
			now := epoch
			for step := range 300 {
				now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
				i := rng.IntN(nodes)
				name := names[rng.IntN(len(names))]
				expired += len(cs[i].DropDue(now)) // as each node does on its own clock
				switch op := rng.IntN(12); {
				case op < 4:
					cs[i].Create(name, defs[rng.IntN(len(defs))], fmt.Sprint("n", i), now)
				case op < 5:
					cs[i].Drop(name, now)
				case op < 6:
					if live := cs[i].Answering(name); len(live) > 1 {
						cs[i].DropVersion(name, live[len(live)-1].ID(), now)
					}
				case op < 8: // a deadline a few seconds ahead, or none
					var deadline time.Time
					if rng.IntN(3) > 0 {
						deadline = now.Add(time.Duration(rng.IntN(10_000)) * time.Millisecond)
					}
					cs[i].SetDeadline(name, deadline, fmt.Sprint("n", i), now)
				default: // gossip: some entries, in some order, maybe twice
					j := rng.IntN(nodes)
					es := cs[i].Entries()
					rng.Shuffle(len(es), func(x, y int) { es[x], es[y] = es[y], es[x] })
					for _, e := range es {
						switch rng.IntN(4) {
						case 0: // lost
						case 1:
							cs[j].Merge(e, now)
							cs[j].Merge(e, now)
						default:
							cs[j].Merge(e, now)
						}
					}
				}
				_ = step
			}
			for range 2 { // everyone hears from everyone
				for i := range nodes {
					cs[i].DropDue(now)
					for j := range nodes {
						sync(cs[i], cs[j], now)
					}
				}
			}
			for i := 1; i < nodes; i++ {
				require.Equal(t, cs[0].Entries(), cs[i].Entries(), "node %d differs", i)
			}
			for _, e := range cs[0].Entries() {
				if dl, ok := cs[0].Deadline(e.Name); ok && !dl.IsZero() {
					assert.True(t, dl.After(now), "%s: lives past its deadline", e.Name)
				}
				for _, v := range e.Versions {
					assert.False(t, e.dead(v), "%s: a dropped version lives", e.Name)
					assert.Equal(t, e.Versions[0].Gen, v.Gen, "%s: one generation lives", e.Name)
					assert.Greater(t, v.Gen, e.dropGen(), "%s: a live generation above every drop", e.Name)
				}
				for k := 1; k < len(e.Versions); k++ {
					assert.Negative(t, before(e.Versions[k-1], e.Versions[k]), "%s: the winner first", e.Name)
				}
			}
		})
	}
}

func ids(vs []Version) []ID {
	var out []ID
	for _, v := range vs {
		out = append(out, v.ID())
	}
	return out
}

// A member that was away, or joins, longer than the TTL after a filter
// was created takes it: it lives, and every member must hold it. (The
// simulator found members refusing such filters for good, their catalogs
// never converging: a node added to a cluster a day after its filters
// were made never got them.)
func TestLateMemberTakesOldFilters(t *testing.T) {
	ttl := 24 * time.Hour
	a, late := NewCatalog(ttl), NewCatalog(ttl)
	v, err := a.Create("long-lived", def(t, 1000, 0.01), "a", epoch)
	require.NoError(t, err)
	for _, e := range a.Entries() {
		assert.Zero(t, late.Merge(e, epoch.Add(ttl+time.Hour)))
	}
	assert.Equal(t, []ID{v.ID()}, ids(late.Answering("long-lived")))
	assert.Equal(t, a.Entries(), late.Entries())

	// Another old version of the same generation, unknown here, is taken
	// too (a member that made the filter again while it had lost its
	// catalog): the earliest still wins, and both sides agree.
	rival := late.Entries()[0]
	rival.Versions = []Version{rival.Versions[0]}
	rival.Versions[0].Created += 1000
	rival.Versions[0].Origin = "z"
	assert.Zero(t, late.Merge(rival, epoch.Add(ttl+2*time.Hour)))
	assert.Equal(t, []ID{v.ID(), rival.Versions[0].ID()}, ids(late.Answering("long-lived")))
	assert.Zero(t, a.Merge(rival, epoch.Add(ttl+2*time.Hour)))
	assert.Equal(t, a.Entries(), late.Entries())
}
