package dump

import (
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/mutate"
	"github.com/rmbd/rmbd/registry"
)

// ErrMismatch refuses a chunk that does not fit the filter it is loaded
// into: of another filter, another sizing, or a stage the filter lacks.
var ErrMismatch = errors.New("the chunk does not fit the filter")

// Create makes a filter to load a dump into: the node's create, which
// holds the client to its access and quotas.
type Create func(name string, s registry.Sizing) (*registry.Filter, error)

// Loaded is what loading a chunk did.
type Loaded struct {
	Filter  *registry.Filter
	Created bool              // a header made the filter
	Segment *registry.Segment // rows: the stage they went to
	Rows    int               // rows the chunk carried
	Changed int               // rows that gained bits
}

// Load loads chunk into the filter called name. A header makes the
// filter (with create) unless it exists, when it must be the dumped
// filter's definition; rows are ORed into their stage, which must be
// one the filter has or the next it opens, and are this node's to push
// to its members. A chunk that does not decode or fit changes nothing.
func Load(reg *registry.Registry, create Create, name string, chunk []byte) (Loaded, error) {
	kind, _, err := Kind(chunk)
	if err != nil {
		return Loaded{}, err
	}
	if kind == KindHeader {
		return loadHeader(reg, create, name, chunk)
	}
	r, err := DecodeRows(chunk)
	if err != nil {
		return Loaded{}, err
	}
	vs := reg.Lookup([]byte(name))
	if len(vs) == 0 {
		return Loaded{}, fmt.Errorf("no filter %q: load the dump's first chunk, its header, first", name)
	}
	f := vs.Winner()
	if !fits(f.Version().Def, r.Filter) {
		return Loaded{}, fmt.Errorf("%w: it is of another filter than %q (%v)", ErrMismatch, name, f.Version().Def.FP)
	}
	out := Loaded{Filter: f, Rows: r.RowCount()}
	if out.Rows == 0 && f.Segment(uint64(r.Stage)) == nil {
		return out, nil // nothing to load: no stage opens for it
	}
	seg, err := registry.Versions{f}.OpenStage(uint64(r.Stage), r.FP)
	switch {
	case errors.Is(err, registry.ErrNoStage):
		return Loaded{}, fmt.Errorf("%w: stage %d (%v) is not one filter %q has or can open next (it has %d: load the chunks in the order of the dump)",
			ErrMismatch, r.Stage, r.FP, name, len(f.Segments()))
	case err != nil:
		return Loaded{}, fmt.Errorf("stage %d of filter %q cannot be opened: %w", r.Stage, name, err)
	}
	rows := seg.Rows()
	out.Segment = seg
	var scratch [64]uint64
	skip := mutate.LoadLosesRows // a deliberate bug the simulator must catch, off but in its tests
	for first, data := range r.Runs() {
		if skip {
			skip = false
			continue
		}
		changed, err := rows.MergeRows(r.FP, uint64(first), data, scratch[:0])
		if err != nil {
			return out, err // cannot happen: the fingerprint and the rows were checked
		}
		rows.Originate(changed)
		out.Changed += len(changed)
	}
	return out, nil
}

func loadHeader(reg *registry.Registry, create Create, name string, chunk []byte) (Loaded, error) {
	h, err := DecodeHeader(chunk)
	if err != nil {
		return Loaded{}, err
	}
	if vs := reg.Lookup([]byte(name)); len(vs) > 0 {
		f := vs.Winner()
		if have := f.Version().Def; have != h.Def && have != nonScaling(h.Def) {
			return Loaded{}, fmt.Errorf("%w: filter %q exists as %s; the dump is of %s (drop it first, or load under another name)",
				ErrMismatch, name, describe(have), describe(h.Def))
		}
		return Loaded{Filter: f}, nil
	}
	s := registry.Sizing{Layout: h.Def.FP.Layout, Capacity: h.Def.Capacity, FPRate: h.Def.FPRate, Expansion: h.Def.Expansion, Seed: h.Def.FP.Seed}
	if h.Def.FP.Seed == 0 {
		return Loaded{}, fmt.Errorf("%w: the dump is of a node's default filter, which loads into a default filter of the same sizing only", ErrMismatch)
	}
	def, err := reg.DefOf(s)
	if err != nil {
		return Loaded{}, fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	if def != nonScaling(h.Def) {
		return Loaded{}, fmt.Errorf("%w: this node would make the dumped filter as %s, not %s (its --max-filter-bytes?)",
			ErrMismatch, describe(def), describe(h.Def))
	}
	f, err := create(name, s)
	if err != nil {
		return Loaded{}, err
	}
	if f.Version().Def != def { // made meanwhile, by someone else
		return Loaded{}, fmt.Errorf("%w: filter %q was made as %s meanwhile", ErrMismatch, name, describe(f.Version().Def))
	}
	return Loaded{Filter: f, Created: true}, nil
}

// nonScaling is d as a filter that does not grow is made now: a named
// filter made before filters grew took adds past its capacity, and loads
// as one that refuses them (its rows are the same).
func nonScaling(d gossip.CatalogDef) gossip.CatalogDef {
	if !d.Grows() && d.FP.Seed != 0 && d.FP.Layout != filter.Classic {
		d.NonScaling = true
	}
	return d
}

// fits reports whether rows of the filter of identity id fit a filter of
// definition d: d's own, or those of the filter from before growth d was
// loaded from.
func fits(d gossip.CatalogDef, id uint64) bool {
	if Identity(d) == id {
		return true
	}
	legacy := d
	legacy.NonScaling = false
	return d.NonScaling && Identity(legacy) == id
}

// describe renders a definition for an error: sizing and fingerprint.
func describe(d gossip.CatalogDef) string {
	grows := "not growing"
	switch {
	case d.Grows():
		grows = fmt.Sprintf("expansion %d", d.Expansion)
	case d.NonScaling:
		grows = "NONSCALING"
	}
	return fmt.Sprintf("capacity %d, error %g, %s (%v)", d.Capacity, d.FPRate, grows, d.FP)
}
