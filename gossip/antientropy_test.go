package gossip

import (
	"testing"

	"github.com/bits-and-blooms/bitset"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pullAll serves local's pull of runs from remote, merging every frame
// into local; it returns the rows sent.
func pullAll(t *testing.T, local, remote *filter.Filter, runs []filter.Run) int {
	t.Helper()
	req, err := wire.AppendPull(nil, remote.Fingerprint(), runs)
	require.NoError(t, err)
	p, err := wire.DecodePull(req)
	require.NoError(t, err)
	sent, err := ServePull(remote, p, wire.MaxFrame, func(frame []byte) error {
		s, err := wire.DecodeRowSync(frame)
		require.NoError(t, err)
		_, _, err = MergeRowSync(local, s, nil)
		return err
	})
	require.NoError(t, err)
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
	pullAll(t, local, remote, runs)
	assert.True(t, local.Has([]byte("before")))
	assert.True(t, local.Has([]byte("after")))
}
