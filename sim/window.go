package sim

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// Windowed histories: one windowed filter, keys added through every
// member at a steady rate, members' clocks up to WindowSkew apart from
// true time, under message loss, members cut off and kill -9. Checked,
// every second and once healed:
//
//   - read your writes: a member answers present every key it
//     acknowledged less than a window ago by its clock, unless it crashed
//     since (then the next rule);
//   - within the window everywhere: a key acknowledged between a second
//     and a window ago (less the clocks' skew) is present on every member
//     that, like the member that acknowledged it, was neither cut off nor
//     down since (nor within gossip's backoff before); while the network
//     loses datagrams, from lossyWithin on (keys not there after a second
//     are counted late); once healed and converged, on every member;
//   - forgetting: keys acknowledged more than W + 2Δ ago (and the skew),
//     and keys never added, answer present at no more than 1.25 × the
//     filter's rate, over the history;
//   - bounds: no member holds a slice its window dropped, nor more bytes
//     than the window's slices take.

// Window is a windowed history's filter.
type Window struct {
	Length   time.Duration // the window
	Slices   int
	Capacity uint64 // keys per window, added at that steady rate
}

// windowFilter is the filter's name.
const windowFilter = "recent"

// WindowSkew bounds how far a windowed history's clocks are from true
// time: a fifth of a 1 s slice apart at most, well within the half slice
// a member's clock may be off before it refuses windowed adds.
const WindowSkew = 100 * time.Millisecond

// windowFromSeed is how one seed in windowEvery draws a windowed
// history (PlanFor).
const windowEvery = 5

// PlanFor is the history seed draws: a windowed one (NewWindowPlan) for
// one seed in five, a placement one (NewPlacementPlan) for another one in
// five, NewPlan's otherwise.
func PlanFor(seed uint64) Plan {
	switch {
	case seed%windowEvery == 0:
		return NewWindowPlan(seed)
	case seed%placementEvery == placementSeed:
		return NewPlacementPlan(seed)
	}
	return NewPlan(seed)
}

// NewWindowPlan draws a windowed history from seed: 3 to 5 members under
// --fsync always, a filter of a 10 s window in 10 slices, 5,000 to 20,000
// keys a window, and up to three faults — lossy links, a member cut off,
// a member killed (down for up to twice the window).
func NewWindowPlan(seed uint64) Plan {
	rng := rand.New(rand.NewPCG(seed, 0x1d0e))
	p := Plan{Seed: seed, Nodes: 3 + rng.IntN(3), Length: time.Duration(25+rng.IntN(16)) * time.Second,
		Window: &Window{Length: 10 * time.Second, Slices: 10, Capacity: uint64(5000 + 1000*rng.IntN(16))}}
	for range p.Nodes {
		p.Fsync = append(p.Fsync, store.FsyncAlways)
	}
	for range rng.IntN(4) {
		f := Fault{Kind: []FaultKind{Lossy, Isolate, Crash}[rng.IntN(3)], Node: rng.IntN(p.Nodes),
			At: at(rng, 2*time.Second, p.Length-3*time.Second), Dur: at(rng, time.Second, 8*time.Second)}
		switch f.Kind {
		case Lossy:
			f.Net.Drop, f.Net.Duplicate, f.Net.Reorder, f.Net.MaxDelay = rng.Float64()*0.1, rng.Float64()*0.05, rng.IntN(2) == 0, rng.IntN(3)
		case Crash:
			f.Dur, f.After, f.Tear = at(rng, time.Second, 2*p.Window.Length), rng.IntN(200), rng.IntN(2) == 0
		}
		p.Faults = append(p.Faults, f)
	}
	return p
}

// windowAck is a batch of keys a member acknowledged.
type windowAck struct {
	keys [][]byte
	node int
	at   time.Duration // true time since the history began
	// clock is the acknowledging member's clock then.
	clock time.Time
}

// backoff is how long a member that missed rounds may be waited for
// before rows are sent to it again (gossip's backoff): a key acknowledged
// that soon after either member was cut off or down may take that long.
// lossyWithin is how long a key may take to reach every member while the
// network loses datagrams: resends, then anti-entropy.
const (
	backoff     = 16 * syncInterval
	lossyWithin = antiEntropyInterval + time.Second
)

// windowRun is a windowed history running.
type windowRun struct {
	c    *cluster
	r    *Report
	cl   *client
	w    Window
	acks []*windowAck
	next int
	owed float64 // keys due and not sent yet
	// trouble is, per member, the last moment it was cut off or down;
	// lossy the last moment the network lost datagrams.
	trouble []time.Duration
	lossy   time.Duration
	// the forgetting counts: keys out of every window, keys never added.
	old, oldTrue, never, neverTrue int
	created                        bool // every member held the filter: adds began
}

