package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/rmbd/rmbd/filter"
)

// Control frame limits.
const (
	// ProtocolVersion is the extended protocol version a node speaks.
	ProtocolVersion = 2
	// MaxNameLen bounds node names and addresses in ping and pong.
	MaxNameLen = 255
	// MaxStats is the most counters one stats frame carries.
	MaxStats = 256
	// MaxStatName bounds a counter's name.
	MaxStatName = 64
	// MaxErrorMsg bounds an error frame's message.
	MaxErrorMsg = 1024
)

// Ping is a decoded ping or pong: who the sender is and what filter it has.
type Ping struct {
	Type    Type // TypePing or TypePong
	ReqID   uint32
	Version uint8
	FP      filter.Fingerprint
	Name    []byte // node name, sub-slice of the frame
	Addr    []byte // data address HOST:PORT, sub-slice of the frame
	// Pong only:
	Flags uint8  // PongAuthenticated, ...
	Build []byte // the node's version, e.g. "v1.2.3 (abc1234)"; at most MaxNameLen bytes
	// Pad is the zero bytes after the fields (PadFrame).
	Pad int
}

// Pong flags. Append-only.
const (
	// PongAuthenticated: the node's cluster traffic is authenticated (it
	// has a cluster key).
	PongAuthenticated uint8 = 1 << 0
	// PongOverCapacity: the filter holds more keys than it was sized for.
	PongOverCapacity uint8 = 1 << 1
	// PongFPHigh: the filter's estimated false-positive rate is over
	// twice the rate it was sized for.
	PongFPHigh uint8 = 1 << 2
	// PongStages: the node describes filters' stages when a filter
	// request asks (FilterDetailStages).
	PongStages uint8 = 1 << 3
	// PongPeers: the node answers peers requests.
	PongPeers uint8 = 1 << 4
	// PongExpiry: the node answers expire requests.
	PongExpiry uint8 = 1 << 5
	// PongWindows: the node makes windowed filters and describes windows
	// when a filter request asks (FilterDetailWindows).
	PongWindows uint8 = 1 << 6
	// PongPlacement: the node places filters on some members (a filter
	// request's Replicas), forwards requests for filters it does not
	// hold, and describes placement when asked (FilterDetailPlacement).
	// The last bit: a later capability needs another field.
	PongPlacement uint8 = 1 << 7
)

// AppendPing appends a ping or pong frame (p.Type says which).
func AppendPing(dst []byte, p Ping) ([]byte, error) {
	if p.Type != TypePing && p.Type != TypePong {
		return dst, frameErr(p.Type, len(dst), ErrType)
	}
	if len(p.Name) > MaxNameLen || len(p.Addr) > MaxNameLen || len(p.Build) > MaxNameLen {
		return dst, frameErr(p.Type, len(dst), ErrTooLarge)
	}
	if p.Type == TypePing && (p.Flags != 0 || len(p.Build) > 0) {
		return dst, frameErr(p.Type, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, p.Type)
	dst = binary.BigEndian.AppendUint32(dst, p.ReqID)
	dst = append(dst, p.Version)
	dst, _ = p.FP.AppendBinary(dst)
	dst = append(dst, byte(len(p.Name)))
	dst = append(dst, p.Name...)
	dst = append(dst, byte(len(p.Addr)))
	dst = append(dst, p.Addr...)
	if p.Type == TypePong && (p.Flags != 0 || len(p.Build) > 0) {
		dst = append(dst, p.Flags, byte(len(p.Build)))
		dst = append(dst, p.Build...)
	}
	dst = append(dst, make([]byte, p.Pad)...)
	return endExt(dst, start)
}

// DecodePing decodes a ping or pong frame.
func DecodePing(b []byte) (Ping, error) {
	t := TypePing
	if len(b) > 0 && Type(b[0]) == TypePong {
		t = TypePong
	}
	r := extReader(b, t)
	p := Ping{Type: t, ReqID: r.U32(), Version: r.U8(), FP: r.fingerprint()}
	p.Name = r.Bytes(int(r.U8()))
	p.Addr = r.Bytes(int(r.U8()))
	if t == TypePong && r.Err() == nil && r.Left() > 0 { // absent from older nodes' pongs
		// Zeros, no flags and no build, are read as padding.
		if rest := b[r.Offset():]; len(rest) < 2 || rest[0] != 0 || rest[1] != 0 {
			p.Flags = r.U8()
			p.Build = r.Bytes(int(r.U8()))
		}
	}
	p.Pad = r.padding()
	if err := r.done(); err != nil {
		return Ping{Type: t}, err
	}
	return p, nil
}

// appendRequest appends a request that is only a request id.
func appendRequest(dst []byte, t Type, reqID uint32) ([]byte, error) {
	dst, start := beginExt(dst, t)
	dst = binary.BigEndian.AppendUint32(dst, reqID)
	return endExt(dst, start)
}

// decodeRequest decodes a request that is only a request id, padded or
// not.
func decodeRequest(b []byte, t Type) (uint32, error) {
	r := extReader(b, t)
	id := r.U32()
	r.padding()
	return id, r.done()
}

// AppendStatsRequest appends a stats request.
func AppendStatsRequest(dst []byte, reqID uint32) ([]byte, error) {
	return appendRequest(dst, TypeStatsReq, reqID)
}

// DecodeStatsRequest decodes a stats request and returns its request id.
func DecodeStatsRequest(b []byte) (uint32, error) { return decodeRequest(b, TypeStatsReq) }

// Stat is one named counter.
type Stat struct {
	Name  string
	Value uint64
}

// Stats is a decoded stats frame.
type Stats struct {
	ReqID uint32
	Count int
	raw   []byte
}

// All yields every counter in order. Names are sub-slices of the frame.
func (s Stats) All() func(yield func(name []byte, value uint64) bool) {
	return func(yield func([]byte, uint64) bool) {
		b := s.raw
		for range s.Count {
			n := int(b[0])
			if !yield(b[1:1+n:1+n], binary.BigEndian.Uint64(b[1+n:])) {
				return
			}
			b = b[1+n+8:]
		}
	}
}

// AppendStats appends a stats frame.
func AppendStats(dst []byte, reqID uint32, stats []Stat) ([]byte, error) {
	if len(stats) > MaxStats {
		return dst, frameErr(TypeStats, len(dst), ErrTooLarge)
	}
	dst, start := beginExt(dst, TypeStats)
	dst = binary.BigEndian.AppendUint32(dst, reqID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(stats)))
	for _, s := range stats {
		if len(s.Name) > MaxStatName {
			return dst[:start], frameErr(TypeStats, len(dst), ErrTooLarge)
		}
		dst = append(dst, byte(len(s.Name)))
		dst = append(dst, s.Name...)
		dst = binary.BigEndian.AppendUint64(dst, s.Value)
	}
	return endExt(dst, start)
}

