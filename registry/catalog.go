package registry

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// Mutations. Each decides under r.mu and returns a Plan that Apply
// carries out; none does file I/O.

// ErrDefault refuses creating or dropping the filter of the node's flags.
var ErrDefault = fmt.Errorf("%q is the filter the node's flags make; it is neither created nor dropped", DefaultName)

// ErrName refuses a name no filter can have.
var ErrName = fmt.Errorf("a filter's name is 1 to %d bytes of UTF-8, no control characters", wire.MaxFilterName)

// Create makes name a filter sized by s, created here now, or finds it
// made already with the same sizing (then the plan only waits for it).
// Another sizing is an error naming both; so is a name past MaxFilters or
// a filter past MaxMemory.
func (r *Registry) Create(name string, s Sizing) (*Plan, error) {
	switch {
	case name == DefaultName:
		return nil, ErrDefault
	case !wire.ValidFilterName(name):
		return nil, fmt.Errorf("filter name %q: %w", name, ErrName)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	def, err := s.def(name, r.cat.NextGen(name), r.cfg.MaxFilterBytes)
	if err != nil {
		return nil, err
	}
	if live := r.cat.Live(name); len(live) > 0 {
		if live[0].Def.FP != def.FP || live[0].Def.Replicas != def.Replicas {
			_, err := r.cat.Create(name, def, r.cfg.Node, r.cfg.Now()) // the error names both
			return nil, err
		}
		p := r.reconcile(name)
		if r.owns(name, def) {
			p.want = versionFolder(name, live[0].ID())
		}
		return p, nil
	}
	if n := r.names(); n >= r.cfg.MaxFilters {
		return nil, fmt.Errorf("%d named filters already, the most --max-filters allows", n)
	}
	room := &Plan{}
	if r.owns(name, def) { // else placed on other members: they open it, and refuse it if full
		room = r.makeRoom(def.Bytes(), name)
		if err := r.roomFor(def.Bytes()); err != nil {
			return nil, err // nothing freed
		}
	}
	v, err := r.cat.Create(name, def, r.cfg.Node, r.cfg.Now())
	if err != nil {
		return room, err
	}
	r.catVer++
	p := r.reconcile(name)
	p.merge(room)
	p.catalog, p.created = r.catVer, true
	if r.owns(name, def) {
		p.want = versionFolder(name, v.ID())
	}
	for _, o := range p.open {
		o.f.filling.Store(false) // made here now: no member holds a row of it
	}
	p.Broadcast = append(p.Broadcast, r.cat.Entry(name))
	return p, nil
}

var errClosed = errors.New("registry: closed")

// Drop drops every version of name, here and, once the plan's broadcast
// is sent, everywhere: a tombstone in the catalog.
func (r *Registry) Drop(name string) (*Plan, error) {
	if name == DefaultName {
		return nil, ErrDefault
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.cat.Drop(name, r.cfg.Now()); err != nil {
		return nil, err
	}
	r.catVer++
	p := r.reconcile(name)
	p.catalog = r.catVer
	p.Broadcast = append(p.Broadcast, r.cat.Entry(name))
	return p, nil
}

// Merge folds catalog entries a member sent into this node's, and plans
// the filters that follow: versions to open, versions to close.
func (r *Registry) Merge(entries []gossip.Entry) *Plan {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &Plan{}
	now := r.cfg.Now()
	var changed []string
	for _, e := range entries { // all merged first: placing one filter depends on the others
		before := r.cat.Entry(e.Name)
		r.cat.Merge(e, now)
		if !sameEntry(before, r.cat.Entry(e.Name)) {
			changed = append(changed, e.Name)
		}
	}
	if len(changed) == 0 {
		return p
	}
	r.catVer++
	p.catalog = r.catVer
	replaced := false
	for _, name := range changed {
		_, routed := r.table.Load().routes[name]
		if !replaced && r.members != nil && (routed || placed(r.cat.Live(name))) {
			p.merge(r.reconcile(name)) // every placed filter follows, once
			replaced = true
			continue
		}
		p.merge(r.reconcileName(name))
	}
	return p
}

// Expire forgets tombstones past the TTL (keeping each name's dropped
// generation) and plans saving the catalog if any went.
func (r *Registry) Expire() *Plan {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.cat.Tombstones()
	r.cat.Expire(r.cfg.Now())
	p := &Plan{}
	if r.cat.Tombstones() < before {
		r.catVer++
		p.catalog = r.catVer
	}
	return p
}

// reconcile plans name's filters to what the catalog says: a filter for
// every live version, none for the rest. Versions to close leave the
// table at once (no new request finds them); versions to open are loaded
// by Apply. A placed filter made, changed or dropped may move others
// (placement bounds the members' loads): every placed filter follows.
// Callers hold r.mu.
func (r *Registry) reconcile(name string) *Plan {
	_, routed := r.table.Load().routes[name]
	replace := r.members != nil && (routed || placed(r.cat.Live(name)))
	if replace {
		r.markOwned()
	}
	p := r.reconcileName(name)
	if replace {
		for _, other := range r.cat.Names() {
			if other != name && placed(r.cat.Live(other)) {
				p.merge(r.reconcileName(other))
			}
		}
	}
	return p
}

// reconcileName is reconcile, for name alone. Callers hold r.mu.
func (r *Registry) reconcileName(name string) *Plan {
	p := &Plan{}
	live := map[string]bool{}
	for _, v := range r.cat.Live(name) {
		folder := versionFolder(name, v.ID())
		live[folder] = true
		owned := r.owns(name, v.Def)
		if f := r.open[folder]; f != nil {
			r.keepUnowned(f, owned)
		}
		if r.open[folder] != nil || r.pending[folder] != nil || !owned {
			continue
		}
		p.merge(r.makeRoom(opened(v.Def), name)) // placed filters this node gave up go before their grace ends
		if err := r.roomFor(opened(v.Def)); err != nil {
			p.errs = append(p.errs, fmt.Errorf("filter %q: %w", name, err))
			continue
		}
		o := &opening{f: newFilter(name, v), done: make(chan struct{})}
		o.f.filling.Store(v.Def.Replicas > 0 && len(r.members) > 1) // members may hold its rows (SetFilled)
		r.pending[folder] = o
		r.bytes += opened(v.Def)
		p.open = append(p.open, o)
	}
	closed := false
	for folder, f := range r.open {
		if f.name == name && !live[folder] {
			delete(r.open, folder)
			r.bytes -= f.budget()
			p.close = append(p.close, f)
			closed = true
		}
	}
	if _, routed := r.table.Load().routes[name]; closed || routed != (placed(r.cat.Live(name)) && r.members != nil) {
		r.publish() // routes follow the catalog
	}
	return p
}

// names counts the named filters open or being opened. Callers hold r.mu.
func (r *Registry) names() int {
	seen := map[string]bool{}
	for _, f := range r.open {
		seen[f.name] = true
	}
	for _, o := range r.pending {
		seen[o.f.name] = true
	}
	return len(seen)
}

// roomFor refuses a filter of size bytes past MaxMemory. Callers hold r.mu.
func (r *Registry) roomFor(size uint64) error {
	if limit := r.cfg.MaxMemory; limit > 0 && r.bytes+size > uint64(limit) {
		return fmt.Errorf("a filter of %d bytes would take the filters past --max-memory (%d bytes; %d in use)", size, limit, r.bytes)
	}
	return nil
}

// sameEntry reports whether a and b say the same of a name.
func sameEntry(a, b gossip.Entry) bool {
	if a.Floor != b.Floor || len(a.Versions) != len(b.Versions) || len(a.Drops) != len(b.Drops) ||
		!slices.Equal(a.Expiries, b.Expiries) {
		return false
	}
	for i := range a.Versions {
		if a.Versions[i].ID() != b.Versions[i].ID() {
			return false
		}
	}
	for i := range a.Drops {
		if a.Drops[i] != b.Drops[i] {
			return false
		}
	}
	return true
}

// ErrNotSet refuses a deadline whose condition does not hold (EXPIRE's
// NX, XX, GT and LT).
var ErrNotSet = errors.New("the deadline's condition does not hold")

// SetDeadline gives name's filter a deadline (the zero time: none, as
// PERSIST), here and, once the plan's broadcast is sent, everywhere; at
// it every member drops the filter (DropDue). cond, when not nil, is asked
// with the current deadline (the zero time: none) under the registry's
// lock, and ErrNotSet returned if it says no. A filter whose deadline has
// come is dropped, not given another.
func (r *Registry) SetDeadline(name string, deadline time.Time, cond func(current time.Time) bool) (*Plan, error) {
	if name == DefaultName {
		return nil, ErrDefault
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.dropDue()
	current, ok := r.cat.Deadline(name)
	switch {
	case !ok:
		return p, fmt.Errorf("%w: %q", gossip.ErrNotFound, name)
	case cond != nil && !cond(current):
		return p, ErrNotSet
	}
	if _, err := r.cat.SetDeadline(name, deadline, r.cfg.Node, r.cfg.Now()); err != nil {
		return p, err
	}
	r.catVer++
	p.catalog = r.catVer
	p.Broadcast = append(p.Broadcast, r.cat.Entry(name))
	if !deadline.IsZero() && !deadline.After(r.cfg.Now()) {
		p.merge(r.dropDue())
		p.catalog = r.catVer
	}
	return p, nil
}

// Deadline returns when name's filter expires (the zero time: never); ok
// is false if there is no filter of that name, or its deadline has come.
func (r *Registry) Deadline(name string) (deadline time.Time, ok bool) {
	if name == DefaultName {
		return time.Time{}, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.cat.Deadline(name)
	if ok && !d.IsZero() && !d.After(r.cfg.Now()) {
		return time.Time{}, false // due: about to be dropped
	}
	return d, ok
}

// DropDue drops the filters whose deadline has come, as a drop would:
// each member does so on its own, with the same tombstone. It also drops
// the slices of windowed filters that fell out of their window.
func (r *Registry) DropDue() *Plan {
	r.dropSlices()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.dropDue()
	p.merge(r.freeUnowned())
	p.merge(r.openOwned())
	return p
}

// dropDue is DropDue. Callers hold r.mu.
func (r *Registry) dropDue() *Plan {
	p := &Plan{}
	for _, name := range r.cat.DropDue(r.cfg.Now()) {
		r.catVer++
		p.catalog = r.catVer
		p.merge(r.reconcile(name))
		p.Broadcast = append(p.Broadcast, r.cat.Entry(name))
	}
	return p
}
