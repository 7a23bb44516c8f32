package registry

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
)

// Registry is every filter of a node by name. See the package doc.
type Registry struct {
	cfg   Config
	log   *slog.Logger
	def   *Filter
	defVs Versions              // def, as Lookup answers for it
	table atomic.Pointer[table] // what readers see

	// mu guards the catalog and what is open. It is never held across
	// file I/O: Apply does that, outside it.
	mu      sync.Mutex
	cat     *gossip.Catalog
	catVer  uint64              // bumped with every change to cat
	members []string            // the members alive, sorted (placement.go); nil: not told yet
	memVer  uint64              // bumped with every change to members
	routed  routeCache          // routes as of catVer and memVer (placement.go)
	open    map[string]*Filter  // named versions loaded, by folder
	pending map[string]*opening // named versions an Apply is loading, by folder
	bytes   uint64              // memory of the default, open and pending filters
	tickMu  sync.Mutex          // one Tick at a time (grow.go)
	others  atomic.Uint64       // the cluster's members besides this node, as Tick last heard
	// clockOffset is this node's clock less the cluster's (window.go).
	clockOffset atomic.Int64
	clockOut    atomic.Bool    // the offset is past what windowed filters tolerate
	drops       sync.WaitGroup // dropOlds under way: Close waits for them
	started     bool           // stores checkpoint in the background
	closed      bool

	saver saver // writes the catalog, one write serving every waiter
}

// table is what readers see: an immutable snapshot, replaced whole.
type table struct {
	byName map[string]Versions
	all    []*Filter        // the default first, then by name and version
	names  []string         // named filters' names, sorted
	routes map[string]Route // placed filters' members, by name (placement.go)
}

// opening is a version being loaded by an Apply.
type opening struct {
	f    *Filter
	done chan struct{} // closed once loaded, or failed
	err  error
}

// Open restores the registry: with a data directory, the catalog and
// every live version's folder (a folder no live version names, of a
// filter dropped just before a stop, is removed), and the default
// filter's folder, refused if it holds another filter (store.ErrMismatch).
func Open(cfg Config) (*Registry, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Registry{cfg: cfg, log: cfg.Logger, cat: gossip.NewCatalog(cfg.TombstoneTTL),
		open: map[string]*Filter{}, pending: map[string]*opening{}}
	def, err := cfg.Default.def(DefaultName, 1, cfg.MaxFilterBytes)
	if err != nil {
		return nil, fmt.Errorf("registry: the default filter: %w", err)
	}
	r.def = newFilter(DefaultName, gossip.Version{Gen: 1, Origin: cfg.Node, Def: def})
	r.defVs = Versions{r.def}
	if err := r.restore(); err != nil {
		r.closeAll(false)
		return nil, err
	}
	r.publish()
	r.fold(r.All())
	return r, nil
}

// newFilter makes the Filter of version v of name, not yet loaded.
func newFilter(name string, v gossip.Version) *Filter {
	return &Filter{name: name, version: v, folder: versionFolder(name, v.ID()), dropping: map[uint64]bool{}}
}

// restore loads the default filter and, with a data directory, the
// catalog and every live version it names.
func (r *Registry) restore() error {
	if r.cfg.Dir != nil {
		aside, err := r.readCatalog()
		if err != nil {
			return err
		}
		if !aside {
			if err := r.removeUnnamed(); err != nil {
				return err
			}
		}
	}
	if err := r.load(r.def); err != nil {
		return err
	}
	r.bytes += r.def.Bytes()
	folders, err := r.folders()
	if err != nil {
		return err
	}
	for _, name := range r.cat.Names() {
		for _, v := range r.cat.Live(name) {
			f := newFilter(name, v)
			if v.Def.Replicas > 0 && !folders[f.folder] {
				continue // placed on other members (or it comes from them once this one owns it)
			}
			f.filling.Store(v.Def.Replicas > 0) // members may have taken adds meanwhile
			if err := r.load(f); err != nil {
				return fmt.Errorf("filter %q: %w", name, err)
			}
			r.open[f.folder] = f
			r.bytes += f.budget()
		}
	}
	return nil
}

