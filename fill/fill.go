// Package fill gives a member the rows of the placed filters it came to
// own (package placement): a filter that opened filling — after a change
// of members, or found in its folder at a restart — takes adds but does
// not answer for its keys until its rows came, in one pull of each
// segment, from a member that held it: the first in rank that holds it
// ready, an owner or one keeping it for the handoff grace.
//
// A member filling the filter too is passed over: the one ranked first
// among those filling it fills first (it holds what they do, the rest of
// its rows coming by replication), and the others from it. When no
// member holds the filter any more its rows here are all there are; a
// member that cannot be reached is asked again at the next round, for
// GiveUp at most.
//
//	f := fill.New(fill.Config{Forwarder: fwd, Pull: pullRows})
//	res := f.Round(ctx, reg, members) // at each change of members, until nothing fills
package fill

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/mutate"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/route"
	"github.com/rmbd/rmbd/wire"
)

// Config configures a Filler.
type Config struct {
	// Forwarder asks members how they hold a filter (a filter request).
	Forwarder route.Forwarder
	// Pull pulls runs of seg's rows from the member at addr into seg and
	// returns the rows received.
	Pull func(ctx context.Context, addr netip.AddrPort, seg *registry.Segment, runs []filter.Run) (rows int, err error)
	// Timeout bounds asking a member; PullTimeout one pull.
	Timeout, PullTimeout time.Duration
	// GiveUp bounds how long a filter waits for a member that holds it
	// ready: past it, its rows here are all it gets (anti-entropy brings
	// the rest). 0: DefaultGiveUp.
	GiveUp time.Duration
	// Logger receives what the filler does; nil discards it.
	Logger *slog.Logger
	// Now is the clock GiveUp is measured by; nil is time.Now.
	Now func() time.Time
}

// DefaultGiveUp is how long a filter waits for a member that holds it
// ready when Config.GiveUp says nothing.
const DefaultGiveUp = time.Minute

// Filler fills the filters of one registry. Round is called from one
// goroutine at a time.
type Filler struct {
	cfg   Config
	log   *slog.Logger
	tries map[string]time.Time // since when each filter has been tried
}

// New returns a Filler of cfg.
func New(cfg Config) *Filler {
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = DefaultGiveUp
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Filler{cfg: cfg, log: cfg.Logger, tries: map[string]time.Time{}}
}

// Result is what a round did.
type Result struct {
	Filled int    // filters filled by a pull
	Bytes  uint64 // bytes of rows those pulls received
	Failed int    // filters no member holding them could be reached for (tried again next round)
}

// Round tries once to fill every filter of reg that awaits its rows;
// members returns the members to ask for a filter's route, in rank.
func (fl *Filler) Round(ctx context.Context, reg *registry.Registry, members func(registry.Route) []route.Member) Result {
	var res Result
	for _, f := range reg.Filling() {
		if ctx.Err() != nil {
			return res
		}
		since, ok := fl.tries[f.Name()]
		if !ok {
			since = fl.cfg.Now()
			fl.tries[f.Name()] = since
		}
		done := true
		if rt, ok := reg.Route([]byte(f.Name())); ok { // else dropped, or no longer placed
			done = mutate.FillSkipped || fl.one(ctx, f, members(rt), &res)
		}
		if done || fl.cfg.Now().Sub(since) > fl.cfg.GiveUp {
			f.SetFilled()
			delete(fl.tries, f.Name())
		}
	}
	return res
}

// Handed marks each placed filter of reg this node (self) gave up as
// handed off once every owner holds it ready, asking each through fwd,
// and has every row this node originated in it (delivered says so): it
// is then freed without waiting for the grace.
func Handed(ctx context.Context, reg *registry.Registry, fwd route.Forwarder, dir *route.Directory, self string, ask time.Duration,
	delivered func(*registry.Filter) bool) {
	for _, f := range reg.Leaving() {
		rt, ok := reg.Route([]byte(f.Name()))
		if !ok || rt.Owns(self) || !delivered(f) {
			continue
		}
		held := true
		for _, o := range rt.Owners() {
			a, ok := dir.Addr(o)
			if !ok || Holds(ctx, fwd, a, f.Name(), ask) != nil {
				held = false
				break
			}
		}
		if held {
			f.SetHandedOff()
		}
	}
}

// one pulls f's rows from the first member that holds it ready, and
// reports whether f is filled: by that pull, because no member holds it
// any more, or because the members filling it too rank below this one.
func (fl *Filler) one(ctx context.Context, f *registry.Filter, members []route.Member, res *Result) bool {
	waiting, above := false, true
	for _, m := range members {
		if m.Self {
			above = false
			continue
		}
		moved, err := fl.from(ctx, m.Addr, f)
		switch {
		case err == nil:
			res.Filled++
			res.Bytes += moved
			fl.log.Info("placed filter filled", "filter", f.Name(), "from", m.Name, "bytes", moved)
			return true
		case errors.Is(err, errNotHeld):
		case errors.Is(err, errFilling):
			waiting = waiting || above // one ranked higher fills first, then this one from it
		default:
			waiting = true // not reached: ask again
		}
		fl.log.Debug("fill: a member did not give the rows", "filter", f.Name(), "member", m.Name, "err", err)
	}
	if waiting {
		res.Failed++
	}
	return !waiting
}