// runWindow runs the windowed history p: Run's, for a plan with a Window.
func runWindow(p Plan) *Report {
	r := &Report{Plan: p, Answers: map[OpKind]int{}, Errors: map[uint16]int{}, Window: &WindowReport{}}
	c := newCluster(p)
	for _, m := range c.members {
		if err := c.boot(m, false); err != nil {
			r.failf("n%d would not start: %v", m.i, err)
			return r
		}
	}
	h := &windowRun{c: c, r: r, w: *p.Window, trouble: make([]time.Duration, maxMembers)}
	h.cl = newClient(c, h.answered)
	rng := rand.New(rand.NewPCG(p.Seed, 0x71c4))
	acts := c.faultActions()
	steps := 0
	step := func() {
		c.killDying()
		for len(acts) > 0 && acts[0].at <= c.elapsed() {
			acts[0].do()
			acts = acts[1:]
		}
		c.step(steps, rng)
		h.watch()
		if steps%ticksPerSecond == 0 {
			h.check(false)
		}
		steps++
		time.Sleep(tick)
	}
	slices.SortStableFunc(acts, func(a, b action) int { return int(a.at - b.at) })
	h.cl.send(&request{op: Op{Kind: OpCreate, Filter: windowFilter, Capacity: h.w.Capacity, Window: h.w.Length, Slices: h.w.Slices}})
	for c.elapsed() < p.Length {
		if h.created || h.everywhere() {
			h.add()
		}
		step()
	}
	for _, a := range acts {
		a.do()
	}
	c.heal()
	quiet := c.elapsed()
	for h.diverged() != "" {
		if c.elapsed()-quiet > convergeWithin {
			r.failf("convergence: the slices still differ %v after the heal: %s", convergeWithin, h.diverged())
			break
		}
		step()
	}
	r.Converged = c.elapsed() - quiet
	for i := range h.trouble {
		h.trouble[i] = 0 // converged: every member holds every key of the window
	}
	h.check(true)
	h.judgeForgetting()
	return c.finish(r)
}

// add sends a tick's share of the window's keys, through every member up
// in turn, in batches that fit a datagram.
func (h *windowRun) add() {
	live := h.c.live()
	if len(live) == 0 {
		return
	}
	h.owed += float64(h.w.Capacity) * float64(tick) / float64(h.w.Length)
	for i := 0; h.owed >= 1; i++ {
		q := &request{op: Op{Kind: OpAdd, Filter: windowFilter, Node: live[i%len(live)].i}}
		for ; h.owed >= 1 && len(q.keys) < maxKeysPerAdd; h.owed-- {
			q.keys = append(q.keys, fmt.Appendf(nil, "w%d-%d", h.c.plan.Seed, h.next))
			h.next++
		}
		if err := h.cl.send(q); err != nil {
			h.r.failf("client: %v", err)
		}
	}
}

// maxKeysPerAdd keeps an add batch within one datagram.
const maxKeysPerAdd = 64

// answered takes an answer.
func (h *windowRun) answered(q *request) {
	h.r.Answers[q.op.Kind]++
	switch {
	case q.err != nil:
		h.r.Errors[q.err.Code]++
		if m := h.c.members[q.op.Node]; !expectedCodes[q.err.Code] || !m.dying && !crashedSince(m, q.sentAt) {
			h.r.failf("client: n%d answered %v with error %d %q", q.op.Node, q.op.Kind, q.err.Code, q.err.Msg)
		}
	case q.other != "":
		h.r.failf("n%d answered %v with %s", q.op.Node, q.op.Kind, q.other)
	case q.op.Kind == OpCreate:
	case q.op.Kind == OpAdd:
		m := h.c.members[q.op.Node]
		h.acks = append(h.acks, &windowAck{keys: q.keys, node: q.op.Node, at: h.c.elapsed(), clock: m.now()})
		h.r.Acked += len(q.keys)
	}
}

// everywhere reports, once, whether every member holds the filter: adds
// begin then.
func (h *windowRun) everywhere() bool {
	for _, m := range h.c.members {
		if filterOf(m) == nil {
			return false
		}
	}
	h.created = true
	return true
}

// watch notes the members cut off, down, or not yet back in touch with
// every other member up (a member restarted while cut off finds the
// others at its next rejoin).
func (h *windowRun) watch() {
	now := h.c.elapsed()
	live := h.c.live()
	for _, m := range h.c.members {
		if !m.up() || h.c.cutOff(m) || alive(m) < len(live) {
			h.trouble[m.i] = now
		}
	}
	for _, f := range h.c.active {
		if f.Kind == Lossy {
			h.lossy = now
		}
	}
}

// alive counts the members m sees alive, itself included.
func alive(m *member) int {
	n := 0
	for _, o := range m.n.Members() {
		if o.State == wire.MemberAlive {
			n++
		}
	}
	return n
}

// filterOf returns m's windowed filter, nil if it has none (yet).
func filterOf(m *member) *registry.Filter {
	if !m.up() {
		return nil
	}
	return m.n.Registry().Lookup([]byte(windowFilter)).Winner()
}

