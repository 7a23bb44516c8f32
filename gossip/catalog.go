package gossip

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/mutate"
	"github.com/zeebo/xxh3"
)

// The catalog: which named filters exist, replicated between nodes as a
// state-based CRDT. Every node holds a Catalog; they swap them (or
// entries of them) and Merge; merging is commutative, associative and
// idempotent, so every node that has seen the same entries holds the same
// catalog, whatever order they came in.
//
// A filter's life is a sequence of generations. Create makes generation
// 1, or one past the last dropped; Drop tombstones every generation up to
// the current one. Within one generation, creations on two sides of a
// partition are versions of the filter: versions with the same fingerprint
// are the same filter (their rows OR-merge; the earliest creation names
// it), versions with different fingerprints conflict. The winner of a
// conflict is the version created first — the lowest (creation time,
// origin node) — and takes adds; the losers stay answerable (has is true
// for a key any live version holds) until dropped one by one (DropVersion).
//
// Tombstones are kept for TTL, then forgotten, but for the highest
// generation ever dropped (Entry.Floor, a few bytes a name, kept for
// good): a name re-created after that is a new generation still, and no
// version at or below the floor ever lives again; members swap floors
// with the rest. Any other version is taken however old it is: a member
// away for longer than TTL, or one that joins later, must get every
// filter that lives. (The one thing a member away longer than TTL can
// bring back is a conflict's loser dropped alone: it comes back a loser,
// answerable until dropped again.)
//
// Rows follow versions: a node gives each version's filter a seed drawn
// from its name and generation (FilterSeed), so rows of a dropped
// generation carry another fingerprint than the re-created filter's and
// are refused wherever they come from, while the same name created
// concurrently with the same sizing is one filter on every side. A
// filter loaded from a dump keeps the dumped seed (its rows must fit):
// loaded under the name of a generation since dropped, it is that
// generation again, and rows of it still in flight merge into it.

// CatalogDef is what a filter is made of: its layout and sizing. The
// fingerprint (layout, hash, k, row bits, rows, seed) says which filters'
// rows can merge.
type CatalogDef struct {
	FP       filter.Fingerprint
	Capacity uint64  // keys it was sized for (0 for classic); a growing filter's first stage's
	FPRate   float64 // false-positive rate at capacity (0 for classic); a growing filter's over all its stages
	// Expansion is how much larger each stage of a growing filter is
	// than the one before (stages.go); 0 for a filter that does not grow.
	Expansion uint32
	// NonScaling marks a filter made not to grow, which refuses adds once
	// full; one that does not grow without it was made before filters
	// grew, and takes adds past its capacity (and alarms).
	NonScaling bool
	// Window, in milliseconds, and Slices make a windowed filter
	// (windows.go): it answers for the keys added within the last Window,
	// kept in slices of Window/Slices each. Both 0 for any other filter.
	Window uint64
	Slices uint16
	// Replicas places the filter on that many members, those ranked
	// highest for its name (package placement); 0: on every member.
	Replicas uint8
}

// Version is one creation of a named filter.
type Version struct {
	Gen     uint64 // generation: 1 at first, one past the last drop after
	Created int64  // Unix milliseconds at the creating node
	Origin  string // the creating node's name
	Def     CatalogDef
}

// ID identifies a version among all of a name's.
type ID struct {
	Gen     uint64
	Created int64
	Origin  string
}

// ID returns v's identity.
func (v Version) ID() ID { return ID{v.Gen, v.Created, v.Origin} }

// before orders versions of one generation: the earlier creation first,
// ties broken by origin.
func before(a, b Version) int {
	return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.Origin, b.Origin))
}

// Tombstone records a drop: every version of generation ≤ Gen (a whole
// filter), or the one version ID (a conflict's loser).
type Tombstone struct {
	Gen     uint64 // with Version zero: every generation up to Gen
	Version ID     // set: this version only
	At      int64  // Unix milliseconds of the drop
}

// Entry is everything the catalog knows of one name.
type Entry struct {
	Name     string
	Floor    uint64      // the highest generation ever dropped, kept after its tombstone
	Versions []Version   // live versions, sorted: generation, then before
	Drops    []Tombstone // sorted by Gen, Version
	Expiries []Expiry    // deadlines (expiry.go): one per generation, sorted by Gen
}

// Catalog is a node's view of the named filters. The zero value is not
// usable; make one with NewCatalog. It is not safe for concurrent use.
type Catalog struct {
	ttl     time.Duration
	entries map[string]*Entry
}

// Errors of catalog operations.
var (
	ErrExists   = errors.New("a filter of that name exists with another definition")
	ErrNotFound = errors.New("no filter of that name")
)

// NewCatalog returns an empty catalog keeping tombstones for ttl.
func NewCatalog(ttl time.Duration) *Catalog {
	return &Catalog{ttl: ttl, entries: map[string]*Entry{}}
}

