package wire

import (
	"encoding/binary"

	"github.com/rmbd/rmbd/filter"
)

// MaxMembers bounds the members one members frame lists.
const MaxMembers = 1024

// Member states in a members frame. Append-only.
const (
	MemberAlive   uint8 = 0
	MemberSuspect uint8 = 1
	MemberDead    uint8 = 2
	MemberLeft    uint8 = 3
)

// Member is one cluster member as a node sees it.
type Member struct {
	Name       []byte // at most MaxNameLen bytes
	GossipAddr []byte // memberlist address HOST:PORT
	DataAddr   []byte // rmbd address HOST:PORT
	State      uint8  // MemberAlive…
	FPMatch    bool   // same fingerprint as the answering node
	FP         filter.Fingerprint
	// Age is the seconds the member has been in its state, as the
	// answering node saw it change.
	Age uint32
	// LastSync is the milliseconds since the member last acknowledged
	// rows from the answering node, or NeverSynced.
	LastSync uint32
}

// NeverSynced is Member.LastSync of a member that never acknowledged rows.
const NeverSynced = ^uint32(0)

// AppendMembersRequest appends a members request.
func AppendMembersRequest(dst []byte, reqID uint32) ([]byte, error) {
	return appendRequest(dst, TypeMembersReq, reqID)
}

// DecodeMembersRequest decodes a members request and returns its id.
func DecodeMembersRequest(b []byte) (uint32, error) { return decodeRequest(b, TypeMembersReq) }

// Members is a decoded members frame.
type Members struct {
	ReqID uint32
	Count int
	raw   []byte
	// timing is the block of ages and last syncs, if the node sent one.
	timing []byte
	timed  bool
}

// AppendMembers appends a members frame.
func AppendMembers(dst []byte, reqID uint32, ms []Member) ([]byte, error) {
	if len(ms) > MaxMembers {
		return dst, frameErr(TypeMembers, len(dst), ErrTooLarge)
	}
	dst, start := beginExt(dst, TypeMembers)
	dst = binary.BigEndian.AppendUint32(dst, reqID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ms)))
	for _, m := range ms {
		if len(m.Name) > MaxNameLen || len(m.GossipAddr) > MaxNameLen || len(m.DataAddr) > MaxNameLen || m.State > MemberLeft {
			return dst[:start], frameErr(TypeMembers, len(dst), ErrValue)
		}
		for _, s := range [][]byte{m.Name, m.GossipAddr, m.DataAddr} {
			dst = append(dst, byte(len(s)))
			dst = append(dst, s...)
		}
		match := byte(0)
		if m.FPMatch {
			match = 1
		}
		dst = append(dst, m.State, match)
		dst, _ = m.FP.AppendBinary(dst)
	}
	for _, m := range ms { // the timing block
		dst = binary.BigEndian.AppendUint32(dst, m.Age)
		dst = binary.BigEndian.AppendUint32(dst, m.LastSync)
	}
	return endExt(dst, start)
}

// member reads one member entry.
func (r *reader) member() Member {
	var m Member
	m.Name = r.Bytes(int(r.U8()))
	m.GossipAddr = r.Bytes(int(r.U8()))
	m.DataAddr = r.Bytes(int(r.U8()))
	m.State = r.U8()
	r.check(m.State > MemberLeft, 1, ErrValue)
	match := r.U8()
	r.check(match > 1, 1, ErrValue)
	m.FPMatch = match == 1
	m.FP = r.fingerprint()
	return m
}

// DecodeMembers decodes a members frame.
func DecodeMembers(b []byte) (Members, error) {
	r := extReader(b, TypeMembers)
	ms := Members{ReqID: r.U32(), Count: int(r.U16())}
	r.check(ms.Count > MaxMembers, 2, ErrTooLarge)
	start := r.Offset()
	for i := 0; i < ms.Count && r.Err() == nil; i++ {
		r.member()
	}
	end := r.Offset()
	if r.Err() == nil && r.Left() > 0 { // the timing block; absent from older nodes
		r.Bytes(8 * ms.Count)
		ms.timed = true
	}
	if err := r.done(); err != nil {
		return Members{}, err
	}
	ms.raw, ms.timing = b[start:end], b[end:r.Offset()]
	return ms, nil
}

// All yields every member in order; byte fields are sub-slices of the frame.
func (ms Members) All() func(yield func(Member) bool) {
	return func(yield func(Member) bool) {
		r := newReader(ms.raw, 0)
		for i := range ms.Count {
			m := r.member()
			m.LastSync = NeverSynced
			if ms.timed {
				m.Age = binary.BigEndian.Uint32(ms.timing[8*i:])
				m.LastSync = binary.BigEndian.Uint32(ms.timing[8*i+4:])
			}
			if !yield(m) {
				return
			}
		}
	}
}
