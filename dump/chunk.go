package dump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"
	"math"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/zeebo/xxh3"
)

// The chunk format (docs/FORMAT.md, "Dump chunks"):
//
//	magic "RMBC" | version:uint8 (1) | kind:uint8 | length:uint32 (the
//	whole chunk, checksum included) | body | CRC-32C (Castagnoli) of
//	every byte before it:uint32
//
//	header body: definition (fingerprint:18 bytes, capacity:uint64, fp
//	rate:float64, expansion:uint32, flags:uint8 (bit 0: NONSCALING)),
//	stages:uint16, bytes:uint64, name (length:uint8, bytes)
//
//	rows body: identity:uint64, stage:uint16, stage fingerprint:18 bytes,
//	first:uint32, end:uint32, runs:uint16, then each run: row:uint32,
//	count:uint16, count rows of the stage's row bytes
//
// Integers are big-endian.

// Chunk kinds.
const (
	KindHeader uint8 = 1
	KindRows   uint8 = 2
)

// Sizes of the format.
const (
	Version  = 1
	headSize = 10 // magic, version, kind, length
	sumSize  = 4
	defSize  = filter.FingerprintSize + 8 + 8 + 4 + 1
	// MaxChunk bounds a chunk's length: what a decoder takes at most.
	// Scan's are at most ChunkRowBytes and a few hundred bytes, well
	// within a RESP argument (512 KiB unless the node says otherwise) and
	// a binary frame (1 MiB).
	MaxChunk = 384 << 10
	// maxRun bounds a run's rows (its count is a uint16).
	maxRun = math.MaxUint16
)

var magic = [4]byte{'R', 'M', 'B', 'C'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrChunk wraps every reason a chunk does not decode: damaged, cut
// short, or not a chunk at all.
var ErrChunk = errors.New("not a valid dump chunk")

// Header is a dump's first chunk: what the dumped filter is.
type Header struct {
	Def    gossip.CatalogDef
	Stages uint16 // the filter's stages when it was dumped
	Bytes  uint64 // its rows' bytes then, every stage's: a progress bar's total
	Name   string // the dumped filter's (a dump loads under any name)
}

// Rows is a rows chunk: runs of one stage's rows from row First up to
// End; rows in between not in a run were empty when dumped.
type Rows struct {
	Filter     uint64 // the identity of the definition of the filter they are of
	Stage      uint16
	FP         filter.Fingerprint // the stage's
	First, End uint32
	// Data holds the runs, as encoded (Runs reads them).
	Data []byte
	runs int
}

// Identity is what a rows chunk names its filter by: a hash of the
// filter's definition (its sizing, fingerprint and seed).
func Identity(d gossip.CatalogDef) uint64 { return xxh3.Hash(appendDef(nil, d)) }

func appendDef(b []byte, d gossip.CatalogDef) []byte {
	b, _ = d.FP.AppendBinary(b)
	b = binary.BigEndian.AppendUint64(b, d.Capacity)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(d.FPRate))
	b = binary.BigEndian.AppendUint32(b, d.Expansion)
	flags := uint8(0)
	if d.NonScaling {
		flags |= 1
	}
	return append(b, flags)
}

func decodeDef(b []byte) (gossip.CatalogDef, error) {
	fp, err := filter.DecodeFingerprint(b)
	if err != nil {
		return gossip.CatalogDef{}, err
	}
	b = b[filter.FingerprintSize:]
	d := gossip.CatalogDef{FP: fp, Capacity: binary.BigEndian.Uint64(b), FPRate: math.Float64frombits(binary.BigEndian.Uint64(b[8:])),
		Expansion: binary.BigEndian.Uint32(b[16:])}
	switch flags := b[20]; {
	case flags&^1 != 0:
		return d, fmt.Errorf("%w: unknown flags %#x", ErrChunk, flags)
	case flags&1 != 0:
		d.NonScaling = true
	}
	return d, nil
}

// begin appends a chunk's head, its length to be filled by end.
func begin(dst []byte, kind uint8) ([]byte, int) {
	start := len(dst)
	dst = append(dst, magic[:]...)
	dst = append(dst, Version, kind)
	return append(dst, 0, 0, 0, 0), start
}

