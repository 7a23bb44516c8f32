package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
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
		q.w.c.drop(Unsupported)
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
	var seg *registry.Segment
	if q.named {
		seg = n.reg.Lookup(q.name).SegmentFor(q.seg, p.FP)
	} else {
		seg = n.def.SegmentFor(0, p.FP)
	}
	if seg == nil {
		q.w.c.drop(FingerprintMismatch)
		return n.refuse(q, wire.CodeFingerprint, fmt.Sprintf("no filter here has the rows of %v", p.FP))
	}
	sealed, from := q.sealed, q.from
	return reply{pull: func(w io.Writer) error { return n.servePull(seg.Rows(), p, sealed, from, w) }}
}

// servePull writes the answer to pull p of f's rows to w: row syncs,
// then pull done, each sealed when the pull came sealed.
func (n *Node) servePull(f *filter.Filter, p wire.Pull, sealed bool, from netip.AddrPort, w io.Writer) error {
	defer n.meters.timed(PullServedLatency, time.Now())
	var scratch []byte
	write := func(f []byte) error {
		if sealed {
			scratch = n.seal(scratch[:0], f)
			f = scratch
		}
		_, err := w.Write(f)
		return err
	}
	select {
	case n.gates.pulling <- struct{}{}:
		defer func() { <-n.gates.pulling }()
	default:
		n.meters.c.drop(PullsBusy)
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
	n.meters.c.inc(PullsServed)
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
	req, pulls, err := n.pullRequest(seg, runs)
	if err != nil {
		return 0, 0, err
	}
	go conn.Write(req) // small; the answer may be large, so read at once
	return n.receivePull(f, wire.NewFrameReader(conn, 64<<10), pulls, func() { conn.SetDeadline(time.Now()) })
}

// pullRequest returns the pull frames asking for runs of seg's rows,
// addressed to its filter and segment (but for the default's first) and
// sealed, and how many they are.
func (n *Node) pullRequest(seg *registry.Segment, runs []filter.Run) ([]byte, int, error) {
	fp := seg.Rows().Fingerprint()
	var req, one, named []byte
	pulls := 0
	for len(runs) > 0 {
		k := min(len(runs), wire.MaxPullRuns)
		var err error
		if one, err = wire.AppendPull(one[:0], fp, runs[:k]); err != nil {
			return nil, 0, err
		}
		if f := seg.Filter(); !f.IsDefault() || seg.ID() != 0 {
			if named, err = wire.AppendNamedSegment(named[:0], f.Name(), seg.ID(), one); err != nil {
				return nil, 0, err
			}
			one = append(one[:0], named...)
		}
		req = n.seal(req, one)
		runs = runs[k:]
		pulls++
	}
	return req, pulls, nil
}

// pulled is a frame of a pull's answer, read and checked, on its way to
// be merged.
type pulled struct {
	frame []byte // the frame, opened if it came sealed
	buf   []byte // the reader's memory it is in, to read into again (nil: a copy)
	err   error
}

// receivePull reads the answer to pulls pull requests from fr and merges
// it into f. Reading (and, with a key, checking each frame's tag) and
// merging run on two goroutines, a frame apart, so that checking one
// frame overlaps merging the one before: a pull moves at the speed of the
// slower stage. unblock makes a read in progress fail.
func (n *Node) receivePull(f *filter.Filter, fr *wire.FrameReader, pulls int, unblock func()) (rows, changed int, err error) {
	frames := make(chan pulled, 1)
	spare := make(chan []byte, 3) // a frame being read, one waiting, one merged
	fr.Reuse(*pullBuffers.Get().(*[]byte))
	for range cap(spare) - 1 {
		spare <- *pullBuffers.Get().(*[]byte)
	}
	defer func() {
		for range len(spare) {
			b := <-spare
			pullBuffers.Put(&b)
		}
	}()
	quit, done := make(chan struct{}), make(chan struct{})
	go n.readPulls(fr, pulls, frames, spare, quit, done)
	defer func() {
		close(quit)
		unblock() // a read the reader is blocked in fails
		<-done
	}()
	for p := range frames {
		if p.err != nil {
			return rows, changed, p.err
		}
		r, c, err := mergePulled(f, p.frame)
		rows, changed = rows+r, changed+c
		if err != nil {
			return rows, changed, err
		}
		if p.buf != nil {
			select {
			case spare <- p.buf[:0]:
			default:
			}
		}
	}
	return rows, changed, nil
}

// readPulls reads the frames of a pull's answer until pulls pull-dones,
// an error, or quit.
func (n *Node) readPulls(fr *wire.FrameReader, pulls int, frames chan<- pulled, spare <-chan []byte, quit, done chan struct{}) {
	defer close(done)
	defer close(frames)
	for left := pulls; left > 0; {
		p := n.readPulled(fr)
		if p.buf != nil { // the reader gave its memory away with the frame
			select {
			case b := <-spare:
				fr.Reuse(b)
			default: // all in use: the next large frame gets new memory
			}
		}
		if p.err == nil && wire.Type(p.frame[0]) == wire.TypePullDone {
			left--
		}
		select {
		case frames <- p:
		case <-quit:
			return
		}
		if p.err != nil {
			return
		}
	}
}

// mergePulled merges one frame of a pull's answer.
func mergePulled(f *filter.Filter, frame []byte) (rows, changed int, err error) {
	switch wire.Type(frame[0]) {
	case wire.TypeRowSync:
		s, err := wire.DecodeRowSync(frame)
		if err != nil {
			return 0, 0, err
		}
		_, ch, err := gossip.MergeRowSync(f, s, nil)
		return s.Runs.Rows(), ch, err
	case wire.TypePullDone:
		return 0, 0, nil
	case wire.TypeError:
		e, _ := wire.DecodeError(frame)
		return 0, 0, &pullRefused{code: e.Code, msg: string(e.Msg)}
	}
	return 0, 0, fmt.Errorf("pull: unexpected %v frame", wire.Type(frame[0]))
}

// pullRefused is a pull the member answered with an error frame.
type pullRefused struct {
	code uint16
	msg  string
}

func (e *pullRefused) Error() string { return "pull refused: " + e.msg }

// busy reports whether err is a member's answer to try again soon.
func busy(err error) bool {
	var r *pullRefused
	return errors.As(err, &r) && r.code == wire.CodeBusy
}

// pullBuffers hold frames of pulls' answers, large ones, between pulls.
var pullBuffers = sync.Pool{New: func() any { b := make([]byte, 0, wire.MaxFrame); return &b }}

// readPulled reads the next frame of a pull's answer and, with a key,
// checks it: every frame of the answer must come sealed by a member.
func (n *Node) readPulled(fr *wire.FrameReader) pulled {
	frame, err := fr.Next()
	if err != nil {
		return pulled{err: err}
	}
	frame, handed := fr.Detach(frame)
	p := pulled{frame: frame}
	if handed {
		p.buf = frame
	}
	if n.keys == nil {
		return p
	}
	if wire.Type(frame[0]) != wire.TypeSealed {
		n.meters.c.drop(Unauthenticated)
		return pulled{err: fmt.Errorf("pull: an unsealed %v frame in the answer", wire.Type(frame[0]))}
	}
	s, err := n.open(frame)
	if err != nil {
		n.meters.c.drop(sealFailure(err))
		return pulled{err: fmt.Errorf("pull: %w", err)}
	}
	p.frame = s.Inner
	return p
}
