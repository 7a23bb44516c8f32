package store

import "encoding/binary"

// reader walks bytes read from a file, checking the length before every
// read; after the first failure every read returns zero and err keeps
// the first error, with the offset where it happened.
type reader struct {
	b   []byte
	off int
	err error
	at  int // offset of the failure
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err, r.at = err, r.off
	}
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(damaged("truncated"))
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

// check fails with err when bad.
func (r *reader) check(bad bool, err error) {
	if bad {
		r.fail(err)
	}
}
