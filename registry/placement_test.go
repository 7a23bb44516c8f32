package registry

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/placement"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func placedSizing(replicas int) Sizing {
	s := blocked(10_000, 0.01)
	s.Replicas = replicas
	return s
}

// owned returns the names of the filters open on r that it owns.
func owned(r *Registry) []string {
	var out []string
	for _, f := range r.All()[1:] {
		if !f.Unowned() {
			out = append(out, f.Name())
		}
	}
	return out
}

// held returns the names of the filters open on r.
func held(r *Registry) []string {
	var out []string
	for _, f := range r.All()[1:] {
		out = append(out, f.Name())
	}
	return out
}

// TestPlacedOnOwnersOnly: of 30 filters on 2 of 3 members, a member
// opens those it owns — the ones placement ranks it among the first two
// for — and routes every one to its owners, while the catalog lists all.
func TestPlacedOnOwnersOnly(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFilters = 100
	r := open(t, cfg)
	members := []string{"n1", "n2", "n3"}
	r.Apply(r.SetMembers(members))
	var want, all []placement.Filter
	for i := range 30 {
		name := fmt.Sprintf("f%02d", i)
		p, err := r.Create(name, placedSizing(2))
		require.NoError(t, err)
		require.NoError(t, r.Apply(p).Err)
		all = append(all, placement.Filter{Name: name, Bytes: r.Lookup([]byte(DefaultName)).Winner().Bytes(), Replicas: 2})
		rt, ok := r.Route([]byte(name))
		require.True(t, ok, name)
		assert.Equal(t, 3, len(rt.Ranked))
	}
	for i, ranked := range placement.Assign(all, members, placement.DefaultBound) {
		rt, _ := r.Route([]byte(all[i].Name))
		assert.Equal(t, ranked, rt.Ranked, "%s: placed as Assign says, the oldest first", all[i].Name)
		if rt.Owns("n1") {
			want = append(want, all[i])
		}
	}
	var wantNames []string
	for _, f := range want {
		wantNames = append(wantNames, f.Name)
	}
	assert.Equal(t, wantNames, owned(r), "a filter made may move one made before: kept for the grace, not owned")
	assert.Len(t, r.Entries(), 30, "the catalog holds every filter")
	assert.InDelta(t, 20, len(want), 7, "about two in three")
	for _, f := range r.All()[1:] {
		assert.False(t, f.Filling(), "made here: nothing to fill from")
	}
	_, ok := r.Route([]byte(DefaultName))
	assert.False(t, ok)

	// n3 leaves: n1 owns every filter, the new ones filling.
	r.Apply(r.SetMembers([]string{"n1", "n2"}))
	assert.Len(t, held(r), 30)
	filling := 0
	for _, f := range r.All()[1:] {
		if f.Filling() {
			filling++
			assert.False(t, slices.Contains(wantNames, f.Name()), "%s was held already", f.Name())
		}
	}
	assert.Equal(t, 30-len(want), filling)
}

// TestUnownedFreedAfterGrace: a filter another member takes over stays,
// answering, for the grace, then is freed with its folder; one owned
// again within the grace is kept.
func TestUnownedFreedAfterGrace(t *testing.T) {
	cfg, clk := clocked()
	cfg.HandoffGrace = 10 * time.Second
	cfg.MaxFilters = 100
	path := t.TempDir()
	r := reopener(t, path, cfg)()
	defer func() { r.Close() }()
	r.Apply(r.SetMembers([]string{"n1"}))
	for i := range 20 {
		create(t, r, fmt.Sprintf("f%02d", i), placedSizing(1))
	}
	require.Len(t, held(r), 20)
	add(t, r.Lookup([]byte("f00")).Winner(), "kept")
	grown := append([]string{"n1"}, "n2", "n3", "n4")
	r.Apply(r.SetMembers(grown))
	var moved []string
	for i := range 20 {
		name := fmt.Sprintf("f%02d", i)
		if rt, _ := r.Route([]byte(name)); !rt.Owns("n1") {
			moved = append(moved, name)
			assert.True(t, r.Lookup([]byte(name)).Winner().Unowned(), name)
		}
	}
	require.NotEmpty(t, moved)
	assert.Len(t, held(r), 20, "kept for the grace")
	clk.Add(9 * time.Second)
	r.Apply(r.DropDue())
	assert.Len(t, held(r), 20)
	clk.Add(2 * time.Second)
	res := r.Apply(r.DropDue())
	require.NoError(t, res.Err)
	assert.Len(t, res.Closed, len(moved))
	assert.Len(t, held(r), 20-len(moved))
	for _, name := range moved {
		_, ok := r.Route([]byte(name))
		assert.True(t, ok, "still routed: %s", name)
	}

	// A restart opens only the placed filters whose folders it has,
	// filling until a member confirms their rows.
	require.NoError(t, r.Close())
	r = reopener(t, path, cfg)()
	assert.Len(t, held(r), 20-len(moved))
	for _, f := range r.All()[1:] {
		assert.True(t, f.Filling(), f.Name())
	}
	if !slices.Contains(moved, "f00") {
		assert.True(t, r.Lookup([]byte("f00")).Winner().Has([]byte("kept")))
	}
}

