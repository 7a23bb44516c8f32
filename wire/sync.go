package wire

import (
	"encoding/binary"

	"github.com/rmbd/rmbd/filter"
)

const (
	// RowSyncHeaderSize is a row sync frame without its runs.
	RowSyncHeaderSize = HeaderSize + filter.FingerprintSize + 8 + 4 + 2
	// RunHeaderSize is the first row and row count before each run.
	RunHeaderSize = 4 + 2
	// MaxSyncRuns bounds the runs of one row sync frame.
	MaxSyncRuns = 4096
)

// RowSync is a decoded row sync frame: runs of rows of the filter with
// fingerprint FP, as of the sender's change generation Stamp. Seq tells
// apart the frames of one generation, so that acks can name them.
type RowSync struct {
	FP    filter.Fingerprint
	Stamp uint64
	Seq   uint32
	Runs  RowRuns
}

// RowRuns is a validated list of runs inside a row sync frame, or of
// rows inside a sparse row sync frame (sparse.go).
type RowRuns struct {
	n, rb  int
	raw    []byte
	sparse bool
}

// Len returns the number of runs (a sparse frame's rows are runs of one).
func (r RowRuns) Len() int { return r.n }

// Rows returns the total number of rows in all runs.
func (r RowRuns) Rows() int {
	if r.rb == 0 {
		return 0
	}
	if r.sparse {
		return r.n
	}
	return (len(r.raw) - r.n*RunHeaderSize) / r.rb
}

// All yields each run's first row and its rows (a sub-slice of the frame,
// RowBytes(fp) bytes per row; for a sparse frame, each row alone, in a
// buffer reused from row to row).
func (r RowRuns) All() func(yield func(first uint32, rows []byte) bool) {
	return func(yield func(uint32, []byte) bool) {
		if r.sparse {
			r.sparseRows(yield)
			return
		}
		b := r.raw
		for range r.n {
			first := binary.BigEndian.Uint32(b)
			end := RunHeaderSize + int(binary.BigEndian.Uint16(b[4:]))*r.rb
			if !yield(first, b[RunHeaderSize:end:end]) {
				return
			}
			b = b[end:]
		}
	}
}

// RowBytes is the size of one row of fingerprint fp on the wire.
func RowBytes(fp filter.Fingerprint) int { return int(fp.RowBits) / 8 }

// RowSyncWriter builds a row sync frame run by run, letting the caller
// append row bytes straight into the frame (e.g. with filter.CopyRows).
type RowSyncWriter struct {
	// Buf is the frame so far; after Run, append the run's rows to it.
	Buf    []byte
	start  int
	runsAt int
	runs   int
	rows   int // rows promised by run headers
	rb     int
}

// Begin starts a row sync frame at the end of dst.
func (w *RowSyncWriter) Begin(dst []byte, fp filter.Fingerprint, stamp uint64, seq uint32) {
	w.Buf, w.start = beginExt(dst, TypeRowSync)
	w.Buf, _ = fp.AppendBinary(w.Buf)
	w.Buf = binary.BigEndian.AppendUint64(w.Buf, stamp)
	w.Buf = binary.BigEndian.AppendUint32(w.Buf, seq)
	w.runsAt = len(w.Buf)
	w.Buf = append(w.Buf, 0, 0)
	w.runs, w.rows, w.rb = 0, 0, RowBytes(fp)
}

// Size returns the frame's length so far.
func (w *RowSyncWriter) Size() int { return len(w.Buf) - w.start }

// Runs returns the number of runs begun.
func (w *RowSyncWriter) Runs() int { return w.runs }

// Run appends a run header for count rows from first; the caller then
// appends exactly count rows to Buf.
func (w *RowSyncWriter) Run(first uint32, count uint16) {
	w.Buf = binary.BigEndian.AppendUint32(w.Buf, first)
	w.Buf = binary.BigEndian.AppendUint16(w.Buf, count)
	w.runs++
	w.rows += int(count)
}

// Finish completes the frame and returns the whole buffer. It fails,
// returning the buffer as it was before Begin, when the runs and the row
// bytes appended disagree or a limit is broken.
func (w *RowSyncWriter) Finish() ([]byte, error) {
	body := w.Size() - (RowSyncHeaderSize - HeaderSize) - HeaderSize
	if w.rb == 0 || w.runs == 0 || w.runs > MaxSyncRuns || body != w.runs*RunHeaderSize+w.rows*w.rb {
		return w.Buf[:w.start], frameErr(TypeRowSync, w.start, ErrValue)
	}
	binary.BigEndian.PutUint16(w.Buf[w.runsAt:], uint16(w.runs))
	return endExt(w.Buf, w.start)
}

