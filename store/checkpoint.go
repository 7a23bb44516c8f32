package store

import (
	"bufio"
	"encoding/binary"
	"fmt"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Checkpoint files: a header, blocks of rows, a trailer. A block is a row
// sync frame (the wire format the rows travel in) and its checksum, so
// that a damaged block costs only its rows. Layouts in docs/FORMAT.md.
const (
	ckptMagic         = "RMBDCKPT"
	ckptVersion       = 1
	ckptHeaderSize    = 8 + 2 + 1 + 1 + filter.FingerprintSize + 8 + 8 + 8
	ckptTrailerMagic  = "RMBDEND\x00"
	ckptTrailerSize   = 8 + 8 + 8 + 8
	ckptBlockChecksum = 8
	// ckptFrame bounds a block's frame: 64 KiB, about a thousand rows.
	ckptFrame = 64 << 10

	// Checkpoint kinds.
	ckptDelta uint8 = 0 // the rows changed since the checkpoint before
	ckptFull  uint8 = 1 // every row ever set (ckptImage, image.go, is full too)
)

// ckptHeader is what a checkpoint's header says.
type ckptHeader struct {
	kind   uint8
	fp     filter.Fingerprint
	seq    uint64 // this checkpoint's number
	covers uint64 // log segments up to this one are in it
}

// checkpointName is the file name of checkpoint seq.
func checkpointName(seq uint64) string { return fmt.Sprintf("ckpt-%016x.ckpt", seq) }

func appendCkptHeader(dst []byte, h ckptHeader) []byte {
	start := len(dst)
	dst = append(dst, ckptMagic...)
	dst = binary.BigEndian.AppendUint16(dst, ckptVersion)
	dst = append(dst, h.kind, 0)
	dst, _ = h.fp.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint64(dst, h.seq)
	dst = binary.BigEndian.AppendUint64(dst, h.covers)
	return binary.BigEndian.AppendUint64(dst, xxh3.Hash(dst[start:]))
}

func decodeCkptHeader(b []byte) (ckptHeader, int, error) {
	r := newReader(b)
	r.Check(string(r.Bytes(len(ckptMagic))) != ckptMagic, damaged("not a checkpoint"))
	r.Check(r.U16() != ckptVersion, ErrVersion)
	h := ckptHeader{kind: r.U8()}
	r.Check(h.kind > ckptImage, damaged("checkpoint kind"))
	r.Check(r.U8() != 0, damaged("reserved header byte"))
	fp, err := filter.DecodeFingerprint(r.Bytes(filter.FingerprintSize))
	r.Check(err != nil, damaged("fingerprint"))
	h.fp, h.seq, h.covers = fp, r.U64(), r.U64()
	sum := r.U64()
	r.Check(r.Err() == nil && sum != xxh3.Hash(b[:ckptHeaderSize-8]), damaged("header checksum"))
	if r.Err() != nil {
		return ckptHeader{}, r.ErrOffset(), r.Err()
	}
	return h, r.Offset(), nil
}

// ckptWriter streams a checkpoint into a file being created.
type ckptWriter struct {
	t      *tempFile
	bw     *bufio.Writer
	blocks uint64
	rows   uint64
	bytes  int64
	err    error
}

func newCkptWriter(fsys FS, dir string, h ckptHeader) (*ckptWriter, error) {
	t, err := createTemp(fsys, dir, checkpointName(h.seq))
	if err != nil {
		return nil, err
	}
	w := &ckptWriter{t: t, bw: bufio.NewWriterSize(t, 1<<20)}
	w.put(appendCkptHeader(nil, h))
	return w, nil
}

func (w *ckptWriter) put(b []byte) {
	if w.err == nil {
		_, w.err = w.bw.Write(b)
		w.bytes += int64(len(b))
	}
}

// block writes one row sync frame and its checksum.
func (w *ckptWriter) block(frame []byte) error {
	s, err := wire.DecodeRowSync(frame)
	if err != nil {
		return err // cannot happen: FrameRows makes them
	}
	w.put(frame)
	w.put(binary.BigEndian.AppendUint64(nil, xxh3.Hash(frame)))
	w.blocks++
	w.rows += uint64(s.Runs.Rows())
	return w.err
}

// commit writes the trailer and makes the file durable under its name.
func (w *ckptWriter) commit() error {
	tr := append([]byte(ckptTrailerMagic), make([]byte, 16)...)
	binary.BigEndian.PutUint64(tr[8:], w.blocks)
	binary.BigEndian.PutUint64(tr[16:], w.rows)
	w.put(binary.BigEndian.AppendUint64(tr, xxh3.Hash(tr)))
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	if w.err != nil {
		w.t.abort()
		return w.err
	}
	return w.t.commit()
}

func (w *ckptWriter) abort() { w.t.abort() }

// ckptRead is what reading a checkpoint found.
type ckptRead struct {
	header ckptHeader
	blocks uint64
	rows   uint64
	// damage lists the offsets of bytes that did not verify: a damaged
	// block, a missing or wrong trailer. Empty for a good file.
	damage []int
}

// readCheckpoint checks a checkpoint of fingerprint fp and calls visit
// with every block that verifies, in file order. Past a damaged block it
// looks for the next block that verifies, so that --repair keeps every
// row it can. Only a damaged header stops it (error).
func readCheckpoint(b []byte, fp filter.Fingerprint, visit func(s wire.RowSync) error) (ckptRead, error) {
	h, at, err := decodeCkptHeader(b)
	if err != nil {
		return ckptRead{}, &FileError{Offset: int64(at), Err: err}
	}
	if h.fp != fp {
		return ckptRead{}, &FileError{Offset: 10, Err: fmt.Errorf("%w: rows of %v, not %v", ErrMismatch, h.fp, fp)}
	}
	if h.kind == ckptImage {
		return ckptRead{}, &FileError{Offset: 10, Err: damaged("an image read as blocks")}
	}
	res := ckptRead{header: h}
	end := len(b)
	trailer, tok := checkTrailer(b)
	if tok {
		end -= ckptTrailerSize
	}
	for off := ckptHeaderSize; off < end; {
		n, s, ok := ckptBlock(b[off:end], fp)
		if !ok {
			res.damage = append(res.damage, off)
			off = resync(b, off+1, end, fp)
			continue
		}
		if err := visit(s); err != nil {
			return res, &FileError{Offset: int64(off), Err: err}
		}
		res.blocks++
		res.rows += uint64(s.Runs.Rows())
		off += n
	}
	switch {
	case !tok:
		res.damage = append(res.damage, len(b))
	case len(res.damage) == 0 && (trailer.blocks != res.blocks || trailer.rows != res.rows):
		res.damage = append(res.damage, end) // whole blocks gone: cannot be, but say so
	}
	return res, nil
}

type ckptTrailer struct{ blocks, rows uint64 }

// checkTrailer reads the trailer at the end of a checkpoint b.
func checkTrailer(b []byte) (ckptTrailer, bool) {
	if len(b) < ckptHeaderSize+ckptTrailerSize {
		return ckptTrailer{}, false
	}
	return decodeTrailer(b[len(b)-ckptTrailerSize:])
}

// decodeTrailer reads a trailer, the ckptTrailerSize bytes t.
func decodeTrailer(t []byte) (ckptTrailer, bool) {
	if len(t) != ckptTrailerSize || string(t[:8]) != ckptTrailerMagic || binary.BigEndian.Uint64(t[24:]) != xxh3.Hash(t[:24]) {
		return ckptTrailer{}, false
	}
	return ckptTrailer{blocks: binary.BigEndian.Uint64(t[8:]), rows: binary.BigEndian.Uint64(t[16:])}, true
}

// ckptBlock reads the block b starts with: its length and frame, if it
// is a row sync frame of fp whose checksum verifies.
func ckptBlock(b []byte, fp filter.Fingerprint) (int, wire.RowSync, bool) {
	if len(b) < wire.HeaderSize || wire.Type(b[0]) != wire.TypeRowSync {
		return 0, wire.RowSync{}, false
	}
	n, err := wire.FrameLen(b)
	if err != nil || n > ckptFrame || n+ckptBlockChecksum > len(b) {
		return 0, wire.RowSync{}, false
	}
	if binary.BigEndian.Uint64(b[n:]) != xxh3.Hash(b[:n]) {
		return 0, wire.RowSync{}, false
	}
	s, err := wire.DecodeRowSync(b[:n])
	if err != nil || s.FP != fp {
		return 0, wire.RowSync{}, false
	}
	return n + ckptBlockChecksum, s, true
}

// resync finds the next offset from off where a block verifies, or end.
func resync(b []byte, off, end int, fp filter.Fingerprint) int {
	for ; off < end; off++ {
		if wire.Type(b[off]) != wire.TypeRowSync {
			continue
		}
		if _, _, ok := ckptBlock(b[off:end], fp); ok {
			return off
		}
	}
	return end
}
