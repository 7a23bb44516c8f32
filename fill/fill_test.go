package fill

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/route"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// members answer how they hold the filter: "ready", "filling", "none"
// (not in their catalog), "other" (placed elsewhere), or "down".
type members struct {
	how    map[netip.AddrPort]string
	pulled []netip.AddrPort
}

func (m *members) Do(_ context.Context, addr netip.AddrPort, _ string, req, dst []byte) ([]byte, error) {
	q, err := wire.DecodeFilterRequest(req)
	if err != nil {
		return dst, err
	}
	how := m.how[addr]
	switch how {
	case "down":
		return dst, errors.New("connection refused")
	case "none":
		return wire.AppendError(dst, wire.ErrorFrame{ReqID: q.ReqID, Code: wire.CodeRefused, Msg: []byte("no filter")})
	}
	d := wire.FilterDesc{Name: q.Name, Gen: 1, Created: created, Origin: []byte("n0"), Stages: 1, Replicas: 2,
		Here: map[string]uint8{"ready": wire.HeldReady, "filling": wire.HeldFilling, "other": wire.HeldNot}[how]}
	return wire.AppendFilters(dst, q.ReqID, wire.FiltersStages|wire.FiltersWindows|wire.FiltersPlacement, []wire.FilterDesc{d})
}

func (m *members) pull(_ context.Context, addr netip.AddrPort, seg *registry.Segment, runs []filter.Run) (int, error) {
	m.pulled = append(m.pulled, addr)
	return int(runs[0].Count), nil
}

var created int64

// filling returns a registry of node "me2" holding a placed filter f,
// filling: it was made by n0, a member that held it before.
func filling(t *testing.T) (*registry.Registry, *registry.Filter) {
	r, err := registry.Open(registry.Config{Node: "n0", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01},
		MaxFilters: 4, TombstoneTTL: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	r.Apply(r.SetMembers([]string{"n0", "me2"}))
	p, err := r.Create("f", registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Replicas: 2})
	require.NoError(t, err)
	require.NoError(t, r.Apply(p).Err)
	// Seen from a member that learns it: every version another made, once
	// others are around, opens filling.
	f := r.Lookup([]byte("f")).Winner()
	created = f.Version().Created
	r2, err := registry.Open(registry.Config{Node: "me2", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01},
		MaxFilters: 4, TombstoneTTL: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { r2.Close() })
	r2.Apply(r2.SetMembers([]string{"me2", "n0"}))
	require.NoError(t, r2.Apply(r2.Merge(r.Entries())).Err)
	g := r2.Lookup([]byte("f")).Winner()
	require.NotNil(t, g)
	require.True(t, g.Filling())
	return r2, g
}

func addr(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

// round fills with the members ranked as given ("me" is this node).
func round(fl *Filler, r *registry.Registry, ms *members, rank ...string) Result {
	return fl.Round(context.Background(), r, func(registry.Route) []route.Member {
		var out []route.Member
		for i, name := range rank {
			out = append(out, route.Member{Name: name, Addr: addr(uint16(i + 1)), Self: name == "me"})
		}
		return out
	})
}

func TestFill(t *testing.T) {
	for _, c := range []struct {
		name   string
		rank   []string
		how    []string // per rank
		filled bool
		pulled int // from rank i (-1: none)
	}{
		{"from the first ready member", []string{"a", "me", "b"}, []string{"other", "", "ready"}, true, 2},
		{"a member ranked above fills first", []string{"a", "me"}, []string{"filling", ""}, false, -1},
		{"first among those filling it", []string{"me", "a"}, []string{"", "filling"}, true, -1},
		{"nobody holds it", []string{"a", "me", "b"}, []string{"none", "", "other"}, true, -1},
		{"one not reached: asked again", []string{"a", "me", "b"}, []string{"down", "", "other"}, false, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, f := filling(t)
			ms := &members{how: map[netip.AddrPort]string{}}
			for i, h := range c.how {
				ms.how[addr(uint16(i+1))] = h
			}
			fl := New(Config{Forwarder: ms, Pull: ms.pull, Timeout: time.Second, PullTimeout: time.Second})
			res := round(fl, r, ms, c.rank...)
			assert.Equal(t, c.filled, !f.Filling())
			if c.pulled >= 0 {
				assert.Equal(t, []netip.AddrPort{addr(uint16(c.pulled + 1))}, ms.pulled)
				assert.Equal(t, 1, res.Filled)
				assert.Equal(t, f.Segments()[0].Rows().SizeBytes(), res.Bytes)
			} else {
				assert.Empty(t, ms.pulled)
				assert.Zero(t, res.Filled)
			}
			assert.Equal(t, !c.filled, res.Failed == 1)
		})
	}
}

// A filter that finds no member to fill from within GiveUp is taken as
// filled: its rows here are all it gets.
func TestFillGivesUp(t *testing.T) {
	r, f := filling(t)
	ms := &members{how: map[netip.AddrPort]string{addr(1): "down"}}
	now := time.Unix(1_800_000_000, 0)
	fl := New(Config{Forwarder: ms, Pull: ms.pull, Timeout: time.Second, PullTimeout: time.Second, GiveUp: time.Minute,
		Now: func() time.Time { return now }})
	round(fl, r, ms, "a", "me")
	now = now.Add(time.Minute)
	round(fl, r, ms, "a", "me")
	assert.True(t, f.Filling(), "a minute: still waiting")
	now = now.Add(time.Second)
	round(fl, r, ms, "a", "me")
	assert.False(t, f.Filling())
}
