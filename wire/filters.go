package wire

import (
	"encoding/binary"
	"math"

	"github.com/rmbd/rmbd/filter"
)

// Filter requests and answers: create, drop, describe and list the named
// filters of a node's catalog.
//
//	filter request  0x24: request id:uint32, op:uint8, name (length:uint8,
//	                bytes: a filter's name; for list, the name to list after,
//	                maybe empty), with create: layout:uint8, capacity:uint64,
//	                fp rate:float64; then optional zero padding
//	filters         0x25: request id:uint32, flags:uint8 (bit 0: more to
//	                list), count:uint16, then each filter (FilterInfo)

// Filter request operations.
const (
	FilterOpCreate uint8 = 1 // create the filter (no-op if it exists as asked)
	FilterOpDrop   uint8 = 2 // drop it, every version
	FilterOpInfo   uint8 = 3 // describe it
	FilterOpList   uint8 = 4 // describe every filter, by name, after Name
)

// MaxFilterInfos bounds the filters one filters frame describes; a list
// of more comes in several, each asking after the last name.
const MaxFilterInfos = 256

// FiltersMore flags a filters frame that does not end the list.
const FiltersMore uint8 = 1 << 0

// FilterRequest is a decoded filter request.
type FilterRequest struct {
	ReqID    uint32
	Op       uint8
	Name     []byte        // sub-slice of the frame
	Layout   filter.Layout // create only
	Capacity uint64        // create only
	FPRate   float64       // create only
	Pad      int           // zero bytes after, to this frame size in all (encode only)
}

// AppendFilterRequest appends a filter request.
func AppendFilterRequest(dst []byte, q FilterRequest) ([]byte, error) {
	if !validFilterOp(q.Op, q.Name) || q.Op == FilterOpCreate && !validSizing(q.Layout, q.FPRate) {
		return dst, frameErr(TypeFilterReq, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypeFilterReq)
	dst = binary.BigEndian.AppendUint32(dst, q.ReqID)
	dst = append(dst, q.Op, byte(len(q.Name)))
	dst = append(dst, q.Name...)
	if q.Op == FilterOpCreate {
		dst = append(dst, byte(q.Layout))
		dst = binary.BigEndian.AppendUint64(dst, q.Capacity)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(q.FPRate))
	}
	dst, err := endExt(dst, start)
	if err != nil || q.Pad == 0 {
		return dst, err
	}
	return PadFrame(dst, start, q.Pad)
}

// validFilterOp: a known op with a valid name (list: empty or valid).
func validFilterOp(op uint8, name []byte) bool {
	switch op {
	case FilterOpCreate, FilterOpDrop, FilterOpInfo:
		return ValidFilterName(name)
	case FilterOpList:
		return len(name) == 0 || ValidFilterName(name)
	}
	return false
}

// validSizing: a layout there is, and a rate a filter can be sized for
// (0 for classic, whose size is fixed).
func validSizing(l filter.Layout, fp float64) bool {
	switch l {
	case filter.Blocked:
		return fp > 0 && fp < 1
	case filter.Classic:
		return fp == 0
	}
	return false
}

// DecodeFilterRequest decodes a filter request, padded or not.
func DecodeFilterRequest(b []byte) (FilterRequest, error) {
	r := extReader(b, TypeFilterReq)
	q := FilterRequest{ReqID: r.u32(), Op: r.u8()}
	if n := int(r.u8()); n > 0 {
		q.Name = r.bytes(n)
	}
	r.check(r.err == nil && !validFilterOp(q.Op, q.Name), 1+len(q.Name), ErrValue)
	if r.err == nil && q.Op == FilterOpCreate {
		q.Layout, q.Capacity, q.FPRate = filter.Layout(r.u8()), r.u64(), math.Float64frombits(r.u64())
		r.check(r.err == nil && !validSizing(q.Layout, q.FPRate), 17, ErrValue)
	}
	r.padding()
	if err := r.done(); err != nil {
		return FilterRequest{}, err
	}
	return q, nil
}

