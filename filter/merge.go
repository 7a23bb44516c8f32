package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
)

// Errors of MergeRows and CopyRows.
var (
	ErrRowRange  = errors.New("filter: rows out of range")
	ErrRowLength = errors.New("filter: row data is not a whole number of rows")
)

// Rows travel as RowBytes() bytes each: bit j of a row is bit j%8 of byte
// j/8, i.e. the row's 64-bit words in little-endian order, cut to W/8 bytes.

// MergeRows ORs the rows in data into the filter, starting at row first,
// and appends to changed the index of every row that gained a bit. Merging
// is refused, with nothing changed, when fp differs from the filter's
// fingerprint or the rows do not fit: a merge never grows the filter.
func (f *Filter) MergeRows(fp Fingerprint, first uint64, data []byte, changed []uint64) ([]uint64, error) {
	if fp != f.fp {
		return changed, fmt.Errorf("%w: have %v, got %v", ErrFingerprint, f.fp, fp)
	}
	rb := uint64(f.RowBytes())
	if uint64(len(data))%rb != 0 {
		return changed, fmt.Errorf("%w: %d bytes, rows are %d", ErrRowLength, len(data), rb)
	}
	n := uint64(len(data)) / rb
	if first > f.rows || n > f.rows-first {
		return changed, fmt.Errorf("%w: rows %d..%d of %d", ErrRowRange, first, first+n, f.rows)
	}
	for i := uint64(0); i < n; {
		r := first + i
		g := min(16-r%16, n-i) // the rows up to the end of r's word of marks
		ch := f.mergeGroup(r, data[i*rb:(i+g)*rb])
		if ch != 0 {
			f.markRows(r/16, ch, false)
			for b := ch; b != 0; b &= b - 1 {
				changed = append(changed, r&^15+uint64(bits.TrailingZeros16(b)))
			}
		}
		i += g
	}
	return changed, nil
}

// mergeGroup ORs rows into the filter from row first, all of one word of
// marks, and returns which of them gained a bit (bit j: row first&^15 + j).
func (f *Filter) mergeGroup(first uint64, data []byte) uint16 {
	rb := uint64(f.RowBytes())
	n := uint64(len(data)) / rb
	var ch uint16
	set := 0
	if rb != 64 { // classic rows: a few bytes, the slow way will do
		mu := f.stripe(first)
		mu.Lock()
		for i := range n {
			if k := f.orRow(first+i, data[i*rb:(i+1)*rb]); k > 0 {
				ch |= 1 << ((first + i) % 16)
				set += k
			}
		}
		mu.Unlock()
		f.counted(set)
		return ch
	}
	var mu *sync.Mutex // taken at the first row that brings a bit
	for i := range n {
		r := first + i
		row, src := (*[8]uint64)(f.words[r*8:r*8+8]), (*[64]byte)(data[i*64:])
		if mu == nil {
			if !lineMissing(row, src) {
				continue
			}
			mu = f.stripe(first)
			mu.Lock()
		}
		if k := orLine(row, src, f.counting); k > 0 {
			ch |= 1 << (r % 16)
			set += k
		}
	}
	if mu != nil {
		mu.Unlock()
	}
	f.counted(set)
	return ch
}

// orRow ORs one encoded row into row r and returns how many bits were
// new. The caller holds the row's stripe lock.
func (f *Filter) orRow(r uint64, src []byte) int {
	row := f.words[r*f.wpr : (r+1)*f.wpr]
	changed := 0
	for w := range row {
		var v uint64
		if len(src) >= 8 {
			v = binary.LittleEndian.Uint64(src)
			src = src[8:]
		} else {
			var tail [8]byte
			copy(tail[:], src)
			v = binary.LittleEndian.Uint64(tail[:])
			src = nil
		}
		if v != 0 {
			changed += orWord(&row[w], v)
		}
	}
	return changed
}

// LoadRows ORs the rows in data into the filter from row first, like
// MergeRows, but with plain loads and stores and without counting them as
// changes: it is for filling a filter from disk before anything else uses
// it, where atomic read-modify-writes and stamping every row would cost
// several times the reading. ChangedRuns(0) finds loaded rows all the
// same. Never call it on a filter that is being served.
func (f *Filter) LoadRows(fp Fingerprint, first uint64, data []byte) error {
	if fp != f.fp {
		return fmt.Errorf("%w: have %v, got %v", ErrFingerprint, f.fp, fp)
	}
	rb := uint64(f.RowBytes())
	if uint64(len(data))%rb != 0 {
		return fmt.Errorf("%w: %d bytes, rows are %d", ErrRowLength, len(data), rb)
	}
	n := uint64(len(data)) / rb
	if first > f.rows || n > f.rows-first {
		return fmt.Errorf("%w: rows %d..%d of %d", ErrRowRange, first, first+n, f.rows)
	}
	f.noteLoaded()
	f.counting = false // CountBits again once loaded
	if rb%8 != 0 {     // classic rows: a few bytes, the slow way will do
		for i := range n {
			f.orRow(first+i, data[i*rb:(i+1)*rb])
		}
		return nil
	}
	words := f.words[first*f.wpr : (first+n)*f.wpr]
	for len(words) > 0 && len(data) >= 8 {
		words[0] |= binary.LittleEndian.Uint64(data)
		words, data = words[1:], data[8:]
	}
	return nil
}

// CopyRows appends count rows starting at first to dst, in MergeRows form.
// Each word is read atomically; since bits only ever get set, the copy
// holds every bit set before the call and possibly some set during it.
func (f *Filter) CopyRows(dst []byte, first, count uint64) ([]byte, error) {
	if first > f.rows || count > f.rows-first {
		return dst, fmt.Errorf("%w: rows %d..%d of %d", ErrRowRange, first, first+count, f.rows)
	}
	rb := f.RowBytes()
	for r := first; r < first+count; r++ {
		row := f.words[r*f.wpr : (r+1)*f.wpr]
		left := rb
		for w := range row {
			v := atomic.LoadUint64(&row[w])
			if left >= 8 {
				dst = binary.LittleEndian.AppendUint64(dst, v)
				left -= 8
				continue
			}
			for ; left > 0; left-- {
				dst = append(dst, byte(v))
				v >>= 8
			}
		}
	}
	return dst, nil
}
