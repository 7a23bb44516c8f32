package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
)

var (
	errShort = errors.New("short")
	errBad   = errors.New("bad")
)

func TestCursorReads(t *testing.T) {
	in := []byte{1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 'a', 'b', 'c'}
	c := wire.NewCursor(in, errShort)
	assert.Equal(t, uint8(1), c.U8())
	assert.Equal(t, uint16(2), c.U16())
	assert.Equal(t, uint32(3), c.U32())
	assert.Equal(t, uint64(4), c.U64())
	assert.Equal(t, 15, c.Offset())
	assert.Equal(t, 3, c.Left())
	ab := c.Bytes(2)
	assert.Equal(t, []byte("ab"), ab)
	assert.Equal(t, 2, cap(ab), "capacity ends with the field")
	assert.Empty(t, c.Bytes(0))
	assert.NoError(t, c.Err())
	assert.Equal(t, errBad, c.Done(errBad), "one byte left")
	assert.Equal(t, 17, c.ErrOffset())

	c = wire.NewCursor(in, errShort)
	c.Bytes(18)
	assert.NoError(t, c.Done(errBad))
}

func TestCursorFirstFailureSticks(t *testing.T) {
	in := []byte{1, 2, 3}
	c := wire.NewCursor(in, errShort)
	c.U16()
	assert.Zero(t, c.U16(), "past the end")
	assert.Equal(t, errShort, c.Err())
	assert.Equal(t, 2, c.ErrOffset())
	c.Fail(errBad)
	c.FailAt(0, errBad)
	c.Check(true, errBad)
	assert.Equal(t, errShort, c.Err(), "the first failure is kept")
	assert.Equal(t, 2, c.ErrOffset())
	assert.Nil(t, c.Bytes(0), "no read after a failure")
	assert.Zero(t, c.U8())
	assert.Equal(t, errShort, c.Done(errBad))

	for _, n := range []int{-1, -1 << 62, 4, 1 << 62} {
		c := wire.NewCursor(in, errShort)
		assert.Nil(t, c.Bytes(n), "%d bytes", n)
		assert.Equal(t, errShort, c.Err(), "%d bytes", n)
		assert.Equal(t, 0, c.Offset())
	}

	c = wire.NewCursor(in, errShort)
	c.U16()
	c.Check(false, errBad)
	assert.NoError(t, c.Err())
	c.FailAt(1, errBad) // the field just read
	assert.Equal(t, errBad, c.Err())
	assert.Equal(t, 1, c.ErrOffset())
	assert.Equal(t, 2, c.Offset(), "failing moves nothing")

	for off, want := range map[int]int{-5: 0, 2: 2, 9: 3} {
		c := wire.NewCursor(in, errShort)
		c.FailAt(off, errBad)
		assert.Equal(t, want, c.ErrOffset(), "clamped to the input")
	}
}

func TestCursorDefaults(t *testing.T) {
	var zero wire.Cursor
	assert.Equal(t, 0, zero.Left())
	assert.NoError(t, zero.Done(nil))
	zero.Fail(nil)
	assert.NoError(t, zero.Err(), "a nil error is no failure")
	zero.U8()
	assert.ErrorIs(t, zero.Err(), wire.ErrShort)

	c := wire.NewCursor([]byte{1}, nil)
	c.U16()
	assert.ErrorIs(t, c.Err(), wire.ErrShort)
	c = wire.NewCursor([]byte{1}, nil)
	assert.ErrorIs(t, c.Done(nil), wire.ErrTrailing)
}

func TestCursorCopyReadsAhead(t *testing.T) {
	c := wire.NewCursor([]byte{7, 8}, errShort)
	ahead := c
	ahead.U16()
	assert.Equal(t, 0, c.Offset())
	assert.Equal(t, uint8(7), c.U8())
}

// FuzzCursor runs a program of reads and failures, with any lengths,
// negative ones included, over any input: the Cursor never panics, reads
// exactly what the input holds where it says it is, and keeps the first
// failure.
func FuzzCursor(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, []byte{0, 1, 2, 3, 4, 5, 0xff, 6, 7, 8})
	f.Add([]byte{}, []byte{4, 0x80, 5, 2})
	f.Add(bytes.Repeat([]byte{0xaa}, 40), []byte{4, 0x7f, 4, 0xf0, 1, 8})
	f.Fuzz(func(t *testing.T, in, prog []byte) {
		c := wire.NewCursor(in, errShort)
		off := 0 // where the cursor should be
		var first error
		for i := 0; i < len(prog); i++ {
			arg := 0
			if i+1 < len(prog) {
				arg = int(int8(prog[i+1])) // may be negative
			}
			failed := c.Err() != nil
			op := prog[i] % 9
			size := [...]int{1, 2, 4, 8}
			switch op {
			case 0, 1, 2, 3:
				n := size[op]
				var got uint64
				switch n {
				case 1:
					got = uint64(c.U8())
				case 2:
					got = uint64(c.U16())
				case 4:
					got = uint64(c.U32())
				case 8:
					got = c.U64()
				}
				if failed || n > len(in)-off {
					if got != 0 {
						t.Fatalf("read %d after a failure or past the end: %d", n, got)
					}
					break
				}
				var want [8]byte
				copy(want[8-n:], in[off:off+n])
				if got != binary.BigEndian.Uint64(want[:]) {
					t.Fatalf("u%d at %d: %x, want %x", 8*n, off, got, want)
				}
				off += n
			case 4:
				i++
				b := c.Bytes(arg)
				if failed || arg < 0 || arg > len(in)-off {
					if b != nil {
						t.Fatalf("%d bytes at %d of %d after a failure or past the end: %x", arg, off, len(in), b)
					}
					break
				}
				if !bytes.Equal(b, in[off:off+arg]) || len(b) != cap(b) {
					t.Fatalf("%d bytes at %d: %x (cap %d)", arg, off, b, cap(b))
				}
				off += arg
			case 5:
				c.Fail(errBad)
			case 6:
				i++
				c.FailAt(off+arg, errBad)
			case 7:
				c.Check(arg&1 == 1, errBad)
				i++
			case 8:
				c.Done(errBad)
			}
			if first == nil {
				first = c.Err()
			}
			switch {
			case c.Err() != first:
				t.Fatalf("first failure %v replaced by %v", first, c.Err())
			case c.Offset() != off || c.Left() != len(in)-off:
				t.Fatalf("at %d, %d left; want %d of %d", c.Offset(), c.Left(), off, len(in))
			case c.ErrOffset() < 0 || c.ErrOffset() > len(in):
				t.Fatalf("failure at %d of %d", c.ErrOffset(), len(in))
			}
		}
		err := c.Done(errBad)
		if first == nil && off == len(in) && err != nil || first != nil && err != first {
			t.Fatalf("done: %v, first failure %v, at %d of %d", err, first, off, len(in))
		}
	})
}

// A decoder reads a whole record and looks at the error once, at the end.
func ExampleCursor() {
	c := wire.NewCursor([]byte{0, 3, 'a', 'b'}, errShort)
	n := c.U16()
	name := c.Bytes(int(n))
	if err := c.Done(errBad); err != nil {
		fmt.Printf("%v at offset %d; name %q\n", err, c.ErrOffset(), name)
	}
	// Output: short at offset 2; name ""
}
