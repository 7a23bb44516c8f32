package wire

import (
	"encoding/binary"
	"math"
	"time"
)

// A named filter's deadline: when every member drops it (EXPIRE).
//
//	expire request 0x2e: request id:uint32, op:uint8 (0 ask, 1 set at, 2
//	               set in), deadline:int64 (set at: Unix ms, 0 taking the
//	               deadline off, as PERSIST; set in: milliseconds from now
//	               by the node's clock; ask: 0), name (length:uint8,
//	               1..MaxFilterName bytes), then optional zero padding
//	expiry         0x2f: request id:uint32, deadline:int64 (Unix ms; 0:
//	               none), now:int64 (the node's clock, Unix ms)
//
// A set is an admin's, an ask a reader's. A deadline at or before the
// node's clock drops the filter at once; the expiry answering it says
// deadline 0 then. A name with no filter, or one whose deadline has come,
// is refused (an error frame); the default filter never expires (an ask
// answers 0, a set is refused). A node whose pong has flag bit 5
// (PongExpiry) answers them.

// Expire request operations.
const (
	ExpireAsk   uint8 = 0 // tell the deadline
	ExpireSet   uint8 = 1 // set it to Deadline, a Unix time in ms (0: none)
	ExpireSetIn uint8 = 2 // set it Deadline ms from now, by the node's clock
)

// validExpire: a known op, a deadline that op takes, a filter's name.
func validExpire(q ExpireRequest) bool {
	return q.Op <= ExpireSetIn && q.Deadline >= 0 && (q.Op != ExpireAsk || q.Deadline == 0) &&
		len(q.Name) > 0 && len(q.Name) <= MaxFilterName
}

// ExpireRequest is a decoded expire request.
type ExpireRequest struct {
	ReqID    uint32
	Op       uint8
	Deadline int64  // Unix ms; 0: none
	Name     []byte // sub-slice of the frame
	Pad      int    // zero bytes after, to this frame size in all (encode only)
}

// AppendExpireRequest appends an expire request.
func AppendExpireRequest(dst []byte, q ExpireRequest) ([]byte, error) {
	if !validExpire(q) {
		return dst, frameErr(TypeExpireReq, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypeExpireReq)
	dst = binary.BigEndian.AppendUint32(dst, q.ReqID)
	dst = append(dst, q.Op)
	dst = binary.BigEndian.AppendUint64(dst, uint64(q.Deadline))
	dst = append(dst, byte(len(q.Name)))
	dst = append(dst, q.Name...)
	dst, err := endExt(dst, start)
	if err != nil || q.Pad == 0 {
		return dst, err
	}
	return PadFrame(dst, start, q.Pad)
}

// DecodeExpireRequest decodes an expire request, padded or not.
func DecodeExpireRequest(b []byte) (ExpireRequest, error) {
	r := extReader(b, TypeExpireReq)
	q := ExpireRequest{ReqID: r.U32(), Op: r.U8(), Deadline: int64(r.U64())}
	q.Name = r.Bytes(int(r.U8()))
	r.check(r.Err() == nil && !validExpire(q), 10+len(q.Name), ErrValue)
	r.padding()
	if err := r.done(); err != nil {
		return ExpireRequest{}, err
	}
	return q, nil
}

// Expiry is a decoded expiry frame.
type Expiry struct {
	ReqID    uint32
	Deadline int64 // Unix ms; 0: none
	Now      int64 // the node's clock, Unix ms
}

// ExpirySize is an expiry frame's size.
const ExpirySize = HeaderSize + 4 + 8 + 8

// AppendExpiry appends an expiry frame.
func AppendExpiry(dst []byte, x Expiry) ([]byte, error) {
	if x.Deadline < 0 {
		return dst, frameErr(TypeExpiry, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypeExpiry)
	dst = binary.BigEndian.AppendUint32(dst, x.ReqID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(x.Deadline))
	dst = binary.BigEndian.AppendUint64(dst, uint64(x.Now))
	return endExt(dst, start)
}

// DecodeExpiry decodes an expiry frame.
func DecodeExpiry(b []byte) (Expiry, error) {
	r := extReader(b, TypeExpiry)
	x := Expiry{ReqID: r.U32(), Deadline: int64(r.U64()), Now: int64(r.U64())}
	r.check(r.Err() == nil && x.Deadline < 0, 12, ErrValue)
	if err := r.done(); err != nil {
		return Expiry{}, err
	}
	return x, nil
}

// Time is the deadline a set asks for, now being the node's clock: the
// zero time for none.
func (q ExpireRequest) Time(now time.Time) time.Time {
	switch {
	case q.Op == ExpireSetIn:
		return time.UnixMilli(now.UnixMilli() + min(q.Deadline, math.MaxInt64-now.UnixMilli()))
	case q.Deadline == 0:
		return time.Time{}
	}
	return time.UnixMilli(q.Deadline)
}
