package node

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/pull"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// Anti-entropy: members swap the digests of every segment's rows in
// memberlist's push/pull, and each pulls the blocks of rows that differ.
// What acks and resends missed (a partition, a restart) comes back this
// way, and a new or restarted empty node is filled so, in bulk, as it
// joins.

// repairState is what a member's push/pull state asks to compare.
type repairState struct {
	member  string
	addr    netip.AddrPort
	join    bool
	match   bool   // its default filter is this node's
	digests []byte // its default filter's digests
	named   []byte // named frames, each a segment's digest
}

// pullAttempts and pullBackoff: a failed pull is tried again after 1 s,
// then 2 s; after that the next anti-entropy round tries again. A member
// busy (serving other pulls, or yet to merge this node's join) is asked
// again every busyBackoff, up to busyTries times, before that counts as
// a failure.
const (
	pullAttempts = 3
	pullBackoff  = time.Second
	busyBackoff  = 100 * time.Millisecond
	busyTries    = 20
)

// repair compares a member's digests with this node's segments and pulls
// the rows that differ: the default filter's first (the join's fill),
// then every other segment's. It reports whether the default filter is
// now as full as the member's.
func (n *Node) repair(st repairState) (filled bool) {
	if st.match {
		filled = n.repairDefault(st)
	}
	for frame := range wire.Frames(st.named) {
		if n.life.ctx.Err() != nil {
			return filled
		}
		nd, err := wire.DecodeNamed(frame)
		if err != nil {
			continue
		}
		d, err := wire.DecodeDigest(nd.Inner)
		if err != nil {
			continue
		}
		seg := n.reg.Lookup(nd.Name).SegmentOrStage(nd.Segment, d.FP)
		if seg == nil {
			continue // not made here (yet), or dropped
		}
		runs, err := gossip.Differing(seg.Rows(), nd.Inner)
		if err != nil || len(runs) == 0 {
			continue
		}
		rows, changed, err := n.pullRetrying(st, seg, runs)
		n.logPull(st, seg, rows, changed, err)
	}
	return filled
}

// repairDefault pulls the default filter's rows that differ, and reports
// whether it did so without error.
func (n *Node) repairDefault(st repairState) bool {
	seg := n.reg.Default().Segments()[0]
	f := seg.Rows()
	runs, err := gossip.Differing(f, st.digests)
	if err != nil {
		n.log.Debug("anti-entropy: digests refused", "member", st.member, "err", err)
		return false
	}
	if len(runs) == 0 {
		return true // nothing to pull: as full as the member
	}
	empty := f.LastChanged() == 0 && f.Generation() <= 1
	rows, changed, err := n.pullRetrying(st, seg, runs)
	if st.join && empty && err == nil { // a new node filled from the cluster: the members have these rows
		n.repl.AssumeMembersHave(f.Advance())
	}
	n.logPull(st, seg, rows, changed, err)
	return err == nil
}

// pullRetrying pulls runs of seg from the member, trying again after a
// failure; each failure is counted and logged with its reason.
func (n *Node) pullRetrying(st repairState, seg *registry.Segment, runs []filter.Run) (rows, changed int, err error) {
	wait, busyLeft := pullBackoff, busyTries
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(n.life.ctx, pullTimeout)
		r, c, err := n.pullRows(ctx, st.addr, seg, runs)
		cancel()
		rows, changed = rows+r, changed+c
		if err == nil || n.life.ctx.Err() != nil {
			return rows, changed, err
		}
		if pull.Busy(err) && busyLeft > 0 {
			busyLeft--
			attempt--
			if !n.pause(busyBackoff) {
				return rows, changed, err
			}
			continue
		}
		n.meters.c.Inc(counter.PullsFailed)
		if attempt == pullAttempts {
			return rows, changed, err
		}
		n.log.Warn("anti-entropy pull failed; trying again", "member", st.member, "filter", seg.Filter().Name(),
			"attempt", attempt, "in", wait.String(), "err", err)
		if !n.pause(wait) {
			return rows, changed, err
		}
		wait *= 2
	}
}

// pause waits d, or less if the node stops (false).
func (n *Node) pause(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-n.life.ctx.Done():
		return false
	}
}

// logPull counts and logs a repair's pull.
func (n *Node) logPull(st repairState, seg *registry.Segment, rows, changed int, err error) {
	n.meters.c.Inc(counter.AntiEntropyPulls)
	n.meters.c.Add(counter.AntiEntropyRows, uint64(changed))
	lvl := slog.LevelDebug
	if st.join || changed > 0 {
		lvl = slog.LevelInfo
	}
	if err != nil && n.life.ctx.Err() == nil {
		lvl = slog.LevelWarn
	}
	n.log.Log(context.Background(), lvl, "anti-entropy pull", "member", st.member, "filter", seg.Filter().Name(),
		"segment", seg.ID(), "join", st.join, "rows", rows, "changed", changed, "err", err)
}