// DecodeStats decodes a stats frame.
func DecodeStats(b []byte) (Stats, error) {
	r := extReader(b, TypeStats)
	s := Stats{ReqID: r.U32(), Count: int(r.U16())}
	r.check(s.Count > MaxStats, 2, ErrTooLarge)
	start := r.Offset()
	for i := 0; i < s.Count && r.Err() == nil; i++ {
		n := int(r.U8())
		r.check(n > MaxStatName, 1, ErrTooLarge)
		r.Bytes(n)
		r.U64()
	}
	if err := r.done(); err != nil {
		return Stats{}, err
	}
	s.raw = b[start:]
	return s, nil
}

// Error codes carried by error frames. Append-only.
const (
	CodeBadFrame    uint16 = 1  // the request did not decode
	CodeFingerprint uint16 = 2  // the request's fingerprint is not the node's
	CodeTooLarge    uint16 = 3  // the request asks for more than the node serves
	CodeUnavailable uint16 = 4  // the node cannot serve now (shutting down)
	CodeRowRange    uint16 = 5  // rows outside the node's filter
	CodeForbidden   uint16 = 6  // the source may not ask this (--allow…)
	CodeUseTCP      uint16 = 7  // the answer is larger than the request: pad it or use TCP
	CodeUnsealed    uint16 = 8  // the node has a cluster key: this request must be sealed
	CodeRefused     uint16 = 9  // the node will not do it (the message says why)
	CodeBusy        uint16 = 10 // too many at once: try again later
	CodeProtected   uint16 = 11 // protected mode: the node answers loopback alone until configured
	CodeUnwritable  uint16 = 12 // the node cannot write its log: acknowledged adds are refused until it can
	CodeReceiver    uint16 = 13 // sealed for another receiver: this hint, sealed by the node, names it
	CodeNotHere     uint16 = 14 // a forwarded request for a filter this member does not hold (or, for a has, is still filling)
)

var codeNames = [...]string{CodeBadFrame: "bad frame", CodeFingerprint: "fingerprint mismatch", CodeTooLarge: "too large",
	CodeUnavailable: "unavailable", CodeRowRange: "rows out of range", CodeForbidden: "forbidden", CodeUseTCP: "use TCP",
	CodeUnsealed: "unsealed", CodeRefused: "refused", CodeBusy: "busy", CodeProtected: "protected mode",
	CodeUnwritable: "cannot write to disk", CodeReceiver: "wrong receiver",
	CodeNotHere: "not held here"}

// CodeName names an error code, e.g. "forbidden".
func CodeName(code uint16) string {
	if int(code) < len(codeNames) && codeNames[code] != "" {
		return codeNames[code]
	}
	return fmt.Sprintf("code %d", code)
}

// ErrorFrame is a decoded error frame answering request ReqID.
type ErrorFrame struct {
	ReqID uint32
	Code  uint16
	Msg   []byte // sub-slice of the frame
}

// AppendError appends an error frame; a longer message is cut to
// MaxErrorMsg bytes.
func AppendError(dst []byte, e ErrorFrame) ([]byte, error) {
	msg := e.Msg[:min(len(e.Msg), MaxErrorMsg)]
	dst, start := beginExt(dst, TypeError)
	dst = binary.BigEndian.AppendUint32(dst, e.ReqID)
	dst = binary.BigEndian.AppendUint16(dst, e.Code)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	dst = append(dst, msg...)
	return endExt(dst, start)
}

// DecodeError decodes an error frame.
func DecodeError(b []byte) (ErrorFrame, error) {
	r := extReader(b, TypeError)
	e := ErrorFrame{ReqID: r.U32(), Code: r.U16()}
	n := int(r.U16())
	r.check(n > MaxErrorMsg, 2, ErrTooLarge)
	e.Msg = r.Bytes(n)
	if err := r.done(); err != nil {
		return ErrorFrame{}, err
	}
	return e, nil
}

// PullDone ends the row syncs answering a pull: Rows rows were sent.
type PullDone struct {
	Rows uint32
}

// PullDoneSize is the size of a pull done frame.
const PullDoneSize = HeaderSize + 4

// AppendPullDone appends a pull done frame.
func AppendPullDone(dst []byte, d PullDone) ([]byte, error) {
	dst, start := beginExt(dst, TypePullDone)
	dst = binary.BigEndian.AppendUint32(dst, d.Rows)
	return endExt(dst, start)
}

// DecodePullDone decodes a pull done frame.
func DecodePullDone(b []byte) (PullDone, error) {
	r := extReader(b, TypePullDone)
	d := PullDone{Rows: r.U32()}
	return d, r.done()
}
