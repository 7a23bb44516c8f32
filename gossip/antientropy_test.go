package gossip

import (
	"fmt"
	"testing"

	"github.com/bits-and-blooms/bitset"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pullAll serves local's pull of runs from remote, in frames of at most
// maxFrame bytes, merging every frame into local as a receiver would; it
// returns the rows sent. Runs beyond one pull frame's limit go in several,
// as the node sends them.
func pullAll(t *testing.T, local, remote *filter.Filter, runs []filter.Run, maxFrame int) int {
	t.Helper()
	sent := 0
	for len(runs) > 0 {
		k := min(len(runs), wire.MaxPullRuns)
		req, err := wire.AppendPull(nil, remote.Fingerprint(), runs[:k])
		require.NoError(t, err)
		runs = runs[k:]
		p, err := wire.DecodePull(req)
		require.NoError(t, err)
		n, err := ServePull(remote, p, maxFrame, func(frame []byte) error {
			require.LessOrEqual(t, len(frame), maxFrame)
			s, err := wire.DecodeRowSync(frame)
			require.NoError(t, err, "the receiver refuses a frame")
			_, _, err = MergeRowSync(local, s, nil, false)
			return err
		})
		require.NoError(t, err)
		sent += n
	}
	return sent
}

func TestDifferingFindsTheBlocksThatDiffer(t *testing.T) {
	mk := func() *filter.Filter {
		f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 500_000, FPRate: 0.01})
		require.NoError(t, err)
		return f
	}
	a, b := mk(), mk()
	require.Greater(t, a.Rows(), uint64(5*DigestBlockRows))
	runs, err := Differing(a, AppendDigests(nil, b))
	require.NoError(t, err)
	assert.Empty(t, runs, "equal filters")

	b.MergeRows(b.Fingerprint(), 5, make([]byte, 64), nil) // nothing: still equal
	row := make([]byte, 64)
	row[0] = 1
	for _, r := range []uint64{3, DigestBlockRows + 1, 4 * DigestBlockRows} {
		_, err := b.MergeRows(b.Fingerprint(), r, row, nil)
		require.NoError(t, err)
	}
	runs, err = Differing(a, AppendDigests(nil, b))
	require.NoError(t, err)
	assert.Equal(t, []filter.Run{{First: 0, Count: 2 * DigestBlockRows}, {First: 4 * DigestBlockRows, Count: DigestBlockRows}}, runs,
		"blocks 0 and 1 in one run, then block 4")

	_, err = Differing(a, AppendDigests(nil, filter.NewClassic()))
	assert.ErrorIs(t, err, filter.ErrFingerprint)
	_, err = Differing(a, []byte{0x16, 0, 0})
	assert.ErrorIs(t, err, ErrDigest)
}

func TestBlockRunsCutsTheLastBlock(t *testing.T) {
	set := bitset.New(3)
	set.Set(1).Set(2)
	assert.Equal(t, []filter.Run{{First: 10, Count: 15}}, blockRuns(set, 10, 25))
	assert.Empty(t, blockRuns(bitset.New(4), 10, 40))
}

// Rows changed since the server's last tick are dirty, not yet stamped:
// a pull serves them all the same.
func TestPullServesRowsChangedSinceTheLastTick(t *testing.T) {
	remote, local := blocked(t)(), blocked(t)()
	remote.Add([]byte("before"))
	remote.Advance()
	remote.Add([]byte("after")) // no Advance since
	runs, err := Differing(local, AppendDigests(nil, remote))
	require.NoError(t, err)
	pullAll(t, local, remote, runs, wire.MaxFrame)
	assert.True(t, local.Has([]byte("before")))
	assert.True(t, local.Has([]byte("after")))
}

// Repair works at any density: an empty filter that pulls what differs
// from a full one ends equal to it, whatever the shape of its rows —
// from one key to several times the capacity, and the worst shape for
// framing, one bit in every other row — in both layouts, in frames a
// receiver accepts, whether they are a megabyte or a datagram.
func TestRepairAtEveryDensity(t *testing.T) {
	const capacity = 500_000 // ~9,700 rows: every other row set is more runs than a frame may hold
	mk := func(layout filter.Layout) *filter.Filter {
		if layout == filter.Classic {
			return filter.NewClassic()
		}
		f, err := filter.New(filter.Config{Layout: filter.Blocked, Capacity: capacity, FPRate: 0.01})
		require.NoError(t, err)
		return f
	}
	type shape struct {
		name string
		fill func(f *filter.Filter)
	}
	keys := func(n int) shape {
		return shape{fmt.Sprintf("%d keys", n), func(f *filter.Filter) {
			for i := range n {
				f.Add(k("density", i))
			}
		}}
	}
	everyOther := shape{"one bit in every other row", func(f *filter.Filter) {
		row := make([]byte, f.RowBytes())
		row[0] = 1
		for r := uint64(0); r < f.Rows(); r += 2 {
			_, err := f.MergeRows(f.Fingerprint(), r, row, nil)
			require.NoError(t, err)
		}
	}}
	for _, layout := range []filter.Layout{filter.Classic, filter.Blocked} {
		for _, sh := range []shape{keys(1), keys(10), keys(1000), keys(capacity / 10), keys(capacity), everyOther} {
			for _, maxFrame := range []int{wire.MaxFrame, wire.MaxDatagram} {
				t.Run(fmt.Sprintf("%v/%s/%d", layout, sh.name, maxFrame), func(t *testing.T) {
					remote, local := mk(layout), mk(layout)
					sh.fill(remote)
					runs, err := Differing(local, AppendDigests(nil, remote))
					require.NoError(t, err)
					pullAll(t, local, remote, runs, maxFrame)
					want, _ := remote.CopyRows(nil, 0, remote.Rows())
					got, _ := local.CopyRows(nil, 0, local.Rows())
					require.Equal(t, want, got, "the pull made the filters equal")
				})
			}
		}
	}
}

func TestPullRunsAreValidated(t *testing.T) {
	f := blocked(t)()
	f.Add([]byte("x"))
	for name, runs := range map[string][]filter.Run{
		"overlapping":   {{First: 0, Count: 10}, {First: 5, Count: 10}},
		"out of order":  {{First: 20, Count: 1}, {First: 0, Count: 1}},
		"past the end":  {{First: f.Rows() - 1, Count: 2}},
		"starts beyond": {{First: f.Rows(), Count: 1}},
	} {
		req, err := wire.AppendPull(nil, f.Fingerprint(), runs)
		require.NoError(t, err)
		p, err := wire.DecodePull(req)
		require.NoError(t, err)
		sent := 0
		_, err = ServePull(f, p, wire.MaxFrame, func([]byte) error { sent++; return nil })
		assert.Error(t, err, name)
		assert.Zero(t, sent, "%s: refused before anything is sent", name)
	}
}