// end fills in the length and appends the checksum.
func end(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start+6:], uint32(len(dst)-start+sumSize))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// AppendHeader appends h as a header chunk.
func AppendHeader(dst []byte, h Header) []byte {
	dst, start := begin(dst, KindHeader)
	dst = appendDef(dst, h.Def)
	dst = binary.BigEndian.AppendUint16(dst, h.Stages)
	dst = binary.BigEndian.AppendUint64(dst, h.Bytes)
	name := h.Name[:min(len(h.Name), math.MaxUint8)]
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	return end(dst, start)
}

// Length returns the length of the chunk b begins with, from its head
// (at least headSize bytes), or why b begins no chunk: a reader of a
// dump file reads a head, then the rest.
func Length(head []byte) (int, error) {
	if len(head) < headSize {
		return 0, fmt.Errorf("%w: %d bytes, a chunk's head is %d", ErrChunk, len(head), headSize)
	}
	if [4]byte(head[:4]) != magic {
		return 0, fmt.Errorf("%w: no magic (a dump's chunks begin %q)", ErrChunk, magic[:])
	}
	if head[4] != Version {
		return 0, fmt.Errorf("%w: format version %d, this build reads %d", ErrChunk, head[4], Version)
	}
	n := int(binary.BigEndian.Uint32(head[6:]))
	if n < headSize+sumSize || n > MaxChunk {
		return 0, fmt.Errorf("%w: length %d", ErrChunk, n)
	}
	return n, nil
}

// HeadSize is the bytes Length reads.
const HeadSize = headSize

// Kind checks chunk whole — its length and checksum — and returns its
// kind and body.
func Kind(chunk []byte) (uint8, []byte, error) {
	n, err := Length(chunk)
	if err != nil {
		return 0, nil, err
	}
	if len(chunk) != n {
		return 0, nil, fmt.Errorf("%w: %d bytes, its head says %d (cut short?)", ErrChunk, len(chunk), n)
	}
	body := chunk[headSize : n-sumSize]
	if want := binary.BigEndian.Uint32(chunk[n-sumSize:]); crc32.Checksum(chunk[:n-sumSize], castagnoli) != want {
		return 0, nil, fmt.Errorf("%w: checksum mismatch (damaged)", ErrChunk)
	}
	switch kind := chunk[5]; kind {
	case KindHeader, KindRows:
		return kind, body, nil
	default:
		return 0, nil, fmt.Errorf("%w: unknown kind %d", ErrChunk, kind)
	}
}

// DecodeHeader reads a header chunk.
func DecodeHeader(chunk []byte) (Header, error) {
	kind, b, err := Kind(chunk)
	if err != nil {
		return Header{}, err
	}
	if kind != KindHeader {
		return Header{}, fmt.Errorf("%w: a rows chunk where a header was expected", ErrChunk)
	}
	if len(b) < defSize+2+8+1 {
		return Header{}, fmt.Errorf("%w: a header of %d bytes", ErrChunk, len(b))
	}
	var h Header
	if h.Def, err = decodeDef(b); err != nil {
		return Header{}, err
	}
	b = b[defSize:]
	h.Stages, h.Bytes = binary.BigEndian.Uint16(b), binary.BigEndian.Uint64(b[2:])
	b = b[10:]
	if int(b[0]) != len(b)-1 {
		return Header{}, fmt.Errorf("%w: a header's name of %d bytes in %d", ErrChunk, b[0], len(b)-1)
	}
	h.Name = string(b[1:])
	return h, nil
}

// rowsFixed is a rows body's bytes before its runs.
const rowsFixed = 8 + 2 + filter.FingerprintSize + 4 + 4 + 2

// RowsWriter appends a rows chunk a run at a time.
type RowsWriter struct {
	dst     []byte
	start   int
	nruns   int
	last    uint32 // the row after the last run's
	rowSize int
}

// BeginRows begins a rows chunk of r's header fields (its Data is
// ignored); Run appends runs, End finishes it.
func BeginRows(dst []byte, r Rows) *RowsWriter {
	dst, start := begin(dst, KindRows)
	dst = binary.BigEndian.AppendUint64(dst, r.Filter)
	dst = binary.BigEndian.AppendUint16(dst, r.Stage)
	dst, _ = r.FP.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint32(dst, r.First)
	dst = binary.BigEndian.AppendUint32(dst, r.End)
	dst = append(dst, 0, 0)
	return &RowsWriter{dst: dst, start: start, last: r.First, rowSize: int(r.FP.RowBits) / 8}
}