// TestPlacementInTheCatalog: replicas travel in the catalog; creating a
// name again with other replicas is refused, naming both; a windowed
// filter is not placed.
func TestPlacementInTheCatalog(t *testing.T) {
	r := open(t, testConfig())
	r.Apply(r.SetMembers([]string{"n1", "n2", "n3"}))
	p, err := r.Create("f", placedSizing(2))
	require.NoError(t, err)
	r.Apply(p)
	b, err := gossip.AppendCatalog(nil, r.Entries())
	require.NoError(t, err)
	es, err := gossip.DecodeCatalog(b)
	require.NoError(t, err)
	assert.Equal(t, uint8(2), es[0].Versions[0].Def.Replicas)

	_, err = r.Create("f", placedSizing(3))
	assert.ErrorContains(t, err, "on 2 members")
	_, err = r.Create("f", placedSizing(0))
	assert.Error(t, err)
	p, err = r.Create("f", placedSizing(2))
	require.NoError(t, err, "the same again: found")
	assert.False(t, p.Created())

	w := windowed(1000, 0.01, 10*time.Second, 10)
	w.Replicas = 2
	_, err = r.Create("w", w)
	assert.ErrorIs(t, err, ErrReplicas)
	_, err = r.Create("x", placedSizing(256))
	assert.ErrorIs(t, err, ErrReplicas)
}

// TestPlacedMakesRoom: when the members change, a filter placed here
// waits for the memory held by filters this node gave up until their
// owners hold them (the node asks, SetHandedOff); they then go at once,
// before their grace ends, and the filter opens.
func TestPlacedMakesRoom(t *testing.T) {
	cfg := testConfig()
	cfg.MaxFilters = 100
	size, err := (&Registry{cfg: cfg}).SizeOf(blocked(10_000, 0.01))
	require.NoError(t, err)
	cfg.MaxMemory = int64(size*4 + size/2) // the default and three, 3.45 being the bound over 6 on 2
	r := open(t, cfg)
	r.Apply(r.SetMembers([]string{"n1", "n2"}))
	for i := range 6 {
		p, err := r.Create(fmt.Sprintf("f%d", i), placedSizing(1))
		require.NoError(t, err)
		r.Apply(p)
	}
	for _, others := range [][]string{{"n3"}, {"n4"}, {"n2"}, {"n5"}} {
		r.Apply(r.SetMembers(append([]string{"n1"}, others...)))
		for _, f := range r.Leaving() {
			assert.NotNil(t, r.Lookup([]byte(f.Name())), "kept until its owners hold it")
			f.SetHandedOff()
		}
		require.NoError(t, r.Apply(r.DropDue()).Err, "with %v", others)
		assert.Empty(t, r.Leaving())
		for i := range 6 {
			name := fmt.Sprintf("f%d", i)
			rt, _ := r.Route([]byte(name))
			vs := r.Lookup([]byte(name))
			if rt.Owns("n1") {
				require.NotEmpty(t, vs, "%s placed on n1 (with %v)", name, others)
				assert.False(t, vs.Winner().Unowned())
			} else {
				assert.Empty(t, vs, "%s handed off: freed at once", name)
			}
		}
		used, limit := r.Memory()
		assert.LessOrEqual(t, used, uint64(limit))
	}
}
