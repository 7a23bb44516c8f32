package wire

import "encoding/binary"

// Sealed frames carry a node-to-node frame with an authentication tag, in
// a cluster with a key: the inner frame (row sync, row ack, pull and its
// stream, peer, classic sync and ack) is whole and unchanged, and the tag
// covers every byte before it. This file only lays the bytes out; package
// auth computes and checks tags and keeps the replay windows.
const (
	// TypeSealed wraps an authenticated frame.
	TypeSealed Type = 0x20

	// SealedOverhead is what sealing adds to a frame: header, key id,
	// sender, sequence, receiver, time, tag.
	SealedOverhead = HeaderSize + 4 + 8 + 8 + 8 + 8 + TagSize
	// TagSize is the size of a sealed frame's tag.
	TagSize = 16
)

// SealedHead is what a sealed frame says of itself before the frame it
// carries; the tag covers it.
type SealedHead struct {
	KeyID  uint32 // which cluster key sealed it
	Sender uint64 // the sender's id: random per sender process
	Seq    uint64 // the sender's count of sealed frames, from 1: with Sender, never repeats
	To     uint64 // the receiver's id (its Sender in what it seals); 0: unknown to the sender
	Time   int64  // when it was sealed, by the sender's clock: Unix milliseconds
}

// Sealed is a decoded sealed frame.
type Sealed struct {
	SealedHead
	Inner    []byte // the frame sealed, whole (sub-slice of the input)
	Tag      []byte // TagSize bytes (sub-slice)
	Covered  []byte // the bytes the tag covers: everything before it (sub-slice)
	innerTyp Type
}

// InnerType returns the inner frame's type.
func (s Sealed) InnerType() Type { return s.innerTyp }

// AppendSealedHead appends a sealed frame's header and h; the caller
// appends the inner frame, then FinishSealedLength, then the tag over
// everything from start.
func AppendSealedHead(dst []byte, h SealedHead) (out []byte, start int) {
	dst, start = beginExt(dst, TypeSealed)
	dst = binary.BigEndian.AppendUint32(dst, h.KeyID)
	dst = binary.BigEndian.AppendUint64(dst, h.Sender)
	dst = binary.BigEndian.AppendUint64(dst, h.Seq)
	dst = binary.BigEndian.AppendUint64(dst, h.To)
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.Time))
	return dst, start
}

// FinishSealedLength sets the body length of the sealed frame at start to
// cover what was appended and a tag still to come, so that the tag covers
// the final length; it fails past MaxFrameBody.
func FinishSealedLength(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start - HeaderSize + TagSize
	if n > MaxFrameBody {
		return dst[:start], frameErr(TypeSealed, start, ErrTooLarge)
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(n))
	return dst, nil
}

// DecodeSealed decodes a sealed frame's layout: the inner frame must be
// one whole frame of a type that may be sealed. It checks no tag.
func DecodeSealed(b []byte) (Sealed, error) {
	r := extReader(b, TypeSealed)
	s := Sealed{SealedHead: SealedHead{KeyID: r.U32(), Sender: r.U64(), Seq: r.U64(), To: r.U64(), Time: int64(r.U64())}}
	start := r.Offset()
	if r.Err() == nil && len(b)-start < TagSize+1 {
		r.Fail(ErrShort)
	}
	if r.Err() != nil {
		return Sealed{}, r.failure()
	}
	inner := b[start : len(b)-TagSize : len(b)-TagSize]
	n, err := FrameLen(inner)
	switch {
	case err != nil:
		r.Fail(ErrValue)
	case n != len(inner):
		r.FailAt(start+min(n, len(inner)), ErrValue)
	case !Sealable(Type(inner[0])):
		r.Fail(ErrType)
	}
	if r.Err() != nil {
		return Sealed{}, r.failure()
	}
	s.Inner, s.innerTyp = inner, Type(inner[0])
	s.Covered = b[: len(b)-TagSize : len(b)-TagSize]
	s.Tag = b[len(b)-TagSize:]
	return s, nil
}

// Sealable reports whether a frame of type t may travel sealed: the
// frames nodes send each other, and the admin requests a client holding
// the key seals (stats, members, filter requests) with their answers;
// never adds, has, pings or another seal.
func Sealable(t Type) bool {
	switch t {
	case TypeSync, TypePeer, TypeAck, TypeRowSync, TypeSparseSync, TypeRowAck, TypePull, TypePullDone, TypeError, TypePeerRequest, TypePeerResult, TypeNamed,
		TypeCatalog, TypeAddResult, TypeHasResult: // results: answers to batches a member forwarded
		return true
	}
	return AdminSealable(t)
}

// AdminSealable reports whether t is an admin request, or its answer,
// that a client may seal to prove itself an admin, and may as well send
// plain.
func AdminSealable(t Type) bool {
	switch t {
	case TypeStatsReq, TypeStats, TypeMembersReq, TypeMembers, TypeFilterReq, TypeFilters, TypeDumpReq, TypeDumpChunk, TypeLoadReq, TypeLoaded, TypePeersReq, TypePeers, TypeExpireReq, TypeExpiry:
		return true
	}
	return false
}