// Run appends rows from row first on (rows is whole rows, at most
// maxRun of them, first at or past the end of the last run).
func (w *RowsWriter) Run(first uint32, rows []byte) {
	count := len(rows) / w.rowSize
	w.dst = binary.BigEndian.AppendUint32(w.dst, first)
	w.dst = binary.BigEndian.AppendUint16(w.dst, uint16(count))
	w.dst = append(w.dst, rows...)
	w.nruns++
	w.last = first + uint32(count)
}

// Size is the chunk's bytes so far.
func (w *RowsWriter) Size() int { return len(w.dst) - w.start + sumSize }

// End sets the chunk's end row and finishes it.
func (w *RowsWriter) End(endRow uint32) []byte {
	fixed := w.start + headSize
	binary.BigEndian.PutUint32(w.dst[fixed+rowsFixed-6:], endRow)
	binary.BigEndian.PutUint16(w.dst[fixed+rowsFixed-2:], uint16(w.nruns))
	return end(w.dst, w.start)
}

// DecodeRows reads a rows chunk and checks its runs: in order, inside
// [First, End), End inside the stage, whole rows.
func DecodeRows(chunk []byte) (Rows, error) {
	kind, b, err := Kind(chunk)
	if err != nil {
		return Rows{}, err
	}
	if kind != KindRows {
		return Rows{}, fmt.Errorf("%w: a header where a rows chunk was expected", ErrChunk)
	}
	if len(b) < rowsFixed {
		return Rows{}, fmt.Errorf("%w: a rows chunk of %d bytes", ErrChunk, len(b))
	}
	r := Rows{Filter: binary.BigEndian.Uint64(b), Stage: binary.BigEndian.Uint16(b[8:])}
	if r.FP, err = filter.DecodeFingerprint(b[10:]); err != nil {
		return Rows{}, err
	}
	b = b[10+filter.FingerprintSize:]
	r.First, r.End, r.runs = binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), int(binary.BigEndian.Uint16(b[8:]))
	r.Data = b[10:]
	rowSize := int(r.FP.RowBits) / 8
	switch {
	case r.FP.RowBits == 0 || r.FP.RowBits%8 != 0:
		return Rows{}, fmt.Errorf("%w: rows of %d bits", ErrChunk, r.FP.RowBits)
	case r.First > r.End || r.End > r.FP.Rows:
		return Rows{}, fmt.Errorf("%w: rows %d..%d of a stage of %d", ErrChunk, r.First, r.End, r.FP.Rows)
	}
	next, seen := uint64(r.First), 0
	for b := r.Data; len(b) > 0; seen++ {
		if len(b) < 6 {
			return Rows{}, fmt.Errorf("%w: a run cut short", ErrChunk)
		}
		first, count := uint64(binary.BigEndian.Uint32(b)), int(binary.BigEndian.Uint16(b[4:]))
		size := count * rowSize
		switch {
		case count == 0 || first < next || first+uint64(count) > uint64(r.End):
			return Rows{}, fmt.Errorf("%w: a run of rows %d..%d out of order or outside %d..%d", ErrChunk, first, first+uint64(count), r.First, r.End)
		case len(b)-6 < size:
			return Rows{}, fmt.Errorf("%w: a run of %d rows in %d bytes", ErrChunk, count, len(b)-6)
		}
		next, b = first+uint64(count), b[6+size:]
	}
	if seen != r.runs {
		return Rows{}, fmt.Errorf("%w: %d runs, its head says %d", ErrChunk, seen, r.runs)
	}
	return r, nil
}

// Runs yields each run: its first row and its rows' bytes (sub-slices of
// the chunk). Only for rows DecodeRows checked.
func (r Rows) Runs() iter.Seq2[uint32, []byte] {
	return func(yield func(uint32, []byte) bool) {
		size := int(r.FP.RowBits) / 8
		for b := r.Data; len(b) > 0; {
			first, count := binary.BigEndian.Uint32(b), int(binary.BigEndian.Uint16(b[4:]))
			if !yield(first, b[6:6+count*size]) {
				return
			}
			b = b[6+count*size:]
		}
	}
}

// RowCount is the rows the chunk's runs carry.
func (r Rows) RowCount() int {
	n := 0
	for _, rows := range r.Runs() {
		n += len(rows) / (int(r.FP.RowBits) / 8)
	}
	return n
}
