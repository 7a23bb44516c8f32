package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	for i := range n {
		r := first + i
		var ch bool
		if rb == 64 {
			ch = f.mergeLine(r, (*[64]byte)(data[i*64:]))
		} else {
			ch = f.mergeRow(r, data[i*rb:(i+1)*rb])
		}
		if ch {
			f.markChanged(r, false)
			changed = append(changed, r)
		}
	}
	return changed, nil
}

// mergeLine is mergeRow for a 512-bit row. Most merged rows bring nothing
// new (resends, anti-entropy), so it first checks the whole line without a
// branch per word and writes only when some bit is missing.
func (f *Filter) mergeLine(r uint64, src *[64]byte) bool {
	row := (*[8]uint64)(f.words[r*8 : r*8+8])
	le := binary.LittleEndian
	v := [8]uint64{
		le.Uint64(src[0:]), le.Uint64(src[8:]), le.Uint64(src[16:]), le.Uint64(src[24:]),
		le.Uint64(src[32:]), le.Uint64(src[40:]), le.Uint64(src[48:]), le.Uint64(src[56:]),
	}
	missing := v[0]&^atomic.LoadUint64(&row[0]) | v[1]&^atomic.LoadUint64(&row[1]) |
		v[2]&^atomic.LoadUint64(&row[2]) | v[3]&^atomic.LoadUint64(&row[3]) |
		v[4]&^atomic.LoadUint64(&row[4]) | v[5]&^atomic.LoadUint64(&row[5]) |
		v[6]&^atomic.LoadUint64(&row[6]) | v[7]&^atomic.LoadUint64(&row[7])
	if missing == 0 {
		return false
	}
	for w := range v {
		if v[w]&^atomic.LoadUint64(&row[w]) != 0 {
			atomic.OrUint64(&row[w], v[w])
		}
	}
	return true
}

// mergeRow ORs one encoded row into row r and reports whether it changed.
func (f *Filter) mergeRow(r uint64, src []byte) bool {
	row := f.words[r*f.wpr : (r+1)*f.wpr]
	changed := false
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
		if v == 0 {
			continue
		}
		if cur := atomic.LoadUint64(&row[w]); cur|v != cur {
			atomic.OrUint64(&row[w], v)
			changed = true
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
	if rb%8 != 0 { // classic rows: a few bytes, the slow way will do
		for i := range n {
			f.mergeRow(first+i, data[i*rb:(i+1)*rb])
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
