package node

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// Filling. A placed filter this node came to own after a change of
// members (or found in its folder at a restart) opens filling: it takes
// adds, but a has goes to another owner until its rows came, in one pull
// of each segment, from a member that held it — the next in rank that
// answers, an owner or one keeping it for the handoff grace. A member
// that is itself filling answers busy, and is asked again later; when no
// member holds the filter any more, its rows here are all there are.

// fillGiveUp bounds how long a filter waits for a member that holds it
// ready: past it, its rows here are all it gets (members that were
// filling it too fill from each other by anti-entropy).
const fillGiveUp = time.Minute

// fill fills every filter that awaits its rows, one at a time.
func (n *Node) fill() {
	if n.placing.tries == nil {
		n.placing.tries = map[string]time.Time{}
	}
	for _, f := range n.reg.Filling() {
		if n.life.ctx.Err() != nil {
			return
		}
		since, ok := n.placing.tries[f.Name()]
		if !ok {
			since = time.Now()
			n.placing.tries[f.Name()] = since
		}
		if n.fillOne(f) || time.Since(since) > fillGiveUp {
			f.SetFilled()
			delete(n.placing.tries, f.Name())
		}
	}
}

// fillOne pulls f's rows from the first member, in rank, that holds it
// ready, and reports whether f is filled: by that pull; because no member
// holds it any more; or because every member that holds it is filling
// it too and this one ranks first among them (it holds what they do).
func (n *Node) fillOne(f *registry.Filter) bool {
	rt, ok := n.reg.Route([]byte(f.Name()))
	if !ok {
		return true // dropped, or no longer placed
	}
	waiting, above := false, true
	for _, m := range n.ranked(rt) {
		if m.Self {
			above = false
			continue
		}
		moved, err := n.fillFrom(m.Addr, f)
		switch {
		case err == nil:
			n.meters.c.Inc(counter.FillsDone)
			n.meters.c.Add(counter.FillBytes, moved)
			n.log.Info("placed filter filled", "filter", f.Name(), "from", m.Name, "bytes", moved)
			return true
		case errors.Is(err, errNotHeld):
		case errors.Is(err, errFilling):
			waiting = waiting || above // one ranked higher fills first, then this one from it
		default:
			waiting = true // not reached: ask again
		}
		n.log.Debug("fill: a member did not give the rows", "filter", f.Name(), "member", m.Name, "err", err)
	}
	if waiting {
		n.meters.c.Inc(counter.FillsFailed)
	}
	return !waiting
}

// fillFrom pulls every segment of f from the member at addr, and returns
// the bytes of rows received.
func (n *Node) fillFrom(addr netip.AddrPort, f *registry.Filter) (uint64, error) {
	stages, err := n.stagesAt(addr, f)
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
		ctx, cancel := context.WithTimeout(n.life.ctx, pullTimeout)
		got, _, err := n.pullRows(ctx, addr, seg, []filter.Run{{First: 0, Count: rows.Rows()}})
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

// stagesAt asks the member at addr how many stages it holds of f's
// version: errNotHeld when none, an error while it fills f too.
func (n *Node) stagesAt(addr netip.AddrPort, f *registry.Filter) (int, error) {
	req, err := wire.AppendFilterRequest(nil, wire.FilterRequest{ReqID: 1, Op: wire.FilterOpInfo, Name: []byte(f.Name()),
		Detail: wire.FilterDetailStages | wire.FilterDetailPlacement})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(n.life.ctx, n.cfg.ForwardTimeout)
	defer cancel()
	ans, err := n.placing.fwd.Do(ctx, addr, "", req, nil)
	if err != nil {
		return 0, err
	}
	if wire.Type(ans[0]) == wire.TypeError {
		return 0, errNotHeld // "no filter": not even in its catalog yet
	}
	fs, err := wire.DecodeFilters(ans)
	if err != nil {
		return 0, err
	}
	v := f.Version()
	for d := range fs.All() {
		switch {
		case d.Gen != v.Gen || d.Created != v.Created || string(d.Origin) != v.Origin || d.Here == wire.HeldNot:
			return 0, errNotHeld
		case d.Here == wire.HeldFilling:
			return 0, errFilling
		}
		return int(d.Stages), nil
	}
	return 0, errNotHeld
}
