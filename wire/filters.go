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
//	                fp rate:float64, then optionally growth:uint32 (0: the
//	                node's --expansion, 1: the filter does not grow, n ≥ 2:
//	                it grows by n − 1; absent from earlier clients' frames,
//	                which read as 0), then optionally window:uint64 (ms) and
//	                slices:uint16 (a windowed filter; 0 slices: the node's
//	                default; absent, or window 0: no window); then optional
//	                zero padding
//	filters         0x25: request id:uint32, flags:uint8 (bit 0: more to
//	                list; bit 1: stages; bit 2: windows), count:uint16, then
//	                each filter (FilterDesc)

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

// Filters frame flags.
const (
	// FiltersMore flags a filters frame that does not end the list.
	FiltersMore uint8 = 1 << 0
	// FiltersStages: each filter's description ends with its stages,
	// bytes, capacity of its stages, expansion and growth flags (only
	// when the request asked, with FilterDetailStages).
	FiltersStages uint8 = 1 << 1
	// FiltersWindows: each filter's description ends, after its stages
	// if any, in its window:uint64 (ms; 0: none) and slices:uint16 (only
	// when the request asked, with FilterDetailWindows, or created a
	// windowed filter; then with FiltersStages too).
	FiltersWindows uint8 = 1 << 2
	// FiltersPlacement: each filter's description ends, after its window
	// (and with FiltersStages and FiltersWindows too), in its placement:
	// replicas:uint8 (0: every member), owners:uint8 then each owner's
	// name (length:uint8, bytes), and here:uint8 — how the member that
	// answers holds it (Held…). Only when the request asked, with
	// FilterDetailPlacement, or created a placed filter.
	FiltersPlacement uint8 = 1 << 3
)

// How a member holds a filter (FilterDesc.Here).
const (
	HeldNot     uint8 = 0 // placed on other members: it knows the filter from the catalog alone
	HeldReady   uint8 = 1 // it holds the filter and answers for it
	HeldFilling uint8 = 2 // it owns the filter, and its rows are coming from the members that held it
	HeldLeaving uint8 = 3 // it no longer owns the filter, and keeps it, answering, for the handoff grace
	heldLast          = HeldLeaving
)

// FilterRequest is a decoded filter request.
type FilterRequest struct {
	ReqID    uint32
	Op       uint8
	Name     []byte        // sub-slice of the frame
	Layout   filter.Layout // create only
	Capacity uint64        // create only
	FPRate   float64       // create only
	// Growth (create only): 0 asks for the node's --expansion, 1 for a
	// filter that does not grow (NONSCALING), n ≥ 2 for expansion n − 1.
	Growth uint32
	// Window, in milliseconds, and Slices (create only) make a windowed
	// filter: Capacity keys per Window, kept in Slices slices of time (0:
	// the node's default). Window 0: no window.
	Window uint64
	Slices uint16
	// Replicas (create only) places the filter on that many members, 0:
	// on every member. Sent after the window (zeros when none).
	Replicas uint8
	// Detail (info and list only): FilterDetailStages asks for each
	// filter's stages (FiltersStages), which a node whose pong says
	// PongStages gives.
	Detail uint8
	Pad    int // zero bytes after, to this frame size in all (encode only)
}

// Details a filter request's answer may be asked for.
const (
	// FilterDetailStages asks a filter request's answer to describe stages.
	FilterDetailStages uint8 = 1 << 0
	// FilterDetailWindows asks it to describe windows (FiltersWindows), which
	// a node whose pong says PongWindows gives.
	FilterDetailWindows uint8 = 1 << 1
	// FilterDetailPlacement asks it to describe placement
	// (FiltersPlacement), which a node whose pong says PongPlacement gives.
	FilterDetailPlacement uint8 = 1 << 2
)

// AppendFilterRequest appends a filter request.
func AppendFilterRequest(dst []byte, q FilterRequest) ([]byte, error) {
	if !validFilterOp(q.Op, q.Name) {
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
		if q.Growth != 0 || q.Window != 0 || q.Replicas != 0 {
			dst = binary.BigEndian.AppendUint32(dst, q.Growth)
		}
		if q.Window != 0 || q.Replicas != 0 {
			dst = binary.BigEndian.AppendUint64(dst, q.Window)
			dst = binary.BigEndian.AppendUint16(dst, q.Slices)
		}
		if q.Replicas != 0 {
			dst = append(dst, q.Replicas)
		}
	}
	if q.Detail != 0 && (q.Op == FilterOpInfo || q.Op == FilterOpList) {
		dst = append(dst, q.Detail)
	}
	dst, err := endExt(dst, start)
	if err != nil || q.Pad == 0 {
		return dst, err
	}
	return PadFrame(dst, start, q.Pad)
}

// validFilterOp: a known op, and a name of at most 255 bytes. Whether
// the name is one a filter can have, and the sizing one a filter can be
// made with, is the node's to say: it answers why not, and the client
// prints that.
func validFilterOp(op uint8, name []byte) bool {
	return op >= FilterOpCreate && op <= FilterOpList && len(name) <= 255
}

