package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// A named frame addresses the frame it wraps to one named filter, and to
// one segment of it: a node's catalog holds many filters, and a filter is
// a list of segments (a plain filter has one, segment 0; growing and
// windowed filters have more). Classic frames and unwrapped extended
// frames address segment 0 of the filter named DefaultFilter, as they
// always have.
//
//	type 0x23, body length:uint32, then
//	  segment 0:  name length:uint8 (1..200), name, the inner frame, whole
//	  segment s:  0x00, s:uint64 (not 0), name length:uint8 (1..200), name,
//	              the inner frame, whole
//
// The first form is the only spelling of segment 0, and what nodes that
// know no segments send and read: a name is never empty, so the 0x00 that
// opens the second form is refused by them. Only frames about one
// filter's keys or rows are wrapped (see Nameable). A named frame between
// nodes is sealed as a whole: Sealed(Named(inner)).

// DefaultFilter is the filter classic and unwrapped frames address: the
// one made from the node's flags.
const DefaultFilter = "default"

// MaxFilterName bounds a filter's name, in bytes.
const MaxFilterName = 200

// ValidFilterName reports whether name can name a filter: 1–200 bytes of
// UTF-8 without control characters.
func ValidFilterName[S ~string | ~[]byte](name S) bool {
	if len(name) == 0 || len(name) > MaxFilterName || !utf8.Valid([]byte(name)) {
		return false
	}
	for _, c := range string(name) {
		if c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 {
			return false
		}
	}
	return true
}

// Nameable reports whether frames of type t may be addressed to a named
// filter: the frames about one filter's keys or rows.
func Nameable(t Type) bool {
	switch t {
	case TypeAddBatch, TypeHasBatch, TypeHasResult, TypeAddResult, TypeRowSync, TypeSparseSync, TypeRowAck,
		TypeDigest, TypePull, TypePullDone, TypeError, TypePing:
		return true
	}
	return false
}

// segmented opens the form of a named frame that names a segment other
// than 0: where a name length would be, a value no name has.
const segmented = 0x00

// Named is a decoded named frame.
type Named struct {
	Name    []byte // sub-slice of the frame
	Segment uint64 // the segment addressed (0 for the first)
	Inner   []byte // the wrapped frame, whole (sub-slice)
}

// NamedOverhead is the bytes a named frame adds to the frame it wraps for
// name and segment.
func NamedOverhead(name string, segment uint64) int {
	n := HeaderSize + 1 + len(name)
	if segment != 0 {
		n += 9
	}
	return n
}

// AppendNamed appends inner, a whole frame, addressed to the filter name
// (its segment 0).
func AppendNamed(dst []byte, name string, inner []byte) ([]byte, error) {
	return AppendNamedSegment(dst, name, 0, inner)
}

// AppendNamedSegment appends inner, a whole frame, addressed to segment
// seg of the filter name.
func AppendNamedSegment(dst []byte, name string, seg uint64, inner []byte) ([]byte, error) {
	if !ValidFilterName(name) {
		return dst, frameErr(TypeNamed, len(dst), ErrValue)
	}
	if n, err := FrameLen(inner); err != nil || n != len(inner) || !Nameable(Type(inner[0])) {
		return dst, frameErr(TypeNamed, len(dst), ErrType)
	}
	dst, start := beginExt(dst, TypeNamed)
	if seg != 0 {
		dst = append(dst, segmented)
		dst = binary.BigEndian.AppendUint64(dst, seg)
	}
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	dst = append(dst, inner...)
	return endExt(dst, start)
}

// NamedInner returns the frame a named frame wraps, whatever its name:
// a node refusing a name no filter can have still answers the request
// inside, by its id.
func NamedInner(b []byte) ([]byte, bool) {
	r := extReader(b, TypeNamed)
	if r.U8() == segmented {
		r.U64()
		r.U8()
	}
	if r.Err() != nil {
		return nil, false
	}
	r.Bytes(int(b[r.Offset()-1]))
	if r.Err() != nil || r.Left() == 0 {
		return nil, false
	}
	inner := b[r.Offset():len(b):len(b)]
	if l, err := FrameLen(inner); err != nil || l != len(inner) {
		return nil, false
	}
	return inner, true
}

// DecodeNamed decodes a named frame: a valid name, a segment, and one
// whole frame of a type that may be named.
func DecodeNamed(b []byte) (Named, error) {
	r := extReader(b, TypeNamed)
	var n Named
	l := r.U8()
	if l == segmented {
		n.Segment = r.U64()
		r.check(r.Err() == nil && n.Segment == 0, 8, ErrValue) // segment 0 has one spelling
		l = r.U8()
	}
	n.Name = r.Bytes(int(l))
	r.check(r.Err() == nil && !ValidFilterName(n.Name), 1, ErrValue)
	start := r.Offset()
	if r.Err() != nil {
		return Named{}, r.failure()
	}
	inner := b[start:len(b):len(b)]
	fl, err := FrameLen(inner)
	switch {
	case err != nil || fl != len(inner):
		r.Fail(ErrValue)
	case !Nameable(Type(inner[0])):
		r.Fail(ErrType)
	}
	if r.Err() != nil {
		return Named{}, r.failure()
	}
	n.Inner = inner
	return n, nil
}

// MaxCatalogBody bounds a catalog frame's entries, in bytes.
const MaxCatalogBody = MaxFrameBody

// AppendCatalogFrame appends a catalog frame: catalog entries (gossip's
// catalog bytes, which the node decodes) that members swap, in a push/pull
// state and, one at a time, in memberlist's broadcasts.
func AppendCatalogFrame(dst, entries []byte) ([]byte, error) {
	dst, start := beginExt(dst, TypeCatalog)
	dst = append(dst, entries...)
	return endExt(dst, start)
}

// DecodeCatalogFrame returns the entries of a catalog frame, a sub-slice.
func DecodeCatalogFrame(b []byte) ([]byte, error) {
	r := extReader(b, TypeCatalog)
	if r.Err() != nil {
		return nil, r.failure()
	}
	return b[HeaderSize:len(b):len(b)], nil
}
