package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrFingerprint reports a fingerprint that differs from the filter's, or
// that no layout produces.
var ErrFingerprint = errors.New("filter: fingerprint mismatch")

// FingerprintSize is the length of an encoded Fingerprint.
const FingerprintSize = 18

// Fingerprint identifies where a filter puts each key's bits. Two filters
// merge only when their fingerprints are equal.
type Fingerprint struct {
	Layout  Layout
	Hash    Hash
	K       uint8  // bits set per key (classic: one per row)
	RowBits uint16 // W
	Rows    uint32 // R
	Seed    uint64 // hash seed (classic: 0)
}

// String renders the fingerprint for logs and the CLI.
func (fp Fingerprint) String() string {
	return fmt.Sprintf("%s/%s R=%d W=%d k=%d seed=%#x", fp.Layout, fp.Hash, fp.Rows, fp.RowBits, fp.K, fp.Seed)
}

// AppendBinary appends the 18-byte big-endian encoding: layout, hash, k,
// a zero byte, W:uint16, R:uint32, seed:uint64.
func (fp Fingerprint) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(fp.Layout), byte(fp.Hash), fp.K, 0)
	b = binary.BigEndian.AppendUint16(b, fp.RowBits)
	b = binary.BigEndian.AppendUint32(b, fp.Rows)
	return binary.BigEndian.AppendUint64(b, fp.Seed), nil
}

// DecodeFingerprint reads the encoding AppendBinary writes. It checks the
// length and the reserved byte, not whether a layout produces the result.
func DecodeFingerprint(b []byte) (Fingerprint, error) {
	if len(b) < FingerprintSize {
		return Fingerprint{}, fmt.Errorf("%w: %d bytes, want %d", ErrFingerprint, len(b), FingerprintSize)
	}
	if b[3] != 0 {
		return Fingerprint{}, fmt.Errorf("%w: reserved byte is %#x", ErrFingerprint, b[3])
	}
	return Fingerprint{
		Layout:  Layout(b[0]),
		Hash:    Hash(b[1]),
		K:       b[2],
		RowBits: binary.BigEndian.Uint16(b[4:]),
		Rows:    binary.BigEndian.Uint32(b[6:]),
		Seed:    binary.BigEndian.Uint64(b[10:]),
	}, nil
}

// validate reports whether some layout produces fp.
func (fp Fingerprint) validate() error {
	switch {
	case fp.Layout == Classic && fp == NewClassic().fp:
		return nil
	case fp.Layout == Blocked && fp.Hash == XXH3 && fp.RowBits == BlockedRowBits &&
		fp.K >= 1 && fp.K <= MaxK && fp.Rows >= 1:
		return nil
	}
	return fmt.Errorf("%w: no layout produces %v", ErrFingerprint, fp)
}
