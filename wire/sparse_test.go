package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Rows go as positions while that is shorter, whole otherwise; every row
// decodes to its bytes, and rows with no bit set are left out.
func TestSparseSyncRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []RowRun
	for r := uint32(0); r < 300; r += 1 + uint32(rng.IntN(5)) {
		row := make([]byte, 64)
		for range rng.IntN(80) { // from empty to dense
			bit := rng.IntN(512)
			row[bit/8] |= 1 << (bit % 8)
		}
		rows = append(rows, RowRun{First: r, Rows: row})
	}
	frame, err := AppendSparseSync(nil, exampleFP, 9, 3, rows)
	require.NoError(t, err)
	s, err := DecodeRowSync(frame)
	require.NoError(t, err)
	assert.Equal(t, uint64(9), s.Stamp)
	assert.Equal(t, uint32(3), s.Seq)
	var got []RowRun
	for first, row := range s.Runs.All() {
		got = append(got, RowRun{first, bytes.Clone(row)})
	}
	var want []RowRun
	for _, r := range rows {
		if !bytes.Equal(r.Rows, make([]byte, 64)) {
			want = append(want, r)
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, len(want), s.Runs.Rows())
	whole := RowSyncHeaderSize + len(want)*(RunHeaderSize+64)
	t.Logf("%d rows: %d bytes sparse, %d as row syncs of single rows", len(want), len(frame), whole)
	assert.Less(t, len(frame), whole)
}

// A decoder of untrusted bytes refuses what the writer never writes.
func TestSparseSyncRefusesWhatIsNotCanonical(t *testing.T) {
	entry := func(parts ...uint64) []byte {
		var b []byte
		for _, p := range parts {
			b = binary.AppendUvarint(b, p)
		}
		return b
	}
	frame := func(rows int, body []byte) []byte {
		b, start := beginExt(nil, TypeSparseSync)
		b, _ = exampleFP.AppendBinary(b)
		b = binary.BigEndian.AppendUint64(b, 7)
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(rows))
		b = append(b, body...)
		b, _ = endExt(b, start)
		return b
	}
	ok := frame(2, append(entry(5, 1, 3), entry(0, 1, 0)...)) // row 5 bit 3, row 6 bit 0
	_, err := DecodeRowSync(ok)
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"a gap that wraps back to row 5":   frame(2, append(entry(5, 1, 3), entry(1<<64-1, 1, 0)...)),
		"a gap past row 2^32-1":            frame(2, append(entry(5, 1, 3), entry(1<<32-6, 1, 0)...)),
		"a first row past 2^32-1":          frame(1, entry(1<<32, 1, 0)),
		"a position past the row":          frame(1, entry(0, 1, 512)),
		"positions past the row by gaps":   frame(1, entry(0, 2, 300, 300)),
		"32 positions: the row goes whole": frame(1, entry(append([]uint64{0, 32}, make([]uint64, 32)...)...)),
		"a whole row of few bits":          frame(1, append(entry(0, 0), append([]byte{1}, make([]byte, 63)...)...)),
		"no rows":                          frame(0, nil),
		"fewer rows than promised":         frame(3, append(entry(5, 1, 3), entry(0, 1, 0)...)),
		"a long varint":                    frame(1, []byte{0x80, 0x00, 1, 0}),
		"trailing bytes":                   frame(1, append(entry(0, 1, 0), 0)),
	} {
		_, err := DecodeRowSync(b)
		var fe *FrameError
		assert.True(t, errors.As(err, &fe), "%s: %v", name, err)
	}
}
