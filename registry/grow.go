package registry

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/store"
)

// Growing filters (gossip/stages.go): a filter defined with an expansion
// is a list of stages, one segment each. Adds go to the newest; when it
// holds the keys it was sized for — judged from its bits set, which every
// member's adds and merges set alike — the next add opens the next stage.
// A member that gets rows of a stage it has not opened yet (another
// member opened it first) opens it then: every stage's sizing follows
// from the catalog's definition, so both open the same filter. A stage
// takes memory from --max-memory and its filter's --max-filter-bytes, and
// a filter grows to gossip.MaxStages stages at most; past any of them, or
// full without an expansion (NONSCALING), the filter refuses adds with
// ErrFull.

// ErrFull refuses adds to a filter that holds what it was sized for and
// may not grow; ErrNonScaling, beside it, says it was made not to grow.
var (
	ErrFull       = errors.New("filter is full")
	ErrNonScaling = errors.New("non scaling filter is full")
)

// Members add to a growing filter at once, each seeing the others' adds
// only once their rows come (a gossip round later): judged on its own
// view, a stage small beside what the cluster adds in a round would be
// overfilled many times over, and its false-positive rate with it. So a
// member opens the next stage once its view of the newest, plus what it
// expects the others added to it unseen, reaches its capacity: what they
// added in the last round (Tick measures it: the stage's keys estimated
// from its bits, less this node's own adds), or what this node added
// since, once for each other member, whichever is more — others idle a
// round ago may not be now. A stage so opened early holds a little less
// than it could: at most what the cluster adds in a round.

// growState is what a growing filter's node knows of the others' adds.
type growState struct {
	own    atomic.Uint64 // keys this node added to the newest stage since the last Tick
	unseen atomic.Uint64 // keys the others added in the last round
	// Tick's own, under Registry.tickMu:
	lastHead *Segment
	lastKeys float64
}

// Tick measures, for every growing filter, what the other members added
// to its newest stage since the last Tick; members is the size of the
// cluster, this node included. The node calls it every gossip round.
func (r *Registry) Tick(members int) {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	r.others.Store(uint64(max(members-1, 0)))
	for _, f := range r.All() {
		if !f.version.Def.Grows() {
			continue
		}
		g := &f.growth
		head := f.head()
		keys := head.keys()
		own := float64(g.own.Swap(0))
		if head == g.lastHead {
			g.unseen.Store(uint64(max(keys-g.lastKeys-own, 0)))
		}
		g.lastHead, g.lastKeys = head, keys
	}
}

// keys estimates the keys in s from its bits set.
func (s *Segment) keys() float64 { return s.f.KeysAt(s.f.SetBits()) }

// full reports whether s, the newest stage, is to be followed by the
// next before more adds: it holds its capacity, with what the others
// added unseen.
func (f *Filter) full(s *Segment) bool {
	bits := s.f.SetBits()
	if bits >= s.fullAt {
		return true
	}
	g := &f.growth
	unseen := max(g.unseen.Load(), f.reg.others.Load()*g.own.Load())
	return unseen > 0 && s.f.KeysAt(bits)+float64(unseen) >= float64(s.def.Capacity)
}

// target returns the segment adds go to: the newest, or the one it opens
// when the newest is full (one stage a call: what was measured of the
// others' adds was of the stage before, and openStage forgets it);
// ErrFull when it is full and may not grow.
func (f *Filter) target() (*Segment, error) {
	if f.windowed() {
		return f.slice()
	}
	s := f.head()
	switch {
	case s.fullAt == 0:
		return s, nil
	case !f.version.Def.Grows():
		if f.version.Def.NonScaling && s.f.SetBits() >= s.fullAt {
			return nil, fmt.Errorf("%w (%w): it was made not to grow (NONSCALING) and holds the %d keys it was sized for", ErrFull, ErrNonScaling, s.def.Capacity)
		}
		return s, nil // a filter from before filters grew takes adds past its capacity, and alarms
	case !f.full(s):
		return s, nil
	}
	next, err := f.grow(s.id+1, false)
	switch {
	case errors.Is(err, ErrDropped):
		return nil, err
	case err != nil && s.f.SetBits() < s.fullAt: // full only by what others may add: take it
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("%w: it cannot grow past %d stages: %w", ErrFull, s.id+1, err)
	}
	return next, nil
}

