package registry

import "github.com/rmbd/rmbd/wire"

// Describe describes a filter by its winning version, with its figures
// as of the last RefreshStats.
func (r *Registry) Describe(vs Versions) wire.FilterDesc {
	f := vs.Winner()
	v := f.Version()
	d := wire.FilterDesc{Name: []byte(f.Name()), Conflicts: uint8(min(len(vs)-1, 255)), Gen: v.Gen, Created: v.Created,
		Origin: []byte(v.Origin), FP: v.Def.FP, Capacity: v.Def.Capacity, FPRate: v.Def.FPRate,
		Stages: uint16(len(f.Segments())), Bytes: f.Bytes(), StagesCapacity: f.Capacity(), Expansion: v.Def.Expansion, NonScaling: v.Def.NonScaling,
		Window: v.Def.Window, Slices: v.Def.Slices}
	if st := r.StatsNow(f); st != nil {
		d.Keys, d.FillPPM = uint64(st.EstimatedKeys), uint32(st.Fill*1e6)
	}
	return d
}

// List describes the filters, a page at a time: from the first with
// after "", the default first and then the others by name; from the one
// after the name after on the next pages. A page holds at most max; more
// reports whether others follow.
func (r *Registry) List(after string, max int) (descs []wire.FilterDesc, more bool) {
	for _, name := range append([]string{DefaultName}, r.Names()...) {
		if after != "" && (name <= after || name == DefaultName) { // the default was on the first page
			continue
		}
		if len(descs) == max {
			return descs, true
		}
		if vs := r.Lookup([]byte(name)); len(vs) > 0 {
			descs = append(descs, r.Describe(vs))
		}
	}
	return descs, false
}
