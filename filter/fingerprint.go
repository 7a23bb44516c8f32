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
	Layout Layout
	Hash   Hash
	K      uint8 // bits set per key (classic: one per row)
	// Version is the version of the layout's placement: how a key's hash
	// becomes a row and bit positions. Any change to placement bumps it
	// (the golden vectors in placement_test.go say so), so that nodes
	// placing bits differently never merge.
	Version uint8
	RowBits uint16 // W
	Rows    uint32 // R
	Seed    uint64 // hash seed (classic: 0)
}

// Placement versions of the layouts: the only ones this build produces
// and accepts.
const (
	ClassicVersion = 0
	BlockedVersion = 0
)

// String renders the fingerprint for logs and the CLI.
func (fp Fingerprint) String() string {
	v := ""
	if fp.Version != 0 {
		v = fmt.Sprintf(" v%d", fp.Version)
	}
	return fmt.Sprintf("%s/%s%s R=%d W=%d k=%d seed=%#x", fp.Layout, fp.Hash, v, fp.Rows, fp.RowBits, fp.K, fp.Seed)
}

// AppendBinary appends the 18-byte big-endian encoding: layout, hash, k,
// placement version, W:uint16, R:uint32, seed:uint64.
func (fp Fingerprint) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(fp.Layout), byte(fp.Hash), fp.K, fp.Version)
	b = binary.BigEndian.AppendUint16(b, fp.RowBits)
	b = binary.BigEndian.AppendUint32(b, fp.Rows)
	return binary.BigEndian.AppendUint64(b, fp.Seed), nil
}

// DecodeFingerprint reads the encoding AppendBinary writes. It checks the
// length, not whether a layout produces the result: a fingerprint of
// another version decodes, and is then refused as a mismatch.
func DecodeFingerprint(b []byte) (Fingerprint, error) {
	if len(b) < FingerprintSize {
		return Fingerprint{}, fmt.Errorf("%w: %d bytes, want %d", ErrFingerprint, len(b), FingerprintSize)
	}
	return Fingerprint{
		Layout:  Layout(b[0]),
		Hash:    Hash(b[1]),
		K:       b[2],
		Version: b[3],
		RowBits: binary.BigEndian.Uint16(b[4:]),
		Rows:    binary.BigEndian.Uint32(b[6:]),
		Seed:    binary.BigEndian.Uint64(b[10:]),
	}, nil
}

// validate reports whether some layout produces fp.
func (fp Fingerprint) validate() error {
	switch {
	case fp.Layout == Classic && fp.withSeed(0) == NewClassic().fp:
		// A classic filter places keys by their bytes alone; its seed only
		// tells filters of one shape apart (a named filter's generations).
		return nil
	case fp.Layout == Blocked && fp.Hash == XXH3 && fp.Version == BlockedVersion &&
		fp.RowBits == BlockedRowBits && fp.K >= 1 && fp.K <= MaxK && fp.Rows >= 1:
		return nil
	}
	return fmt.Errorf("%w: no layout produces %v", ErrFingerprint, fp)
}

// SizeBytes is the memory a filter of this fingerprint takes: its rows,
// each a whole number of 64-bit words.
func (fp Fingerprint) SizeBytes() uint64 {
	return uint64(fp.Rows) * ((uint64(fp.RowBits) + 63) / 64) * 8
}

// withSeed returns fp with another seed.
func (fp Fingerprint) withSeed(seed uint64) Fingerprint {
	fp.Seed = seed
	return fp
}