// check checks every member up: its slices and bytes, the keys it must
// hold, and what it forgot. final asks every key of the window of every
// member, converged.
func (h *windowRun) check(final bool) {
	now := h.c.elapsed()
	w, skew := h.w.Length, 2*WindowSkew
	for _, m := range h.c.members {
		f := filterOf(m)
		if f == nil {
			continue
		}
		def := f.Version().Def
		lo, hi := def.Kept(def.SliceAt(m.now()))
		for _, s := range f.Segments() {
			if s.ID()+1 < lo || s.ID() > hi { // one slice late: the housekeeping drops every 250 ms
				h.r.failf("bounds: n%d holds slice %d, out of its window [%d, %d]", m.i, s.ID(), lo, hi)
			}
		}
		if f.Bytes() > def.Bytes() {
			h.r.failf("bounds: n%d's window takes %d bytes, over %d", m.i, f.Bytes(), def.Bytes())
		}
		h.r.Window.MaxBytes = max(h.r.Window.MaxBytes, f.Bytes())
		gone := w + 2*def.SliceLength() + skew + tick // out of every member's window by then
		from, _ := slices.BinarySearchFunc(h.acks, now-gone-time.Second, func(a *windowAck, t time.Duration) int { return cmp.Compare(a.at, t) })
		for _, a := range h.acks[from:] { // each key is asked once out of the window, in the second after it left
			age := now - a.at
			// Its own keys, unless it crashed since: a key whose bits rows
			// merged from members had all set was not logged (nothing to
			// log), and comes back with those rows.
			mine := a.node == m.i && m.now().Sub(a.clock) < w-tick && !crashedSince(m, a.at)
			calm := a.at - backoff
			inWindow := age <= w-skew-tick && h.trouble[m.i] < calm && h.trouble[a.node] < calm
			everywhere := inWindow && (age >= time.Second && h.lossy < calm || age >= lossyWithin)
			if final {
				inWindow, everywhere = age <= w-skew-tick, age <= w-skew-tick
			}
			for _, k := range a.keys {
				has := f.Has(k)
				switch {
				case (mine || everywhere) && !has:
					h.r.Window.Missing++
					h.r.failf("window: at %v n%d lost %s, acknowledged by n%d %v before", now, m.i, k, a.node, age)
				case inWindow && age >= time.Second && !has:
					h.r.Window.Late++ // the network lost its rows: a resend or anti-entropy brings them
				case age > gone:
					h.old++
					if has {
						h.oldTrue++
					}
				}
			}
		}
		for range 500 {
			h.never++
			if f.Has(fmt.Appendf(nil, "never-%d", h.never)) {
				h.neverTrue++
			}
		}
	}
}

// judgeForgetting checks the history's false-positive rates: keys out of
// every window, and keys never added.
func (h *windowRun) judgeForgetting() {
	wr := h.r.Window
	wr.Old, wr.OldTrue, wr.Never, wr.NeverTrue = h.old, h.oldTrue, h.never, h.neverTrue
	for _, c := range []struct {
		what      string
		yes, asks int
	}{{"keys out of the window", h.oldTrue, h.old}, {"keys never added", h.neverTrue, h.never}} {
		if c.asks >= 2000 && float64(c.yes) > 1.25*FPRate*float64(c.asks) {
			h.r.failf("forgetting: %d of %d %s answered present, over 1.25 × %v", c.yes, c.asks, c.what, FPRate)
		}
	}
}

// diverged says how two members' slices differ within both their
// windows; "" when they do not.
func (h *windowRun) diverged() string {
	var ref *member
	for _, m := range h.c.members {
		f := filterOf(m)
		if f == nil {
			return fmt.Sprintf("n%d has no %s", m.i, windowFilter)
		}
		if ref == nil {
			ref = m
			continue
		}
		g := filterOf(ref)
		lo1, hi1 := f.Version().Def.Kept(f.Version().Def.SliceAt(m.now()))
		lo2, hi2 := g.Version().Def.Kept(g.Version().Def.SliceAt(ref.now()))
		for id := max(lo1, lo2) + 1; id <= min(hi1, hi2); id++ { // the oldest may be on its way out
			if !bytes.Equal(sliceRows(f, id), sliceRows(g, id)) {
				return fmt.Sprintf("n%d and n%d differ in slice %d", m.i, ref.i, id)
			}
		}
	}
	return ""
}

// sliceRows returns the rows of f's slice id; nil for a slice it does
// not hold or holds empty.
func sliceRows(f *registry.Filter, id uint64) []byte {
	s := f.Segment(id)
	if s == nil || s.Rows().SetBits() == 0 {
		return nil
	}
	b, err := s.Rows().CopyRows(nil, 0, s.Rows().Rows())
	if err != nil {
		panic(err) // cannot happen: the slice's own rows
	}
	return b
}

// WindowReport is what a windowed history measured.
type WindowReport struct {
	// Missing is the keys a member should have answered present and did
	// not; Late the answers of keys not there yet after a second, the
	// network having lost their rows (a key is counted at each check).
	Missing, Late int
	// Old and Never are the keys asked that were out of every window,
	// and never added; OldTrue and NeverTrue those answered present.
	Old, OldTrue, Never, NeverTrue int
	// MaxBytes is the most bytes one member's window took.
	MaxBytes uint64
}
