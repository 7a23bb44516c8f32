package registry

import (
	"slices"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// Describe describes a filter by its winning version, with its figures
// as of the last RefreshStats, and its placement.
func (r *Registry) Describe(vs Versions) wire.FilterDesc {
	f := vs.Winner()
	d := describeVersion(f.Name(), len(vs), f.Version())
	d.Stages, d.Bytes, d.StagesCapacity = uint16(len(f.Segments())), f.Bytes(), f.Capacity()
	if st := r.StatsNow(f); st != nil {
		d.Keys, d.FillPPM = uint64(st.EstimatedKeys), uint32(st.Fill*1e6)
	}
	r.describePlacement(&d)
	switch {
	case f.Filling():
		d.Here = wire.HeldFilling
	case f.Unowned():
		d.Here = wire.HeldLeaving
	}
	return d
}

// DescribeName describes name's filter: as Describe when it is held here,
// else, placed on other members, as the catalog has it (no figures).
func (r *Registry) DescribeName(name string) (wire.FilterDesc, bool) {
	if vs := r.Lookup([]byte(name)); len(vs) > 0 {
		return r.Describe(vs), true
	}
	if _, ok := r.Route([]byte(name)); !ok {
		return wire.FilterDesc{}, false
	}
	r.mu.Lock()
	live := r.cat.Live(name)
	r.mu.Unlock()
	if len(live) == 0 {
		return wire.FilterDesc{}, false
	}
	d := describeVersion(name, len(live), live[0])
	r.describePlacement(&d)
	d.Here = wire.HeldNot
	return d, true
}

// describeVersion describes version v of name, one of n live.
func describeVersion(name string, n int, v gossip.Version) wire.FilterDesc {
	return wire.FilterDesc{Name: []byte(name), Conflicts: uint8(min(n-1, 255)), Gen: v.Gen, Created: v.Created,
		Origin: []byte(v.Origin), FP: v.Def.FP, Capacity: v.Def.Capacity, FPRate: v.Def.FPRate,
		Expansion: v.Def.Expansion, NonScaling: v.Def.NonScaling, Window: v.Def.Window, Slices: v.Def.Slices,
		Replicas: v.Def.Replicas, Here: wire.HeldReady}
}

// describePlacement fills d's owners, when it is placed.
func (r *Registry) describePlacement(d *wire.FilterDesc) {
	rt, ok := r.Route(d.Name)
	if !ok {
		return
	}
	for _, o := range rt.Owners() {
		d.Owners = append(d.Owners, []byte(o))
	}
}

// List describes the filters, a page at a time: from the first with
// after "", the default first and then the others by name; from the one
// after the name after on the next pages. A page holds at most max; more
// reports whether others follow. Placed filters held by other members are
// described from the catalog.
func (r *Registry) List(after string, max int) (descs []wire.FilterDesc, more bool) {
	for _, name := range append([]string{DefaultName}, r.listNames()...) {
		if after != "" && (name <= after || name == DefaultName) { // the default was on the first page
			continue
		}
		if len(descs) == max {
			return descs, true
		}
		if d, ok := r.DescribeName(name); ok {
			descs = append(descs, d)
		}
	}
	return descs, false
}

// listNames returns the names List describes: those held here and the
// placed ones, sorted.
func (r *Registry) listNames() []string {
	t := r.table.Load()
	if len(t.routes) == 0 {
		return t.names
	}
	names := slices.Clone(t.names)
	for name := range t.routes {
		if _, held := t.byName[name]; !held {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