// entry returns name's entry, made if missing.
func (c *Catalog) entry(name string) *Entry {
	e := c.entries[name]
	if e == nil {
		e = &Entry{Name: name}
		c.entries[name] = e
	}
	return e
}

// dropGen is the highest whole-filter drop of e (0: none).
func (e *Entry) dropGen() uint64 {
	g := e.Floor
	for _, t := range e.Drops {
		if t.Version == (ID{}) {
			g = max(g, t.Gen)
		}
	}
	return g
}

// dead reports whether a tombstone of e covers v.
func (e *Entry) dead(v Version) bool {
	if v.Gen <= e.Floor {
		return true
	}
	for _, t := range e.Drops {
		if t.Version == (ID{}) && v.Gen <= t.Gen || t.Version == v.ID() {
			return true
		}
	}
	return false
}

// Live returns name's live versions, the winner first; none if the name
// has no filter now.
func (c *Catalog) Live(name string) []Version {
	if e := c.entries[name]; e != nil {
		return slices.Clone(e.Versions)
	}
	return nil
}

// Winner returns the version that takes name's adds.
func (c *Catalog) Winner(name string) (Version, bool) {
	live := c.Live(name)
	if len(live) == 0 {
		return Version{}, false
	}
	return live[0], true
}

// Answering returns the versions whose rows answer has for name: the
// winner and every version it conflicts with, and versions with the
// winner's fingerprint (the same filter, created twice).
func (c *Catalog) Answering(name string) []Version { return c.Live(name) }

// NextGen is the generation a filter created as name now would have: its
// live one, or one past the last dropped.
func (c *Catalog) NextGen(name string) uint64 {
	if w, ok := c.Winner(name); ok {
		return w.Gen
	}
	if e := c.entries[name]; e != nil {
		return e.dropGen() + 1
	}
	return 1
}

// Create makes name a filter with def, created now by origin. An existing
// live filter with the same fingerprint is kept (no change, no error);
// one with another fingerprint is an error naming both.
func (c *Catalog) Create(name string, def CatalogDef, origin string, now time.Time) (Version, error) {
	if w, ok := c.Winner(name); ok {
		if w.Def.FP == def.FP && w.Def.Replicas == def.Replicas {
			return w, nil
		}
		return Version{}, fmt.Errorf("%w: %q is %s, not %s", ErrExists, name, describe(w.Def), describe(def))
	}
	e := c.entry(name)
	v := Version{Gen: e.dropGen() + 1, Created: now.UnixMilli(), Origin: origin, Def: def}
	e.Versions = append(e.Versions, v)
	e.sort()
	return v, nil
}

func describe(d CatalogDef) string {
	var s string
	switch {
	case d.FP.Layout == filter.Classic:
		s = "the classic 5×400 filter"
	case d.Windowed():
		s = fmt.Sprintf("capacity %d per window of %v in %d slices at fp-rate %v (%v)", d.Capacity, d.WindowLength(), d.Slices, d.FPRate, d.FP)
	default:
		s = fmt.Sprintf("capacity %d at fp-rate %v (%v)", d.Capacity, d.FPRate, d.FP)
	}
	if d.Replicas > 0 {
		s += fmt.Sprintf(" on %d members", d.Replicas)
	}
	return s
}

