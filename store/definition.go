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
	// Segment is the part of its filter the folder keeps (0 for the
	// first; see docs/FORMAT.md).
	Segment uint64
}

// holding is what a folder's checkpoints are, as its FILTER file says:
// every checkpoint from first to last (0 and 0 before the first). A start
// that finds one missing refuses, unless repairing.
type holding struct{ first, last uint64 }

// MaxNameLen bounds a filter's name.
const MaxNameLen = 200

// String describes the definition for messages.
func (d Definition) String() string {
	s := fmt.Sprintf("%q, capacity %d at fp-rate %v", d.Name, d.Capacity, d.FPRate)
	if d.FP.Layout == filter.Classic {
		s = fmt.Sprintf("%q, the classic 5×400 filter", d.Name)
	}
	if d.Segment != 0 {
		s += fmt.Sprintf(", segment %d", d.Segment)
	}
	return s
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

// The FILTER file. Version 1 (before segments) is read as segment 0,
// holding nothing it can vouch for; it is rewritten as version 2 at the
// first checkpoint.
const (
	defFile      = "FILTER"
	defMagic     = "RMBDFLTR"
	defVersion   = 2
	defVersionV1 = 1
)

// encodeDefinition returns the FILTER file for d, holding h.
func encodeDefinition(d Definition, h holding) []byte {
	b := append([]byte(defMagic), 0, defVersion)
	b, _ = d.FP.AppendBinary(b)
	b = binary.BigEndian.AppendUint64(b, d.Capacity)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(d.FPRate))
	b = binary.BigEndian.AppendUint64(b, d.Segment)
	b = binary.BigEndian.AppendUint64(b, h.first)
	b = binary.BigEndian.AppendUint64(b, h.last)
	b = append(b, byte(len(d.Name)))
	b = append(b, d.Name...)
	return binary.BigEndian.AppendUint64(b, xxh3.Hash(b))
}

// decodeDefinition reads a FILTER file; on failure it returns the offset
// where reading stopped.
func decodeDefinition(b []byte) (Definition, holding, int, error) {
	r := newReader(b)
	r.Check(string(r.Bytes(len(defMagic))) != defMagic, damaged("not a FILTER file"))
	v := r.U16()
	// An unknown version whose file does not verify as a whole (the last
	// 8 bytes an xxh3 of the rest, as every version has it) is a flipped
	// bit, not a newer rmbd's file.
	unknown := v != defVersion && v != defVersionV1
	r.Check(unknown && len(b) >= 8 && binary.BigEndian.Uint64(b[len(b)-8:]) != xxh3.Hash(b[:len(b)-8]), damaged("version"))
	r.Check(unknown, ErrVersion)
	fp, err := filter.DecodeFingerprint(r.Bytes(filter.FingerprintSize))
	r.Check(err != nil, damaged("fingerprint"))
	d := Definition{FP: fp, Capacity: r.U64(), FPRate: math.Float64frombits(r.U64())}
	var h holding
	if v == defVersion {
		d.Segment, h.first, h.last = r.U64(), r.U64(), r.U64()
		r.Check(h.first > h.last || h.first == 0 && h.last != 0, damaged("checkpoints held"))
	}
	d.Name = string(r.Bytes(int(r.U8())))
	body := r.Offset()
	sum := r.U64()
	r.Check(r.Err() == nil && sum != xxh3.Hash(b[:body]), damaged("checksum"))
	r.Check(r.Err() == nil && r.Offset() != len(b), damaged("trailing bytes"))
	r.Check(r.Err() == nil && !validName(d.Name), damaged("filter name"))
	if r.Err() != nil {
		return Definition{}, holding{}, r.ErrOffset(), r.Err()
	}
	return d, h, 0, nil
}
