package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/route"
	"github.com/rmbd/rmbd/store"
)

// Placement histories: filters placed on R of the members (R = 2, some
// 3), each created once, keys added through any member at a steady rate
// (most adds are forwarded to the owners), under kill -9 and restart,
// members cut off, members joining and leaving, and a lossy network.
// The invariants (placecheck.go) are checked every step and once healed.

// Placement is a placement history's setup.
type Placement struct {
	// Filters are the placed filters, created at the start.
	Filters []PlacedFilter
	// Quorum is every member's write quorum: 1, or the most replicas of
	// any filter, so that every add waits for all its filter's owners
	// (W = R).
	Quorum int
	// Grace is every member's handoff grace: how long a filter it no
	// longer owns is kept.
	Grace time.Duration
	// Rate is the add batches sent a second, of 1–16 keys each.
	Rate int
	// FillFilter is the filter (its index) also filled to FillPct percent
	// of its capacity, in batches of fillBatch spread over the history, so
	// that its false-positive rate is measured where it counts.
	FillFilter, FillPct int
}

// PlacedFilter is one placed filter: created not growing, on Replicas
// members.
type PlacedFilter struct {
	Name     string
	Replicas int
	Capacity uint64
}

// writeAll reports whether every add waits for all its filter's owners.
func (pl *Placement) writeAll() bool { return pl.Quorum > 1 }

// placementEvery and placementSeed: PlanFor draws a placement history
// for the seeds whose remainder by placementEvery is placementSeed (the
// windowed ones are those of remainder 0).
const (
	placementEvery = 5
	placementSeed  = 1
)

// NewPlacementPlan draws a placement history from seed: 4 to 6 members
// under --fsync always, keyed or not, 6 to 20 filters placed on 2 members
// (one in four on 3) of 1,000–3,000 keys at 1 %, a write quorum of 1 or
// of every owner, a handoff grace of 2 or 3 s, and up to three faults:
// kill -9 and restart of a member, a member cut off, a member joining, a
// member leaving for good (at most one), a lossy network.
func NewPlacementPlan(seed uint64) Plan {
	rng := rand.New(rand.NewPCG(seed, 0x91ace))
	p := Plan{Seed: seed, Nodes: 4 + rng.IntN(3), Keyed: rng.IntN(2) == 0, Length: time.Duration(20+rng.IntN(11)) * time.Second}
	for range p.Nodes {
		p.Fsync = append(p.Fsync, store.FsyncAlways)
	}
	pl := &Placement{Quorum: 1, Grace: time.Duration(2+rng.IntN(2)) * time.Second, Rate: 10 + rng.IntN(21)}
	most := 0
	for i := range 6 + rng.IntN(15) {
		f := PlacedFilter{Name: fmt.Sprintf("p%d", i), Replicas: 2, Capacity: uint64(1000 + rng.IntN(2001))}
		if rng.IntN(4) == 0 {
			f.Replicas = 3
		}
		most = max(most, f.Replicas)
		pl.Filters = append(pl.Filters, f)
	}
	if rng.IntN(2) == 0 {
		pl.Quorum = most
	}
	pl.FillFilter, pl.FillPct = rng.IntN(len(pl.Filters)), 80+rng.IntN(21)
	p.Placement = pl
	left := false
	for range rng.IntN(4) {
		f := Fault{Kind: []FaultKind{Crash, Isolate, Joiner, Leave, Lossy}[rng.IntN(5)], Node: rng.IntN(p.Nodes),
			At: at(rng, 4*time.Second, p.Length-3*time.Second), Dur: at(rng, time.Second, 10*time.Second)}
		switch f.Kind {
		case Crash:
			f.After, f.Tear = rng.IntN(6), rng.IntN(2) == 0
		case Joiner:
			f.Dur = 0
		case Leave:
			if left { // one member leaves at most
				f.Kind, f.After, f.Tear = Crash, rng.IntN(6), rng.IntN(2) == 0
			} else {
				f.Dur, left = 0, true
			}
		case Lossy:
			f.Net.Drop, f.Net.Duplicate, f.Net.Reorder, f.Net.MaxDelay = float64(rng.IntN(20))/100, float64(rng.IntN(10))/100,
				rng.IntN(2) == 0, rng.IntN(3)
		}
		p.Faults = append(p.Faults, f)
	}
	slices.SortStableFunc(p.Faults, func(a, b Fault) int { return int(a.At - b.At) })
	return p
}

