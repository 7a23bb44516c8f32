package registry

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// DefaultName is the name of the filter the node's flags make, which
// classic frames and unwrapped extended frames address. It is neither
// created nor dropped, and not in the catalog.
const DefaultName = wire.DefaultFilter

// Config configures a Registry.
type Config struct {
	// Node is this node's name: the origin of the filters it creates.
	Node string
	// Default is the filter the node's flags make.
	Default Sizing
	// MaxFilterBytes refuses filters larger than this.
	MaxFilterBytes uint64
	// MaxFilters bounds the named filters (the default is not counted).
	MaxFilters int
	// MaxMemory bounds the bytes every filter together may take, the
	// default included; 0 is no bound.
	MaxMemory int64
	// TombstoneTTL is how long a dropped filter's tombstone is kept.
	TombstoneTTL time.Duration
	// Dir, when set, keeps the filters: a folder each and the catalog.
	// The registry closes it. Its file system is the filters' too:
	// store.OpenDirFS opens one on another than the operating system's.
	Dir *store.Dir
	// Store tunes each filter's store (Dir only); zero is
	// store.DefaultOptions.
	Store store.Options
	// HandoffGrace is how long a placed filter this node no longer owns
	// is kept, answering, before it is freed (placement.go); 0 is
	// DefaultHandoffGrace.
	HandoffGrace time.Duration
	// Now is the clock the catalog stamps creations and drops with; nil
	// is time.Now.
	Now func() time.Time
	// Logger receives what the registry does; nil discards it.
	Logger *slog.Logger
}

// MaxReplicas is the most members a placed filter lives on.
const MaxReplicas = 255

// ErrReplicas refuses a placement no filter may have.
var ErrReplicas = errors.New("a filter's replicas")

// DefaultHandoffGrace is how long a placed filter this node no longer
// owns is kept when Config.HandoffGrace says nothing.
const DefaultHandoffGrace = time.Minute

// Sizing is what a filter is made from: its layout and, for the blocked
// layout, the keys and false-positive rate it is sized for. The classic
// layout's size is fixed (5 rows of 400 bits).
type Sizing struct {
	Layout   filter.Layout
	Capacity uint64
	FPRate   float64
	// Expansion, when not 0, makes a growing filter (grow.go): Capacity
	// and FPRate size its first stage, each stage after it Expansion
	// times the one before, and the false-positive rate of them all
	// stays under FPRate. 0: a named filter holds Capacity keys at most
	// and refuses adds past them (NONSCALING); the default takes them
	// (and alarms).
	Expansion uint32
	// Window, when not 0, makes a windowed filter (window.go): Capacity
	// is the keys it takes per Window, kept in Slices slices of time
	// (0: gossip.DefaultSlices). Windowed filters do not grow.
	Window time.Duration
	Slices int
	// Replicas, when not 0, places the filter on that many members
	// (placement.go); 0: every member holds it.
	Replicas int
	// Seed, when not 0, is the hash seed of the filter's rows (a growing
	// filter's first stage): a filter loaded from a dump keeps the seed
	// it was dumped with, so that its rows fit. 0: a seed of the filter's
	// own, from its name and generation.
	Seed uint64
}

// Asked is the sizing a create asks for: growth as a filter request
// carries it (0: expansion, the node's; 1: none, NONSCALING; n ≥ 2:
// expansion n − 1, refused past gossip.MaxExpansion by Check). Classic
// filters never grow.
func Asked(layout filter.Layout, capacity uint64, rate float64, growth, expansion uint32) Sizing {
	s := Sizing{Layout: layout, Capacity: capacity, FPRate: rate, Expansion: expansion}
	switch {
	case layout == filter.Classic:
		return Sizing{Layout: filter.Classic}
	case growth > 0:
		s.Expansion = growth - 1
	}
	return s
}

// Requested is the sizing a filter request's create asks for (Asked),
// with its window: expansion is the node's --expansion.
func Requested(q wire.FilterRequest, expansion uint32) Sizing {
	s := Asked(q.Layout, q.Capacity, q.FPRate, q.Growth, expansion)
	if q.Window != 0 {
		s.Window, s.Slices = gossip.MaxWindow+time.Millisecond, int(q.Slices) // past it: refused by Check, not wrapped
		if q.Window <= uint64(gossip.MaxWindow/time.Millisecond) {
			s.Window = time.Duration(q.Window) * time.Millisecond
		}
		if q.Growth == 0 { // the node's --expansion is for filters that may grow
			s.Expansion = 0
		}
	}
	s.Replicas = int(q.Replicas)
	return s
}

// Errors of sizing, as a client reads them.
var (
	ErrFPRate   = errors.New("fp-rate must be strictly between 0 and 1")
	ErrCapacity = errors.New("capacity must be at least 1")
	ErrLayout   = errors.New("layout must be blocked or classic")
	ErrGrowth   = fmt.Errorf("expansion must be 1 to %d, and only blocked filters grow", gossip.MaxExpansion)
	ErrWindow   = errors.New("bad window")
	// ErrWindowGrowth refuses a windowed filter that would grow: its
	// capacity is per window.
	ErrWindowGrowth = errors.New("a windowed filter does not grow (NONSCALING is implied): its capacity is the keys of one window")
)

