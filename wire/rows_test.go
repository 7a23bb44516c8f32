package wire

import (
	"errors"
	"slices"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var _ RowSource = (*filter.Filter)(nil)

// TestFrameRows: the rows set in every other row (the sparsest shape, one
// row per run) go out whole, within the runs asked for, in frames of at
// most maxFrame bytes that a receiver decodes, numbered from 0; rows
// changed before since stay behind; emit's error stops it.
func TestFrameRows(t *testing.T) {
	fp := filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: 6, RowBits: 512, Rows: 64}
	f, err := filter.NewFromFingerprint(fp, 0)
	require.NoError(t, err)
	row := make([]byte, RowBytes(fp))
	set := func(r uint64) {
		row[0], row[1] = 1, byte(r)
		_, err := f.MergeRows(fp, r, row, nil)
		require.NoError(t, err)
	}
	set(1)
	since := f.Advance()
	for r := uint64(0); r < uint64(fp.Rows); r += 2 {
		set(r)
	}
	f.Advance()

	const maxFrame = RowSyncHeaderSize + 3*(RunHeaderSize+64)
	frames := func(since uint64, want []filter.Run) map[uint32][]byte {
		got := map[uint32][]byte{}
		var seq uint32
		n, err := FrameRows(f, since, want, maxFrame, func(frame []byte) error {
			assert.LessOrEqual(t, len(frame), maxFrame)
			s, err := DecodeRowSync(frame)
			require.NoError(t, err)
			assert.Equal(t, fp, s.FP)
			assert.Equal(t, seq, s.Seq)
			seq++
			for first, rows := range s.Runs.All() {
				for i := 0; i < len(rows); i += len(row) {
					got[first+uint32(i/len(row))] = slices.Clone(rows[i : i+len(row)]) // the frame is reused
				}
			}
			return nil
		})
		require.NoError(t, err)
		assert.Len(t, got, n, "rows sent")
		return got
	}

	got := frames(0, []filter.Run{{First: 0, Count: uint64(fp.Rows)}})
	assert.Len(t, got, 33, "rows 0, 2, …, 62 and 1")
	for r, b := range got {
		assert.Equal(t, []byte{1, byte(r)}, b[:2], "row %d", r)
	}
	got = frames(0, []filter.Run{{First: 3, Count: 4}, {First: 60, Count: 4}})
	assert.Len(t, got, 4, "rows 4, 6, 60, 62")
	got = frames(since, []filter.Run{{First: 0, Count: 4}})
	assert.Len(t, got, 2, "rows 0, 2: row 1 changed before since")

	stop := errors.New("stop")
	calls := 0
	_, err = FrameRows(f, 0, []filter.Run{{First: 0, Count: uint64(fp.Rows)}}, maxFrame, func([]byte) error {
		calls++
		return stop
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls)
}