// grow opens f's stages up to id, and returns stage id; byRows says a
// member's rows of stage id asked for it.
func (f *Filter) grow(id uint64, byRows bool) (*Segment, error) {
	r := f.reg
	f.growMu.Lock()
	defer f.growMu.Unlock()
	for {
		segs := f.Segments()
		if uint64(len(segs)) > id {
			return segs[id], nil
		}
		next := uint64(len(segs))
		def, err := f.version.Def.Stage(next, 0) // its bytes are checked below, against what the filter holds
		if err != nil {
			return nil, err
		}
		size := def.FP.SizeBytes()
		if most := r.cfg.MaxFilterBytes; most > 0 && f.Bytes()+size > most {
			return nil, fmt.Errorf("stage %d (%d bytes) would take it past --max-filter-bytes (%d bytes; %d in use)", next, size, most, f.Bytes())
		}
		if err := r.reserve(f, size); err != nil {
			return nil, err
		}
		_, err = f.openStage(next, def, byRows)
		if err != nil {
			r.unreserve(f, size)
			return nil, err
		}
		r.log.Info("filter grew a stage", "filter", f.name, "stage", next, "capacity", def.Capacity, "bytes", size,
			"filter_bytes", f.Bytes(), "by_members_rows", byRows)
	}
}

// openStage opens stage id of f and publishes it, unless f was dropped
// meanwhile. Callers hold f.growMu.
func (f *Filter) openStage(id uint64, def gossip.CatalogDef, byRows bool) (*Segment, error) {
	f.mu.RLock() // a close waits until it is published, and then closes it too
	defer f.mu.RUnlock()
	if f.closed.Load() {
		return nil, ErrDropped
	}
	seg, err := f.reg.openSegment(f, id, def, f.reg.cfg.MaxFilterBytes)
	if err != nil {
		return nil, err
	}
	seg.byRows = byRows
	segs := append(slices.Clone(f.Segments()), seg)
	f.segs.Store(&segs)   // its bytes were counted by reserve
	f.growth.own.Store(0) // a new newest stage, here or by a member's rows: nothing measured of it yet
	f.growth.unseen.Store(0)
	if seg.st != nil && f.reg.isStarted() {
		seg.st.Start()
	}
	return seg, nil
}

// openSegment makes segment id of f, sized by def (refused past maxBytes,
// unless 0), loading its folder with a data directory. Named blocked
// filters count their bits (fullAt).
func (r *Registry) openSegment(f *Filter, id uint64, def gossip.CatalogDef, maxBytes uint64) (*Segment, error) {
	fl, err := filter.NewFromFingerprint(def.FP, maxBytes)
	if err != nil {
		return nil, err
	}
	seg := &Segment{id: id, def: def, f: fl, of: f}
	if dir := r.cfg.Dir; dir != nil {
		sd := store.Definition{Name: segmentFolder(f.folder, id), FP: def.FP, Capacity: def.Capacity, FPRate: def.FPRate, Segment: id}
		st, rec, err := dir.Open(sd, fl, r.cfg.Store)
		if err != nil {
			return nil, err
		}
		seg.st = st
		r.logRecovery(f, rec)
	}
	if !f.IsDefault() && def.FP.Layout == filter.Blocked {
		fl.CountBits()
		seg.fullAt = fl.BitsAt(def.Capacity)
	}
	return seg, nil
}

