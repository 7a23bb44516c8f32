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
	ping := must(AppendPing(nil, Ping{Type: TypePing, ReqID: 1, Version: ProtocolVersion}))
	_, err := AppendNamed(nil, "f", ping)
	assert.ErrorIs(t, err, ErrType, "a ping is about no filter")
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
	bad[7] = byte(TypePing) // the inner frame's type
	_, err = DecodeNamed(bad)
	assert.Error(t, err)
	long := append(bytes.Clone(good), 0)
	long[4]++ // body one longer: trailing byte after the inner frame
	_, err = DecodeNamed(long)
	assert.ErrorIs(t, err, ErrValue)
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
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNamed(b)
		if err != nil {
			return
		}
		if !ValidFilterName(n.Name) || !Nameable(Type(n.Inner[0])) {
			t.Fatalf("accepted %x", b)
		}
		again, err := AppendNamed(nil, string(n.Name), n.Inner)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes to %x (%v)", b, again, err)
		}
	})
}
