package filter

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeebo/xxh3"
)

// Bit positions are a contract between nodes: two builds that place a key
// differently but share a fingerprint would silently disagree about every
// bit. These tests pin the blocked layout's placement.

// place returns the row and the k in-row positions of key in a blocked
// filter of rows rows with the given seed, as Add and Has compute them.
func place(key []byte, seed, rows uint64, k int) (uint64, []uint64) {
	h := blockedHash(key, seed)
	ps := newPositions(h)
	pos := make([]uint64, k)
	for i := range pos {
		pos[i] = ps.next(i)
	}
	return blockedRow(h, rows), pos
}

func TestBlockedGoldenVectors(t *testing.T) {
	golden := []struct {
		key  string
		seed uint64
		rows uint64
		row  uint64
		pos  []uint64 // k = 10: the first 7 come from mix(h), the rest from mix(h+i·golden)
	}{
		{"", 0, 1000, 175, []uint64{432, 298, 142, 307, 421, 318, 278, 89, 173, 196}},
		{"abc", 0, 1000, 471, []uint64{130, 115, 454, 301, 274, 51, 320, 315, 422, 126}},
		{"key", 0, 1 << 20, 769696, []uint64{167, 370, 365, 463, 18, 464, 385, 12, 340, 320}},
		{"rmbd", 0x9e3779b97f4a7c15, 19171, 965, []uint64{1, 194, 109, 273, 406, 284, 300, 394, 83, 413}},
		{"alice", 42, 1, 0, []uint64{335, 64, 477, 53, 79, 326, 396, 281, 440, 490}},
	}
	for _, g := range golden {
		row, pos := place([]byte(g.key), g.seed, g.rows, len(g.pos))
		assert.Equal(t, g.row, row, "row of %q, seed %#x, %d rows", g.key, g.seed, g.rows)
		assert.Equal(t, g.pos, pos, "positions of %q, seed %#x", g.key, g.seed)

		// And the filter sets exactly those bits.
		f := newFilter(Fingerprint{Layout: Blocked, Hash: XXH3, K: uint8(len(g.pos)), RowBits: BlockedRowBits, Rows: uint32(g.rows), Seed: g.seed})
		f.Add([]byte(g.key))
		b, err := f.CopyRows(nil, row, 1)
		require.NoError(t, err)
		var want [64]byte
		for _, p := range g.pos {
			want[p/8] |= 1 << (p % 8)
		}
		assert.Equal(t, want[:], b, "bits of %q", g.key)
	}
}

// placementDigests pins the whole placement, per version: a hash of the
// row and 32 positions of 20,000 keys under several seeds and sizes. A
// change to placement must come with a new BlockedVersion and its digest.
var placementDigests = map[uint8]uint64{
	0: 0xfe8c2f3b2098bd7f,
}

func placementDigest() uint64 {
	var buf []byte
	for _, shape := range []struct{ seed, rows uint64 }{{0, 1}, {0, 977}, {7, 1 << 20}, {0x9e3779b97f4a7c15, math.MaxUint32}} {
		for i := range 5000 {
			row, pos := place(fmt.Appendf(nil, "key-%d", i), shape.seed, shape.rows, MaxK)
			buf = binary.BigEndian.AppendUint64(buf, row)
			for _, p := range pos {
				buf = binary.BigEndian.AppendUint16(buf, uint16(p))
			}
		}
	}
	return xxh3.Hash(buf)
}

func TestPlacementChangeNeedsNewVersion(t *testing.T) {
	want, ok := placementDigests[BlockedVersion]
	require.True(t, ok, "BlockedVersion %d has no pinned placement digest: add one", BlockedVersion)
	got := placementDigest()
	assert.Equal(t, want, got, "the blocked layout's placement changed while BlockedVersion is still %d: "+
		"bump BlockedVersion (nodes of two builds must not merge) and pin %#x for it", BlockedVersion, got)
	f := newBlocked(t, 1000, 0.01)
	assert.Equal(t, uint8(BlockedVersion), f.Fingerprint().Version, "filters carry the version")
}

// chiSquareOK reports whether counts (expected equal in every bin) pass a
// chi-square test of uniformity at the 0.1% level, using the
// Wilson–Hilferty approximation of the critical value.
func chiSquareOK(t *testing.T, what string, counts []int) {
	t.Helper()
	total := 0
	for _, c := range counts {
		total += c
	}
	exp := float64(total) / float64(len(counts))
	var chi float64
	for _, c := range counts {
		d := float64(c) - exp
		chi += d * d / exp
	}
	df := float64(len(counts) - 1)
	const z = 3.09 // one-sided 0.1%
	crit := df * math.Pow(1-2/(9*df)+z*math.Sqrt(2/(9*df)), 3)
	t.Logf("%s: chi² = %.1f, df = %.0f, critical = %.1f", what, chi, df, crit)
	assert.Less(t, chi, crit, "%s is not uniform", what)
}

func TestPlacementIsUniform(t *testing.T) {
	const keys, rows, k = 400_000, 1009, 8
	rowCounts := make([]int, rows)
	posCounts := make([]int, BlockedRowBits)
	slotCounts := make([][]int, k) // per draw i: is each draw uniform on its own?
	for i := range slotCounts {
		slotCounts[i] = make([]int, BlockedRowBits/8)
	}
	joint := make([]int, 8*8) // row mod 8 × first position / 64: independent?
	for i := range keys {
		row, pos := place(fmt.Appendf(nil, "u-%d", i), 1, rows, k)
		rowCounts[row]++
		for j, p := range pos {
			posCounts[p]++
			slotCounts[j][p/8]++
		}
		joint[int(row%8)*8+int(pos[0]/64)]++
	}
	chiSquareOK(t, "rows", rowCounts)
	chiSquareOK(t, "positions", posCounts)
	for j := range slotCounts {
		chiSquareOK(t, fmt.Sprintf("draw %d", j), slotCounts[j])
	}
	chiSquareOK(t, "row × position", joint)
}