// describe is the first line of a placement plan's String.
func (pl *Placement) describe(p Plan) string {
	r3 := 0
	for _, f := range pl.Filters {
		if f.Replicas == 3 {
			r3++
		}
	}
	w := "W = 1"
	if pl.writeAll() {
		w = "W = R"
	}
	return fmt.Sprintf("seed %d: placement, %d members, keyed %v, %v, %d filters on 2 members (%d on 3), %s, grace %v, %d adds/s, %s filled to %d%%\n",
		p.Seed, p.Nodes, p.Keyed, p.Length, len(pl.Filters), r3, w, pl.Grace, pl.Rate, pl.Filters[pl.FillFilter].Name, pl.FillPct)
}

// PlacementReport is what a placement history measured.
type PlacementReport struct {
	// WriteAll: the history ran with W = R.
	WriteAll bool
	// Acked is the keys acknowledged; Lost those missing once healed and
	// settled; Orphaned those (W = R) that every member holding them was
	// down or cut off from at some moment (they must come back all the
	// same); Steady those acknowledged while the cluster was stable;
	// Departed those missing that only a member that left, cut off from
	// every other, held (allowed: W = 1).
	Acked, Lost, Orphaned, Steady, Departed int
	// Requests is the add and has batches sent; Forwards the requests the
	// members sent on to owners, ForwardsFailed those no owner served.
	Requests, Forwards, ForwardsFailed uint64
	// Fills is the filters filled from a member after a change of
	// members, FillBytes the bytes of rows they received, FillsFailed the
	// attempts that reached no member holding the filter.
	Fills, FillBytes, FillsFailed uint64
	// Asked is the has batches judged during the history; Never the keys
	// never added asked during it, NeverTrue those answered present.
	Asked, Never, NeverTrue int
	// Placed is how long after the heal every filter was on its owners
	// alone, filled; Settled how long after that every owner held every
	// key acknowledged.
	Placed, Settled time.Duration
}

// placeAck is a batch of keys acknowledged into a placed filter.
type placeAck struct {
	filter   int
	keys     [][]byte
	node     int
	sentStep int
	sent, at time.Duration
	// steady: sent and answered while the cluster was stable.
	steady bool
	// holder is the last member seen holding every key of the batch,
	// ready, up and not cut off; orphaned: at some step none was.
	holder   *registry.Filter
	holderAt int
	orphaned bool
	// departed: when a member left cut off from every other, it alone
	// held these keys (the add's one copy, W = 1, left with it).
	departed bool
}

// placeRun is a placement history running.
type placeRun struct {
	c   *cluster
	r   *Report
	pr  *PlacementReport
	pl  *Placement
	cl  *client
	rng *rand.Rand
	// order draws the order members tick in; acts are the faults to come.
	order *rand.Rand
	acts  []action
	step  int
	// acks by filter; steady the steady ones (checked of every owner).
	acks, steady [][]*placeAck
	all          []*placeAck
	added        []uint64 // keys sent to each filter
	next, never  int
	owed, fill   float64
	// judged at the end of the step: the has answers and the refusals
	// it brought, and its acknowledgements.
	judgeNow []*request
	ackNow   []*placeAck
	// lastUnstable and lastLossy are the last steps the cluster was not
	// stable, and the network lost datagrams; live what the last step
	// found up.
	lastUnstable, lastLossy int
	live                    string
	// unowned is when each member was first seen keeping a filter it no
	// longer owns, by "member filter".
	unowned map[string]time.Duration
	// verified counts, per open filter, the steady batches of its name
	// seen on it (rows only grow: they stay).
	verified map[*registry.Filter]int
	reported map[string]bool
	// marked is, per member that left cut off, how many of all it was
	// looked at for (markDeparted).
	marked map[int]int
	// placed: every filter was on its owners (or a fault struck), and
	// the load began; loading: it goes on.
	placed, loading bool
}

