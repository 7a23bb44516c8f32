package sim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing/synctest"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/store"
)

// Running a history: the plan's requests and faults happen on ticks of
// the bubble's fake clock; after each tick the network delivers until
// quiet. When the plan ends every fault heals, and the cluster is given
// convergeWithin to converge before the final checks.

// convergeWithin is how long after the last fault heals (or the last
// request, if later) every replica must be equal: a rejoin (members that
// lost each other find each other again) and two anti-entropy swaps.
const convergeWithin = rejoinInterval + 2*antiEntropyInterval

// Report is what one history did and what it broke.
type Report struct {
	Plan Plan
	// Failures are the invariants broken, each saying how; none is a pass.
	Failures []string
	// Acked is the keys whose adds were acknowledged; Stable those every
	// replica holds at the end; Unsynced those an everysec member lost in
	// a crash within its flush interval of acknowledging them (allowed);
	// Corrupted those whose only copy was on a disk a fault corrupted
	// (allowed); Dropped those added to filters later dropped.
	Acked, Stable, Unsynced, Corrupted, Dropped int
	// DropsLost is the drops and creates acknowledged by a member whose
	// CATALOG a bit flip then damaged before any other member had heard
	// of them (allowed: the only copy was lost).
	DropsLost int
	// Asked is the has requests checked during the history.
	Asked int
	// Answers counts the requests answered, by kind; Errors the error
	// answers, by code.
	Answers map[OpKind]int
	Errors  map[uint16]int
	// Full is the filters checked for false positives while at least half
	// full; FPRatio the highest ratio of measured to target rate among them.
	Full    int
	FPRatio float64
	// Grown is the filters grown past their first stage (identical on
	// every member, as every filter's rows are); Stages the most stages
	// one had.
	Grown, Stages int
	// Converged is how long after the last fault's heal or request the
	// replicas became equal.
	Converged time.Duration
	// Refused is the starts refused after a corruption (expected: a
	// damaged checkpoint is not started from without --repair).
	Refused int
	// Logs holds the members' last warnings, for a failed history.
	Logs string
	// Window is what a windowed history measured (nil for others).
	Window *WindowReport
	// Placement is what a placement history measured (nil for others).
	Placement *PlacementReport
}

// Failed reports whether any invariant broke.
func (r *Report) Failed() bool { return len(r.Failures) > 0 }

// failf records a broken invariant.
func (r *Report) failf(format string, a ...any) {
	if len(r.Failures) < 20 {
		r.Failures = append(r.Failures, fmt.Sprintf(format, a...))
	}
}

// action is one thing that happens at a moment of the history.
type action struct {
	at time.Duration
	do func()
}

// Run runs the history p and checks it. It must be called inside a
// testing/synctest bubble: the members' timers run on its fake clock.
func Run(p Plan) *Report {
	switch {
	case p.Window != nil:
		return runWindow(p)
	case p.Placement != nil:
		return runPlacement(p)
	}
	r := &Report{Plan: p, Answers: map[OpKind]int{}, Errors: map[uint16]int{}}
	c := newCluster(p)
	h := newHistory(c, r)
	rng := rand.New(rand.NewPCG(p.Seed, 0x71c4))
	for _, m := range c.members {
		if err := c.boot(m, false); err != nil {
			r.failf("n%d would not start: %v", m.i, err)
			return r
		}
	}
	acts := h.actions()
	acts = append(acts, c.faultActions()...)
	slices.SortStableFunc(acts, func(a, b action) int { return int(a.at - b.at) })

	// Time is the bubble's: a step is a tick, unless a restart waited
	// for a killed member's goroutines to wind down.
	steps := 0
	for c.elapsed() < p.Length {
		c.killDying()
		for len(acts) > 0 && acts[0].at <= c.elapsed() {
			acts[0].do()
			acts = acts[1:]
		}
		c.step(steps, rng)
		if steps%ticksPerSecond == 0 {
			h.checkDuring()
		}
		steps++
		time.Sleep(tick)
	}
	for _, a := range acts { // the heals of faults cut short by the end
		a.do()
	}
	c.heal()
	quiet := p.quiet()
	for ; ; steps++ {
		c.step(steps, rng)
		if steps%ticksPerSecond == 0 {
			h.checkDuring()
		}
		if c.converged() == "" {
			r.Converged = c.elapsed() - quiet
			c.checkIdle(steps, rng, r)
			break
		}
		if c.elapsed()-quiet > convergeWithin {
			what := c.converged()
			r.failf("convergence: not within %v of the last fault's heal or request: %s; %s",
				convergeWithin, what, c.convergeLate(steps, rng, quiet))
			break
		}
		time.Sleep(tick)
	}
	h.checkEnd()
	r.Refused = c.refused
	return c.finish(r)
}

