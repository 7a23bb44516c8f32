package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Named filters: besides the filter its flags make (named "default",
// addressed by classic frames and unwrapped extended frames), a node
// holds filters by name, created by a filter request or, with AutoCreate,
// by the first add to a name. The catalog (gossip.Catalog) says which
// exist; each version it lists has a filter here, and with a data
// directory a folder there.
//
// Named filters do not replicate yet: a node with peers or cluster
// membership refuses to create them (ErrNamedClustered).

// ErrNamedClustered refuses named filters on a node that syncs with
// others: they would not replicate.
var ErrNamedClustered = errors.New("named filters do not replicate yet: this node syncs with peers or members, so it serves only the default filter")

// namedFilter is one version of a named filter on this node.
type namedFilter struct {
	name  string
	v     gossip.Version
	f     *filter.Filter
	stats atomic.Pointer[filter.Stats] // refreshed in the background, as the default's

	// mu is held for reading by each add, and for writing by a drop, so
	// that no add writes to a store that is closing.
	mu      sync.RWMutex
	dropped bool
	st      *store.Store // nil without a data directory
}

// named is the node's named filters.
type named struct {
	mu     sync.RWMutex
	cat    *gossip.Catalog
	byName map[string][]*namedFilter // live versions, the winner first
	bytes  uint64                    // memory their filters take
}

func newNamed(ttl time.Duration) *named {
	return &named{cat: gossip.NewCatalog(ttl), byName: map[string][]*namedFilter{}}
}

// lookup returns name's live versions, the winner first; nil if none.
// The hot path: one read lock, one map lookup, no allocation.
func (nm *named) lookup(name []byte) []*namedFilter {
	nm.mu.RLock()
	vs := nm.byName[string(name)]
	nm.mu.RUnlock()
	return vs
}

// defFor is the definition of a new filter of name at generation gen.
func (n *Node) defFor(name string, gen uint64, layout filter.Layout, capacity uint64, fpRate float64) (gossip.CatalogDef, error) {
	if layout == filter.Classic {
		return gossip.CatalogDef{FP: filter.NewClassic().Fingerprint()}, nil
	}
	rows, k, err := filter.SizeBlocked(capacity, fpRate)
	if err != nil {
		return gossip.CatalogDef{}, err
	}
	if size := rows * filter.BlockedRowBits / 8; size > n.cfg.MaxFilterBytes {
		return gossip.CatalogDef{}, fmt.Errorf("%w: %d keys at rate %v need %d bytes, over the limit of %d",
			filter.ErrTooLarge, capacity, fpRate, size, n.cfg.MaxFilterBytes)
	}
	fp := filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: uint8(k), Version: filter.BlockedVersion,
		RowBits: filter.BlockedRowBits, Rows: uint32(rows), Seed: gossip.FilterSeed(name, gen)}
	return gossip.CatalogDef{FP: fp, Capacity: capacity, FPRate: fpRate}, nil
}

// fpBytes is the memory a filter of fingerprint fp takes.
func fpBytes(fp filter.Fingerprint) uint64 {
	return uint64(fp.Rows) * (uint64(fp.RowBits) + 63) / 64 * 8
}

// createNamed creates the filter name with the given sizing, or finds it
// made already with the same; another sizing is an error naming both.
func (n *Node) createNamed(name string, layout filter.Layout, capacity uint64, fpRate float64) (*namedFilter, error) {
	if name == wire.DefaultFilter {
		return nil, fmt.Errorf("%q is the filter the node's flags make; it is neither created nor dropped", name)
	}
	if !wire.ValidFilterName(name) {
		return nil, fmt.Errorf("filter name %q: 1 to %d bytes of UTF-8, no control characters", name, wire.MaxFilterName)
	}
	if n.syncsWithOthers() {
		return nil, ErrNamedClustered
	}
	nm := n.named
	nm.mu.Lock()
	defer nm.mu.Unlock()
	gen := nm.cat.NextGen(name)
	def, err := n.defFor(name, gen, layout, capacity, fpRate)
	if err != nil {
		return nil, err
	}
	if vs := nm.byName[name]; len(vs) > 0 {
		if vs[0].v.Def.FP == def.FP || sameSizing(vs[0].v.Def, def) {
			return vs[0], nil
		}
	} else {
		if len(nm.byName) >= n.cfg.MaxFilters {
			return nil, fmt.Errorf("%d named filters already, the most --max-filters allows", len(nm.byName))
		}
		size := fpBytes(def.FP)
		if limit := n.cfg.MaxMemory; limit > 0 && nm.bytes+size+n.f.SizeBytes() > uint64(limit) {
			return nil, fmt.Errorf("a filter of %d bytes would take the filters past --max-memory (%d bytes; %d in use)",
				size, limit, nm.bytes+n.f.SizeBytes())
		}
	}
	v, err := nm.cat.Create(name, def, string(n.name), time.Now())
	if err != nil {
		return nil, err
	}
	nf, err := n.openNamed(name, v)
	if err != nil {
		nm.cat.DropVersion(name, v.ID(), time.Now())
		return nil, err
	}
	nm.byName[name] = []*namedFilter{nf}
	nm.bytes += nf.f.SizeBytes()
	n.saveCatalog()
	n.log.Info("filter created", "filter", name, "capacity", def.Capacity, "fp_rate", def.FPRate, "bytes", nf.f.SizeBytes())
	return nf, nil
}

