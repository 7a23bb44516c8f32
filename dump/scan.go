package dump

import (
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/registry"
)

// Iterators, as BF.SCANDUMP passes them: 0 asks for the header; the
// iterator after a chunk is where the next begins, stage s row r as
// (s+1)·2³² + r; 0 after the last chunk ends the dump.

// ErrIterator refuses an iterator no scan gave.
var ErrIterator = errors.New("invalid iterator")

// ErrWindowed refuses a dump of a windowed filter: its keys live in
// slices of time, which age out on every member, and a dump has no place
// for them.
var ErrWindowed = errors.New("a windowed filter is not dumped: its keys age out, slice by slice, on every member")

// Bounds of one chunk: the rows' bytes it carries at most, and the rows
// a scan reads at most (empty ones are left out, so a sparse filter's
// chunk covers more rows than it carries).
const (
	ChunkRowBytes = 256 << 10
	maxScanRows   = 1 << 18 // 16 MiB of 64-byte rows: a few ms
)

func position(stage, row uint64) uint64 { return (stage+1)<<32 | row }

// Position returns where iterator it points: a stage and row, or ok
// false for 0 and for iterators no scan gives.
func Position(it uint64) (stage, row uint64, ok bool) {
	if it>>32 == 0 {
		return 0, 0, false
	}
	return it>>32 - 1, it & (1<<32 - 1), true
}

// Scan appends to dst the chunk of f's dump at iterator it and returns
// the iterator of the next; at the end it returns 0 and no chunk.
// Chunks are at most MaxChunk bytes; a rows chunk of a long empty
// stretch carries no rows.
func Scan(f *registry.Filter, it uint64, dst []byte) (next uint64, chunk []byte, err error) {
	if f.Version().Def.Windowed() {
		return 0, dst, fmt.Errorf("filter %q: %w", f.Name(), ErrWindowed)
	}
	segs := f.Segments()
	if it == 0 {
		var bytes uint64
		for _, s := range segs {
			bytes += s.Rows().SizeBytes()
		}
		h := Header{Def: f.Version().Def, Stages: uint16(len(segs)), Bytes: bytes, Name: f.Name()}
		return position(0, 0), AppendHeader(dst, h), nil
	}
	stage, row, ok := Position(it)
	if !ok {
		return 0, dst, fmt.Errorf("%w %d: a dump begins at 0, and goes on at the iterators it returns", ErrIterator, it)
	}
	seg := f.Segment(stage)
	if seg == nil {
		return 0, dst, nil // past the last stage: the end
	}
	rows := seg.Rows()
	total := rows.Rows()
	if row > total {
		return 0, dst, fmt.Errorf("%w %d: row %d of a stage of %d", ErrIterator, it, row, total)
	}
	rb := uint64(rows.RowBytes())
	w := BeginRows(dst, Rows{Filter: Identity(f.Version().Def), Stage: uint16(stage), FP: rows.Fingerprint(), First: uint32(row)})
	var buf []byte
	r, stop := row, min(total, row+maxScanRows)
	for r < stop && w.Size()+int(rb)+6 <= ChunkRowBytes+rowsFixed+headSize+sumSize {
		// The next run: empty rows skipped, then rows up to the next
		// empty one, as many as the chunk has room for.
		for r < stop && empty(rows, r, &buf) {
			r++
		}
		first := r
		room := (ChunkRowBytes + rowsFixed + headSize + sumSize - w.Size() - 6) / int(rb)
		buf = buf[:0]
		for r < stop && r-first < uint64(min(room, maxRun)) {
			n := len(buf)
			if buf, err = rows.CopyRows(buf, r, 1); err != nil {
				return 0, dst, err
			}
			if allZero(buf[n:]) {
				buf = buf[:n]
				break
			}
			r++
		}
		if r > first {
			w.Run(uint32(first), buf)
		}
	}
	next = position(stage, r)
	if r == total {
		next = position(stage+1, 0)
	}
	return next, w.End(uint32(r)), nil
}

// empty reports whether row r holds no bit.
func empty(rows interface {
	CopyRows(dst []byte, first, count uint64) ([]byte, error)
}, r uint64, buf *[]byte) bool {
	b, err := rows.CopyRows((*buf)[:0], r, 1)
	*buf = b
	return err == nil && allZero(b)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