// DecodeFilterRequest decodes a filter request, padded or not.
func DecodeFilterRequest(b []byte) (FilterRequest, error) {
	r := extReader(b, TypeFilterReq)
	q := FilterRequest{ReqID: r.U32(), Op: r.U8()}
	if n := int(r.U8()); n > 0 {
		q.Name = r.Bytes(n)
	}
	r.check(r.Err() == nil && !validFilterOp(q.Op, q.Name), 1+len(q.Name), ErrValue)
	if r.Err() == nil && q.Op == FilterOpCreate {
		q.Layout, q.Capacity, q.FPRate = filter.Layout(r.U8()), r.U64(), math.Float64frombits(r.U64())
		if r.Err() == nil && r.Left() >= 4 { // zero padding reads as 0 too
			q.Growth = r.U32()
		}
		if r.Err() == nil && r.Left() >= 10 {
			q.Window, q.Slices = r.U64(), r.U16()
			r.check(q.Window == 0 && q.Slices != 0, 2, ErrValue)
			if r.Err() == nil && r.Left() >= 1 {
				q.Replicas = r.U8()
			}
		}
	}
	if r.Err() == nil && (q.Op == FilterOpInfo || q.Op == FilterOpList) && r.Left() >= 1 { // zero padding: 0
		q.Detail = r.U8()
		r.check(q.Detail&^(FilterDetailStages|FilterDetailWindows|FilterDetailPlacement) != 0, 1, ErrValue)
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
	// With FiltersStages: the stages it has, their bytes and capacity
	// together, its expansion (0: it does not grow) and whether it is
	// NONSCALING (refuses adds once full).
	Stages                uint16
	Bytes, StagesCapacity uint64
	Expansion             uint32
	NonScaling            bool
	// With FiltersWindows: its window in milliseconds (0: none) and the
	// slices it is kept in.
	Window uint64
	Slices uint16
	// With FiltersPlacement: the members it lives on (Replicas 0: every
	// member, and no Owners) and how the member answering holds it.
	Replicas uint8
	Owners   [][]byte
	Here     uint8
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
	if len(fs) > MaxFilterInfos || flags&^filtersFlags != 0 {
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
		if flags&FiltersStages != 0 {
			dst = binary.BigEndian.AppendUint16(dst, f.Stages)
			dst = binary.BigEndian.AppendUint64(dst, f.Bytes)
			dst = binary.BigEndian.AppendUint64(dst, f.StagesCapacity)
			dst = binary.BigEndian.AppendUint32(dst, f.Expansion)
			dst = append(dst, b2b(f.NonScaling))
		}
		if flags&FiltersWindows != 0 {
			dst = binary.BigEndian.AppendUint64(dst, f.Window)
			dst = binary.BigEndian.AppendUint16(dst, f.Slices)
		}
		if flags&FiltersPlacement != 0 {
			if len(f.Owners) > 255 || f.Here > heldLast {
				return dst[:start], frameErr(TypeFilters, len(dst), ErrValue)
			}
			dst = append(dst, f.Replicas, byte(len(f.Owners)))
			for _, o := range f.Owners {
				if len(o) > MaxNameLen {
					return dst[:start], frameErr(TypeFilters, len(dst), ErrValue)
				}
				dst = append(dst, byte(len(o)))
				dst = append(dst, o...)
			}
			dst = append(dst, f.Here)
		}
	}
	return endExt(dst, start)
}

func b2b(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func (r *reader) filterDesc(flags uint8) FilterDesc {
	var f FilterDesc
	f.Name = r.Bytes(int(r.U8()))
	r.check(r.Err() == nil && !ValidFilterName(f.Name), len(f.Name), ErrValue)
	f.Conflicts, f.Gen, f.Created = r.U8(), r.U64(), int64(r.U64())
	f.Origin = r.Bytes(int(r.U8()))
	f.FP = r.fingerprint()
	f.Capacity, f.FPRate, f.Keys, f.FillPPM = r.U64(), math.Float64frombits(r.U64()), r.U64(), r.U32()
	r.check(r.Err() == nil && f.FillPPM > 1_000_000, 4, ErrValue)
	if flags&FiltersStages != 0 {
		f.Stages, f.Bytes, f.StagesCapacity, f.Expansion = r.U16(), r.U64(), r.U64(), r.U32()
		g := r.U8()
		r.check(r.Err() == nil && g > 1, 1, ErrValue)
		f.NonScaling = g == 1
	}
	if flags&FiltersWindows != 0 {
		f.Window, f.Slices = r.U64(), r.U16()
	}
	if flags&FiltersPlacement != 0 {
		f.Replicas = r.U8()
		owners := int(r.U8())
		for range owners {
			if r.Err() != nil {
				break
			}
			f.Owners = append(f.Owners, r.Bytes(int(r.U8())))
		}
		f.Here = r.U8()
		r.check(r.Err() == nil && f.Here > heldLast, 1, ErrValue)
	}
	return f
}

// filtersFlags are the flags a filters frame may have.
const filtersFlags = FiltersMore | FiltersStages | FiltersWindows | FiltersPlacement

// DecodeFilters decodes a filters frame.
func DecodeFilters(b []byte) (Filters, error) {
	r := extReader(b, TypeFilters)
	fs := Filters{ReqID: r.U32(), Flags: r.U8(), Count: int(r.U16())}
	r.check(r.Err() == nil && fs.Flags&^filtersFlags != 0, 3, ErrValue)
	r.check(r.Err() == nil && fs.Count > MaxFilterInfos, 2, ErrTooLarge)
	start := r.Offset()
	for i := 0; i < fs.Count && r.Err() == nil; i++ {
		r.filterDesc(fs.Flags)
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
		r := newReader(fs.raw, 0)
		for range fs.Count {
			if !yield(r.filterDesc(fs.Flags)) {
				return
			}
		}
	}
}
