package registry

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/mutate"
)

// Windowed filters (gossip/windows.go): a filter defined with a window is
// a list of slices of time, one segment each, keyed by the slice's
// absolute number. Adds go to the slice this node's clock reads; a has
// asks every slice the window keeps; rows of a slice within the window
// open it here (a member opened it first); DropDue drops, every call,
// the slices that fell out of the window. A node away for longer than
// the window opens none of its old slices: it starts from an empty
// window, and its members' rows fill the rest.

// ErrClock refuses windowed adds on a node whose clock is too far from
// the cluster's: they would go to another slice than the members put
// them in.
var ErrClock = errors.New("this node's clock is too far from the cluster's for windowed filters")

// SetClockOffset tells the registry how far this node's clock is from
// the cluster's (as membership measures it): past half a slice of a
// windowed filter, adds to it are refused with ErrClock. It logs a
// warning when the offset passes what the windowed filters held
// tolerate, and says when it is back within.
func (r *Registry) SetClockOffset(d time.Duration) {
	r.clockOffset.Store(int64(d))
	bound, ok := r.clockBound()
	out := ok && d.Abs() > bound
	switch was := r.clockOut.Swap(out); {
	case out && !was:
		r.log.Warn("this node's clock is too far from the cluster's: its windowed filters refuse adds, and it is not ready",
			"offset", d, "tolerated", bound)
	case was && !out:
		r.log.Info("this node's clock is back within what windowed filters tolerate", "offset", d)
	}
}

// clockBound returns the offset the windowed filters held tolerate: half
// the shortest slice; ok is false without one.
func (r *Registry) clockBound() (bound time.Duration, ok bool) {
	for _, f := range r.All() {
		if d := f.version.Def; d.Windowed() && (!ok || d.SliceLength()/2 < bound) {
			bound, ok = d.SliceLength()/2, true
		}
	}
	return bound, ok
}

// ClockNote says why the node is not ready for its windowed filters'
// sake: its clock is past what they tolerate; "" otherwise.
func (r *Registry) ClockNote() string {
	bound, ok := r.clockBound()
	if d := r.ClockOffset(); ok && d.Abs() > bound {
		return fmt.Sprintf("this node's clock is %v off the cluster's, past the %v its windowed filters tolerate: their adds are refused here",
			d.Round(time.Millisecond), bound)
	}
	return ""
}

// ClockOffset returns what SetClockOffset last set.
func (r *Registry) ClockOffset() time.Duration { return time.Duration(r.clockOffset.Load()) }

// windowed reports whether f is a windowed filter.
func (f *Filter) windowed() bool { return f.version.Def.Windowed() }

// kept returns the slices f keeps now, from lo to hi included.
func (f *Filter) kept() (lo, hi uint64) {
	d := f.version.Def
	return d.Kept(d.SliceAt(f.reg.cfg.Now()))
}

// slice returns the slice adds to f go to now, opened if it is not yet.
func (f *Filter) slice() (*Segment, error) {
	d := f.version.Def
	if off := f.reg.ClockOffset().Abs(); off > d.SliceLength()/2 {
		return nil, fmt.Errorf("%w: it is %v off, and %q's slices of %v tolerate %v", ErrClock,
			off.Round(time.Millisecond), f.name, d.SliceLength(), d.SliceLength()/2)
	}
	cur := d.SliceAt(f.reg.cfg.Now())
	if s := f.Segment(cur); s != nil {
		return s, nil
	}
	s, err := f.openSlice(cur)
	if errors.Is(err, errWindowFull) { // the clock stepped: the slices out of the window go first
		f.dropOld()
		s, err = f.openSlice(cur)
	}
	return s, err
}

// openSlice opens slice id of f, within its --max-filter-bytes and the
// node's --max-memory, and publishes it in order.
func (f *Filter) openSlice(id uint64) (*Segment, error) {
	r := f.reg
	f.growMu.Lock()
	defer f.growMu.Unlock()
	if s := f.Segment(id); s != nil {
		return s, nil
	}
	if lo, hi := f.kept(); id < lo || id > hi { // the clock moved on since the caller read it
		return nil, errSliceGone
	}
	if f.dropping[id] {
		return nil, fmt.Errorf("slice %d is being dropped, out of the window (the clock stepped): try again", id)
	}
	def := f.version.Def.SliceDef()
	size := def.FP.SizeBytes()
	if most := r.cfg.MaxFilterBytes; most > 0 && f.Bytes()+size > most {
		return nil, fmt.Errorf("slice %d (%d bytes) would take it past --max-filter-bytes (%d bytes; %d in use)", id, size, most, f.Bytes())
	}
	if err := r.reserve(f, size); err != nil {
		return nil, err
	}
	f.mu.RLock() // a close waits until it is published, and then closes it too
	defer f.mu.RUnlock()
	if f.closed.Load() {
		r.unreserve(f, size)
		return nil, ErrDropped
	}
	seg, err := r.openSegment(f, id, def, 0)
	if err != nil {
		r.unreserve(f, size)
		return nil, err
	}
	segs := append(slices.Clone(f.Segments()), seg)
	slices.SortFunc(segs, bySliceID)
	f.segs.Store(&segs)
	if seg.st != nil && r.isStarted() {
		seg.st.Start()
	}
	return seg, nil
}

func bySliceID(a, b *Segment) int { return cmp.Compare(a.id, b.id) }