// SegmentOrStage is SegmentFor, but for rows of a growing version's
// next stage, not opened here yet (a member opened it first), which it
// opens: their fingerprint must be the stage's. A frame never opens more
// than one stage (a member opens stages early when others add fast, so
// how full the newest is here says nothing); --max-filter-bytes and
// --max-memory bound them all.
func (vs Versions) SegmentOrStage(id uint64, fp filter.Fingerprint) *Segment {
	s, err := vs.OpenStage(id, fp)
	if err != nil && !errors.Is(err, ErrNoStage) { // a grow refused: vs holds a version
		vs[0].reg.log.Warn("a member's segment (a growing filter's stage, a windowed filter's slice) cannot be opened here",
			"filter", vs[0].name, "segment", id, "err", err)
	}
	return s
}

// ErrNoStage says rows are of no segment a version has or can open next.
var ErrNoStage = errors.New("no such stage")

// OpenStage is SegmentOrStage, saying why when it finds no segment:
// ErrNoStage, or why the stage could not be opened.
func (vs Versions) OpenStage(id uint64, fp filter.Fingerprint) (*Segment, error) {
	if s := vs.SegmentFor(id, fp); s != nil {
		return s, nil
	}
	refused := ErrNoStage
	for _, f := range vs {
		if f.windowed() {
			if s, err := f.openRowsSlice(id, fp); err == nil {
				return s, nil
			} else if !errors.Is(err, ErrNoStage) {
				refused = err
			}
			continue
		}
		segs := f.Segments()
		if !f.version.Def.Grows() || id != uint64(len(segs)) || id >= gossip.MaxStages {
			continue // only the next stage: the rest follow, each in turn
		}
		def, err := f.version.Def.Stage(id, f.reg.cfg.MaxFilterBytes)
		if err != nil || def.FP != fp {
			continue
		}
		s, err := f.grow(id, true)
		if err == nil {
			return s, nil
		}
		refused = err
	}
	return nil, refused
}

// reserve takes size bytes of --max-memory for a stage of f, counting
// them as f's at once: a drop that comes meanwhile gives them back with
// the rest of f's (reconcile), or refuses them here. A windowed filter's
// slices come out of what its window took when it opened (budget).
func (r *Registry) reserve(f *Filter, size uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return errClosed
	case !r.listed(f):
		return ErrDropped
	case f.windowed() && f.Bytes()+size > f.budget():
		return fmt.Errorf("%w: it holds %d bytes of slices already, and takes %d at most", errWindowFull, f.Bytes(), f.budget())
	case f.windowed():
	default:
		if err := r.roomFor(size); err != nil {
			return err
		}
		r.bytes += size
	}
	f.bytes.Add(size)
	return nil
}

// unreserve gives back what reserve took for a stage that did not open:
// from r's count too, unless a drop took f's whole count out already.
func (r *Registry) unreserve(f *Filter, size uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.bytes.Add(-size)
	if r.listed(f) && !f.windowed() {
		r.bytes -= size
	}
}

// budget is what f counts for against --max-memory: its bytes, or all a
// windowed filter's slices may take at once, taken when it opens.
func (f *Filter) budget() uint64 {
	if f.windowed() {
		return f.version.Def.Bytes()
	}
	return f.Bytes()
}

// opened is what a version of def takes of --max-memory as it opens:
// its first segment, or a windowed filter's whole budget.
func opened(def gossip.CatalogDef) uint64 {
	if def.Windowed() {
		return def.Bytes()
	}
	return def.FP.SizeBytes()
}

// listed reports whether f is in the table: the default, or a version
// open. Callers hold r.mu.
func (r *Registry) listed(f *Filter) bool { return f == r.def || r.open[f.folder] == f }

// isStarted reports whether Start ran: stores opened from now on
// checkpoint in the background at once.
func (r *Registry) isStarted() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started
}

// Capacity returns the keys f holds before it must grow again: the
// capacities of its stages.
func (f *Filter) Capacity() uint64 {
	if f.windowed() { // the keys of one window
		return f.version.Def.Capacity
	}
	var c uint64
	for _, s := range f.Segments() {
		c += s.def.Capacity
	}
	return c
}

// OpenedByRows reports whether the segment is a stage this node opened
// for a member's rows of it, rather than because its own view of the
// stage before was full.
func (s *Segment) OpenedByRows() bool { return s.byRows }
