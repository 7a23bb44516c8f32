package wire

import (
	"encoding/binary"

	"github.com/rmbd/rmbd/filter"
)

// Anti-entropy limits.
const (
	// MaxDigests is the most block checksums one digest frame carries.
	MaxDigests = 8192
	// MaxPullRuns is the most row runs one pull frame asks for.
	MaxPullRuns = 1024
)

// Digest is a decoded digest frame: Count 64-bit checksums of consecutive
// blocks of BlockRows rows, starting at block FirstBlock.
type Digest struct {
	FP         filter.Fingerprint
	BlockRows  uint32
	FirstBlock uint32
	Count      int
	sums       []byte
}

// Sum returns the checksum of block FirstBlock+i.
func (d Digest) Sum(i int) uint64 {
	if i < 0 || i >= d.Count {
		return 0
	}
	return binary.BigEndian.Uint64(d.sums[i*8:])
}

// AppendDigest appends a digest frame.
func AppendDigest(dst []byte, fp filter.Fingerprint, blockRows, firstBlock uint32, sums []uint64) ([]byte, error) {
	if blockRows == 0 || len(sums) == 0 {
		return dst, frameErr(TypeDigest, len(dst), ErrValue)
	}
	if len(sums) > MaxDigests {
		return dst, frameErr(TypeDigest, len(dst), ErrTooLarge)
	}
	dst, start := beginExt(dst, TypeDigest)
	dst, _ = fp.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint32(dst, blockRows)
	dst = binary.BigEndian.AppendUint32(dst, firstBlock)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sums)))
	for _, s := range sums {
		dst = binary.BigEndian.AppendUint64(dst, s)
	}
	return endExt(dst, start)
}

// DecodeDigest decodes a digest frame.
func DecodeDigest(b []byte) (Digest, error) {
	r := extReader(b, TypeDigest)
	d := Digest{FP: r.fingerprint(), BlockRows: r.U32(), FirstBlock: r.U32(), Count: int(r.U16())}
	r.check(d.BlockRows == 0, 10, ErrValue)
	r.check(d.Count == 0, 2, ErrValue)
	r.check(d.Count > MaxDigests, 2, ErrTooLarge)
	if r.Err() == nil {
		d.sums = r.Bytes(d.Count * 8)
	}
	if err := r.done(); err != nil {
		return Digest{}, err
	}
	return d, nil
}

// Pull is a decoded pull frame: runs of rows the sender wants as row syncs.
type Pull struct {
	FP    filter.Fingerprint
	Count int
	runs  []byte
}

// Run returns the i'th run of rows asked for.
func (p Pull) Run(i int) filter.Run {
	if i < 0 || i >= p.Count {
		return filter.Run{}
	}
	return filter.Run{
		First: uint64(binary.BigEndian.Uint32(p.runs[i*8:])),
		Count: uint64(binary.BigEndian.Uint32(p.runs[i*8+4:])),
	}
}

// AppendPull appends a pull frame asking for runs (each 1..2^32-1 rows
// starting below 2^32).
func AppendPull(dst []byte, fp filter.Fingerprint, runs []filter.Run) ([]byte, error) {
	if len(runs) == 0 || len(runs) > MaxPullRuns {
		return dst, frameErr(TypePull, len(dst), ErrTooLarge)
	}
	dst, start := beginExt(dst, TypePull)
	dst, _ = fp.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(runs)))
	for _, run := range runs {
		if run.Count == 0 || run.Count > 0xffffffff || run.First > 0xffffffff {
			return dst[:start], frameErr(TypePull, len(dst), ErrValue)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(run.First))
		dst = binary.BigEndian.AppendUint32(dst, uint32(run.Count))
	}
	return endExt(dst, start)
}

// DecodePull decodes a pull frame.
func DecodePull(b []byte) (Pull, error) {
	r := extReader(b, TypePull)
	p := Pull{FP: r.fingerprint(), Count: int(r.U16())}
	r.check(p.Count == 0, 2, ErrValue)
	r.check(p.Count > MaxPullRuns, 2, ErrTooLarge)
	start := r.Offset()
	for i := 0; i < p.Count && r.Err() == nil; i++ {
		r.U32()
		r.check(r.U32() == 0, 4, ErrValue)
	}
	if err := r.done(); err != nil {
		return Pull{}, err
	}
	p.runs = b[start:]
	return p, nil
}
