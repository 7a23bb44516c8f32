package registry

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// ErrDropped reports an add to a filter dropped while it was added to:
// the caller looks the name up again (or says so).
var ErrDropped = errors.New("the filter was dropped while adding; try again")

// Filter is one version of a filter on this node: a name, the catalog
// version it is (the default filter has a version of its own making), and
// its segments.
type Filter struct {
	name    string
	version gossip.Version
	folder  string // its folder's name in the data directory
	// segs are its segments, oldest first: one, or a growing filter's
	// stages, to which grow adds (grow.go).
	segs   atomic.Pointer[[]*Segment]
	reg    *Registry  // what it grows in
	growMu sync.Mutex // one grow at a time, one slice opened or dropped at a time
	growth growState
	// dropping are the slices of a windowed filter being dropped, under
	// growMu: not opened again until their folders are gone.
	dropping map[uint64]bool

	// mu is held for reading by each add to a store and for writing by
	// close, so that no add writes to a store that is closing. An add in
	// memory only looks at closed: one that races a drop is lost with
	// the filter, as it would be had it come just before.
	mu     sync.RWMutex
	closed atomic.Bool

	// filling: opened for a change of members, its rows yet to come;
	// unowned: when this node stopped owning it (Unix ns; 0: it does).
	// Both for placed filters (placement.go).
	filling atomic.Bool
	unowned atomic.Int64
	handed  atomic.Bool // given up, and its owners hold it ready: freed at once

	stats atomic.Pointer[Stats] // refreshed in the background (stats.go)
	alarm alarmState
	bytes atomic.Uint64
}

// Segment is one part of a filter: a row-oriented filter with its own
// identity within the filter, change tracking, files and sync state.
type Segment struct {
	id  uint64
	def gossip.CatalogDef // its sizing: the filter's, or its stage's
	f   *filter.Filter
	st  *store.Store // nil in memory
	of  *Filter
	// fullAt is the bits set at which the segment holds the keys it was
	// sized for (0: the default filter, never full).
	fullAt uint64
	byRows bool        // opened for a member's rows (grow.go)
	gone   atomic.Bool // a slice dropped out of its window (window.go)
}

// ID returns the segment's number within its filter (0 for the first).
func (s *Segment) ID() uint64 { return s.id }

// Rows returns the segment's rows, for gossip and pulls.
func (s *Segment) Rows() *filter.Filter { return s.f }

// Store returns the segment's store in the data directory; nil in
// memory.
func (s *Segment) Store() *store.Store { return s.st }

// Unwrapped reports whether frames for the segment travel as they are:
// the default filter's first segment, which classic and unwrapped frames
// address. Every other segment's frames are wrapped in named frames.
func (s *Segment) Unwrapped() bool { return s.id == 0 && s.of.IsDefault() }

// AppendFrame appends inner, a whole frame, addressed to the segment:
// as it is, or wrapped in a named frame.
func (s *Segment) AppendFrame(dst, inner []byte) ([]byte, error) {
	if s.Unwrapped() {
		return append(dst, inner...), nil
	}
	return wire.AppendNamedSegment(dst, s.of.name, s.id, inner)
}

// Filter returns the filter the segment belongs to.
func (s *Segment) Filter() *Filter { return s.of }

// Name returns the filter's name.
func (f *Filter) Name() string { return f.name }

// Version returns the catalog version the filter is.
func (f *Filter) Version() gossip.Version { return f.version }

// IsDefault reports whether f is the filter of the node's flags.
func (f *Filter) IsDefault() bool { return f.name == DefaultName }

// Segments returns the filter's segments, oldest first.
func (f *Filter) Segments() []*Segment {
	if p := f.segs.Load(); p != nil {
		return *p
	}
	return nil
}

// Segment returns segment id, or nil.
func (f *Filter) Segment(id uint64) *Segment {
	for _, s := range f.Segments() {
		if s.id == id {
			return s
		}
	}
	return nil
}

// SegmentFor returns f's segment id whose rows have fingerprint fp, or
// nil: rows of another version or generation never merge.
func (f *Filter) SegmentFor(id uint64, fp filter.Fingerprint) *Segment {
	if s := f.Segment(id); s != nil && s.f.Fingerprint() == fp {
		return s
	}
	return nil
}