// RowRun is one run for AppendRowSync.
type RowRun struct {
	First uint32
	Rows  []byte
}

// AppendRowSync appends a row sync frame holding runs.
func AppendRowSync(dst []byte, fp filter.Fingerprint, stamp uint64, seq uint32, runs []RowRun) ([]byte, error) {
	var w RowSyncWriter
	w.Begin(dst, fp, stamp, seq)
	for _, r := range runs {
		if w.rb == 0 || len(r.Rows)%w.rb != 0 || len(r.Rows) == 0 || len(r.Rows)/w.rb > 0xffff {
			return dst, frameErr(TypeRowSync, len(dst), ErrValue)
		}
		w.Run(r.First, uint16(len(r.Rows)/w.rb))
		w.Buf = append(w.Buf, r.Rows...)
	}
	return w.Finish()
}

// fingerprint reads an encoded filter.Fingerprint.
func (r *reader) fingerprint() filter.Fingerprint {
	b := r.Bytes(filter.FingerprintSize)
	if b == nil {
		return filter.Fingerprint{}
	}
	fp, err := filter.DecodeFingerprint(b)
	r.check(err != nil, filter.FingerprintSize, ErrValue)
	return fp
}

// rowSyncHead reads what row sync frames of both kinds begin with: the
// fingerprint (rows of whole bytes), stamp, sequence and entry count
// (1..most). It returns the reader there, the frame so far, the row size
// and the count.
func rowSyncHead(b []byte, t Type, most int) (r reader, s RowSync, rb, n int) {
	r = extReader(b, t)
	s = RowSync{FP: r.fingerprint()}
	rb = RowBytes(s.FP)
	r.check(rb == 0 || s.FP.RowBits%8 != 0, filter.FingerprintSize-4, ErrValue) // at W
	s.Stamp, s.Seq = r.U64(), r.U32()
	n = int(r.U16())
	r.check(n == 0, 2, ErrValue)
	r.check(n > most, 2, ErrTooLarge)
	return r, s, rb, n
}

// DecodeRowSync decodes a row sync frame, or a sparse row sync frame. It
// checks the frame's shape; the receiver's filter checks the fingerprint
// and row range when merging.
func DecodeRowSync(b []byte) (RowSync, error) {
	if len(b) > 0 && Type(b[0]) == TypeSparseSync {
		return decodeSparseSync(b)
	}
	r, s, rb, n := rowSyncHead(b, TypeRowSync, MaxSyncRuns)
	start := r.Offset()
	for i := 0; i < n && r.Err() == nil; i++ {
		r.U32()
		c := int(r.U16())
		r.check(c == 0, 2, ErrValue)
		r.Bytes(c * rb)
	}
	if err := r.done(); err != nil {
		return RowSync{}, err
	}
	s.Runs = RowRuns{n: n, rb: rb, raw: b[start:]}
	return s, nil
}

// RowAck acknowledges the row sync frame Seq of generation Stamp, which
// carried Rows rows.
type RowAck struct {
	Stamp uint64
	Seq   uint32
	Rows  uint32
}

// RowAckSize is the size of a row ack frame.
const RowAckSize = HeaderSize + 8 + 4 + 4

// AppendRowAck appends a row ack frame.
func AppendRowAck(dst []byte, a RowAck) ([]byte, error) {
	dst, start := beginExt(dst, TypeRowAck)
	dst = binary.BigEndian.AppendUint64(dst, a.Stamp)
	dst = binary.BigEndian.AppendUint32(dst, a.Seq)
	dst = binary.BigEndian.AppendUint32(dst, a.Rows)
	return endExt(dst, start)
}

// DecodeRowAck decodes a row ack frame.
func DecodeRowAck(b []byte) (RowAck, error) {
	r := extReader(b, TypeRowAck)
	a := RowAck{Stamp: r.U64(), Seq: r.U32(), Rows: r.U32()}
	if err := r.done(); err != nil {
		return RowAck{}, err
	}
	return a, nil
}