// readCatalog restores the catalog from the data directory. A damaged
// one refuses the start, unless repairing: then it is set aside (aside is
// true) and every folder is kept — the catalog comes back from the
// cluster's members, and each version it names opens its folder (folder
// names follow from the version) with the rows it held. Folders of
// versions dropped meanwhile go at the next start.
func (r *Registry) readCatalog() (aside bool, err error) {
	dir := r.cfg.Dir
	b, err := dir.ReadCatalog()
	switch {
	case errors.Is(err, store.ErrDamaged) && r.cfg.Store.Repair:
		r.log.Warn("damaged catalog of named filters set aside: it comes back from the cluster's members, "+
			"and each filter's folder is kept for it", "err", err)
		return true, dir.SetCatalogAside()
	case errors.Is(err, store.ErrDamaged):
		return false, fmt.Errorf("%w (start with --repair to set it aside: the cluster's members have the catalog, "+
			"and the named filters' folders are kept for it)", err)
	case err != nil || b == nil:
		return false, err
	}
	entries, err := gossip.DecodeCatalog(b)
	if err != nil {
		return false, fmt.Errorf("the catalog of named filters: %w", err)
	}
	for _, e := range entries {
		r.cat.Restore(e)
	}
	// A filter whose deadline passed while the node was down is not
	// opened again: dropped, its folder goes with the others.
	if gone := r.cat.DropDue(r.cfg.Now()); len(gone) > 0 {
		r.log.Info("named filters expired while the node was down", "filters", gone)
	}
	return false, nil
}

// removeUnnamed removes the folders no live version names: the node
// stopped between writing the catalog of a drop and removing them.
func (r *Registry) removeUnnamed() error {
	want := map[string]bool{DefaultName: true}
	for _, name := range r.cat.Names() {
		for _, v := range r.cat.Live(name) {
			want[versionFolder(name, v.ID())] = true
		}
	}
	// The folders are listed by name alone: one whose FILTER file is
	// damaged is the store's to refuse (or, with --repair, rewrite) when
	// its filter opens, or goes here if no filter is left to open it.
	folders, err := r.cfg.Dir.Folders()
	if err != nil {
		return err
	}
	for _, folder := range folders {
		if !want[filterFolder(folder)] {
			r.log.Info("removing the folder of a dropped filter", "folder", folder)
			if err := r.cfg.Dir.Remove(folder); err != nil {
				return err
			}
		}
	}
	return nil
}

// load makes f's segments, from its folders if there is a data
// directory. It does file I/O: never call it holding r.mu.
func (r *Registry) load(f *Filter) error {
	f.reg = r
	def := f.version.Def
	if def.Windowed() {
		return r.loadSlices(f)
	}
	seg, err := r.openSegment(f, 0, def, r.cfg.MaxFilterBytes)
	if err != nil {
		return err
	}
	segs := []*Segment{seg}
	size := def.FP.SizeBytes()
	if def.Grows() && r.cfg.Dir != nil { // the stages it had grown
		last, missing, err := r.stageFolders(f)
		if err != nil {
			return errors.Join(err, closeSegments(segs))
		}
		if len(missing) > 0 && !r.cfg.Store.Repair {
			return errors.Join(fmt.Errorf("%w: the folders of stages %v of %d are missing (start with --repair to open them empty: "+
				"their rows come back from the cluster's members)", store.ErrDamaged, missing, last), closeSegments(segs))
		}
		for id := uint64(1); id <= last; id++ {
			sdef, err := def.Stage(id, 0) // grown under another --max-filter-bytes, maybe: it stays
			if err == nil {
				seg, err = r.openSegment(f, id, sdef, 0)
			}
			if err != nil {
				return errors.Join(fmt.Errorf("stage %d: %w", id, err), closeSegments(segs))
			}
			segs = append(segs, seg)
			size += sdef.FP.SizeBytes()
		}
		if len(missing) > 0 {
			r.log.Warn("a growing filter's stage folders were missing, opened empty: their rows come back from the cluster's members",
				"filter", f.name, "stages", missing)
		}
	}
	f.segs.Store(&segs)
	f.bytes.Store(size)
	return nil
}