// finish ends a history: the cluster's own failures, and with any
// failure the members' last warnings, go to r; the members stop.
func (c *cluster) finish(r *Report) *Report {
	r.Failures = append(r.Failures, c.failures...)
	if r.Failed() {
		for _, m := range c.members {
			r.Logs += fmt.Sprintf("--- n%d\n%s", m.i, m.logs)
		}
	}
	c.stop()
	// Memberlist's shutdown leaves probes waiting out their timers: the
	// bubble's clock runs them out before the bubble ends.
	time.Sleep(30 * time.Second)
	return r
}

// settleFor is how long a converged cluster may still finish rounds in
// flight (acks lost before the heal are waited for — up to 16 sync
// intervals for a member that missed several — then resent); idleFor
// how long after that it must send no row at all.
const (
	settleFor = 16*syncInterval + 2*time.Second
	idleFor   = 5 * time.Second
)

// checkIdle runs the converged cluster on with no request and no fault:
// once the rounds in flight are done it sends no row bytes — an idle
// cluster is quiet, whatever happened before.
func (c *cluster) checkIdle(steps int, rng *rand.Rand, r *Report) {
	run := func(d time.Duration) {
		for end := c.elapsed() + d; c.elapsed() < end; steps++ {
			time.Sleep(tick)
			c.step(steps, rng)
		}
	}
	sent := func() (bytes uint64) {
		for _, m := range c.live() {
			bytes += m.n.Stats().SyncBytesSent
		}
		return bytes
	}
	run(settleFor)
	before := sent()
	run(idleFor)
	if d := sent() - before; d > 0 {
		var pending []string
		for _, m := range c.live() {
			for _, p := range m.n.Peers() {
				if p.Pending {
					pending = append(pending, fmt.Sprintf("n%d→%v (missed %d, in flight %d)", m.i, p.Addr, p.Missed, p.Inflight))
				}
			}
		}
		r.failf("idle: converged, the cluster sent %d row bytes in %v with nothing new; rounds still open: %v", d, idleFor, pending)
	}
}

// lateFor is how long a history that missed convergeWithin is run on, to
// tell a slow convergence from one that never comes.
const lateFor = 60 * time.Second

// convergeLate runs the healed cluster on for up to lateFor and says
// when, if ever, the replicas became equal.
func (c *cluster) convergeLate(steps int, rng *rand.Rand, quiet time.Duration) string {
	for end := c.elapsed() + lateFor; c.elapsed() < end; steps++ {
		time.Sleep(tick)
		c.step(steps, rng)
		if c.converged() == "" {
			return fmt.Sprintf("equal %v after the last fault's heal or request", c.elapsed()-quiet)
		}
	}
	return fmt.Sprintf("still not %v after it: %s", c.elapsed()-quiet, c.converged())
}

// ticksPerSecond and ticksPerSync count steps.
const (
	ticksPerSecond = int(time.Second / tick)
	ticksPerSync   = int(syncInterval / tick)
)

// step ticks the live members (and those leaving) every sync interval,
// in an order the seed draws, and delivers until the network is quiet.
func (c *cluster) step(steps int, rng *rand.Rand) {
	if steps%ticksPerSync == 0 {
		for _, i := range rng.Perm(len(c.members)) {
			if n := c.members[i].ticking(); n != nil {
				n.Tick()
			}
		}
	}
	c.settle()
}

// settle lets every goroutine of the bubble run until all wait, and
// delivers the datagrams they sent, until nothing moves. Streams whose
// link is cut break first (streams.go).
func (c *cluster) settle() {
	c.streams.cut(c.nw.Linked)
	for {
		synctest.Wait()
		if c.nw.Deliver() == 0 {
			return
		}
	}
}

// heal ends every fault: partitions, lossy links, members down.
func (c *cluster) heal() {
	for _, m := range c.members {
		if m.dying {
			c.kill(m, m.tear)
		}
	}
	clear(c.active)
	c.rebuild()
	for _, m := range c.members {
		if m.paused {
			c.resume(m)
		}
		if m.n == nil {
			c.restart(m, false)
		}
	}
}

func (c *cluster) pause(m *member) {
	if m.n == nil || m.paused {
		return
	}
	m.paused = true
	c.links.set(func() { c.links.down[m.addr.Addr()] = true })
}

