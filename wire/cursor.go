package wire

import "encoding/binary"

// Cursor reads big-endian fields from the front of a byte slice, checking
// the length before every read, so that a decoder built on it never
// slices past its input whatever the lengths the input claims. The first
// failure sticks: after it every read returns zero (nil for Bytes), Err
// reports it and ErrOffset where it happened, so that a decoder reads a
// whole record and looks at the error once, at the end. It is the one
// bounded reader of the project: the frame decoders here, the store's
// file decoders and gossip's catalog codec each wrap it only to word its
// errors their way.
//
// A Cursor is a small value: a copy reads ahead without moving the
// original. It never panics, whatever the calls and the lengths asked
// for, negative ones included.
type Cursor struct {
	buf   []byte
	pos   int
	short error // what a read past the end fails with
	first error // the first failure; nil while all is well
	at    int   // where the first failure happened
}

// NewCursor returns a Cursor at the start of b whose reads past the end
// fail with short (ErrShort if nil). The slices it returns share b's
// memory. The zero Cursor reads an empty input.
func NewCursor(b []byte, short error) Cursor { return Cursor{buf: b, short: short} }

// Bytes reads the next n bytes: a sub-slice of the input whose capacity
// ends with it, so that appending to it never overwrites what follows.
// With fewer than n bytes left (or n negative) it fails with the short
// error at the current offset and returns nil, as it does after any
// failure.
func (c *Cursor) Bytes(n int) []byte {
	if c.first != nil || uint(n) > uint(len(c.buf)-c.pos) { // n < 0 too
		c.failShort()
		return nil
	}
	s := c.buf[c.pos : c.pos+n : c.pos+n]
	c.pos += n
	return s
}

// failShort fails a read past the end, cheaply enough that Bytes and the
// reads built on it inline into the decoders.
func (c *Cursor) failShort() {
	if c.first == nil {
		c.first, c.at = c.short, c.pos
		if c.first == nil {
			c.first = ErrShort
		}
	}
}

// U8 reads a byte; 0 once failed.
func (c *Cursor) U8() uint8 {
	// The fixed-size reads check the length themselves rather than call
	// Bytes: so they stay cheap enough to inline.
	if c.first != nil || len(c.buf)-c.pos < 1 {
		c.failShort()
		return 0
	}
	c.pos++
	return c.buf[c.pos-1]
}

// Uvarint reads an unsigned varint as encoding/binary writes it, in its
// shortest form: a longer one, or one past 64 bits, fails with ErrValue.
// 0 once failed.
func (c *Cursor) Uvarint() uint64 {
	if c.first != nil {
		return 0
	}
	v, n := binary.Uvarint(c.buf[c.pos:])
	switch {
	case n == 0:
		c.pos = len(c.buf)
		c.failShort()
		return 0
	case n < 0 || n > 1 && c.buf[c.pos+n-1] == 0:
		c.Fail(ErrValue)
		return 0
	}
	c.pos += n
	return v
}

// U16 reads a big-endian uint16; 0 once failed.
func (c *Cursor) U16() uint16 {
	if c.first != nil || len(c.buf)-c.pos < 2 {
		c.failShort()
		return 0
	}
	c.pos += 2
	return binary.BigEndian.Uint16(c.buf[c.pos-2:])
}

// U32 reads a big-endian uint32; 0 once failed.
func (c *Cursor) U32() uint32 {
	if c.first != nil || len(c.buf)-c.pos < 4 {
		c.failShort()
		return 0
	}
	c.pos += 4
	return binary.BigEndian.Uint32(c.buf[c.pos-4:])
}

// U64 reads a big-endian uint64; 0 once failed.
func (c *Cursor) U64() uint64 {
	if c.first != nil || len(c.buf)-c.pos < 8 {
		c.failShort()
		return 0
	}
	c.pos += 8
	return binary.BigEndian.Uint64(c.buf[c.pos-8:])
}

// Fail fails with err at the current offset, unless the Cursor has
// failed already: the first failure is the one worth reporting, the
// later ones being its consequences. A nil err is ignored.
func (c *Cursor) Fail(err error) { c.FailAt(c.pos, err) }

// FailAt is Fail at offset off, clamped to the input: the start of a
// field already read that turned out bad, or a position the decoder
// worked out (where a length points to). The read position is left
// where it is; no read succeeds after a failure anyway.
func (c *Cursor) FailAt(off int, err error) {
	if c.first != nil || err == nil {
		return
	}
	c.first, c.at = err, min(max(off, 0), len(c.buf))
}

// Check fails with err at the current offset when bad, e.g. after a field
// read out of range.
func (c *Cursor) Check(bad bool, err error) {
	if bad {
		c.Fail(err)
	}
}

// Err returns the first failure, nil if none.
func (c *Cursor) Err() error { return c.first }

// ErrOffset returns where the first failure happened (0 if none).
func (c *Cursor) ErrOffset() int { return c.at }

// Offset returns the read position: how many bytes have been read.
func (c *Cursor) Offset() int { return c.pos }

// Left returns how many bytes are left to read.
func (c *Cursor) Left() int { return len(c.buf) - c.pos }

// Done fails with trailing (ErrTrailing if nil) at the current offset
// unless the whole input was read, and returns the first failure: a
// decoder's last word, since a record followed by more bytes is not the
// record its sender meant.
func (c *Cursor) Done(trailing error) error {
	if c.first == nil && c.pos != len(c.buf) {
		c.first, c.at = trailing, c.pos
		if trailing == nil {
			c.first = ErrTrailing
		}
	}
	return c.first
}
