package filter

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// Writing bits.
//
// Every write to a filter's words is an OR, made under the lock of the
// stripe of stripeRows rows it falls in, with plain loads and stores;
// readers (Has, CopyRows, Stats) load words atomically without a lock.
// An OR is a read-modify-write, so two writers of one word must not
// interleave: the stripe lock keeps them apart. Readers need no lock,
// since an aligned word is stored whole and bits only ever get set: a
// reader sees each word before or after a write, never torn.
//
// One lock operation then covers up to 16 rows (a bulk merge: 1 KiB) or
// one key's bits, where an atomic OR per word cost a locked instruction
// per 8 bytes. Adds and merges rarely meet on a stripe: 256 rows is 16 KiB,
// and a stripe's lock costs 8 bytes of it.
//
// The plain accesses race, by the race detector's reading, with readers'
// atomic loads. They are kept to the functions marked go:norace below,
// which only ever run under their stripe's lock.

// stripeRows is how many rows one lock covers: a multiple of 16, so that
// the rows of one word of marks share a lock.
const stripeRows = 256

// newStripes returns the locks of a filter of rows rows.
func newStripes(rows uint64) []sync.Mutex {
	return make([]sync.Mutex, (rows+stripeRows-1)/stripeRows)
}

// stripe returns the lock of row r.
func (f *Filter) stripe(r uint64) *sync.Mutex { return &f.stripes[r/stripeRows] }

// orMasks ORs masks into the 512-bit row and reports whether a bit was
// new. The caller holds the row's stripe lock.
//
//go:norace
func orMasks(row *[8]uint64, v *[8]uint64) bool {
	if v[0]&^row[0]|v[1]&^row[1]|v[2]&^row[2]|v[3]&^row[3]|
		v[4]&^row[4]|v[5]&^row[5]|v[6]&^row[6]|v[7]&^row[7] == 0 {
		return false
	}
	for w := range v {
		row[w] |= v[w]
	}
	return true
}

// orLine ORs a 512-bit row in MergeRows form into row and reports whether
// a bit was new; when none is, it writes nothing, so that a page mapped
// from disk stays clean. The caller holds the row's stripe lock.
//
//go:norace
func orLine(row *[8]uint64, src *[64]byte) bool {
	le := binary.LittleEndian
	v := [8]uint64{
		le.Uint64(src[0:]), le.Uint64(src[8:]), le.Uint64(src[16:]), le.Uint64(src[24:]),
		le.Uint64(src[32:]), le.Uint64(src[40:]), le.Uint64(src[48:]), le.Uint64(src[56:]),
	}
	if v[0]&^row[0]|v[1]&^row[1]|v[2]&^row[2]|v[3]&^row[3]|
		v[4]&^row[4]|v[5]&^row[5]|v[6]&^row[6]|v[7]&^row[7] == 0 {
		return false
	}
	for w := range v {
		row[w] |= v[w]
	}
	return true
}

// lineMissing reports whether a 512-bit row in MergeRows form holds a bit
// row lacks, by atomic loads without the lock: most merged rows bring
// nothing new (resends, anti-entropy) and take no lock at all.
func lineMissing(row *[8]uint64, src *[64]byte) bool {
	le := binary.LittleEndian
	return le.Uint64(src[0:])&^atomic.LoadUint64(&row[0])|le.Uint64(src[8:])&^atomic.LoadUint64(&row[1])|
		le.Uint64(src[16:])&^atomic.LoadUint64(&row[2])|le.Uint64(src[24:])&^atomic.LoadUint64(&row[3])|
		le.Uint64(src[32:])&^atomic.LoadUint64(&row[4])|le.Uint64(src[40:])&^atomic.LoadUint64(&row[5])|
		le.Uint64(src[48:])&^atomic.LoadUint64(&row[6])|le.Uint64(src[56:])&^atomic.LoadUint64(&row[7]) != 0
}

// orWord ORs v into *w and reports whether a bit was new. The caller
// holds the word's stripe lock.
//
//go:norace
func orWord(w *uint64, v uint64) bool {
	if v&^*w == 0 {
		return false
	}
	*w |= v
	return true
}
