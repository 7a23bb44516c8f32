package filter

import (
	"encoding/binary"
	"math/bits"
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

// orMasks ORs masks into the 512-bit row and returns how many bits were
// new — counted when count is true, else 1 for any. The caller holds the
// row's stripe lock.
//
//go:norace
func orMasks(row *[8]uint64, v *[8]uint64, count bool) int {
	if v[0]&^row[0]|v[1]&^row[1]|v[2]&^row[2]|v[3]&^row[3]|
		v[4]&^row[4]|v[5]&^row[5]|v[6]&^row[6]|v[7]&^row[7] == 0 {
		return 0
	}
	n := 1
	if count {
		n = newBits(row, *v)
	}
	for w := range v {
		row[w] |= v[w]
	}
	return n
}

// orLine ORs a 512-bit row in MergeRows form into row and returns how
// many bits were new (as orMasks does); when none is, it writes nothing,
// so that a page mapped from disk stays clean. The caller holds the row's
// stripe lock.
//
//go:norace
func orLine(row *[8]uint64, src *[64]byte, count bool) int {
	le := binary.LittleEndian
	v := [8]uint64{
		le.Uint64(src[0:]), le.Uint64(src[8:]), le.Uint64(src[16:]), le.Uint64(src[24:]),
		le.Uint64(src[32:]), le.Uint64(src[40:]), le.Uint64(src[48:]), le.Uint64(src[56:]),
	}
	if v[0]&^row[0]|v[1]&^row[1]|v[2]&^row[2]|v[3]&^row[3]|
		v[4]&^row[4]|v[5]&^row[5]|v[6]&^row[6]|v[7]&^row[7] == 0 {
		return 0
	}
	n := 1
	if count {
		n = newBits(row, v)
	}
	for w := range v {
		row[w] |= v[w]
	}
	return n
}

// newBits counts the bits of v row lacks.
//
//go:norace
func newBits(row *[8]uint64, v [8]uint64) int {
	return bits.OnesCount64(v[0]&^row[0]) + bits.OnesCount64(v[1]&^row[1]) +
		bits.OnesCount64(v[2]&^row[2]) + bits.OnesCount64(v[3]&^row[3]) +
		bits.OnesCount64(v[4]&^row[4]) + bits.OnesCount64(v[5]&^row[5]) +
		bits.OnesCount64(v[6]&^row[6]) + bits.OnesCount64(v[7]&^row[7])
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

// orWord ORs v into *w and returns how many bits were new. The caller
// holds the word's stripe lock.
//
//go:norace
func orWord(w *uint64, v uint64) int {
	n := bits.OnesCount64(v &^ *w)
	if n > 0 {
		*w |= v
	}
	return n
}

// counted adds n bits set to the filter's count, when it keeps one
// (CountBits).
func (f *Filter) counted(n int) {
	if f.counting && n > 0 {
		f.setBits.Add(uint64(n))
	}
}

// CountBits makes the filter count its set bits as they are set, from
// what it holds now, so that SetBits costs a load: for filters whose
// fill decides something on every add (a stage that grows). Each write
// then costs an atomic add on one shared word. Call it before the filter
// is shared.
func (f *Filter) CountBits() {
	f.setBits.Store(f.scanBits())
	f.counting = true
}

// SetBits returns how many bits are set: the count CountBits keeps, or
// a count of every word without it.
func (f *Filter) SetBits() uint64 {
	if f.counting {
		return f.setBits.Load()
	}
	return f.scanBits()
}

// scanBits counts the set bits of every word.
func (f *Filter) scanBits() uint64 {
	var n uint64
	for i := range f.words {
		n += uint64(bits.OnesCount64(atomic.LoadUint64(&f.words[i])))
	}
	return n
}
