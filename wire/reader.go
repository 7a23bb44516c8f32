package wire

import "encoding/binary"

// reader walks a frame, checking the length before every read. After the
// first failure every read returns zero and err keeps the first error.
type reader struct {
	b     []byte
	off   int
	frame Type
	err   error
}

// extReader checks an extended frame's header and returns a reader over it
// positioned at the body.
func extReader(b []byte, t Type) reader {
	r := reader{b: b, frame: t}
	switch {
	case len(b) < HeaderSize:
		r.fail(ErrShort)
	case Type(b[0]) != t:
		r.fail(ErrType)
	case binary.BigEndian.Uint32(b[1:]) > MaxFrameBody:
		r.off = 1
		r.fail(ErrTooLarge)
	case int(binary.BigEndian.Uint32(b[1:])) > len(b)-HeaderSize:
		r.off = len(b)
		r.fail(ErrShort)
	case int(binary.BigEndian.Uint32(b[1:])) < len(b)-HeaderSize:
		r.off = HeaderSize + int(binary.BigEndian.Uint32(b[1:]))
		r.fail(ErrTrailing)
	default:
		r.off = HeaderSize
	}
	return r
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = frameErr(r.frame, r.off, err)
	}
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(ErrShort)
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *reader) u8() uint8 {
	if s := r.bytes(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if s := r.bytes(2); s != nil {
		return binary.BigEndian.Uint16(s)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.bytes(4); s != nil {
		return binary.BigEndian.Uint32(s)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if s := r.bytes(8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

// check fails with err (at the offset of the field just read) when bad.
func (r *reader) check(bad bool, back int, err error) {
	if bad && r.err == nil {
		r.off -= back
		r.fail(err)
	}
}

// padding consumes the rest of the frame, which must be zeros, and
// returns how many bytes it was.
func (r *reader) padding() int {
	if r.err != nil {
		return 0
	}
	n := len(r.b) - r.off
	for i, c := range r.b[r.off:] {
		if c != 0 {
			r.off += i
			r.fail(ErrValue)
			return 0
		}
	}
	r.off = len(r.b)
	return n
}

// done fails unless the whole frame was consumed, and returns the error.
func (r *reader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail(ErrTrailing)
	}
	return r.err
}
