package registry

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/placement"
)

// Placement. A filter created with Replicas R lives on the R members
// ranked highest for its name (package placement), among the members this
// node sees alive (SetMembers); the others keep its catalog entry alone.
// Every version of a name is placed alike, so that versions in conflict
// meet on the same members.
//
// When the members change, an owner that gains a filter opens it filling:
// it holds what is added to it, but does not answer for it until its rows
// came from a member that held it (SetFilled). One that loses a filter
// keeps it, answering, for Config.HandoffGrace, and then frees it, its
// folder too. Until SetMembers is first called (a node still joining), a
// placed filter opens only from the folder a restart finds.

// Route is what a member needs to send a request for a placed filter to
// the members that hold it.
type Route struct {
	// Replicas is how many members hold the filter.
	Replicas int
	// Ranked are the members this node sees alive, ranked for the filter:
	// its owners first, then the members that held it before the last
	// change of membership, most likely, and so on.
	Ranked []string
}

// routeCache is the routes of one catalog and membership.
type routeCache struct {
	m            map[string]Route
	ver, members uint64
}

// Owners returns the members that hold the filter.
func (rt Route) Owners() []string { return rt.Ranked[:min(rt.Replicas, len(rt.Ranked))] }

// Owns reports whether member is among the owners.
func (rt Route) Owns(member string) bool { return slices.Contains(rt.Owners(), member) }

// Route returns how to reach name's filter when it is placed (ok false:
// not placed, or no such filter). The hot path: no lock.
func (r *Registry) Route(name []byte) (Route, bool) {
	rt, ok := r.table.Load().routes[string(name)]
	return rt, ok
}

// SetMembers tells the registry the members alive, this node included,
// and plans what follows: the placed filters this node now owns open
// filling, those it no longer owns are given up after the grace.
func (r *Registry) SetMembers(names []string) *Plan {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	if !slices.Contains(names, r.cfg.Node) {
		names = append(names, r.cfg.Node)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &Plan{}
	if r.members != nil && slices.Equal(r.members, names) {
		return p
	}
	r.members, r.memVer = names, r.memVer+1
	r.markOwned()
	for _, name := range r.cat.Names() {
		if placed(r.cat.Live(name)) {
			p.merge(r.reconcileName(name))
		}
	}
	r.publish()
	return p
}

// Members returns the members SetMembers last gave (nil: none yet).
func (r *Registry) Members() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.members)
}

// placed reports whether name's versions are placed on some members.
func placed(vs []gossip.Version) bool {
	return len(vs) > 0 && vs[0].Def.Replicas > 0
}

// owns reports whether this node is among the owners of a version of
// name with def, as the catalog and the members place it now; unknown
// members (no SetMembers yet) own nothing placed. Callers hold r.mu.
func (r *Registry) owns(name string, def gossip.CatalogDef) bool {
	if def.Replicas == 0 {
		return true
	}
	if r.members == nil {
		return false
	}
	rt, ok := r.routes()[name]
	if !ok { // about to be made: placed as the newest
		rt = r.routes(placement.Filter{Name: name, Bytes: def.Bytes(), Replicas: int(def.Replicas)})[name]
	}
	return rt.Owns(r.cfg.Node)
}

// routes places every placed filter of the catalog on the members, with
// bounded loads (placement.Assign), oldest first; a filter about to be
// made (extra, when not zero) goes last, the newest. Callers hold r.mu.
func (r *Registry) routes(extra ...placement.Filter) map[string]Route {
	if r.members == nil {
		return map[string]Route{}
	}
	if len(extra) == 0 && r.routed.ver == r.catVer && r.routed.members == r.memVer && r.routed.m != nil {
		return r.routed.m
	}
	type placedVersion struct {
		name string
		v    gossip.Version
	}
	var vs []placedVersion
	for _, name := range r.cat.Names() {
		if live := r.cat.Live(name); placed(live) {
			vs = append(vs, placedVersion{name, live[0]})
		}
	}
	slices.SortFunc(vs, func(a, b placedVersion) int {
		return cmp.Or(cmp.Compare(a.v.Created, b.v.Created), strings.Compare(a.name, b.name))
	})
	fs := make([]placement.Filter, len(vs), len(vs)+len(extra))
	for i, pv := range vs {
		fs[i] = placement.Filter{Name: pv.name, Bytes: pv.v.Def.Bytes(), Replicas: int(pv.v.Def.Replicas)}
	}
	fs = append(fs, extra...)
	out := make(map[string]Route, len(fs))
	for i, ranked := range placement.Assign(fs, r.members, placement.DefaultBound) {
		out[fs[i].Name] = Route{Replicas: fs[i].Replicas, Ranked: ranked}
	}
	if len(extra) == 0 {
		r.routed.m, r.routed.ver, r.routed.members = out, r.catVer, r.memVer
	}
	return out
}

