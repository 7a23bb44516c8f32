package wire

import "encoding/binary"

// reader is a Cursor over one frame whose failures are FrameErrors naming
// the frame's type and the offset in it.
type reader struct {
	Cursor
	frame Type
}

// newReader returns a reader over frame b of type t. It builds the Cursor
// in place (its nil short error is ErrShort) rather than through
// NewCursor: every frame decoded starts here, and the temporary a nested
// constructor copies costs a small frame's decoding a fifth of its time.
func newReader(b []byte, t Type) reader {
	return reader{Cursor: Cursor{buf: b}, frame: t}
}

// extReader checks an extended frame's header and returns a reader over it
// positioned at the body.
func extReader(b []byte, t Type) reader {
	r := newReader(b, t)
	if len(b) < HeaderSize {
		r.Fail(ErrShort)
		return r
	}
	switch n := binary.BigEndian.Uint32(b[1:]); {
	case Type(b[0]) != t:
		r.Fail(ErrType)
	case n > MaxFrameBody:
		r.FailAt(1, ErrTooLarge)
	case int(n) > len(b)-HeaderSize:
		r.FailAt(len(b), ErrShort)
	case int(n) < len(b)-HeaderSize:
		r.FailAt(HeaderSize+int(n), ErrTrailing)
	default:
		r.Bytes(HeaderSize)
	}
	return r
}

// failure returns the first failure as a *FrameError, nil if none.
func (r *reader) failure() error {
	if err := r.Err(); err != nil {
		return frameErr(r.frame, r.ErrOffset(), err)
	}
	return nil
}

// check fails with err, at the start of the field of back bytes just
// read, when bad.
func (r *reader) check(bad bool, back int, err error) {
	if bad {
		r.FailAt(r.Offset()-back, err)
	}
}

// padding consumes the rest of the frame, which must be zeros, and
// returns how many bytes it was.
func (r *reader) padding() int {
	start := r.Offset()
	rest := r.Bytes(r.Left())
	for i, c := range rest {
		if c != 0 {
			r.FailAt(start+i, ErrValue)
			return 0
		}
	}
	return len(rest)
}

// done fails unless the whole frame was consumed, and returns the error.
func (r *reader) done() error {
	if r.Done(ErrTrailing) == nil {
		return nil
	}
	return r.failure()
}
