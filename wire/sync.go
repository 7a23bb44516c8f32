package wire

import (
	"encoding/binary"

	"github.com/rmbd/rmbd/filter"
)

// RowSyncHeaderSize is a row sync frame without its rows.
const RowSyncHeaderSize = HeaderSize + filter.FingerprintSize + 8 + 4 + 2

// RowSync is a decoded row sync: Count rows starting at First, of the
// filter with fingerprint FP, sent as of the sender's generation Stamp.
type RowSync struct {
	FP    filter.Fingerprint
	Stamp uint64
	First uint32
	Count int
	Rows  []byte // Count × FP.RowBits/8 bytes in filter form, sub-slice of the frame
}

// RowBytes is the size of one row of fingerprint fp on the wire.
func RowBytes(fp filter.Fingerprint) int { return int(fp.RowBits) / 8 }

// MaxSyncRows is the most rows of fingerprint fp one frame carries.
func MaxSyncRows(fp filter.Fingerprint) int {
	rb := RowBytes(fp)
	if rb == 0 {
		return 0
	}
	return min(0xffff, (MaxFrameBody-(RowSyncHeaderSize-HeaderSize))/rb)
}

// AppendRowSync appends a row sync frame; rows must hold whole rows.
func AppendRowSync(dst []byte, fp filter.Fingerprint, stamp uint64, first uint32, rows []byte) ([]byte, error) {
	rb := RowBytes(fp)
	if rb == 0 || fp.RowBits%8 != 0 || len(rows) == 0 || len(rows)%rb != 0 {
		return dst, frameErr(TypeRowSync, len(dst), ErrValue)
	}
	if len(rows)/rb > MaxSyncRows(fp) {
		return dst, frameErr(TypeRowSync, len(dst), ErrTooLarge)
	}
	dst, start := beginExt(dst, TypeRowSync)
	dst, _ = fp.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint64(dst, stamp)
	dst = binary.BigEndian.AppendUint32(dst, first)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(rows)/rb))
	dst = append(dst, rows...)
	return endExt(dst, start)
}

// fingerprint reads an encoded filter.Fingerprint.
func (r *reader) fingerprint() filter.Fingerprint {
	b := r.bytes(filter.FingerprintSize)
	if b == nil {
		return filter.Fingerprint{}
	}
	fp, err := filter.DecodeFingerprint(b)
	r.check(err != nil, filter.FingerprintSize, ErrValue)
	return fp
}

// DecodeRowSync decodes a row sync frame. It checks the frame's shape; the
// receiver's filter checks the fingerprint and row range when merging.
func DecodeRowSync(b []byte) (RowSync, error) {
	r := extReader(b, TypeRowSync)
	s := RowSync{FP: r.fingerprint()}
	rb := RowBytes(s.FP)
	r.check(rb == 0 || s.FP.RowBits%8 != 0, filter.FingerprintSize-4, ErrValue) // at W
	s.Stamp, s.First, s.Count = r.u64(), r.u32(), int(r.u16())
	r.check(s.Count == 0, 2, ErrValue)
	if r.err == nil {
		s.Rows = r.bytes(s.Count * rb)
	}
	if err := r.done(); err != nil {
		return RowSync{}, err
	}
	return s, nil
}

// RowAck acknowledges the row sync of Count rows from First sent at Stamp.
type RowAck struct {
	Stamp uint64
	First uint32
	Count int
}

// RowAckSize is the size of a row ack frame.
const RowAckSize = HeaderSize + 8 + 4 + 2

// AppendRowAck appends a row ack frame.
func AppendRowAck(dst []byte, a RowAck) ([]byte, error) {
	if a.Count < 1 || a.Count > 0xffff {
		return dst, frameErr(TypeRowAck, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypeRowAck)
	dst = binary.BigEndian.AppendUint64(dst, a.Stamp)
	dst = binary.BigEndian.AppendUint32(dst, a.First)
	dst = binary.BigEndian.AppendUint16(dst, uint16(a.Count))
	return endExt(dst, start)
}

// DecodeRowAck decodes a row ack frame.
func DecodeRowAck(b []byte) (RowAck, error) {
	r := extReader(b, TypeRowAck)
	a := RowAck{Stamp: r.u64(), First: r.u32(), Count: int(r.u16())}
	r.check(a.Count == 0, 2, ErrValue)
	if err := r.done(); err != nil {
		return RowAck{}, err
	}
	return a, nil
}
