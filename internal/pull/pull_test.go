package pull

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answer is a pull's answer for rows of f's shape, each with one bit, in
// frames of perFrame rows, sealed by sealer if not nil.
// puller is the id the answers are sealed for.
const puller = 7

func answer(t testing.TB, fp filter.Fingerprint, rows, perFrame int, sealer *auth.Sealer) ([]byte, []byte) {
	rb := wire.RowBytes(fp)
	data := make([]byte, rows*rb)
	for r := range rows {
		data[r*rb+r%rb] = 1 << (r % 8)
	}
	var stream []byte
	add := func(fr []byte) {
		if sealer == nil {
			stream = append(stream, fr...)
			return
		}
		var err error
		stream, err = sealer.Seal(stream, fr, puller, time.Now())
		require.NoError(t, err)
	}
	for first := 0; first < rows; first += perFrame {
		count := min(perFrame, rows-first)
		fr, err := wire.AppendRowSync(nil, fp, 0, 0, []wire.RowRun{{First: uint32(first), Rows: data[first*rb : (first+count)*rb]}})
		require.NoError(t, err)
		add(fr)
	}
	done, _ := wire.AppendPullDone(nil, wire.PullDone{Rows: uint32(rows)})
	add(done)
	return stream, data
}

func opener(ring *auth.Keyring) func([]byte) ([]byte, error) {
	o := auth.NewOpener(ring, puller)
	return func(b []byte) ([]byte, error) {
		s, err := o.Open(b, time.Now())
		return s.Inner, err
	}
}

func TestReceive(t *testing.T) {
	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 100_000, FPRate: 0.01})
	require.NoError(t, err)
	stream, data := answer(t, f.Fingerprint(), 1000, 300, nil)
	rows, changed, err := Receive(f, wire.NewFrameReader(bytes.NewReader(stream), 4096), 1, nil, func() {})
	require.NoError(t, err)
	assert.Equal(t, 1000, rows)
	assert.Equal(t, 1000, changed)
	got, _ := f.CopyRows(nil, 0, 1000)
	assert.Equal(t, data, got)

	// With a key every frame must open; an unsealed one ends the pull.
	k, _ := auth.Generate()
	ring, _ := auth.NewKeyring([]auth.Key{k})
	_, _, err = Receive(f, wire.NewFrameReader(bytes.NewReader(stream), 4096), 1, opener(ring), func() {})
	assert.Error(t, err)
	sealed, _ := answer(t, f.Fingerprint(), 1000, 300, auth.NewSealer(ring))
	rows, changed, err = Receive(f, wire.NewFrameReader(bytes.NewReader(sealed), 4096), 1, opener(ring), func() {})
	require.NoError(t, err)
	assert.Equal(t, 1000, rows)
	assert.Zero(t, changed, "every row there already")

	// A refusal ends it, saying why; busy is told apart.
	busy, _ := wire.AppendError(nil, wire.ErrorFrame{Code: wire.CodeBusy, Msg: []byte("serving other pulls")})
	_, _, err = Receive(f, wire.NewFrameReader(bytes.NewReader(busy), 4096), 1, nil, func() {})
	assert.True(t, Busy(err))
	assert.EqualError(t, err, "pull refused: serving other pulls")
	_, _, err = Receive(f, wire.NewFrameReader(bytes.NewReader(stream[:len(stream)/2]), 4096), 1, nil, func() {})
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut short")
	assert.False(t, Busy(err))
}

// BenchmarkReceive receives the answer to a pull — 8 MiB of rows in row
// sync frames of 1 MiB, then pull done — from a stream, as a node filling
// itself from a member does: read, checked with a key, merged. With a
// key, checking a frame's tag overlaps merging the frame before.
//
//	go test -run '^$' -bench Receive -count 6 ./internal/pull | benchstat -col /key -
func BenchmarkReceive(b *testing.B) {
	for _, rowsNew := range []bool{true, false} {
		for _, withKey := range []bool{false, true} {
			name := fmt.Sprintf("rows=%s/key=%s", map[bool]string{true: "new", false: "same"}[rowsNew],
				map[bool]string{true: "sealed", false: "none"}[withKey])
			b.Run(name, func(b *testing.B) { benchReceive(b, rowsNew, withKey) })
		}
	}
}

func benchReceive(b *testing.B, rowsNew, withKey bool) {
	const rows = 8 << 14 // × 64 B = 8 MiB
	f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 8_000_000, FPRate: 0.01})
	require.NoError(b, err)
	var ring *auth.Keyring
	var sealer *auth.Sealer
	if withKey {
		k, _ := auth.Generate()
		ring, _ = auth.NewKeyring([]auth.Key{k})
		sealer = auth.NewSealer(ring)
	}
	stream, data := answer(b, f.Fingerprint(), rows, (wire.MaxFrame-wire.SealedOverhead-64)/f.RowBytes(), sealer)
	receive := func() {
		var open func([]byte) ([]byte, error)
		if withKey {
			open = opener(ring) // the same sequences are fresh again
		}
		got, _, err := Receive(f, wire.NewFrameReader(bytes.NewReader(stream), 64<<10), 1, open, func() {})
		if err != nil || got != rows {
			b.Fatalf("received %d rows: %v", got, err)
		}
	}
	if !rowsNew {
		receive()
	}
	zeros := make([]byte, int(f.Rows())*f.RowBytes())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if rowsNew {
			b.StopTimer()
			require.NoError(b, f.LoadRows(f.Fingerprint(), 0, zeros))
			b.StartTimer()
		}
		receive()
	}
}
