package wire

import (
	"encoding/binary"
	"math"
)

// The push targets of a node's default filter — static peers (--peer,
// peer requests) and members — as an admin asks for them:
//
//	peers request 0x2c: request id:uint32, then optional zero padding
//	peers         0x2d: request id:uint32, count:uint16, then each: address
//	              (length:uint8, HOST:PORT), flags:uint8 (bit 0 a cluster
//	              member, not a static peer; bit 1 verified: a member, or a
//	              static peer that answered its challenge), missed:uint16
//	              (consecutive rounds without an ack, at most 65535), acked
//	              ticks ago:uint32 (0xffffffff: never acknowledged)
//
// A node whose pong has flag bit 4 (PongPeers) answers them.

// MaxPeersListed bounds the peers one peers frame lists.
const MaxPeersListed = 1024

// Peer flags in a peers frame.
const (
	PeerMember   uint8 = 1 << 0
	PeerVerified uint8 = 1 << 1
)

// NeverAcked is PeerInfo.AckedTicksAgo of a peer that never acknowledged.
const NeverAcked = math.MaxUint32

// PeerInfo is one push target as a node sees it.
type PeerInfo struct {
	Addr          []byte // HOST:PORT, at most MaxNameLen bytes
	Flags         uint8
	Missed        uint16
	AckedTicksAgo uint32
}

// AppendPeersRequest appends a peers request.
func AppendPeersRequest(dst []byte, reqID uint32) ([]byte, error) {
	return appendRequest(dst, TypePeersReq, reqID)
}

// DecodePeersRequest decodes a peers request and returns its id.
func DecodePeersRequest(b []byte) (uint32, error) { return decodeRequest(b, TypePeersReq) }

// AppendPeers appends a peers frame.
func AppendPeers(dst []byte, reqID uint32, ps []PeerInfo) ([]byte, error) {
	if len(ps) > MaxPeersListed {
		return dst, frameErr(TypePeers, len(dst), ErrTooLarge)
	}
	dst, start := beginExt(dst, TypePeers)
	dst = binary.BigEndian.AppendUint32(dst, reqID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ps)))
	for _, p := range ps {
		if len(p.Addr) > MaxNameLen || p.Flags&^(PeerMember|PeerVerified) != 0 {
			return dst[:start], frameErr(TypePeers, len(dst), ErrValue)
		}
		dst = append(dst, byte(len(p.Addr)))
		dst = append(dst, p.Addr...)
		dst = append(dst, p.Flags)
		dst = binary.BigEndian.AppendUint16(dst, p.Missed)
		dst = binary.BigEndian.AppendUint32(dst, p.AckedTicksAgo)
	}
	return endExt(dst, start)
}

// Peers is a decoded peers frame; its byte fields are sub-slices of it.
type Peers struct {
	ReqID uint32
	List  []PeerInfo
}

// DecodePeers decodes a peers frame.
func DecodePeers(b []byte) (Peers, error) {
	r := extReader(b, TypePeers)
	ps := Peers{ReqID: r.U32()}
	n := int(r.U16())
	r.check(r.Err() == nil && n > MaxPeersListed, 2, ErrTooLarge)
	for i := 0; i < n && r.Err() == nil; i++ {
		p := PeerInfo{Addr: r.Bytes(int(r.U8())), Flags: r.U8(), Missed: r.U16(), AckedTicksAgo: r.U32()}
		r.check(r.Err() == nil && p.Flags&^(PeerMember|PeerVerified) != 0, 7, ErrValue)
		ps.List = append(ps.List, p)
	}
	if err := r.done(); err != nil {
		return Peers{}, err
	}
	return ps, nil
}