// openRowsSlice opens, for a member's rows, slice id of a windowed
// version if the window keeps it here, and their fingerprint is its.
func (f *Filter) openRowsSlice(id uint64, fp filter.Fingerprint) (*Segment, error) {
	if mutate.SliceRowsRefused {
		return nil, ErrNoStage
	}
	if lo, hi := f.kept(); id < lo || id > hi || fp != f.version.Def.FP {
		return nil, ErrNoStage
	}
	s, err := f.openSlice(id)
	if errors.Is(err, errWindowFull) { // the clock turned a slice: the one out of the window goes first
		f.dropOld()
		s, err = f.openSlice(id)
	}
	if errors.Is(err, errSliceGone) {
		return nil, ErrNoStage
	}
	return s, err
}

// dropSlices drops the slices of every windowed filter that fell out of
// its window.
func (r *Registry) dropSlices() {
	for _, f := range r.All() {
		if f.windowed() {
			f.dropOld()
		}
	}
}

// dropOld drops f's slices out of its window — below it, and above it
// after the clock stepped back: out of reach of requests and out of its
// bytes first; then, once no add is in flight in them, their stores
// (without a last checkpoint) and folders, whatever became of f
// meanwhile. A slice being dropped is not opened again until its folder
// is gone. The window is read under growMu, so that no slice opened for a
// later reading of the clock is taken for one ahead of the window; a
// filter closed meanwhile (dropped, or the registry closing) is close's
// to clean, and the registry's Close waits for a dropOld under way.
// Nothing is dropped while this node's clock is further from the
// cluster's than f tolerates: a clock stepped far ahead would drop every
// slice, keys and all, that the window still keeps.
func (f *Filter) dropOld() {
	if mutate.SlicesKeptForever || f.reg.ClockOffset().Abs() > f.version.Def.SliceLength()/2 || !f.reg.dropBegins() {
		return
	}
	defer f.reg.drops.Done()
	f.growMu.Lock()
	if f.closed.Load() {
		f.growMu.Unlock()
		return
	}
	lo, hi := f.kept()
	var gone []*Segment
	var size uint64
	keep := slices.DeleteFunc(slices.Clone(f.Segments()), func(s *Segment) bool {
		out := s.id < lo || s.id > hi
		if out {
			gone = append(gone, s)
			size += s.def.FP.SizeBytes()
			f.dropping[s.id] = true
		}
		return out
	})
	if len(gone) > 0 {
		f.segs.Store(&keep)
		f.reg.unreserve(f, size) // room for the slices of the window at once
	}
	f.growMu.Unlock()
	if len(gone) == 0 {
		return
	}
	f.mu.Lock() // a barrier: an add that picked a slice before it went is done; one after sees it gone
	for _, s := range gone {
		s.gone.Store(true)
	}
	f.mu.Unlock()
	for _, s := range gone {
		if s.st != nil {
			if err := errors.Join(s.st.Discard(), f.reg.cfg.Dir.Remove(segmentFolder(f.folder, s.id))); err != nil {
				f.reg.log.Error("a slice out of its window could not be removed", "filter", f.name, "slice", s.id, "err", err)
			}
		}
	}
	f.growMu.Lock()
	for _, s := range gone {
		delete(f.dropping, s.id)
	}
	f.growMu.Unlock()
}

// dropBegins counts a dropOld under way, unless the registry is closing
// (then it has nothing to do).
func (r *Registry) dropBegins() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.drops.Add(1)
	return true
}

// errWindowFull refuses a slice past what the window may hold at once:
// the clock stepped, and the slices out of the window were not dropped
// yet.
var errWindowFull = errors.New("the window's slices are all open")

// errSliceGone is an add's slice dropped between its choice and the add:
// the add chooses again.
var errSliceGone = errors.New("registry: the slice went out of the window")

// loadSlices opens the slices of windowed f its folders hold and its
// window keeps; the folders of the others are removed.
func (r *Registry) loadSlices(f *Filter) error {
	if r.cfg.Dir == nil {
		segs := []*Segment{}
		f.segs.Store(&segs)
		return nil
	}
	folders, err := r.cfg.Dir.Folders()
	if err != nil {
		return err
	}
	lo, hi := f.kept()
	def := f.version.Def.SliceDef()
	var segs []*Segment
	var size uint64
	for _, name := range folders {
		rest, ok := strings.CutPrefix(name, f.folder+"@")
		id, err := strconv.ParseUint(rest, 16, 64)
		if !ok || err != nil || segmentFolder(f.folder, id) != name {
			continue
		}
		if id < lo || id > hi {
			if err := r.cfg.Dir.Remove(name); err != nil {
				return errors.Join(err, closeSegments(segs))
			}
			continue
		}
		seg, err := r.openSegment(f, id, def, 0)
		if err != nil {
			return errors.Join(fmt.Errorf("slice %d: %w", id, err), closeSegments(segs))
		}
		segs = append(segs, seg)
		size += def.FP.SizeBytes()
	}
	slices.SortFunc(segs, bySliceID)
	f.segs.Store(&segs)
	f.bytes.Store(size)
	return nil
}

// hasWindowed reports whether a slice f keeps holds key. Every slice has
// the definition's fingerprint, so the key is hashed once for them all.
func (f *Filter) hasWindowed(key []byte) bool {
	lo, hi := f.kept()
	if mutate.SlicesKeptForever {
		lo = 0
	}
	segs := f.Segments()
	if len(segs) == 0 {
		return false
	}
	h := segs[0].f.KeyHash(key)
	for _, s := range segs {
		if s.id >= lo && s.id <= hi && s.f.HasHash(h) {
			return true
		}
	}
	return false
}

// windowKeys estimates the keys added within the last window: in the
// slices from the one the clock reads back, as many as the window has.
func (f *Filter) windowKeys() float64 {
	d := f.version.Def
	cur := d.SliceAt(f.reg.cfg.Now())
	keys := 0.0
	for _, s := range f.Segments() {
		if s.id <= cur && s.id+uint64(d.Slices) > cur {
			keys += s.keys()
		}
	}
	return keys
}
