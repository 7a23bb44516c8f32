package node

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/pull"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// Pulls: anti-entropy's repair and the bulk transfer that fills a new
// node. A pull asks, over TCP, for runs of one segment's rows; the answer
// is row syncs of every set row asked for, then pull done, in frames of up
// to a megabyte, merged as they arrive.

// maxPullsServed bounds the pulls a node serves at once; more are
// answered busy, and tried again by their senders.
const maxPullsServed = 2

// pullTimeout bounds one pull made.
const pullTimeout = 60 * time.Second

// pull serves a pull frame: over TCP only, to admins (members, with a key
// by sealing), from the segment whose fingerprint it asks for.
func (n *Node) pull(q *request) reply {
	if !q.tcp {
		q.w.c.Drop(counter.Unsupported)
		return reply{}
	}
	p, err := wire.DecodePull(q.frame)
	if err != nil {
		return n.bad(q)
	}
	if !n.may(q, access.Admin) {
		if n.mem.Load() != nil && !n.keyed() {
			// A member that just joined may pull before this node has
			// merged its join: memberlist answers a push/pull before it
			// merges it. Try again soon; without a key anyone may join.
			return n.refuse(q, wire.CodeBusy, "pull: not a member of this node's cluster (yet): try again")
		}
		return n.refuse(q, wire.CodeForbidden, "pull: this address may not ask (--allow-admin)")
	}
	seg := n.segmentFor(q, p.FP)
	if seg == nil {
		q.w.c.Drop(counter.FingerprintMismatch)
		return n.refuse(q, wire.CodeFingerprint, fmt.Sprintf("no filter here has the rows of %v", p.FP))
	}
	sealed, to := q.sealed, q.peer
	return reply{pull: func(w io.Writer) error { return n.servePull(seg.Rows(), p, sealed, to, w) }}
}

// servePull writes the answer to pull p of f's rows to w: row syncs,
// then pull done, each sealed for the puller (to) when the pull came
// sealed.
func (n *Node) servePull(f *filter.Filter, p wire.Pull, sealed bool, to uint64, w io.Writer) error {
	defer n.meters.timed(PullServedLatency, time.Now())
	var scratch []byte
	write := func(f []byte) error {
		if sealed {
			scratch = n.seal(scratch[:0], f, to)
			f = scratch
		}
		_, err := w.Write(f)
		return err
	}
	select {
	case n.gates.pulling <- struct{}{}:
		defer func() { <-n.gates.pulling }()
	default:
		n.meters.c.Drop(counter.PullsBusy)
		e, _ := wire.AppendError(nil, wire.ErrorFrame{Code: wire.CodeBusy, Msg: []byte("serving other pulls; try again")})
		return write(e)
	}
	maxFrame := wire.MaxFrame
	if sealed {
		maxFrame -= wire.SealedOverhead
	}
	sent, err := gossip.ServePull(f, p, maxFrame, write)
	if err != nil {
		e, _ := wire.AppendError(nil, wire.ErrorFrame{Code: wire.CodeRowRange, Msg: []byte(err.Error())})
		return write(e)
	}
	n.meters.c.Inc(counter.PullsServed)
	done, _ := wire.AppendPullDone(nil, wire.PullDone{Rows: uint32(sent)})
	return write(done)
}

// pullRows asks the node at addr, over TCP, for the rows of seg in runs
// and merges what it sends. It returns the rows received and the rows
// that changed.
func (n *Node) pullRows(ctx context.Context, addr netip.AddrPort, seg *registry.Segment, runs []filter.Run) (rows, changed int, err error) {
	defer n.meters.timed(PullMadeLatency, time.Now())
	conn, err := n.tr.Dial(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	f := seg.Rows()
	req, pulls, err := n.pullRequest(seg, runs, addr)
	if err != nil {
		return 0, 0, err
	}
	go conn.Write(req) // small; the answer may be large, so read at once
	var open func([]byte) ([]byte, error)
	if n.keys != nil {
		open = func(b []byte) ([]byte, error) { return n.openPulled(b, addr) }
	}
	return pull.Receive(f, wire.NewFrameReader(conn, 64<<10), pulls, open, func() { conn.SetDeadline(time.Now()) })
}

// pullRequest returns the pull frames asking for runs of seg's rows,
// addressed to its filter and segment (but for the default's first) and
// sealed for the node at to, and how many they are.
func (n *Node) pullRequest(seg *registry.Segment, runs []filter.Run, to netip.AddrPort) ([]byte, int, error) {
	fp := seg.Rows().Fingerprint()
	var req, one, named []byte
	pulls := 0
	for len(runs) > 0 {
		k := min(len(runs), wire.MaxPullRuns)
		var err error
		if one, err = wire.AppendPull(one[:0], fp, runs[:k]); err != nil {
			return nil, 0, err
		}
		if named, err = seg.AppendFrame(named[:0], one); err != nil {
			return nil, 0, err
		}
		req = n.sealFor(req, named, to)
		runs = runs[k:]
		pulls++
	}
	return req, pulls, nil
}

// openPulled checks a frame of a pull's answer from the node at from:
// with a key, every frame must come sealed by a member, for this node.
// Each tells the member's id (a hint, too: the pull is refused, and asked
// again sealed for it).
func (n *Node) openPulled(frame []byte, from netip.AddrPort) ([]byte, error) {
	if wire.Type(frame[0]) != wire.TypeSealed {
		n.meters.c.Drop(counter.Unauthenticated)
		return nil, fmt.Errorf("an unsealed %v frame in the answer", wire.Type(frame[0]))
	}
	s, err := n.open(frame)
	if err != nil {
		n.meters.c.Drop(sealFailure(err))
		n.clockWarning(from, err)
		return nil, err
	}
	n.learnID(from, s.Sender)
	return s.Inner, nil
}
