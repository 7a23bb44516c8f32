package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Named filters: besides the filter its flags make (named "default",
// addressed by classic frames and unwrapped extended frames), a node
// holds filters by name, created by a filter request or, with AutoCreate,
// by the first add to a name. The catalog (gossip.Catalog) says which
// exist; members swap it (memberlist broadcasts, and push/pull for the
// rest), and each version it lists has a filter here, synced with the
// members as the default is (delta rounds and acks, in named frames), and
// with a data directory a folder there.
//
// Named filters replicate between cluster members only; static peers get
// the default filter's rows.

// namedFilter is one version of a named filter on this node.
type namedFilter struct {
	name  string
	v     gossip.Version
	f     *filter.Filter
	stats atomic.Pointer[filter.Stats] // refreshed in the background, as the default's

	// g pushes the version's rows to the members, under n.mu; out and
	// seal are the tick's scratch.
	g    *gossip.Gossip
	out  gossip.Outbox
	wrap []byte

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
	// epoch changes with byName (under mu): a connection that keeps the
	// last filter it looked up knows it is still so with one atomic load
	// (lookupCached), where a lookup takes mu, shared by every core.
	epoch atomic.Uint64
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

// lookupCache is one connection's last lookup. Its zero value holds the
// answer for the empty name (no filter) at epoch 0, which is right.
type lookupCache struct {
	epoch uint64
	name  []byte
	vs    []*namedFilter
}

// lookupCached is lookup through c: the same name again, with no filter
// created or dropped since, costs a comparison and an atomic load.
func (nm *named) lookupCached(c *lookupCache, name []byte) []*namedFilter {
	epoch := nm.epoch.Load()
	if c.epoch == epoch && string(c.name) == string(name) {
		return c.vs
	}
	vs := nm.lookup(name)
	*c = lookupCache{epoch: epoch, name: append(c.name[:0], name...), vs: vs}
	return vs
}

// all returns every live version.
func (nm *named) all() []*namedFilter {
	nm.mu.RLock()
	defer nm.mu.RUnlock()
	var out []*namedFilter
	for _, vs := range nm.byName {
		out = append(out, vs...)
	}
	return out
}

// versionKey names a version's folder in the data directory: a hash of
// its identity, since one name may have several versions.
func versionKey(name string, id gossip.ID) string {
	h := xxh3.HashString128(name + "\x00" + strconv.FormatUint(id.Gen, 10) + "\x00" +
		strconv.FormatInt(id.Created, 10) + "\x00" + id.Origin).Bytes()
	return "v-" + hex.EncodeToString(h[:])
}

// defFor is the definition of a new filter of name at generation gen.
// Its seed is the generation's: rows of another generation do not fit
// (for the classic layout, which places keys by their bytes alone, the
// seed only tells the generations apart).
func (n *Node) defFor(name string, gen uint64, layout filter.Layout, capacity uint64, fpRate float64) (gossip.CatalogDef, error) {
	if layout == filter.Classic {
		fp := filter.NewClassic().Fingerprint()
		fp.Seed = gossip.FilterSeed(name, gen)
		return gossip.CatalogDef{FP: fp}, nil
	}
	fp, err := filter.BlockedFingerprint(filter.Config{Layout: filter.Blocked, Capacity: capacity, FPRate: fpRate,
		Seed: gossip.FilterSeed(name, gen), MaxBytes: n.cfg.MaxFilterBytes})
	if err != nil {
		return gossip.CatalogDef{}, err
	}
	return gossip.CatalogDef{FP: fp, Capacity: capacity, FPRate: fpRate}, nil
}

// errDefault refuses creating or dropping the flags' filter.
var errDefault = fmt.Errorf("%q is the filter the node's flags make; it is neither created nor dropped", DefaultFilter)

// createNamed creates the filter name with the given sizing, or finds it
// made already with the same; another sizing is an error naming both.
// Named filters use the blocked layout.
func (n *Node) createNamed(name string, layout filter.Layout, capacity uint64, fpRate float64) (*namedFilter, error) {
	switch {
	case name == DefaultFilter:
		return nil, errDefault
	case !wire.ValidFilterName(name):
		return nil, fmt.Errorf("filter name %q: 1 to %d bytes of UTF-8, no control characters", name, wire.MaxFilterName)
	case layout != filter.Blocked && layout != filter.Classic:
		return nil, fmt.Errorf("layout %d: named filters are blocked or classic", layout)
	}
	nm := n.named
	nm.mu.Lock()
	gen := nm.cat.NextGen(name)
	def, err := n.defFor(name, gen, layout, capacity, fpRate)
	if err != nil {
		nm.mu.Unlock()
		return nil, err
	}
	if vs := nm.byName[name]; len(vs) > 0 {
		defer nm.mu.Unlock()
		if vs[0].v.Def.FP == def.FP {
			return vs[0], nil
		}
		_, err := nm.cat.Create(name, def, string(n.name), time.Now()) // the error names both
		return nil, err
	}
	if len(nm.byName) >= n.cfg.MaxFilters {
		nm.mu.Unlock()
		return nil, fmt.Errorf("%d named filters already, the most --max-filters allows", len(nm.byName))
	}
	if err := n.roomFor(def.FP.SizeBytes()); err != nil {
		nm.mu.Unlock()
		return nil, err
	}
	v, err := nm.cat.Create(name, def, string(n.name), time.Now())
	if err != nil {
		nm.mu.Unlock()
		return nil, err
	}
	n.saveCatalog() // first: a folder no live version names is removed at start
	nf, err := n.openNamed(name, v)
	if err != nil {
		nm.cat.DropVersion(name, v.ID(), time.Now())
		n.saveCatalog()
		nm.mu.Unlock()
		return nil, err
	}
	nm.byName[name] = []*namedFilter{nf}
	nm.epoch.Add(1)
	nm.bytes += nf.f.SizeBytes()
	entry := nm.cat.Entry(name)
	nm.mu.Unlock()
	n.addMembersTo(nf)
	n.broadcastEntry(entry)
	n.log.Info("filter created", "filter", name, "capacity", def.Capacity, "fp_rate", def.FPRate, "bytes", nf.f.SizeBytes())
	return nf, nil
}

// roomFor refuses a filter of size bytes past --max-memory. Callers hold
// nm.mu.
func (n *Node) roomFor(size uint64) error {
	limit := n.cfg.MaxMemory
	if used := n.named.bytes + n.f.SizeBytes(); limit > 0 && used+size > uint64(limit) {
		return fmt.Errorf("a filter of %d bytes would take the filters past --max-memory (%d bytes; %d in use)", size, limit, used)
	}
	return nil
}

// openNamed makes the filter of version v of name, from its folder in
// the data directory if there is one, with its gossip. Callers hold
// nm.mu.
func (n *Node) openNamed(name string, v gossip.Version) (*namedFilter, error) {
	f, err := filter.NewFromFingerprint(v.Def.FP, n.cfg.MaxFilterBytes)
	if err != nil {
		return nil, err
	}
	gcfg := gossip.DefaultConfig()
	gcfg.PruneAfter = n.cfg.PruneAfter
	gcfg.MaxFrame = n.cfg.MaxDatagram - wire.HeaderSize - 1 - len(name)
	if n.keyed() || len(n.cfg.ClusterKeys) > 0 {
		gcfg.MaxFrame -= wire.SealedOverhead
	}
	gcfg.MaxPeers = n.cfg.MaxPeers
	gcfg.FillMembers = true // no anti-entropy for named filters yet: a new member gets every row
	gcfg.Seed = xxh3.HashString(n.cfg.Listen + n.cfg.Name + name)
	g, err := gossip.New(gcfg, f)
	if err != nil {
		return nil, err
	}
	nf := &namedFilter{name: name, v: v, f: f, g: g}
	if n.dir != nil {
		def := store.Definition{Name: versionKey(name, v.ID()), FP: v.Def.FP, Capacity: v.Def.Capacity, FPRate: v.Def.FPRate}
		if nf.st, err = n.openStoreIn(def, f); err != nil {
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
	if name == DefaultFilter {
		return errDefault
	}
	nm := n.named
	nm.mu.Lock()
	if _, err := nm.cat.Drop(name, time.Now()); err != nil {
		nm.mu.Unlock()
		return err
	}
	entry := nm.cat.Entry(name)
	_, err := n.reconcile(name)
	nm.mu.Unlock()
	n.broadcastEntry(entry)
	n.log.Info("filter dropped", "filter", name)
	return err
}

// reconcile makes name's filters on this node what the catalog says: a
// filter for every live version, winner first, and none for the rest. It
// returns the filters it made, which the caller gives the members
// (addMembersTo) once it has let go of nm.mu. Callers hold nm.mu.
func (n *Node) reconcile(name string) (added []*namedFilter, err error) {
	nm := n.named
	live := nm.cat.Live(name)
	old := slices.Clone(nm.byName[name]) // readers hold the published slice: never change it
	var keep []*namedFilter
	var errs []error
	for _, v := range live {
		i := -1
		for j, nf := range old {
			if nf != nil && nf.v.ID() == v.ID() {
				i = j
			}
		}
		if i >= 0 {
			keep = append(keep, old[i])
			old[i] = nil
			continue
		}
		if err := n.roomFor(v.Def.FP.SizeBytes()); err != nil {
			errs = append(errs, fmt.Errorf("filter %q from the cluster: %w", name, err))
			continue
		}
		nf, err := n.openNamed(name, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("filter %q from the cluster: %w", name, err))
			continue
		}
		nm.bytes += nf.f.SizeBytes()
		keep = append(keep, nf)
		added = append(added, nf)
		n.log.Info("filter from the cluster", "filter", name, "generation", v.Gen, "origin", v.Origin, "capacity", v.Def.Capacity)
	}
	n.saveCatalog() // before removing folders: a stop between leaves them to remove at start
	for _, nf := range old {
		if nf == nil {
			continue
		}
		nm.bytes -= nf.f.SizeBytes()
		nf.mu.Lock()
		nf.dropped = true
		errs = append(errs, n.closeNamed(nf, true))
		nf.mu.Unlock() // its memory goes with the last request that holds it
	}
	if len(keep) == 0 {
		delete(nm.byName, name)
	} else {
		nm.byName[name] = keep
	}
	nm.epoch.Add(1)
	return added, errors.Join(errs...)
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
		err = errors.Join(err, n.dir.Remove(versionKey(nf.name, nf.v.ID())))
	}
	return err
}

// saveCatalog writes the catalog to the data directory, if any. Callers
// hold nm.mu. A failure is logged: it costs tombstones at a restart, not
// keys.
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

// namedFor returns the filter that takes adds to name, creating it with
// the node's defaults when AutoCreate allows.
func (n *Node) namedFor(name []byte) (*namedFilter, error) {
	if vs := n.named.lookup(name); len(vs) > 0 {
		return vs[0], nil
	}
	if !n.cfg.AutoCreate {
		return nil, fmt.Errorf("no filter %q (create it first: --auto-create is off)", name)
	}
	if n.cfg.Profile == ProfileClassic { // the node's own shape
		return n.createNamed(string(name), filter.Classic, 0, 0)
	}
	return n.createNamed(string(name), filter.Blocked, n.cfg.Capacity, n.cfg.FPRate)
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
