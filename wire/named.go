package wire

import "unicode/utf8"

// A named frame addresses the frame it wraps to one named filter: a
// node's catalog holds many. Classic frames and unwrapped extended frames
// address the filter named DefaultFilter, as they always have.
//
//	type 0x23, body length:uint32, name length:uint8 (1..200), name,
//	the inner frame, whole
//
// Only frames about one filter's keys or rows are wrapped (see Nameable).
// A named frame between nodes is sealed as a whole: Sealed(Named(inner)).

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
	case TypeAddBatch, TypeHasBatch, TypeHasResult, TypeAddResult, TypeRowSync, TypeRowAck,
		TypeDigest, TypePull, TypePullDone, TypeError:
		return true
	}
	return false
}

// Named is a decoded named frame.
type Named struct {
	Name  []byte // sub-slice of the frame
	Inner []byte // the wrapped frame, whole (sub-slice)
}

// AppendNamed appends inner, a whole frame, addressed to the filter name.
func AppendNamed(dst []byte, name string, inner []byte) ([]byte, error) {
	if !ValidFilterName(name) {
		return dst, frameErr(TypeNamed, len(dst), ErrValue)
	}
	if n, err := FrameLen(inner); err != nil || n != len(inner) || !Nameable(Type(inner[0])) {
		return dst, frameErr(TypeNamed, len(dst), ErrType)
	}
	dst, start := beginExt(dst, TypeNamed)
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	dst = append(dst, inner...)
	return endExt(dst, start)
}

// DecodeNamed decodes a named frame: a valid name and one whole frame of
// a type that may be named.
func DecodeNamed(b []byte) (Named, error) {
	r := extReader(b, TypeNamed)
	n := Named{Name: r.bytes(int(r.u8()))}
	r.check(r.err == nil && !ValidFilterName(n.Name), 1, ErrValue)
	start := r.off
	if r.err != nil {
		return Named{}, r.err
	}
	inner := r.b[start:len(r.b):len(r.b)]
	l, err := FrameLen(inner)
	switch {
	case err != nil || l != len(inner):
		r.fail(ErrValue)
	case !Nameable(Type(inner[0])):
		r.fail(ErrType)
	}
	if r.err != nil {
		return Named{}, r.err
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
	if r.err != nil {
		return nil, r.err
	}
	return b[HeaderSize:len(b):len(b)], nil
}
