package wire

import (
	"encoding/binary"
	"math/bits"

	"github.com/rmbd/rmbd/filter"
)

// A sparse row sync carries rows as the positions of their set bits: a
// row of a filter well under its capacity has a few dozen bits of 512
// set, so it travels in a quarter of its 64 bytes or less. A row with
// more bits set travels whole. Members that flag it in their metadata
// (MetaSparseRows) get rows so; it decodes into the same RowSync as a
// row sync, and is acknowledged alike.

// MaxSparseRows bounds the rows of one sparse row sync.
const MaxSparseRows = MaxSyncRuns

// SparseSyncWriter builds a sparse row sync frame row by row.
type SparseSyncWriter struct {
	// Buf is the frame so far.
	Buf    []byte
	start  int
	rowsAt int
	rows   int
	last   uint32 // the last row written
	w      int    // bits per row
	entry  []byte // scratch
}

// Begin starts a sparse row sync frame at the end of dst.
func (w *SparseSyncWriter) Begin(dst []byte, fp filter.Fingerprint, stamp uint64, seq uint32) {
	w.Buf, w.start = beginExt(dst, TypeSparseSync)
	w.Buf, _ = fp.AppendBinary(w.Buf)
	w.Buf = binary.BigEndian.AppendUint64(w.Buf, stamp)
	w.Buf = binary.BigEndian.AppendUint32(w.Buf, seq)
	w.rowsAt = len(w.Buf)
	w.Buf = append(w.Buf, 0, 0)
	w.rows, w.last, w.w = 0, 0, int(fp.RowBits)
}

// Size returns the frame's length so far.
func (w *SparseSyncWriter) Size() int { return len(w.Buf) - w.start }

// Rows returns the rows written.
func (w *SparseSyncWriter) Rows() int { return w.rows }

// Row appends row r, whose bytes are data (RowBytes of the fingerprint,
// in MergeRows form), if its entry fits within max bytes of frame; it
// reports whether it did. Rows must come in ascending order; a row with
// no bit set is never needed and is skipped (reported written).
func (w *SparseSyncWriter) Row(r uint32, data []byte, max int) bool {
	if w.rows > 0 && r <= w.last || len(data) != w.w/8 || w.rows == MaxSparseRows {
		return false
	}
	gap := uint64(r)
	if w.rows > 0 {
		gap = uint64(r - w.last - 1)
	}
	e := binary.AppendUvarint(w.entry[:0], gap)
	set := 0
	for _, c := range data {
		set += bits.OnesCount8(c)
	}
	if set == 0 {
		return true
	}
	if sparse := set * 2; sparse >= len(data) { // at most 2 bytes a position: whole is no larger
		e = append(binary.AppendUvarint(e, 0), data...)
	} else {
		e = binary.AppendUvarint(e, uint64(set))
		prev := -1
		for i, c := range data {
			for ; c != 0; c &= c - 1 {
				pos := i*8 + bits.TrailingZeros8(c)
				e = binary.AppendUvarint(e, uint64(pos-prev-1))
				prev = pos
			}
		}
	}
	w.entry = e
	if w.Size()+len(e) > max {
		return false
	}
	w.Buf = append(w.Buf, e...)
	w.rows++
	w.last = r
	return true
}

// Finish completes the frame and returns the whole buffer. It fails,
// returning the buffer as it was before Begin, when no row was written.
func (w *SparseSyncWriter) Finish() ([]byte, error) {
	if w.rows == 0 {
		return w.Buf[:w.start], frameErr(TypeSparseSync, w.start, ErrValue)
	}
	binary.BigEndian.PutUint16(w.Buf[w.rowsAt:], uint16(w.rows))
	return endExt(w.Buf, w.start)
}

// AppendSparseSync appends a sparse row sync frame holding rows, each a
// run of one row, ascending; rows with no bit set are left out.
func AppendSparseSync(dst []byte, fp filter.Fingerprint, stamp uint64, seq uint32, rows []RowRun) ([]byte, error) {
	var w SparseSyncWriter
	w.Begin(dst, fp, stamp, seq)
	for _, r := range rows {
		if !w.Row(r.First, r.Rows, HeaderSize+MaxFrameBody) {
			return dst, frameErr(TypeSparseSync, len(dst), ErrValue)
		}
	}
	return w.Finish()
}

// decodeSparseSync decodes a sparse row sync frame, checking every entry:
// rows ascending, positions ascending and inside the row, whole rows of
// RowBytes, nothing left over.
func decodeSparseSync(b []byte) (RowSync, error) {
	r, s, rb, n := rowSyncHead(b, TypeSparseSync, MaxSparseRows)
	start := r.Offset()
	row := uint64(0)
	for i := 0; i < n && r.Err() == nil; i++ {
		at := r.Offset()
		gap := r.Uvarint()
		switch {
		case i == 0 && gap <= 1<<32-1:
			row = gap
		case i > 0 && gap < 1<<32-1-row: // row + gap + 1 fits 32 bits, and never wraps
			row += gap + 1
		default:
			r.FailAt(at, ErrValue)
		}
		if r.Err() != nil {
			break
		}
		at = r.Offset()
		set := r.Uvarint()
		if set == 0 {
			ones := 0
			for _, c := range r.Bytes(rb) {
				ones += bits.OnesCount8(c)
			}
			r.check(ones*2 < rb, rb, ErrValue) // such a row travels as positions
			continue
		}
		if set*2 >= uint64(rb) { // such a row travels whole
			r.FailAt(at, ErrValue)
			break
		}
		pos := -1
		for range set {
			at = r.Offset()
			pos += int(min(r.Uvarint(), 1<<20)) + 1
			if pos >= int(s.FP.RowBits) {
				r.FailAt(at, ErrValue)
				break
			}
		}
	}
	if err := r.done(); err != nil {
		return RowSync{}, err
	}
	s.Runs = RowRuns{n: n, rb: rb, raw: b[start:], sparse: true}
	return s, nil
}

// sparseRows yields the rows of a validated sparse body, each as its
// bytes in MergeRows form (in a buffer reused from row to row).
func (r RowRuns) sparseRows(yield func(uint32, []byte) bool) {
	row := make([]byte, r.rb)
	c := Cursor{buf: r.raw}
	var at uint64
	for i := range r.n {
		gap := c.Uvarint()
		if i == 0 {
			at = gap
		} else {
			at += gap + 1
		}
		data := row
		if set := c.Uvarint(); set == 0 {
			data = c.Bytes(r.rb)
		} else {
			clear(row)
			pos := -1
			for range set {
				pos += int(c.Uvarint()) + 1
				row[pos/8] |= 1 << (pos % 8)
			}
		}
		if !yield(uint32(at), data) {
			return
		}
	}
}
