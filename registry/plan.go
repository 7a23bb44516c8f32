package registry

import (
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/gossip"
)

// Plan is what a mutation decided: the catalog to write, versions to open
// and to close. Apply carries it out. Broadcast lists the catalog entries
// the caller tells the members about once it is applied.
type Plan struct {
	catalog uint64     // the catalog version to write (0: none)
	open    []*opening // versions to load and publish
	close   []*Filter  // versions out of the table, to close and remove
	want    string     // the folder of the filter the caller asked for
	created bool       // want was created by this plan
	errs    []error    // versions that could not be planned

	// Broadcast are the entries to tell the members about.
	Broadcast []gossip.Entry
}

// Created reports whether the plan makes a filter (a Create's of a
// name that had none), rather than finding one.
func (p *Plan) Created() bool { return p.created }

// merge adds q's steps to p.
func (p *Plan) merge(q *Plan) {
	p.open = append(p.open, q.open...)
	p.close = append(p.close, q.close...)
	p.errs = append(p.errs, q.errs...)
	p.Broadcast = append(p.Broadcast, q.Broadcast...)
}

// Result is what applying a plan did.
type Result struct {
	// Filter is the filter a Create asked for, open.
	Filter *Filter
	// Opened and Closed are the versions opened and closed.
	Opened, Closed []*Filter
	// Err joins what failed: the catalog not written, versions that could
	// not be opened here.
	Err error
}

// Apply carries p out: it writes the catalog (before any folder is
// created or removed, so that a folder the catalog does not name is one
// a restart may remove), loads the versions to open, publishes those
// still live, and closes and removes the rest. It does file I/O and holds
// no lock while it does. A Create's plan whose catalog cannot be written
// fails, and the version it made is dropped.
func (r *Registry) Apply(p *Plan) Result {
	var res Result
	errs := p.errs
	if p.catalog > 0 {
		if err := r.saveCatalog(p.catalog); err != nil {
			r.log.Error("writing the catalog of named filters failed", "err", err)
			if p.created {
				return r.undoCreate(p, err)
			}
			errs = append(errs, err)
		}
	}
	for _, o := range p.open {
		o.err = r.load(o.f)
		close(o.done)
	}
	late := r.publishOpened(p.open, &res, &errs)
	r.fold(res.Opened)
	for _, f := range append(p.close, late...) {
		if err := f.close(r.cfg.Dir, true); err != nil {
			errs = append(errs, fmt.Errorf("filter %q: %w", f.name, err))
		}
		res.Closed = append(res.Closed, f)
		r.log.Info("filter closed", "filter", f.name, "generation", f.version.Gen, "origin", f.version.Origin)
	}
	if p.want != "" {
		f, err := r.await(p.want)
		if err != nil {
			errs = append(errs, err)
		}
		res.Filter = f
	}
	res.Err = errors.Join(errs...)
	return res
}

// publishOpened puts the versions loaded into the table, and returns
// those dropped while they loaded, to close.
func (r *Registry) publishOpened(os []*opening, res *Result, errs *[]error) (late []*Filter) {
	if len(os) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range os {
		delete(r.pending, o.f.folder)
		if o.err != nil {
			r.bytes -= opened(o.f.version.Def)
			*errs = append(*errs, fmt.Errorf("filter %q: %w", o.f.name, o.err))
			continue
		}
		if !r.live(o.f) || r.closed { // dropped while it loaded
			r.bytes -= opened(o.f.version.Def) // what reconcile took
			late = append(late, o.f)
			continue
		}
		r.open[o.f.folder] = o.f
		r.keepUnowned(o.f, r.owns(o.f.name, o.f.version.Def)) // the members may have moved it while it loaded
		r.bytes += o.f.budget() - opened(o.f.version.Def)     // the stages its folders held
		if r.started {
			o.f.start()
		}
		res.Opened = append(res.Opened, o.f)
		r.log.Info("filter opened", "filter", o.f.name, "generation", o.f.version.Gen, "origin", o.f.version.Origin,
			"capacity", o.f.version.Def.Capacity, "bytes", o.f.Bytes())
	}
	r.publish()
	return late
}

// live reports whether f's version is live in the catalog. Callers hold
// r.mu.
func (r *Registry) live(f *Filter) bool {
	for _, v := range r.cat.Live(f.name) {
		if v.ID() == f.version.ID() {
			return true
		}
	}
	return false
}

// await returns the filter in folder once it is open: loaded by this
// Apply or another.
func (r *Registry) await(folder string) (*Filter, error) {
	r.mu.Lock()
	f, o := r.open[folder], r.pending[folder]
	r.mu.Unlock()
	if f != nil {
		return f, nil
	}
	if o == nil {
		return nil, errors.New("the filter could not be opened here")
	}
	<-o.done
	if o.err != nil {
		return nil, o.err
	}
	return r.await(folder)
}

// undoCreate drops the version a Create made, whose catalog could not be
// written: nothing was opened yet.
func (r *Registry) undoCreate(p *Plan, err error) Result {
	r.mu.Lock()
	for _, o := range p.open {
		delete(r.pending, o.f.folder)
		r.bytes -= opened(o.f.version.Def)
		r.cat.DropVersion(o.f.name, o.f.version.ID(), r.cfg.Now())
		o.err = err
		close(o.done)
	}
	r.catVer++
	r.mu.Unlock()
	return Result{Err: fmt.Errorf("the catalog could not be written: %w", err)}
}
