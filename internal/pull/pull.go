// Package pull receives the answer to a pull: the row sync frames, then
// pull done, a member sends for runs of one segment's rows (anti-entropy's
// repair, and the bulk transfer that fills a new node), merged into a
// filter as they arrive.
//
//	rows, changed, err := pull.Receive(f, wire.NewFrameReader(conn, 64<<10), pulls, open, unblock)
package pull

import (
	"errors"
	"fmt"
	"sync"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// Refused is a pull the member answered with an error frame.
type Refused struct {
	Code uint16
	Msg  string
}

func (e *Refused) Error() string { return "pull refused: " + e.Msg }

// Busy reports whether err is a member's answer to try again soon: it
// is serving other pulls, or the pull was sealed for an id it no longer
// has (its answer taught the one it has now).
func Busy(err error) bool {
	var r *Refused
	return errors.As(err, &r) && (r.Code == wire.CodeBusy || r.Code == wire.CodeReceiver)
}

// pulled is a frame of a pull's answer, read and checked, on its way to
// be merged.
type pulled struct {
	frame []byte // the frame, opened if it came sealed
	buf   []byte // the reader's memory it is in, to read into again (nil: a copy)
	err   error
}

// Receive reads the answer to pulls pull requests from fr and merges it
// into f. open, if not nil, checks each frame (every one must come sealed
// by a member) and returns the frame inside. Reading and checking, and
// merging, run on two goroutines, a frame apart, so that checking one
// frame overlaps merging the one before: a pull moves at the speed of the
// slower stage. unblock makes a read in progress fail (a connection's
// deadline). It returns the rows received and the rows that changed.
func Receive(f *filter.Filter, fr *wire.FrameReader, pulls int, open func([]byte) ([]byte, error), unblock func()) (rows, changed int, err error) {
	frames := make(chan pulled, 1)
	spare := make(chan []byte, 3) // a frame being read, one waiting, one merged
	fr.Reuse(*buffers.Get().(*[]byte))
	for range cap(spare) - 1 {
		spare <- *buffers.Get().(*[]byte)
	}
	defer func() {
		for range len(spare) {
			b := <-spare
			buffers.Put(&b)
		}
	}()
	quit, done := make(chan struct{}), make(chan struct{})
	go read(fr, pulls, open, frames, spare, quit, done)
	defer func() {
		close(quit)
		unblock() // a read the reader is blocked in fails
		<-done
	}()
	for p := range frames {
		if p.err != nil {
			return rows, changed, p.err
		}
		r, c, err := merge(f, p.frame)
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

// read reads the frames of a pull's answer until pulls pull-dones, an
// error, or quit.
func read(fr *wire.FrameReader, pulls int, open func([]byte) ([]byte, error), frames chan<- pulled, spare <-chan []byte, quit, done chan struct{}) {
	defer close(done)
	defer close(frames)
	for left := pulls; left > 0; {
		p := next(fr, open)
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

// next reads the next frame of a pull's answer and checks it.
func next(fr *wire.FrameReader, open func([]byte) ([]byte, error)) pulled {
	frame, err := fr.Next()
	if err != nil {
		return pulled{err: err}
	}
	frame, handed := fr.Detach(frame)
	p := pulled{frame: frame}
	if handed {
		p.buf = frame
	}
	if open != nil {
		if p.frame, err = open(frame); err != nil {
			return pulled{err: fmt.Errorf("pull: %w", err)}
		}
	}
	return p
}

// merge merges one frame of a pull's answer.
func merge(f *filter.Filter, frame []byte) (rows, changed int, err error) {
	switch wire.Type(frame[0]) {
	case wire.TypeRowSync:
		s, err := wire.DecodeRowSync(frame)
		if err != nil {
			return 0, 0, err
		}
		// Rows a pull brings are not pushed on: every member swaps state
		// with one back from a partition or a restart, and pulls what
		// differs from it directly (pushing them on moved 3 × the bytes).
		_, ch, err := gossip.MergeRowSync(f, s, nil, false)
		return s.Runs.Rows(), ch, err
	case wire.TypePullDone:
		return 0, 0, nil
	case wire.TypeError:
		e, _ := wire.DecodeError(frame)
		return 0, 0, &Refused{Code: e.Code, Msg: string(e.Msg)}
	}
	return 0, 0, fmt.Errorf("pull: unexpected %v frame", wire.Type(frame[0]))
}

// buffers hold frames of pulls' answers, large ones, between pulls.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, wire.MaxFrame); return &b }}
