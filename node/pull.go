package node

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// pull asks the node at addr, over TCP, for the rows in runs and merges
// what it sends. It returns the rows received and the rows that changed.
// This is both anti-entropy's repair and the bulk transfer that fills a
// new node: frames of up to a megabyte, merged as they arrive.
func (n *Node) pull(ctx context.Context, addr netip.AddrPort, runs []filter.Run) (rows, changed int, err error) {
	return n.pullInto(ctx, addr, n.f, "", runs)
}

// pullInto is pull for filter f, the named filter name ("" the default):
// the requests go in named frames, and the rows are merged into f.
func (n *Node) pullInto(ctx context.Context, addr netip.AddrPort, f *filter.Filter, name string, runs []filter.Run) (rows, changed int, err error) {
	defer n.timed(PullMadeLatency, time.Now())
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

	fp := f.Fingerprint()
	var req, one, named []byte
	pulls := 0
	for len(runs) > 0 {
		k := min(len(runs), wire.MaxPullRuns)
		if one, err = wire.AppendPull(one[:0], fp, runs[:k]); err != nil {
			return 0, 0, err
		}
		if name != "" {
			if named, err = wire.AppendNamed(named[:0], name, one); err != nil {
				return 0, 0, err
			}
			one = append(one[:0], named...)
		}
		req = n.seal(req, one)
		runs = runs[k:]
		pulls++
	}
	go conn.Write(req) // small; the reply may be large, so read at once
	return n.receivePull(f, wire.NewFrameReader(conn, 64<<10), pulls, func() { conn.SetDeadline(time.Now()) })
}

// pulled is a frame of a pull's answer, read and checked, on its way to
// be merged.
type pulled struct {
	frame []byte // the frame, opened if it came sealed
	buf   []byte // the reader's memory it is in, to read into again (nil: a copy)
	err   error
}

// receivePull reads the answer to pulls pull requests from fr and merges
// it. Reading (and, with a key, checking each frame's tag) and merging run
// on two goroutines, a frame apart, so that checking one frame overlaps
// merging the one before: a pull moves at the speed of the slower stage.
// unblock makes a read in progress fail (the connection's deadline).
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
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
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
	}()
	defer func() {
		close(quit)
		unblock() // a read the reader is blocked in fails
		<-done
	}()
	for p := range frames {
		if p.err != nil {
			return rows, changed, p.err
		}
		switch wire.Type(p.frame[0]) {
		case wire.TypeRowSync:
			s, err := wire.DecodeRowSync(p.frame)
			if err != nil {
				return rows, changed, err
			}
			_, ch, err := gossip.MergeRowSync(f, s, nil)
			if err != nil {
				return rows, changed, err
			}
			rows += s.Runs.Rows()
			changed += ch
		case wire.TypePullDone:
		case wire.TypeError:
			e, _ := wire.DecodeError(p.frame)
			return rows, changed, fmt.Errorf("pull refused: %s", e.Msg)
		default:
			return rows, changed, fmt.Errorf("pull: unexpected %v frame", wire.Type(p.frame[0]))
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
	if n.keyed() {
		if wire.Type(frame[0]) != wire.TypeSealed {
			n.c.drop(Unauthenticated)
			return pulled{err: fmt.Errorf("pull: an unsealed %v frame in the answer", wire.Type(frame[0]))}
		}
		s, err := n.opener.Open(frame)
		if err != nil {
			n.c.drop(sealFailure(err))
			return pulled{err: fmt.Errorf("pull: %w", err)}
		}
		p.frame = s.Inner
	}
	return p
}

// maxPullsServed bounds the pulls a node serves at once; more are
// answered busy, and tried again by their senders.
const maxPullsServed = 2

// servePull answers a pull frame on a TCP connection: row syncs of every
// set row asked for, then pull done, each sealed when the pull came
// sealed. Frames go straight to w. A pull is an admin request; with a
// cluster key it must come sealed.
func (n *Node) servePull(frame []byte, sealed bool, from netip.AddrPort, w io.Writer) error {
	return n.servePullOf(n.f, frame, sealed, from, w)
}

// servePullOf serves a pull of filter f's rows.
func (n *Node) servePullOf(f *filter.Filter, frame []byte, sealed bool, from netip.AddrPort, w io.Writer) error {
	defer n.timed(PullServedLatency, time.Now())
	var scratch []byte
	write := func(f []byte) error {
		if sealed {
			scratch = n.seal(scratch[:0], f)
			f = scratch
		}
		_, err := w.Write(f)
		return err
	}
	refuse := func(code uint16, msg string) error {
		e, _ := wire.AppendError(nil, wire.ErrorFrame{Code: code, Msg: []byte(msg)})
		return write(e)
	}
	p, err := wire.DecodePull(frame)
	switch {
	case err != nil:
		n.c.drop(BadFrames)
		return nil
	case n.keyed() && !sealed:
		n.c.drop(Unauthenticated)
		return refuse(wire.CodeUnsealed, "this node has a cluster key: pulls must be sealed")
	case !n.mayAdmin(from, sealed):
		n.c.drop(Forbidden)
		return refuse(wire.CodeForbidden, "pull: this address may not ask (--allow-admin)")
	}
	select {
	case n.pulling <- struct{}{}:
		defer func() { <-n.pulling }()
	default:
		n.c.drop(PullsBusy)
		return refuse(wire.CodeBusy, "serving other pulls; try again")
	}
	maxFrame := wire.MaxFrame
	if sealed {
		maxFrame -= wire.SealedOverhead
	}
	sent, err := gossip.ServePull(f, p, maxFrame, write)
	if err != nil {
		code := wire.CodeRowRange
		if p.FP != f.Fingerprint() {
			code = wire.CodeFingerprint
			n.c.drop(FingerprintMismatch)
		}
		return refuse(code, err.Error())
	}
	n.c.inc(PullsServed)
	done, _ := wire.AppendPullDone(nil, wire.PullDone{Rows: uint32(sent)})
	return write(done)
}