// from pulls every segment of f from the member at addr, and returns the
// bytes of rows received.
func (fl *Filler) from(ctx context.Context, addr netip.AddrPort, f *registry.Filter) (uint64, error) {
	stages, err := fl.stagesAt(ctx, addr, f)
	if err != nil {
		return 0, err
	}
	var moved uint64
	for id := range uint64(max(stages, 1)) {
		seg := f.Segment(id)
		if seg == nil {
			def, err := f.Version().Def.Stage(id, 0)
			if err != nil {
				return moved, err
			}
			if seg, err = (registry.Versions{f}).OpenStage(id, def.FP); err != nil {
				return moved, err
			}
		}
		rows := seg.Rows()
		pctx, cancel := context.WithTimeout(ctx, fl.cfg.PullTimeout)
		got, err := fl.cfg.Pull(pctx, addr, seg, []filter.Run{{First: 0, Count: rows.Rows()}})
		cancel()
		moved += uint64(got) * uint64(rows.RowBytes())
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// errNotHeld and errFilling: the member asked does not hold the filter,
// or is filling it too.
var (
	errNotHeld = errors.New("not held there")
	errFilling = errors.New("filling it too")
)

// Holds reports, asking the member at addr through fwd, whether it holds
// the filter name ready: nil if so, else why not.
func Holds(ctx context.Context, fwd route.Forwarder, addr netip.AddrPort, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d, err := describe(ctx, fwd, addr, name)
	switch {
	case err != nil:
		return err
	case d.Here == wire.HeldNot:
		return errNotHeld
	case d.Here == wire.HeldFilling:
		return errFilling
	}
	return nil
}

// describe asks the member at addr to describe the filter name, with its
// stages and placement: errNotHeld when it knows no such filter.
func describe(ctx context.Context, fwd route.Forwarder, addr netip.AddrPort, name string) (wire.FilterDesc, error) {
	req, err := wire.AppendFilterRequest(nil, wire.FilterRequest{ReqID: 1, Op: wire.FilterOpInfo, Name: []byte(name),
		Detail: wire.FilterDetailStages | wire.FilterDetailPlacement})
	if err != nil {
		return wire.FilterDesc{}, err
	}
	ans, err := fwd.Do(ctx, addr, "", req, nil)
	switch {
	case err != nil:
		return wire.FilterDesc{}, err
	case wire.Type(ans[0]) == wire.TypeError:
		return wire.FilterDesc{}, errNotHeld // "no filter": not even in its catalog yet
	}
	fs, err := wire.DecodeFilters(ans)
	if err != nil {
		return wire.FilterDesc{}, err
	}
	for d := range fs.All() {
		return d, nil
	}
	return wire.FilterDesc{}, errNotHeld
}

// stagesAt asks the member at addr how many stages it holds of f's
// version: errNotHeld when none, errFilling while it fills f too.
func (fl *Filler) stagesAt(ctx context.Context, addr netip.AddrPort, f *registry.Filter) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, fl.cfg.Timeout)
	defer cancel()
	d, err := describe(ctx, fl.cfg.Forwarder, addr, f.Name())
	if err != nil {
		return 0, err
	}
	v := f.Version()
	switch {
	case d.Gen != v.Gen || d.Created != v.Created || string(d.Origin) != v.Origin || d.Here == wire.HeldNot:
		return 0, errNotHeld
	case d.Here == wire.HeldFilling:
		return 0, errFilling
	}
	return int(d.Stages), nil
}

// HandOff, as this node (self) leaves the cluster — the others told
// already, and taking its placed filters over by filling them from it —
// waits until the members that own each placed filter it owned, without
// it, hold it ready, or timeout. It returns the filters not handed off.
func HandOff(ctx context.Context, reg *registry.Registry, fwd route.Forwarder, dir *route.Directory, self string, ask, timeout time.Duration) []string {
	var names []string
	for _, f := range reg.All() {
		if rt, ok := reg.Route([]byte(f.Name())); ok && rt.Owns(self) {
			names = append(names, f.Name())
		}
	}
	deadline := time.Now().Add(timeout)
	for len(names) > 0 && time.Now().Before(deadline) {
		names = slices.DeleteFunc(names, func(name string) bool { return handedOff(ctx, reg, fwd, dir, self, name, ask) })
		if len(names) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return names
		case <-time.After(100 * time.Millisecond):
		}
	}
	return names
}

// handedOff reports whether the members that own name without self hold
// it ready.
func handedOff(ctx context.Context, reg *registry.Registry, fwd route.Forwarder, dir *route.Directory, self, name string, ask time.Duration) bool {
	rt, ok := reg.Route([]byte(name))
	if !ok {
		return true
	}
	others := slices.DeleteFunc(slices.Clone(rt.Ranked), func(m string) bool { return m == self })
	for _, o := range others[:min(rt.Replicas, len(others))] { // none: the last member, to whom nothing is handed
		a, ok := dir.Addr(o) // one gone (no address, or left too) is waited for no more
		if ok && !dir.HasLeft(o) && Holds(ctx, fwd, a, name, ask) != nil {
			return false
		}
	}
	return true
}
