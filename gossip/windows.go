package gossip

import (
	"fmt"
	"math"
	"time"

	"github.com/zeebo/xxh3"
)

// Windowed filters answer for the keys added within a sliding window of
// time, and forget older ones. A filter defined with a window W cut into
// L slices of Δ = W/L is a list of segments, one per slice of time: slice
// number s holds the keys added while a member's clock read from s·Δ to
// (s+1)·Δ after the Unix epoch. The slice number is a pure function of
// the time and the definition, so every member puts a key added at one
// moment into the same slice, whose rows OR-merge as any segment's do,
// and every member drops a slice on its own once it falls out of the
// window: nothing is coordinated but the clocks. Members exchange their
// time (package membership), and a member whose clock is more than half
// a slice from the cluster's refuses windowed adds.
//
// A member whose clock reads slice c keeps slices c−L−1 to c+1 (Kept):
// the L+1 slices a key added within the last W may be in, one more for
// a member whose clock is behind, and the next for one whose clock is
// ahead. So a key added up to W ago answers true on every member, and one
// added more than W+2Δ ago has left every member's window. A has asks
// every slice kept; each is sized for the keys of one slice (N/L, N being
// the keys per window the filter was made for) at a rate of E/(L+2), so
// that the L+2 slices together answer a stranger at a rate of E or less.
//
// Every slice has the definition's fingerprint: a slice is known by its
// number, not by its rows. The fingerprint's seed is drawn from the
// filter's and the window's (WindowSeed), so that windowed and other
// filters of one name never share rows.

// Bounds of a window's definition.
const (
	MaxSlices = 1000 // slices per window
	// MinSlice bounds a slice's length from below: the clocks of the
	// members must agree within half a slice.
	MinSlice = 100 * time.Millisecond
	// MaxWindow bounds a window's length.
	MaxWindow = 400 * 24 * time.Hour
	// DefaultSlices is how many slices a window is cut into when not
	// told: keys leave every member's window by 1.2 × W.
	DefaultSlices = 10
)

// Windowed reports whether d is a windowed filter's definition.
func (d CatalogDef) Windowed() bool { return d.Slices > 0 }

// CheckWindow refuses a window no filter may have, saying why; a window
// of 0 (no window) is fine.
func CheckWindow(window time.Duration, slices int) error {
	switch {
	case window == 0 && slices == 0:
		return nil
	case window <= 0 || window > MaxWindow:
		return fmt.Errorf("a window is more than 0 and at most %v, not %v", MaxWindow, window)
	case slices < 1 || slices > MaxSlices:
		return fmt.Errorf("a window is cut into 1 to %d slices, not %d", MaxSlices, slices)
	case window/time.Duration(slices) < MinSlice:
		return fmt.Errorf("a window's slices last %v at least: %v in %d slices is %v each", MinSlice, window, slices, window/time.Duration(slices))
	case window%time.Millisecond != 0:
		return fmt.Errorf("a window is a whole number of milliseconds, not %v", window)
	}
	return nil
}

// WindowLength returns d's window.
func (d CatalogDef) WindowLength() time.Duration { return time.Duration(d.Window) * time.Millisecond }

// SliceLength returns how long each slice of d lasts (0: not windowed).
func (d CatalogDef) SliceLength() time.Duration {
	if !d.Windowed() {
		return 0
	}
	return time.Duration(d.Window/uint64(d.Slices)) * time.Millisecond
}

// SliceAt returns the number of the slice a key added at t goes to.
func (d CatalogDef) SliceAt(t time.Time) uint64 {
	ms := t.UnixMilli()
	if ms < 0 || !d.Windowed() {
		return 0
	}
	return uint64(ms) / (d.Window / uint64(d.Slices))
}

// Kept returns the slices a member whose clock reads slice cur keeps,
// from lo to hi included.
func (d CatalogDef) Kept(cur uint64) (lo, hi uint64) {
	back := uint64(d.Slices) + 1
	if cur < back {
		return 0, cur + 1
	}
	return cur - back, cur + 1
}

// SliceCapacity returns the keys one slice is sized for: its share of
// the window's.
func (d CatalogDef) SliceCapacity() uint64 {
	return max(1, (d.Capacity+uint64(d.Slices)-1)/uint64(d.Slices))
}

// SliceRate returns the false-positive rate one slice is sized for.
func (d CatalogDef) SliceRate() float64 { return d.FPRate / float64(d.Slices+2) }

// SliceDef returns the definition of each slice of d: its fingerprint,
// with the keys of one slice as capacity.
func (d CatalogDef) SliceDef() CatalogDef {
	s := d
	s.Capacity = d.SliceCapacity()
	return s
}

// WindowSeed is the seed of the slices of a filter with a window of
// window ms in slices slices whose seed would be seed.
func WindowSeed(seed, window uint64, slices uint16) uint64 {
	return seed ^ xxh3.HashString(fmt.Sprint("window ", window, "/", slices))
}

// Bytes returns the memory a filter of d takes: its rows', or a windowed
// filter's slices kept at once (L+2, and the next one opened early for a
// member whose clock is ahead).
func (d CatalogDef) Bytes() uint64 {
	if d.Windowed() {
		return uint64(d.Slices+3) * d.FP.SizeBytes()
	}
	return d.FP.SizeBytes()
}

// checkWindowDef says whether a decoded definition's window is one a
// filter may have.
func checkWindowDef(d CatalogDef) bool {
	if !d.Windowed() {
		return d.Window == 0
	}
	if d.Window > uint64(MaxWindow/time.Millisecond) || d.Grows() || d.NonScaling || d.Capacity == 0 || d.FPRate == 0 {
		return false
	}
	return CheckWindow(d.WindowLength(), int(d.Slices)) == nil && d.Window <= math.MaxInt64
}