// Bytes returns the memory the filter's bits take.
func (f *Filter) Bytes() uint64 { return f.bytes.Load() }

// head is the segment adds go to.
func (f *Filter) head() *Segment {
	segs := f.Segments()
	return segs[len(segs)-1]
}

// Add adds keys the caller acknowledges to the filter and sets bit i of
// bits (a bit per key, zeroed) for each key that changed it. It returns
// how many did and what the acknowledgement waits for (a data directory
// under --fsync always); ErrDropped if the filter was dropped meanwhile,
// and, refused before anything is applied, the store's error (wrapping
// store.ErrUnwritable) while the filter's data directory cannot be
// written; ErrFull when the filter holds what it was sized for and may
// not grow — the keys before it added, as after any error a client
// retries. keys may be slices of a frame about to be reused.
func (f *Filter) Add(keys [][]byte, bits []byte, sc *store.Scratch) (int, store.Wait, error) {
	return f.add(keys, bits, sc, true)
}

// AddUnacked is Add for keys nobody is told were kept: never refused for
// the disk's sake (a filter whose data directory cannot be written keeps
// them in memory until it can); ErrDropped and ErrFull only.
func (f *Filter) AddUnacked(keys [][]byte, bits []byte, sc *store.Scratch) (int, error) {
	n, _, err := f.add(keys, bits, sc, false)
	return n, err
}

// add adds keys to the stage that takes them, a chunk at a time (chunk),
// so that a large batch does not overfill a growing filter's stage:
// between chunks it looks again whether the stage is full. A batch that
// spans two stages' stores waits for both (store.Wait.After).
func (f *Filter) add(keys [][]byte, bits []byte, sc *store.Scratch, acked bool) (int, store.Wait, error) {
	fresh := 0
	var wait store.Wait
	for len(keys) > 0 {
		s, err := f.target()
		if errors.Is(err, errSliceGone) {
			continue // the clock moved on while the slice was chosen: choose again
		}
		if err != nil {
			return fresh, wait, err
		}
		n := s.chunk(len(keys))
		grows := f.version.Def.Grows()
		if grows {
			f.growth.own.Add(uint64(n))
		}
		var got int
		var w store.Wait
		if grows && s.id > 0 {
			got, w, err = f.addNew(s, keys[:n], bits, sc, acked)
		} else {
			got, w, err = f.addTo(s, keys[:n], bits, sc, acked)
		}
		fresh += got
		if errors.Is(err, errSliceGone) {
			continue // nothing added: the next slice
		}
		if err != nil {
			return fresh, wait, err
		}
		wait = w.After(wait)
		keys, bits = keys[n:], bits[n/8:]
	}
	return fresh, wait, nil
}