func (c *cluster) resume(m *member) {
	if !m.paused {
		return
	}
	m.paused = false
	c.links.set(func() { delete(c.links.down, m.addr.Addr()) })
}

// faultActions turns the plan's faults into what happens when.
func (c *cluster) faultActions() []action {
	var acts []action
	later := func(at time.Duration, do func()) { acts = append(acts, action{at, do}) }
	rotations := 0
	for i, f := range c.plan.Faults {
		m := c.members[f.Node]
		switch f.Kind {
		case Halves, Isolate, OneWay, Lossy:
			later(f.At, func() { c.active[i] = f; c.rebuild() })
			later(f.At+f.Dur, func() { delete(c.active, i); c.rebuild() })
		case Crash:
			later(f.At, func() { c.cutPower(m, f.After, f.Tear) })
			later(f.At+f.Dur, func() { c.kill(m, f.Tear); c.restart(m, false) })
		case CrashAll:
			later(f.At, func() {
				for _, m := range c.members {
					c.kill(m, f.Tear)
				}
			})
			later(f.At+f.Dur, func() {
				for _, m := range c.members {
					c.restart(m, false)
				}
			})
		case Corrupt:
			later(f.At, func() { c.kill(m, false); c.corrupt(m) })
			later(f.At+f.Dur, func() { c.corruptAndRestart(m, f.File, f.Offset) })
		case Pause:
			later(f.At, func() { c.pause(m) })
			later(f.At+f.Dur, func() { c.resume(m) })
		case ClockStep:
			later(f.At, func() {
				off := time.Duration(m.offset.Load()) + f.Step
				m.offset.Store(int64(min(MaxSkew, max(-MaxSkew, off))))
			})
		case Joiner:
			later(f.At, func() {
				capacity := uint64(2 * DefaultCapacity)
				if c.plan.Placement != nil {
					capacity = DefaultCapacity // what matters is the placed filters
				}
				j := c.add(store.FsyncAlways, capacity)
				c.restart(j, false)
			})
		case Leave:
			later(f.At, func() { c.leave(m) })
		case Rotate:
			rotations++
			acts = append(acts, c.rotation(f, keyFrom(c.plan.Seed, rotations))...)
		}
	}
	return acts
}

// rebuild sets the network's cuts and faults from the faults active now,
// so that one that heals leaves another that overlaps it in force.
func (c *cluster) rebuild() {
	var net memnet.Faults
	c.links.set(func() {
		clear(c.links.side)
		clear(c.links.alone)
		clear(c.links.deaf)
		for _, i := range slices.Sorted(maps.Keys(c.active)) {
			f := c.active[i]
			switch f.Kind {
			case Halves:
				for _, o := range c.members {
					c.links.side[o.addr.Addr()] = 2
				}
				for _, j := range f.Side {
					c.links.side[c.members[j].addr.Addr()] = 1
				}
			case Isolate:
				c.links.alone[c.members[f.Node].addr.Addr()] = true
			case OneWay:
				c.links.deaf[c.members[f.Node].addr.Addr()] = true
			case Lossy:
				net = f.Net
			}
		}
	})
	c.nw.SetFaults(net)
}

// rotation replaces the cluster key as an operator does, member by
// member a tick apart: every member verifies with the new key, then
// signs with it, then forgets the old one.
func (c *cluster) rotation(f Fault, next auth.Key) []action {
	var acts []action
	phases := []struct {
		at   time.Duration
		keys func(old auth.Key) []auth.Key
	}{
		{f.At, func(old auth.Key) []auth.Key { return []auth.Key{old, next} }},
		{f.At + f.Dur/2, func(old auth.Key) []auth.Key { return []auth.Key{next, old} }},
		{f.At + f.Dur, func(auth.Key) []auth.Key { return []auth.Key{next} }},
	}
	old := keyFrom(c.plan.Seed, 0)
	if len(c.keys) > 0 {
		old = c.keys[0]
	}
	for _, ph := range phases {
		keys := ph.keys(old)
		// Slot i is whoever is the i'th member when the moment comes:
		// members that joined since are rotated too.
		for i := range maxMembers {
			acts = append(acts, action{ph.at + time.Duration(i)*tick, func() {
				if i < len(c.members) && c.members[i].n != nil {
					if err := c.members[i].n.SetClusterKeys(keys); err != nil {
						c.failures = append(c.failures, fmt.Sprintf("n%d: rotating keys: %v", i, err))
					}
				}
				if i == 0 {
					c.keys = keys // members (re)started from now on
				}
			}})
		}
	}
	return acts
}
