package wire

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNamedRoundTrip(t *testing.T) {
	inner := must(AppendBatch(nil, TypeAddBatch, 9, FlagAck, [][]byte{[]byte("k1"), []byte("k2")}))
	b, err := AppendNamed(nil, "tenant-42", inner)
	require.NoError(t, err)
	n, err := DecodeNamed(b)
	require.NoError(t, err)
	assert.Equal(t, "tenant-42", string(n.Name))
	assert.Equal(t, inner, n.Inner)
	fl, err := FrameLen(b)
	require.NoError(t, err)
	assert.Equal(t, len(b), fl)
	assert.Equal(t, "named", TypeNamed.String())
	assert.True(t, TypeNamed.Extended())
}

func TestNamedRefused(t *testing.T) {
	inner := must(AppendBatch(nil, TypeHasBatch, 1, 0, [][]byte{[]byte("k")}))
	for _, name := range []string{"", strings.Repeat("n", 201), "a\nb", "\xff"} {
		_, err := AppendNamed(nil, name, inner)
		assert.ErrorIs(t, err, ErrValue, "%q", name)
	}
	stats := must(AppendStatsRequest(nil, 1))
	_, err := AppendNamed(nil, "f", stats)
	assert.ErrorIs(t, err, ErrType, "stats are about no filter")
	named := must(AppendNamed(nil, "f", inner))
	_, err = AppendNamed(nil, "g", named)
	assert.ErrorIs(t, err, ErrType, "no named frame inside a named frame")

	good := must(AppendNamed(nil, "f", inner))
	for cut := range len(good) {
		_, err := DecodeNamed(good[:cut])
		assert.Error(t, err, "cut at %d", cut)
	}
	bad := bytes.Clone(good)
	bad[6] = 0x01 // a control character in the name
	_, err = DecodeNamed(bad)
	assert.ErrorIs(t, err, ErrValue)
	bad = bytes.Clone(good)
	bad[7] = byte(TypeStatsReq) // the inner frame's type
	_, err = DecodeNamed(bad)
	assert.Error(t, err)
	long := append(bytes.Clone(good), 0)
	long[4]++ // body one longer: trailing byte after the inner frame
	_, err = DecodeNamed(long)
	assert.ErrorIs(t, err, ErrValue)
}

// A named frame names a segment: segment 0 in the form nodes that know no
// segments read, byte for byte; another in the long form, which they
// refuse (a name is never empty).
func TestNamedSegments(t *testing.T) {
	inner := must(AppendBatch(nil, TypeHasBatch, 1, 0, [][]byte{[]byte("k")}))
	short := must(AppendNamed(nil, "f", inner))
	assert.Equal(t, short, must(AppendNamedSegment(nil, "f", 0, inner)), "segment 0 has one spelling")
	assert.Len(t, short, len(inner)+NamedOverhead("f", 0))

	seg := must(AppendNamedSegment(nil, "f", 0x0102030405060708, inner))
	assert.Len(t, seg, len(inner)+NamedOverhead("f", 0x0102030405060708))
	assert.Equal(t, []byte{byte(TypeNamed), 0, 0, 0, byte(1 + 8 + 1 + 1 + len(inner)), 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 1, 'f'}, seg[:16])
	n, err := DecodeNamed(seg)
	require.NoError(t, err)
	assert.Equal(t, "f", string(n.Name))
	assert.Equal(t, uint64(0x0102030405060708), n.Segment)
	assert.Equal(t, inner, n.Inner)

	zero := bytes.Clone(seg)
	copy(zero[6:14], make([]byte, 8))
	_, err = DecodeNamed(zero)
	assert.ErrorIs(t, err, ErrValue, "segment 0 in the long form")
	for cut := range len(seg) {
		_, err := DecodeNamed(seg[:cut])
		assert.Error(t, err, "cut at %d", cut)
	}
}

// NamedInner finds the request inside a named frame whose name no filter
// can have, so that a node can refuse it by its id.
func TestNamedInner(t *testing.T) {
	inner := must(AppendBatch(nil, TypeHasBatch, 7, 0, [][]byte{[]byte("k")}))
	for _, name := range []string{"ok", "a\nb", "\x00\x01bin", strings.Repeat("n", 201), strings.Repeat("n", 255)} {
		f := []byte{byte(TypeNamed), 0, 0, 0, 0, byte(len(name))}
		f = append(append(f, name...), inner...)
		f, _ = endExt(f, 0)
		got, ok := NamedInner(f)
		require.True(t, ok, "%q", name)
		assert.Equal(t, inner, got)
	}
	seg := must(AppendNamedSegment(nil, "f", 3, inner))
	got, ok := NamedInner(seg)
	assert.True(t, ok)
	assert.Equal(t, inner, got)
	good := must(AppendNamed(nil, "f", inner))
	for cut := range len(good) - 1 {
		_, ok := NamedInner(good[:cut])
		assert.False(t, ok, "cut at %d", cut)
	}
}

func TestValidFilterName(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "tenant-42/day 1": true, "ünïcode ✓": true, "": false,
		strings.Repeat("n", 200): true, strings.Repeat("n", 201): false, "a\x00b": false, "del\x7f": false, "c1\u0085": false} {
		assert.Equal(t, ok, ValidFilterName(name), "%q", name)
		assert.Equal(t, ok, ValidFilterName([]byte(name)), "%q", name)
	}
}

// FuzzNamed: arbitrary bytes decode or are refused; what decodes holds a
// valid name and one whole nameable frame, and encodes back the same.
func FuzzNamed(f *testing.F) {
	inner := must(AppendBatch(nil, TypeHasBatch, 1, 0, [][]byte{[]byte("k")}))
	f.Add(must(AppendNamed(nil, "f", inner)))
	f.Add([]byte{byte(TypeNamed), 0, 0, 0, 1, 0})
	f.Add(must(AppendNamedSegment(nil, "f", 9, inner)))
	f.Fuzz(func(t *testing.T, b []byte) {
		lenient, found := NamedInner(b) // never panics, whatever the name
		n, err := DecodeNamed(b)
		if err != nil {
			return
		}
		if !found || !bytes.Equal(lenient, n.Inner) {
			t.Fatalf("%x: NamedInner %x, DecodeNamed %x", b, lenient, n.Inner)
		}
		if !ValidFilterName(n.Name) || !Nameable(Type(n.Inner[0])) {
			t.Fatalf("accepted %x", b)
		}
		again, err := AppendNamedSegment(nil, string(n.Name), n.Segment, n.Inner)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes to %x (%v)", b, again, err)
		}
	})
}