// runPlacement runs the placement history p: Run's, for a plan with a
// Placement.
func runPlacement(p Plan) *Report {
	pr := &PlacementReport{WriteAll: p.Placement.writeAll()}
	r := &Report{Plan: p, Answers: map[OpKind]int{}, Errors: map[uint16]int{}, Placement: pr}
	c := newCluster(p)
	for _, m := range c.members {
		if err := c.boot(m, false); err != nil {
			r.failf("n%d would not start: %v", m.i, err)
			return r
		}
	}
	h := &placeRun{c: c, r: r, pr: pr, pl: p.Placement, rng: rand.New(rand.NewPCG(p.Seed, 0x9ace)),
		acks: make([][]*placeAck, len(p.Placement.Filters)), steady: make([][]*placeAck, len(p.Placement.Filters)),
		added: make([]uint64, len(p.Placement.Filters)), unowned: map[string]time.Duration{},
		verified: map[*registry.Filter]int{}, reported: map[string]bool{}, marked: map[int]int{}, lastUnstable: -1, lastLossy: -1}
	h.cl = newClient(c, h.answered)
	c.stopping, c.departing = h.stopping, h.departing
	h.order = rand.New(rand.NewPCG(p.Seed, 0x71c4))
	h.acts = c.faultActions()
	slices.SortStableFunc(h.acts, func(a, b action) int { return int(a.at - b.at) })
	h.create()
	h.loading = true
	for c.elapsed() < p.Length {
		if !h.placed {
			struck := len(p.Faults) > 0 && p.Faults[0].At <= c.elapsed()
			if h.placed = struck || h.placedOn() == ""; !h.placed && c.elapsed() > placeBy {
				r.failf("placement: the filters were not on their owners %v into the history: %s", placeBy, h.placedOn())
				h.placed = true
			}
		}
		if h.placed {
			h.load()
		}
		h.advance()
	}
	h.loading = false
	for _, a := range h.acts {
		a.do()
	}
	c.heal()
	for start := c.elapsed(); slices.ContainsFunc(c.members, func(m *member) bool { return m.restartDue }); h.advance() {
		if c.elapsed()-start > windDown {
			r.failf("restart: a member killed was still winding down %v after the heal", windDown)
			break
		}
	}
	healed := c.elapsed()
	within := placeWithin(p.Placement)
	for since := time.Duration(-1); ; h.advance() {
		why := h.placedOn()
		switch {
		case why != "":
			since = -1
		case since < 0:
			since = c.elapsed()
		}
		if since >= 0 && c.elapsed()-since >= placedFor {
			pr.Placed = since - healed
			break
		}
		if c.elapsed()-healed > within+placedFor {
			r.failf("convergence: %v after the heal (a rejoin, two anti-entropy rounds, the grace and two seconds), %s", within, why)
			pr.Placed = c.elapsed() - healed
			break
		}
	}
	h.checkHealed()
	return c.finish(r)
}

// windDown bounds how long a killed member's last run takes to end: it
// hands its filters off for route.LeftFor at most (cut off, it cannot).
const windDown = route.LeftFor + 5*time.Second

// placeBy is when, at the latest, the filters created at the start must
// be on their owners, unless a fault struck first: the load begins then.
const placeBy = 10 * time.Second

// placedFor is how long the filters must stay on their owners, the
// members all alive to each other, for the cluster to count as placed.
const placedFor = time.Second

// placeWithin is how long after the heal every filter must be on its
// owners alone, filled: members that lost each other find each other
// again (a rejoin), learn the catalog (two anti-entropy rounds), the old
// owners keep theirs for the grace, then free them at their next
// housekeeping; the fills take a round trip each.
func placeWithin(pl *Placement) time.Duration {
	return rejoinInterval + 2*antiEntropyInterval + pl.Grace + 2*time.Second
}

// advance runs a step: the faults due, a tick, the step's checks.
func (h *placeRun) advance() {
	c := h.c
	c.killDying()
	for len(h.acts) > 0 && h.acts[0].at <= c.elapsed() {
		h.acts[0].do()
		h.acts = h.acts[1:]
	}
	c.step(h.step, h.order)
	h.watch()
	h.step++
	time.Sleep(tick)
}