// stageFolders returns the highest stage of f whose folder the data
// directory holds, and the stages below it whose folders are missing.
func (r *Registry) stageFolders(f *Filter) (last uint64, missing []uint64, err error) {
	folders, err := r.cfg.Dir.Folders()
	if err != nil {
		return 0, nil, err
	}
	have := map[uint64]bool{}
	for _, name := range folders {
		rest, ok := strings.CutPrefix(name, f.folder+"@")
		if !ok {
			continue
		}
		if id, err := strconv.ParseUint(rest, 16, 64); err == nil && id > 0 && id < gossip.MaxStages && segmentFolder(f.folder, id) == name {
			have[id] = true
			last = max(last, id)
		}
	}
	for id := uint64(1); id < last; id++ {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return last, missing, nil
}

// closeSegments closes the stores of segments opened by a load that
// failed.
func closeSegments(segs []*Segment) error {
	var errs []error
	for _, s := range segs {
		if s.st != nil {
			errs = append(errs, s.st.Close())
		}
	}
	return errors.Join(errs...)
}

// logRecovery says what loading a filter's folder found.
func (r *Registry) logRecovery(f *Filter, rec store.Recovery) {
	if f.IsDefault() {
		r.log.Info("data directory loaded", "filter", f.name, "checkpoints", rec.Checkpoints, "rows", rec.Rows,
			"log_segments", rec.Segments, "log_records", rec.Records, "log_keys", rec.Keys, "took", rec.Took.String())
	}
	if rec.Truncated > 0 || len(rec.Damaged) > 0 || len(rec.Missing) > 0 {
		r.log.Warn("a filter's folder needed repair: what is missing comes back from the cluster's members", "filter", f.name,
			"log_segments_cut", rec.Truncated, "checkpoints_set_aside", rec.Damaged, "checkpoints_missing", rec.Missing,
			"rows_recovered", rec.Rows, "keys_replayed", rec.Keys)
	}
}

// Start makes every store checkpoint in the background, from now on and
// for filters opened later (publishOpened starts theirs).
func (r *Registry) Start() {
	r.mu.Lock()
	r.started = true
	r.mu.Unlock()
	for _, f := range r.All() {
		f.start()
	}
}

// start makes f's stores checkpoint in the background (again: no-op).
func (f *Filter) start() {
	for _, s := range f.Segments() {
		if s.st != nil {
			s.st.Start()
		}
	}
}

// Close writes a last checkpoint of every filter (no add may come after
// it begins) and lets go of the data directory.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.drops.Wait()
	return r.closeAll(true)
}

func (r *Registry) closeAll(logErrs bool) error {
	var errs []error
	fs := append([]*Filter{r.def}, r.openFilters()...)
	for _, f := range fs {
		if len(f.Segments()) == 0 {
			continue
		}
		if err := f.close(r.cfg.Dir, false); err != nil {
			if logErrs {
				r.log.Error("the last checkpoint failed; the log still holds every add", "filter", f.name, "err", err)
			}
			errs = append(errs, err)
		}
	}
	if r.cfg.Dir != nil {
		errs = append(errs, r.cfg.Dir.Close())
	}
	return errors.Join(errs...)
}

func (r *Registry) openFilters() []*Filter {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Filter, 0, len(r.open))
	for _, f := range r.open {
		out = append(out, f)
	}
	return out
}

// Default returns the filter of the node's flags.
func (r *Registry) Default() *Filter { return r.def }

// DefaultVersions returns the default filter as a name's versions, as
// Lookup would.
func (r *Registry) DefaultVersions() Versions { return r.defVs }

// Lookup returns name's live versions on this node, the winner first;
// none if it has no filter here. The hot path: one atomic load and one
// map lookup, no lock, no allocation.
func (r *Registry) Lookup(name []byte) Versions {
	return r.table.Load().byName[string(name)]
}

// Snapshot identifies what Lookup answers now: it changes whenever a
// filter is opened or closed, so that a connection that keeps its last
// lookup knows, with one atomic load, that it still holds.
func (r *Registry) Snapshot() any { return r.table.Load() }

// All returns every filter version open here, the default first, then by
// name, creation and origin.
func (r *Registry) All() []*Filter { return r.table.Load().all }

// HoldsRows reports whether any segment holds rows: loaded from disk, or
// added or merged since.
func (r *Registry) HoldsRows() bool {
	for _, f := range r.All() {
		for _, seg := range f.Segments() {
			if seg.Rows().LastChanged() > 0 {
				return true
			}
		}
	}
	return false
}

// Names returns the named filters' names, sorted (the default is not
// among them).
func (r *Registry) Names() []string { return r.table.Load().names }

// Entries returns the whole catalog, as members swap it.
func (r *Registry) Entries() []gossip.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cat.Entries()
}

// Entry returns the catalog's entry for name.
func (r *Registry) Entry(name string) gossip.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cat.Entry(name)
}

// Memory returns the bytes the filters take, and the bound.
func (r *Registry) Memory() (used uint64, limit int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes, r.cfg.MaxMemory
}

// publish replaces the table readers see with what is open now. Callers
// hold r.mu (or own r alone, at Open).
func (r *Registry) publish() {
	t := &table{byName: map[string]Versions{DefaultName: r.defVs}, all: []*Filter{r.def}, routes: r.routes()}
	for _, name := range r.cat.Names() {
		var vs Versions
		for _, v := range r.cat.Live(name) {
			if f := r.open[versionFolder(name, v.ID())]; f != nil {
				vs = append(vs, f)
			}
		}
		if len(vs) == 0 {
			continue
		}
		t.byName[name] = vs
		t.names = append(t.names, name)
		sorted := slices.Clone(vs)
		slices.SortFunc(sorted, func(a, b *Filter) int {
			return cmp.Or(cmp.Compare(a.version.Created, b.version.Created), strings.Compare(a.version.Origin, b.version.Origin))
		})
		t.all = append(t.all, sorted...)
	}
	r.table.Store(t)
}