// addNew adds to stage s the keys no older stage holds, as RedisBloom
// does: a key an older stage answers for is not new, and takes no room
// in the newest. bits holds a bit per key of keys.
func (f *Filter) addNew(s *Segment, keys [][]byte, bits []byte, sc *store.Scratch, acked bool) (int, store.Wait, error) {
	older := f.Segments()[:s.id]
	var pos []int // of the keys to add, when some are held already
	for i, k := range keys {
		held := false
		for _, o := range older {
			if o.f.Has(k) {
				held = true
				break
			}
		}
		switch {
		case held && pos == nil:
			pos = make([]int, i, len(keys))
			for j := range pos {
				pos[j] = j
			}
		case !held && pos != nil:
			pos = append(pos, i)
		}
	}
	if pos == nil {
		return f.addTo(s, keys, bits, sc, acked)
	}
	some := make([][]byte, len(pos))
	for j, i := range pos {
		some[j] = keys[i]
	}
	own := make([]byte, (len(pos)+7)/8)
	got, w, err := f.addTo(s, some, own, sc, acked)
	for j, i := range pos {
		if own[j/8]&(1<<(j%8)) != 0 {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	return got, w, err
}

// chunk is how many of n keys go into s before the next look at whether
// it is full: all of them into a segment that never is, else a sixteenth
// of its capacity, whole bytes of bits (8 keys) at least.
func (s *Segment) chunk(n int) int {
	if s.fullAt == 0 {
		return n
	}
	return min(n, max(8, int(min(s.def.Capacity/16, uint64(n)))&^7))
}

// addTo adds keys to segment s of f.
func (f *Filter) addTo(s *Segment, keys [][]byte, bits []byte, sc *store.Scratch, acked bool) (int, store.Wait, error) {
	if s.st == nil {
		n, err := f.addInMemory(s, keys, bits)
		return n, store.Wait{}, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	switch {
	case f.closed.Load():
		return 0, store.Wait{}, ErrDropped
	case s.gone.Load():
		return 0, store.Wait{}, errSliceGone
	}
	if !acked {
		return s.st.AddUnacked(keys, bits, sc), store.Wait{}, nil
	}
	return s.st.Add(keys, bits, sc)
}

// addInMemory adds to a segment without a store.
func (f *Filter) addInMemory(s *Segment, keys [][]byte, bits []byte) (int, error) {
	if f.closed.Load() {
		return 0, ErrDropped
	}
	fresh := 0
	for i, k := range keys { // in memory: the hot loop stays here
		if s.f.Add(k) {
			bits[i/8] |= 1 << (i % 8)
			fresh++
		}
	}
	return fresh, nil
}

// Health returns nil while every segment of the filter takes adds to
// keep, and the first failing store's error (wrapping
// store.ErrUnwritable) otherwise. A filter in memory is always healthy.
func (f *Filter) Health() error {
	for _, s := range f.Segments() {
		if s.st == nil {
			continue
		}
		if err := s.st.Health(); err != nil {
			return err
		}
	}
	return nil
}

// Has reports whether key may have been added: whether any segment holds
// it (of a windowed filter, any slice its window keeps).
func (f *Filter) Has(key []byte) bool {
	if f.windowed() {
		return f.hasWindowed(key)
	}
	for _, s := range f.Segments() {
		if s.f.Has(key) {
			return true
		}
	}
	return false
}

// Versions are a name's live versions on this node, the one that takes
// adds first. Its zero value is a name with no filter.
type Versions []*Filter

// Winner returns the version that takes adds, or nil.
func (vs Versions) Winner() *Filter {
	if len(vs) == 0 {
		return nil
	}
	return vs[0]
}

// Has reports whether any version holds key: a conflict's losers still
// answer for their keys.
func (vs Versions) Has(key []byte) bool {
	for _, f := range vs {
		if f.Has(key) {
			return true
		}
	}
	return false
}

// Only returns the rows of a name with one version of one segment — the
// common case, whose hot loops then ask the rows directly — or nil (a
// windowed filter's slices come and go).
func (vs Versions) Only() *filter.Filter {
	if len(vs) != 1 || vs[0].windowed() {
		return nil
	}
	if segs := vs[0].Segments(); len(segs) == 1 {
		return segs[0].f
	}
	return nil
}

// SegmentFor returns the segment id of the version whose rows have
// fingerprint fp, or nil.
func (vs Versions) SegmentFor(id uint64, fp filter.Fingerprint) *Segment {
	for _, f := range vs {
		if s := f.SegmentFor(id, fp); s != nil {
			return s
		}
	}
	return nil
}

// close closes f's stores (no add is in flight after it) and, with
// remove, deletes its folders, without writing a last checkpoint first.
func (f *Filter) close(dir *store.Dir, remove bool) error {
	f.mu.Lock()
	f.closed.Store(true)
	f.mu.Unlock()
	f.growMu.Lock() // the slices a dropOld has not taken: each closed once, here or there
	segs := f.Segments()
	f.growMu.Unlock()
	var errs []error
	for _, s := range segs {
		if s.st == nil {
			continue
		}
		if !remove {
			errs = append(errs, s.st.Close())
			continue
		}
		errs = append(errs, s.st.Discard(), dir.Remove(segmentFolder(f.folder, s.id))) // no last checkpoint of rows about to go
	}
	return errors.Join(errs...)
}

// Stats returns the filter's figures as of the last refresh (nil before
// the first).
func (f *Filter) Stats() *Stats { return f.stats.Load() }
