package gossip

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/rmbd/rmbd/filter"
	"github.com/zeebo/xxh3"
)

// Growing filters. A filter defined with an expansion X ≥ 1 is a list of
// stages, segment i being stage i; adds go to the newest, a key is in the
// filter when any stage holds it. Stage i is sized for C·X^i keys at a
// false-positive rate of E·(1−T)·T^i, where C and E are the capacity and
// rate the filter was defined with and T is Tightening: however many
// stages open, their rates add up to less than E. Its seed is drawn from
// stage 0's and i.
//
// A stage's sizing is a pure function of the catalog's definition and i,
// so that two members that open stage i — each when its own view of stage
// i−1, merged from every member's adds, is full — open the same filter,
// whose rows OR-merge as any segment's do. The function is part of the
// format (docs/FORMAT.md): a member that sized stages otherwise would
// refuse their rows.
//
// RedisBloom halves the rate at each stage (T = ½). rmbd's blocked rows
// pay more bits per key than a plain Bloom filter at small rates: with
// T = ½ a filter of capacity 10,000 at 1 % grown to hold 10M keys takes
// 34.9 MB, with T = 0.8 23.6 MB, at a measured rate of 0.88 % instead of
// 0.99 %.
const (
	Tightening = 0.8
	// MaxExpansion bounds the expansion a filter may be defined with.
	MaxExpansion = 32768
	// MaxStages bounds the stages of one filter; --max-filter-bytes
	// bounds their bytes.
	MaxStages = 64
)

// Grows reports whether d is a growing filter's definition.
func (d CatalogDef) Grows() bool { return d.Expansion > 0 }

// StageCapacity returns the keys stage i is sized for, and false when
// that is past filter.MaxCapacity.
func (d CatalogDef) StageCapacity(i uint64) (uint64, bool) {
	c := d.Capacity
	for range i {
		hi, lo := bits.Mul64(c, uint64(d.Expansion))
		if hi != 0 || lo > filter.MaxCapacity {
			return 0, false
		}
		c = lo
	}
	return c, true
}

// StageRate returns the false-positive rate stage i is sized for.
func (d CatalogDef) StageRate(i uint64) float64 {
	return d.FPRate * (1 - Tightening) * math.Pow(Tightening, float64(i))
}

// Stage returns the definition of stage i of the growing filter d (stage
// 0 is d), or why it cannot be made: past MaxStages or the capacity a
// filter may have, or a stage's bits over maxBytes.
func (d CatalogDef) Stage(i, maxBytes uint64) (CatalogDef, error) {
	switch {
	case !d.Grows():
		return CatalogDef{}, fmt.Errorf("a filter that does not grow has no stage %d", i)
	case i >= MaxStages:
		return CatalogDef{}, fmt.Errorf("%w: a filter grows to %d stages at most", filter.ErrTooLarge, MaxStages)
	case i == 0:
		return d, nil
	}
	c, ok := d.StageCapacity(i)
	if !ok {
		return CatalogDef{}, fmt.Errorf("%w: stage %d would hold more than %d keys", filter.ErrTooLarge, i, uint64(filter.MaxCapacity))
	}
	fp, err := filter.BlockedFingerprint(filter.Config{Layout: filter.Blocked, Capacity: c, FPRate: d.StageRate(i),
		Seed: StageSeed(d.FP.Seed, i), MaxBytes: maxBytes})
	if err != nil {
		return CatalogDef{}, err
	}
	return CatalogDef{FP: fp, Capacity: c, FPRate: d.FPRate, Expansion: d.Expansion}, nil
}

// StageSeed is the seed of stage i of a filter whose stage 0 has seed
// seed.
func StageSeed(seed, i uint64) uint64 {
	if i == 0 {
		return seed
	}
	var b [16]byte
	for j := range 8 {
		b[j], b[8+j] = byte(seed>>(8*j)), byte(i>>(8*j))
	}
	return xxh3.Hash(b[:])
}

// GrowingSeed is the seed of stage 0 of a growing filter of expansion x
// whose seed would be seed: growing and fixed filters of one name never
// share rows.
func GrowingSeed(seed uint64, x uint32) uint64 {
	return seed ^ xxh3.HashString(fmt.Sprint("expansion ", x))
}