// keepUnowned marks f, open here, as owned or not now: one no longer
// owned is freed once the grace has passed since (freeUnowned). Callers
// hold r.mu.
func (r *Registry) keepUnowned(f *Filter, owned bool) {
	switch {
	case owned:
		f.unowned.Store(0)
		f.handed.Store(false)
	case f.unowned.Load() == 0:
		f.unowned.Store(r.cfg.Now().UnixNano())
		r.log.Info("filter no longer placed here: kept for the grace, then freed", "filter", f.name,
			"grace", r.cfg.HandoffGrace.String())
	}
}

// freeUnowned plans closing, and removing, the placed filters this node
// has not owned for the grace. Callers hold r.mu.
func (r *Registry) freeUnowned() *Plan {
	p := &Plan{}
	now := r.cfg.Now()
	for folder, f := range r.open {
		since := f.unowned.Load()
		if since == 0 || !f.handed.Load() && now.Sub(time.Unix(0, since)) < r.cfg.HandoffGrace {
			continue
		}
		delete(r.open, folder)
		r.bytes -= f.budget()
		p.close = append(p.close, f)
		r.log.Info("filter freed: placed on other members", "filter", f.name, "bytes", f.Bytes())
	}
	if len(p.close) > 0 {
		r.publish()
	}
	return p
}

// markOwned marks each placed filter open here as owned or not, as the
// members place it now: those given up make room for those gained.
// Callers hold r.mu.
func (r *Registry) markOwned() {
	for _, f := range r.open {
		if f.version.Def.Replicas > 0 {
			r.keepUnowned(f, r.owns(f.name, f.version.Def))
		}
	}
}

// makeRoom frees placed filters this node gave up and their owners hold
// ready (but of name), the longest given up first, until a filter of size
// bytes fits within MaxMemory — a filter placed here comes first — or
// none, if freeing them all would not make the room. Callers hold r.mu.
func (r *Registry) makeRoom(size uint64, name string) *Plan {
	p := &Plan{}
	if r.roomFor(size) == nil {
		return p
	}
	var gone []*Filter
	for _, f := range r.open {
		if f.Unowned() && f.handed.Load() && f.name != name {
			gone = append(gone, f)
		}
	}
	var freeable uint64
	for _, f := range gone {
		freeable += f.budget()
	}
	if r.bytes-min(freeable, r.bytes)+size > uint64(r.cfg.MaxMemory) { // roomFor failed: there is a bound
		return p // not enough even so: free nothing
	}
	slices.SortFunc(gone, func(a, b *Filter) int { return cmp.Compare(a.unowned.Load(), b.unowned.Load()) })
	for _, f := range gone {
		if r.roomFor(size) == nil {
			break
		}
		delete(r.open, f.folder)
		r.bytes -= f.budget()
		p.close = append(p.close, f)
		r.log.Info("filter freed before its grace: a filter placed here needs the memory", "filter", f.name, "bytes", f.Bytes())
	}
	if len(p.close) > 0 {
		r.publish()
	}
	return p
}

// openOwned plans opening the placed filters this node owns and does not
// hold — refused for memory before (tried again as room is made). Callers
// hold r.mu.
func (r *Registry) openOwned() *Plan {
	p := &Plan{}
	if r.members == nil {
		return p
	}
	for name, rt := range r.routes() {
		if !rt.Owns(r.cfg.Node) {
			continue
		}
		for _, v := range r.cat.Live(name) {
			if folder := versionFolder(name, v.ID()); r.open[folder] == nil && r.pending[folder] == nil {
				p.merge(r.reconcileName(name))
				break
			}
		}
	}
	return p
}

// Filling reports whether f opened here for a change of members and
// awaits its rows from a member that held it: it takes adds, but does
// not answer for its keys.
func (f *Filter) Filling() bool { return f.filling.Load() }

// SetFilled marks f as holding the rows of the members that held it.
func (f *Filter) SetFilled() { f.filling.Store(false) }

// Unowned reports whether f is kept here only for the grace: this node
// is no longer among its owners.
func (f *Filter) Unowned() bool { return f.unowned.Load() != 0 }

// SetHandedOff marks f, given up, as held ready by its owners now: it is
// freed at once, the grace no longer needed.
func (f *Filter) SetHandedOff() {
	if f.Unowned() {
		f.handed.Store(true)
	}
}

// Leaving returns the placed filters open here that this node gave up
// and that are not known to be held by their owners yet.
func (r *Registry) Leaving() []*Filter {
	var out []*Filter
	for _, f := range r.All() {
		if f.Unowned() && !f.handed.Load() {
			out = append(out, f)
		}
	}
	return out
}

// Filling returns the placed filters open here that await their rows.
func (r *Registry) Filling() []*Filter {
	var out []*Filter
	for _, f := range r.All() {
		if f.Filling() {
			out = append(out, f)
		}
	}
	return out
}