// sameSizing: the same layout, capacity and rate (the seeds of two
// generations differ; the sizing asked for is what matters to a creator).
func sameSizing(a, b gossip.CatalogDef) bool {
	return a.FP.Layout == b.FP.Layout && a.Capacity == b.Capacity && a.FPRate == b.FPRate
}

// openNamed makes the filter of version v of name, from its folder in
// the data directory if there is one. Callers hold nm.mu.
func (n *Node) openNamed(name string, v gossip.Version) (*namedFilter, error) {
	f, err := filter.NewFromFingerprint(v.Def.FP, 0)
	if err != nil {
		return nil, err
	}
	nf := &namedFilter{name: name, v: v, f: f}
	if n.dir != nil {
		def := store.Definition{Name: name, FP: v.Def.FP, Capacity: v.Def.Capacity, FPRate: v.Def.FPRate}
		if nf.st, err = n.openStoreIn(def, f); err != nil {
			f.Release()
			return nil, err
		}
		if n.ran.Load() {
			nf.st.Start()
		}
	}
	return nf, nil
}

// dropNamed drops every version of name.
func (n *Node) dropNamed(name string) error {
	if name == wire.DefaultFilter {
		return fmt.Errorf("%q is the filter the node's flags make; it is neither created nor dropped", name)
	}
	nm := n.named
	nm.mu.Lock()
	defer nm.mu.Unlock()
	if _, err := nm.cat.Drop(name, time.Now()); err != nil {
		return err
	}
	vs := nm.byName[name]
	delete(nm.byName, name)
	n.saveCatalog() // first: a restart removes what a stop leaves of the folders
	var errs []error
	for _, nf := range vs {
		nm.bytes -= nf.f.SizeBytes()
		nf.mu.Lock()
		nf.dropped = true
		errs = append(errs, n.closeNamed(nf, true))
		nf.mu.Unlock() // its memory goes with the last request that holds it
	}
	n.log.Info("filter dropped", "filter", name)
	return errors.Join(errs...)
}

// closeNamed closes nf's store, and with remove deletes its folder.
// Callers hold nm.mu (or the node is shutting down).
func (n *Node) closeNamed(nf *namedFilter, remove bool) error {
	if nf.st == nil {
		return nil
	}
	err := nf.st.Close()
	nf.st = nil
	if remove {
		err = errors.Join(err, n.dir.Remove(nf.name))
	}
	return err
}

// saveCatalog writes the catalog to the data directory, if any. Callers
// hold nm.mu. A failure is logged: the filters' folders are what a
// restart reads; the catalog adds their tombstones.
func (n *Node) saveCatalog() {
	if n.dir == nil {
		return
	}
	b, err := gossip.AppendCatalog(nil, n.named.cat.Entries())
	if err == nil {
		err = n.dir.WriteCatalog(b)
	}
	if err != nil {
		n.log.Error("writing the catalog of named filters failed", "err", err)
	}
}

// syncsWithOthers reports whether the node has, or is configured for,
// peers or members.
func (n *Node) syncsWithOthers() bool {
	if n.cfg.clustered() || len(n.cfg.Peers) > 0 {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.g.Peers()) > 0
}

// namedFor returns the filter that takes adds to name, creating it with
// the node's defaults when AutoCreate allows.
func (n *Node) namedFor(name []byte, create bool) (*namedFilter, error) {
	if vs := n.named.lookup(name); len(vs) > 0 {
		return vs[0], nil
	}
	if !create {
		return nil, fmt.Errorf("no filter %q", name)
	}
	if !n.cfg.AutoCreate {
		return nil, fmt.Errorf("no filter %q (create it first: --auto-create is off)", name)
	}
	layout := filter.Blocked
	if n.cfg.Profile == ProfileClassic {
		layout = filter.Classic
	}
	capacity, rate := n.cfg.Capacity, n.cfg.FPRate
	if layout == filter.Classic {
		capacity, rate = 0, 0
	}
	return n.createNamed(string(name), layout, capacity, rate)
}

// stats describes every named filter, sorted by name.
func (nm *named) stats() []NamedStats {
	nm.mu.RLock()
	defer nm.mu.RUnlock()
	out := make([]NamedStats, 0, len(nm.byName))
	for _, name := range nm.cat.Names() {
		vs := nm.byName[name]
		if len(vs) == 0 {
			continue
		}
		w := vs[0]
		ns := NamedStats{Name: name, Capacity: w.v.Def.Capacity, FPRate: w.v.Def.FPRate, Bytes: w.f.SizeBytes(), Versions: len(vs)}
		if fs := w.stats.Load(); fs != nil {
			ns.EstimatedKeys, ns.Fill = fs.EstimatedKeys, fs.Fill
		}
		out = append(out, ns)
	}
	return out
}
