package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/rmbd/rmbd/filter"
	"github.com/zeebo/xxh3"
)

// Definition is what a filter is: its name, the sizing it was made from
// and the fingerprint that sizing gives. The data directory keeps it in
// the filter's FILTER file; a node started with other flags is refused.
type Definition struct {
	Name     string
	FP       filter.Fingerprint
	Capacity uint64  // keys the filter was sized for (0 for classic)
	FPRate   float64 // false-positive rate it was sized for (0 for classic)
}

// MaxNameLen bounds a filter's name.
const MaxNameLen = 200

// String describes the definition for messages.
func (d Definition) String() string {
	if d.FP.Layout == filter.Classic {
		return fmt.Sprintf("%q: classic 5×400 filter", d.Name)
	}
	return fmt.Sprintf("%q: capacity %d at fp-rate %v (%v)", d.Name, d.Capacity, d.FPRate, d.FP)
}

// validName reports whether name can name a filter: 1–200 bytes of UTF-8
// without control characters.
func validName(name string) bool {
	if len(name) == 0 || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 {
			return false
		}
	}
	return true
}

// The FILTER file.
const (
	defFile    = "FILTER"
	defMagic   = "RMBDFLTR"
	defVersion = 1
)

// encodeDefinition returns the FILTER file for d.
func encodeDefinition(d Definition) []byte {
	b := append([]byte(defMagic), 0, defVersion)
	b, _ = d.FP.AppendBinary(b)
	b = binary.BigEndian.AppendUint64(b, d.Capacity)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(d.FPRate))
	b = append(b, byte(len(d.Name)))
	b = append(b, d.Name...)
	return binary.BigEndian.AppendUint64(b, xxh3.Hash(b))
}

// decodeDefinition reads a FILTER file; on failure it returns the offset
// where reading stopped.
func decodeDefinition(b []byte) (Definition, int, error) {
	r := reader{b: b}
	r.check(string(r.bytes(len(defMagic))) != defMagic, damaged("not a FILTER file"))
	r.check(r.u16() != defVersion, ErrVersion)
	fp, err := filter.DecodeFingerprint(r.bytes(filter.FingerprintSize))
	r.check(err != nil, damaged("fingerprint"))
	d := Definition{FP: fp, Capacity: r.u64(), FPRate: math.Float64frombits(r.u64())}
	d.Name = string(r.bytes(int(r.u8())))
	body := r.off
	sum := r.u64()
	r.check(r.err == nil && sum != xxh3.Hash(b[:body]), damaged("checksum"))
	r.check(r.err == nil && r.off != len(b), damaged("trailing bytes"))
	r.check(r.err == nil && !validName(d.Name), damaged("filter name"))
	if r.err != nil {
		return Definition{}, r.at, r.err
	}
	return d, 0, nil
}
