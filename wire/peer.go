package wire

import "encoding/binary"

// A peer request asks a node to push its rows to an address, as the
// classic peer frame does, but names a request id so that the node can
// answer: a peer result when it took the request, an error frame when it
// did not (the address is the node itself, does not resolve, the table is
// full, the source may not ask).

// MinPeerRequest is the least size of a peer request: the challenge it
// makes the node send the address it names (a classic has, 141 bytes)
// must not be larger than the request, or the request would be a lever
// for flooding that address. AppendPeerRequest pads to it.
const MinPeerRequest = ClassicKeyFrameSize

// PeerRequest is a decoded peer request.
type PeerRequest struct {
	ReqID uint32
	Host  []byte // at most MaxNameLen bytes, sub-slice of the frame
	Port  uint16
	Pad   int // zero bytes after the fields; at least what makes MinPeerRequest
}

// AppendPeerRequest appends a peer request.
func AppendPeerRequest(dst []byte, p PeerRequest) ([]byte, error) {
	if len(p.Host) == 0 || len(p.Host) > MaxNameLen || p.Port == 0 {
		return dst, frameErr(TypePeerRequest, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypePeerRequest)
	dst = binary.BigEndian.AppendUint32(dst, p.ReqID)
	dst = append(dst, byte(len(p.Host)))
	dst = append(dst, p.Host...)
	dst = binary.BigEndian.AppendUint16(dst, p.Port)
	pad := max(p.Pad, MinPeerRequest-(len(dst)-start))
	dst = append(dst, make([]byte, pad)...)
	return endExt(dst, start)
}

// DecodePeerRequest decodes a peer request.
func DecodePeerRequest(b []byte) (PeerRequest, error) {
	r := extReader(b, TypePeerRequest)
	p := PeerRequest{ReqID: r.U32()}
	p.Host = r.Bytes(int(r.U8()))
	r.check(r.Err() == nil && len(p.Host) == 0, 1, ErrValue)
	p.Port = r.U16()
	r.check(p.Port == 0, 2, ErrValue)
	p.Pad = r.padding()
	r.check(r.Err() == nil && len(b) < MinPeerRequest, 0, ErrShort)
	if err := r.done(); err != nil {
		return PeerRequest{}, err
	}
	return p, nil
}

// Peer result states. Append-only.
const (
	// PeerChallenged: the address was sent a challenge; rows follow once
	// it answers.
	PeerChallenged uint8 = 1
	// PeerKnown: the address was a push target already.
	PeerKnown uint8 = 2
)

// PeerResult answers a peer request the node took.
type PeerResult struct {
	ReqID uint32
	State uint8  // PeerChallenged or PeerKnown
	Addr  []byte // the address resolved, HOST:PORT, at most MaxNameLen bytes
}

// AppendPeerResult appends a peer result.
func AppendPeerResult(dst []byte, p PeerResult) ([]byte, error) {
	if p.State < PeerChallenged || p.State > PeerKnown || len(p.Addr) > MaxNameLen {
		return dst, frameErr(TypePeerResult, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypePeerResult)
	dst = binary.BigEndian.AppendUint32(dst, p.ReqID)
	dst = append(dst, p.State, byte(len(p.Addr)))
	dst = append(dst, p.Addr...)
	return endExt(dst, start)
}

// DecodePeerResult decodes a peer result.
func DecodePeerResult(b []byte) (PeerResult, error) {
	r := extReader(b, TypePeerResult)
	p := PeerResult{ReqID: r.U32(), State: r.U8()}
	r.check(p.State < PeerChallenged || p.State > PeerKnown, 1, ErrValue)
	p.Addr = r.Bytes(int(r.U8()))
	if err := r.done(); err != nil {
		return PeerResult{}, err
	}
	return p, nil
}