// Drop drops name: every version of it, now. It returns the generation
// dropped.
func (c *Catalog) Drop(name string, now time.Time) (uint64, error) {
	live := c.Live(name)
	if len(live) == 0 {
		return 0, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	e := c.entries[name]
	gen := live[0].Gen
	e.Drops = append(e.Drops, Tombstone{Gen: gen, At: now.UnixMilli()})
	e.prune()
	return gen, nil
}

// DropVersion drops one version of name: a conflict's loser, once its
// keys are no longer wanted. Dropping the winner makes the next version
// the winner.
func (c *Catalog) DropVersion(name string, id ID, now time.Time) error {
	e := c.entries[name]
	if e == nil || !slices.ContainsFunc(e.Versions, func(v Version) bool { return v.ID() == id }) {
		return fmt.Errorf("%w: %q has no version %v", ErrNotFound, name, id)
	}
	e.Drops = append(e.Drops, Tombstone{Version: id, Gen: id.Gen, At: now.UnixMilli()})
	e.prune()
	return nil
}

// prune removes dead versions — those a tombstone covers, and those of a
// generation below another's (a later generation exists only once every
// earlier one was dropped) — and sorts.
func (e *Entry) prune() {
	e.Versions = slices.DeleteFunc(e.Versions, e.dead)
	e.sort()
	if n := len(e.Versions); n > 0 {
		top := e.Versions[n-1].Gen
		e.Versions = slices.DeleteFunc(e.Versions, func(v Version) bool { return v.Gen < top })
	}
	e.pruneExpiries()
}

func (e *Entry) sort() {
	slices.SortFunc(e.Versions, func(a, b Version) int { return cmp.Or(cmp.Compare(a.Gen, b.Gen), before(a, b)) })
	e.Versions = slices.CompactFunc(e.Versions, func(a, b Version) bool { return a.ID() == b.ID() })
	slices.SortFunc(e.Drops, func(a, b Tombstone) int {
		return cmp.Or(cmp.Compare(a.Gen, b.Gen), cmp.Compare(a.Version.Created, b.Version.Created),
			cmp.Compare(a.Version.Origin, b.Version.Origin), cmp.Compare(a.At, b.At))
	})
	// One tombstone per target: the earliest drop.
	e.Drops = slices.CompactFunc(e.Drops, func(a, b Tombstone) bool { return a.Gen == b.Gen && a.Version == b.Version })
	// A whole-filter drop of generation g covers every version of every
	// generation up to g: the tombstones below it say nothing more, and
	// would pile up on a name dropped and made again and again (a filter
	// that expires every few minutes) past what the catalog's bytes hold.
	top := uint64(0)
	for _, t := range e.Drops {
		if t.Version == (ID{}) {
			top = max(top, t.Gen)
		}
	}
	e.Drops = slices.DeleteFunc(e.Drops, func(t Tombstone) bool {
		return t.Gen < top || t.Gen == top && t.Version != (ID{})
	})
}

// Merge folds another node's entry for a name into c. Versions at or
// below the name's floor are refused (counted in the returned number),
// and versions a tombstone covers dropped; every other version is taken,
// however old. Merge is commutative, associative and idempotent over what
// it keeps.
func (c *Catalog) Merge(in Entry, now time.Time) (refused int) {
	if len(in.Versions) == 0 && len(in.Drops) == 0 && in.Floor == 0 && len(in.Expiries) == 0 {
		return 0
	}
	if mutate.IgnoreTombstones {
		in.Drops, in.Floor = nil, 0
	}
	e := c.entry(in.Name)
	e.Floor = max(e.Floor, in.Floor)
	e.Drops = append(e.Drops, in.Drops...)
	e.Expiries = append(e.Expiries, in.Expiries...)
	for _, v := range in.Versions {
		if v.Gen <= e.Floor {
			refused++
			continue
		}
		e.Versions = append(e.Versions, v)
	}
	e.prune()
	return refused
}

// Expire forgets tombstones older than the TTL, keeping of each only the
// generation it dropped (Entry.Floor). It returns the names left with no
// live filter and no tombstone.
func (c *Catalog) Expire(now time.Time) []string {
	horizon := now.Add(-c.ttl).UnixMilli()
	var gone []string
	for name, e := range c.entries {
		e.Drops = slices.DeleteFunc(e.Drops, func(t Tombstone) bool {
			if t.At >= horizon {
				return false
			}
			if t.Version == (ID{}) {
				e.Floor = max(e.Floor, t.Gen)
			}
			return true
		})
		if len(e.Versions) == 0 && len(e.Drops) == 0 && len(e.Expiries) == 0 {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	return gone
}

// FilterSeed is the seed of the filter of version v of name: the same for
// every creation of one generation, another for each generation.
func FilterSeed(name string, gen uint64) uint64 {
	return xxh3.HashString(name) ^ gen*0x9e3779b97f4a7c15
}

// Restore puts back an entry this node kept (from its data directory):
// as Merge, without the TTL's refusal of old versions.
func (c *Catalog) Restore(e Entry) {
	ttl := c.ttl
	c.ttl = 1<<63 - 1
	c.Merge(e, time.Unix(0, 0))
	c.ttl = ttl
}

// Entry returns a copy of name's entry (empty if none).
func (c *Catalog) Entry(name string) Entry {
	e := c.entries[name]
	if e == nil {
		return Entry{Name: name}
	}
	return Entry{Name: e.Name, Floor: e.Floor, Versions: clip(e.Versions), Drops: clip(e.Drops), Expiries: clip(e.Expiries)}
}

// Known reports whether the catalog has an entry for name: live, dropped
// or below a floor.
func (c *Catalog) Known(name string) bool { return c.entries[name] != nil }

// Tombstones counts the tombstones the catalog holds.
func (c *Catalog) Tombstones() int {
	n := 0
	for _, e := range c.entries {
		n += len(e.Drops)
	}
	return n
}

// Entries returns a copy of every entry, sorted by name: what a node
// sends another.
func (c *Catalog) Entries() []Entry {
	out := make([]Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, c.Entry(e.Name))
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Names lists the names with a live filter, sorted.
func (c *Catalog) Names() []string {
	var out []string
	for name := range c.entries {
		if len(c.Live(name)) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// clip copies s, nil when empty: equal catalogs have equal entries.
func clip[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}