// FilterDesc describes one named filter: the version that takes its adds
// and what it holds.
type FilterDesc struct {
	Name      []byte
	Conflicts uint8 // other live versions of the name (created concurrently with other sizing)
	Gen       uint64
	Created   int64  // Unix milliseconds
	Origin    []byte // the node that created it
	FP        filter.Fingerprint
	Capacity  uint64
	FPRate    float64
	Keys      uint64 // estimated distinct keys
	FillPPM   uint32 // bits set, parts per million
}

// Filters is a decoded filters frame.
type Filters struct {
	ReqID uint32
	Flags uint8
	Count int
	raw   []byte
}

// AppendFilters appends a filters frame describing fs.
func AppendFilters(dst []byte, reqID uint32, flags uint8, fs []FilterDesc) ([]byte, error) {
	if len(fs) > MaxFilterInfos || flags&^FiltersMore != 0 {
		return dst, frameErr(TypeFilters, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypeFilters)
	dst = binary.BigEndian.AppendUint32(dst, reqID)
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(fs)))
	for _, f := range fs {
		if !ValidFilterName(f.Name) || len(f.Origin) > MaxNameLen || f.FillPPM > 1_000_000 {
			return dst[:start], frameErr(TypeFilters, len(dst), ErrValue)
		}
		dst = append(dst, byte(len(f.Name)))
		dst = append(dst, f.Name...)
		dst = append(dst, f.Conflicts)
		dst = binary.BigEndian.AppendUint64(dst, f.Gen)
		dst = binary.BigEndian.AppendUint64(dst, uint64(f.Created))
		dst = append(dst, byte(len(f.Origin)))
		dst = append(dst, f.Origin...)
		dst, _ = f.FP.AppendBinary(dst)
		dst = binary.BigEndian.AppendUint64(dst, f.Capacity)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(f.FPRate))
		dst = binary.BigEndian.AppendUint64(dst, f.Keys)
		dst = binary.BigEndian.AppendUint32(dst, f.FillPPM)
	}
	return endExt(dst, start)
}

func (r *reader) filterDesc() FilterDesc {
	var f FilterDesc
	f.Name = r.bytes(int(r.u8()))
	r.check(r.err == nil && !ValidFilterName(f.Name), len(f.Name), ErrValue)
	f.Conflicts, f.Gen, f.Created = r.u8(), r.u64(), int64(r.u64())
	f.Origin = r.bytes(int(r.u8()))
	f.FP = r.fingerprint()
	f.Capacity, f.FPRate, f.Keys, f.FillPPM = r.u64(), math.Float64frombits(r.u64()), r.u64(), r.u32()
	r.check(r.err == nil && f.FillPPM > 1_000_000, 4, ErrValue)
	return f
}

// DecodeFilters decodes a filters frame.
func DecodeFilters(b []byte) (Filters, error) {
	r := extReader(b, TypeFilters)
	fs := Filters{ReqID: r.u32(), Flags: r.u8(), Count: int(r.u16())}
	r.check(r.err == nil && fs.Flags&^FiltersMore != 0, 3, ErrValue)
	r.check(r.err == nil && fs.Count > MaxFilterInfos, 2, ErrTooLarge)
	start := r.off
	for i := 0; i < fs.Count && r.err == nil; i++ {
		r.filterDesc()
	}
	if err := r.done(); err != nil {
		return Filters{}, err
	}
	fs.raw = b[start:]
	return fs, nil
}

// All yields every filter described; byte fields are sub-slices of the
// frame.
func (fs Filters) All() func(yield func(FilterDesc) bool) {
	return func(yield func(FilterDesc) bool) {
		r := reader{b: fs.raw}
		for range fs.Count {
			if !yield(r.filterDesc()) {
				return
			}
		}
	}
}