// Check refuses a sizing no filter can have, saying why.
func (s Sizing) Check() error {
	switch {
	case s.Replicas < 0 || s.Replicas > MaxReplicas:
		return fmt.Errorf("%w: %d, not 1 to %d (0: every member)", ErrReplicas, s.Replicas, MaxReplicas)
	case s.Replicas > 0 && s.Window != 0:
		return fmt.Errorf("%w: a windowed filter lives on every member", ErrReplicas)
	case s.Layout == filter.Classic && s.Expansion > 0:
		return ErrGrowth
	case s.Layout == filter.Classic && s.Window != 0:
		return fmt.Errorf("%w: only blocked filters have a window", ErrWindow)
	case s.Layout == filter.Classic:
		return nil
	case s.Layout != filter.Blocked:
		return ErrLayout
	case !(s.FPRate > 0 && s.FPRate < 1) || math.IsNaN(s.FPRate):
		return ErrFPRate
	case s.Capacity < 1:
		return ErrCapacity
	case s.Expansion > gossip.MaxExpansion:
		return ErrGrowth
	case s.Window != 0 && s.Expansion != 0:
		return ErrWindowGrowth
	case s.Window == 0 && s.Slices != 0:
		return fmt.Errorf("%w: slices without a window", ErrWindow)
	}
	if err := gossip.CheckWindow(s.Window, s.slices()); err != nil {
		return fmt.Errorf("%w: %w", ErrWindow, err)
	}
	return nil
}

// slices is how many slices s's window is cut into.
func (s Sizing) slices() int {
	if s.Window == 0 {
		return 0
	}
	return cmp.Or(s.Slices, gossip.DefaultSlices)
}

// def is the catalog definition of the filter name at generation gen
// sized by s. Its seed is the generation's, so rows of another generation
// do not fit (the classic layout places keys by their bytes alone: there
// the seed only tells generations apart). The default filter is seed 0.
func (s Sizing) def(name string, gen uint64, maxBytes uint64) (gossip.CatalogDef, error) {
	if err := s.Check(); err != nil {
		return gossip.CatalogDef{}, err
	}
	seed := uint64(0)
	if name != DefaultName {
		seed = gossip.FilterSeed(name, gen)
	}
	if s.Layout == filter.Classic {
		fp := filter.NewClassic().Fingerprint()
		fp.Seed = cmp.Or(s.Seed, seed)
		return gossip.CatalogDef{FP: fp, Replicas: uint8(s.Replicas)}, nil
	}
	d := gossip.CatalogDef{Capacity: s.Capacity, FPRate: s.FPRate, Expansion: s.Expansion, Replicas: uint8(s.Replicas),
		NonScaling: s.Expansion == 0 && s.Window == 0 && name != DefaultName}
	rate, capacity := s.FPRate, s.Capacity
	switch {
	case d.Grows(): // its first stage's share of the rate, and a seed of its own
		rate, seed = d.StageRate(0), gossip.GrowingSeed(seed, s.Expansion)
	case s.Window != 0: // a slice's share of the keys and the rate, and a seed of its own
		d.Window, d.Slices = uint64(s.Window.Milliseconds()), uint16(s.slices())
		rate, capacity, seed = d.SliceRate(), d.SliceCapacity(), gossip.WindowSeed(seed, d.Window, d.Slices)
	}
	seed = cmp.Or(s.Seed, seed)
	fp, err := filter.BlockedFingerprint(filter.Config{Layout: filter.Blocked, Capacity: capacity, FPRate: rate,
		Seed: seed, MaxBytes: maxBytes})
	if err != nil {
		return gossip.CatalogDef{}, err
	}
	d.FP = fp
	if maxBytes > 0 && d.Bytes() > maxBytes {
		return gossip.CatalogDef{}, fmt.Errorf("%w: its window's slices take %d bytes, over --max-filter-bytes (%d)", filter.ErrTooLarge, d.Bytes(), maxBytes)
	}
	return d, nil
}

// SizeOf returns the memory a filter sized by s would take here, or why
// s sizes no filter.
func (r *Registry) SizeOf(s Sizing) (uint64, error) {
	def, err := s.def("", 1, r.cfg.MaxFilterBytes)
	if err != nil {
		return 0, err
	}
	return def.Bytes(), nil
}

func (c *Config) validate() error {
	if c.Node == "" {
		return errors.New("registry: no node name")
	}
	if c.MaxFilters < 0 || c.MaxMemory < 0 || c.TombstoneTTL <= 0 {
		return fmt.Errorf("registry: max filters %d and max memory %d must not be negative, tombstone TTL %v must be positive",
			c.MaxFilters, c.MaxMemory, c.TombstoneTTL)
	}
	if c.Store.CheckpointInterval == 0 && c.Store.CheckpointLogBytes == 0 {
		logger := c.Store.Logger
		c.Store = store.DefaultOptions()
		c.Store.Logger = logger
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.HandoffGrace = cmp.Or(c.HandoffGrace, DefaultHandoffGrace)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// DefOf returns the definition this node gives a filter it creates now
// with sizing s, whose Seed must be set: what a dump's definition is
// checked against before a filter is made to load it.
func (r *Registry) DefOf(s Sizing) (gossip.CatalogDef, error) {
	if s.Seed == 0 {
		return gossip.CatalogDef{}, errors.New("registry: a definition made from a sizing needs its seed")
	}
	return s.def("", 1, r.cfg.MaxFilterBytes)
}
