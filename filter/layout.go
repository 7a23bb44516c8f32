package filter

import (
	"fmt"
	"math/bits"

	"github.com/zeebo/xxh3"
)

// Layout names how keys map to bit positions.
type Layout uint8

// Layouts. The values travel on the wire inside fingerprints: never renumber.
const (
	// Classic is the original rmbd filter: 5 rows × 400 bits, FNV-1a-32.
	Classic Layout = 1
	// Blocked is the default: 512-bit rows, xxh3-64, k bits in one row.
	Blocked Layout = 2
)

// String returns the layout's name as flags and logs spell it.
func (l Layout) String() string {
	switch l {
	case Classic:
		return "classic"
	case Blocked:
		return "blocked"
	}
	return fmt.Sprintf("layout(%d)", uint8(l))
}

// Hash names the key hash function of a layout.
type Hash uint8

// Hash functions. The values travel on the wire: never renumber.
const (
	// FNV1a32 is FNV-1a, 32 bits, with the row index as offset basis.
	FNV1a32 Hash = 1
	// XXH3 is xxh3-64 with the filter's seed.
	XXH3 Hash = 2
)

// String returns the hash's name.
func (h Hash) String() string {
	switch h {
	case FNV1a32:
		return "fnv1a32"
	case XXH3:
		return "xxh3-64"
	}
	return fmt.Sprintf("hash(%d)", uint8(h))
}

const (
	// ClassicRows and ClassicRowBits are the shape of the classic filter.
	ClassicRows    = 5
	ClassicRowBits = 400

	fnvPrime = 16777619
	// positionBits is log2(BlockedRowBits): each in-row position takes 9 bits.
	positionBits = 9
	// positionsPerWord is how many 9-bit positions one 64-bit value yields.
	positionsPerWord = 64 / positionBits
	golden           = 0x9e3779b97f4a7c15
)

// ClassicColumn is the column of key in classic row, i.e.
// FNV-1a-32(key, offset basis = row) mod 400.
func ClassicColumn(key []byte, row int) int {
	h := uint32(row)
	for _, b := range key {
		h ^= uint32(b)
		h *= fnvPrime
	}
	return int(h % ClassicRowBits)
}

// mix is the splitmix64 finalizer: a bijection with good avalanche, used to
// draw in-row positions from the key hash independently of the row choice.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// blockedRow picks a row for hash h by multiply-shift: the high word of
// h × rows, uniform over [0, rows) without a division.
func blockedRow(h, rows uint64) uint64 {
	hi, _ := bits.Mul64(h, rows)
	return hi
}

// blockedHash is the 64-bit key hash of the blocked layout.
func blockedHash(key []byte, seed uint64) uint64 {
	return xxh3.HashSeed(key, seed)
}

// positions draws a key's in-row bit positions from its hash: 9 bits at a
// time from mix(h), then from mix(h + i·golden) once those run out, so
// that positions are independent of the row, which the hash's high bits
// chose.
type positions struct {
	h, v uint64
	n    int
}

func newPositions(h uint64) positions { return positions{h: h, v: mix(h)} }

// next returns the i'th position; call it with i = 0, 1, 2, ….
func (p *positions) next(i int) uint64 {
	if p.n == positionsPerWord {
		p.v, p.n = mix(p.h+uint64(i)*golden), 0
	}
	pos := p.v & (BlockedRowBits - 1)
	p.v >>= positionBits
	p.n++
	return pos
}
