package replicate

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sent is what a Replicator sent, by filter name ("" the default's).
type sent map[string][]netip.AddrPort

func setup(t *testing.T) (*registry.Registry, *Replicator, sent) {
	reg, err := registry.Open(registry.Config{Node: "n1", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 10_000, FPRate: 0.01},
		MaxFilters: 8, TombstoneTTL: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	got := sent{}
	r, err := New(Config{Registry: reg, Gossip: gossip.DefaultConfig(), MaxDatagram: 1400, Seed: "n1",
		Send: func(_ int, out *gossip.Outbox, name string, _ uint64) {
			for to := range out.All() {
				got[name] = append(got[name], to)
			}
			out.Reset()
		}})
	require.NoError(t, err)
	return reg, r, got
}

func create(t *testing.T, reg *registry.Registry, name string) *registry.Filter {
	return createSized(t, reg, name, 1000)
}

func createSized(t *testing.T, reg *registry.Registry, name string, capacity uint64) *registry.Filter {
	p, err := reg.Create(name, registry.Sizing{Layout: filter.Blocked, Capacity: capacity, FPRate: 0.01})
	require.NoError(t, err)
	res := reg.Apply(p)
	require.NoError(t, res.Err)
	return res.Filter
}

func addKeys(t *testing.T, f *registry.Filter, keys ...string) {
	var raw [][]byte
	for _, k := range keys {
		raw = append(raw, []byte(k))
	}
	_, _, err := f.Add(raw, make([]byte, (len(raw)+7)/8), &store.Scratch{})
	require.NoError(t, err)
}

// Every filter's segments go to every member; the default filter's only
// to members whose default filter is this node's. A filter made later
// is replicated from the next tick, to the members there are.
func TestEveryFilterToEveryMember(t *testing.T) {
	reg, r, got := setup(t)
	same, other := netip.MustParseAddrPort("10.0.0.2:8000"), netip.MustParseAddrPort("10.0.0.3:8000")
	users := create(t, reg, "users")
	addKeys(t, users, "alice")
	_, added := r.MemberUp("same", same, true, true)
	assert.True(t, added)
	report, added := r.MemberUp("other", other, false, true)
	assert.True(t, report, "a mismatch to log")
	assert.False(t, added, "not a target of the default filter")
	_, _ = r.MemberUp("other", other, false, true)
	assert.Equal(t, 2, r.Members())
	assert.True(t, r.IsMemberIP(other.Addr()))

	addKeys(t, reg.Default(), "k")
	r.Tick()
	assert.ElementsMatch(t, []netip.AddrPort{same, other}, got["users"], "a named filter to every member")
	assert.Equal(t, []netip.AddrPort{same}, got[""], "the default only where it is the same")

	late := create(t, reg, "late")
	addKeys(t, late, "x")
	r.Tick()
	assert.ElementsMatch(t, []netip.AddrPort{same, other}, got["late"])

	r.MemberDown("other")
	clear(got)
	addKeys(t, late, "y")
	r.Tick()
	assert.Equal(t, []netip.AddrPort{same}, got["late"], "a member down is no target")
	assert.False(t, r.IsMemberIP(other.Addr()))

	p, err := reg.Drop("late")
	require.NoError(t, err)
	reg.Apply(p)
	before := r.Counters().Frames
	r.Tick()
	assert.GreaterOrEqual(t, r.Counters().Frames, before, "a dropped filter's counts stay in the totals")
}

// A tick sends at most tickBytes beyond the default filter's first
// segment; the segments left go first next tick.
func TestTickBudget(t *testing.T) {
	reg, r, got := setup(t)
	for i := range 8 { // a window (64 KiB) each: 512 KiB in all
		f := createSized(t, reg, fmt.Sprint("f", i), 100_000)
		keys := make([]string, 4000)
		for j := range keys {
			keys[j] = fmt.Sprint(i, "-", j)
		}
		addKeys(t, f, keys...)
	}
	r.MemberUp("m", netip.MustParseAddrPort("10.0.0.2:8000"), true, false) // whole rows: a window is 64 KiB
	r.Tick()
	assert.Less(t, len(got), 8, "not every filter in one tick")
	first := len(got)
	r.Tick()
	assert.Greater(t, len(got), first, "the others next")
}

// IsMember knows members by their data address, as they come, move and go.
func TestIsMember(t *testing.T) {
	_, r, _ := setup(t)
	a, moved := netip.MustParseAddrPort("10.0.0.2:8000"), netip.MustParseAddrPort("10.0.0.2:8001")
	assert.False(t, r.IsMember(a))
	r.MemberUp("m", a, true, true)
	assert.True(t, r.IsMember(a))
	assert.False(t, r.IsMember(moved), "another port of the same host is not the member")
	r.MemberUp("m", moved, true, true)
	assert.False(t, r.IsMember(a))
	assert.True(t, r.IsMember(moved))
	r.MemberDown("m")
	assert.False(t, r.IsMember(moved))
}

// A filter this node begins to replicate while it already holds rows
// from the cluster (pulled before its first tick) pushes them to none of
// the members there were: they sent them. A member that joins later is
// filled with every row; the rows this node originates go to all.
func TestRowsFromTheClusterGoBackToNone(t *testing.T) {
	reg, r, got := setup(t)
	a, b, late := netip.MustParseAddrPort("10.0.0.2:8000"), netip.MustParseAddrPort("10.0.0.3:8000"), netip.MustParseAddrPort("10.0.0.4:8000")
	r.MemberUp("a", a, true, true)
	r.MemberUp("b", b, true, true)
	r.Tick()
	f := create(t, reg, "pulled")
	rows := f.Segments()[0].Rows()
	row := make([]byte, rows.RowBytes())
	row[0] = 1
	changed, err := rows.MergeRows(rows.Fingerprint(), 3, row, nil)
	require.NoError(t, err)
	require.Len(t, changed, 1)
	clear(got)
	for range 5 {
		r.Tick()
	}
	assert.Empty(t, got["pulled"], "rows the members sent go back to none of them")

	r.MemberUp("late", late, true, true)
	r.Tick()
	assert.Equal(t, []netip.AddrPort{late}, got["pulled"], "a member that joins later is filled")

	clear(got)
	addKeys(t, f, "mine")
	r.Tick()
	assert.ElementsMatch(t, strs([]netip.AddrPort{a, b, late}), strs(got["pulled"]), "what this node originates goes to every member")
}

func strs(as []netip.AddrPort) (s []string) {
	for _, a := range as {
		s = append(s, a.String())
	}
	return s
}
