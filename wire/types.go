package wire

import (
	"encoding/binary"
	"fmt"
	"iter"
)

// Type is a frame's first byte. Values are append-only: never renumber.
type Type uint8

// Classic frame types, from the original rmbd.
const (
	TypeAdd  Type = 0x00
	TypeHas  Type = 0x01
	TypeSync Type = 0x02
	TypePeer Type = 0x03
	TypeAck  Type = 0x04
)

// Extended frame types.
const (
	TypeAddBatch   Type = 0x10 // keys to add, optionally acknowledged by AddResult
	TypeHasBatch   Type = 0x11 // keys to test, answered by HasResult
	TypeHasResult  Type = 0x12 // bitmap: key i present
	TypeAddResult  Type = 0x13 // bitmap: key i changed the filter (was new)
	TypeRowSync    Type = 0x14 // a run of rows with fingerprint and stamp
	TypeRowAck     Type = 0x15 // acknowledges a RowSync by stamp and rows
	TypeDigest     Type = 0x16 // checksums of blocks of rows
	TypePull       Type = 0x17 // asks for runs of rows, answered by RowSync
	TypePing       Type = 0x18 // node identity and fingerprint, answered by Pong
	TypePong       Type = 0x19
	TypeStatsReq   Type = 0x1a // answered by Stats
	TypeStats      Type = 0x1b // named counters
	TypeError      Type = 0x1c // a request failed
	TypePullDone   Type = 0x1d // ends the row syncs answering a pull
	TypeMembersReq Type = 0x1e // answered by Members
	TypeMembers    Type = 0x1f // the cluster members a node sees
	// TypeSealed (0x20, sealed.go) wraps a frame with an authentication tag.
	TypePeerRequest Type = 0x21 // asks a node to push its rows to an address
	TypePeerResult  Type = 0x22 // answers a peer request that was taken
	TypeNamed       Type = 0x23 // addresses the frame it wraps to a named filter (named.go)
	TypeFilterReq   Type = 0x24 // create, drop, describe or list named filters (filters.go)
	TypeFilters     Type = 0x25 // describes named filters, answering a filter request
	TypeCatalog     Type = 0x26 // catalog entries, between members (named.go)
	TypeSparseSync  Type = 0x27 // rows as the positions of their set bits (sparse.go), acknowledged as a RowSync
	TypeDumpReq     Type = 0x28 // asks for a chunk of a filter's dump (dump.go)
	TypeDumpChunk   Type = 0x29 // a chunk of a dump, answering a dump request
	TypeLoadReq     Type = 0x2a // loads a chunk of a dump into a filter
	TypeLoaded      Type = 0x2b // answers a load request that was taken
	TypePeersReq    Type = 0x2c // asks for a node's push targets (peers.go)
	TypePeers       Type = 0x2d // a node's push targets, answering a peers request
	TypeExpireReq   Type = 0x2e // asks for or sets a named filter's deadline (expire.go)
	TypeExpiry      Type = 0x2f // a filter's deadline, answering an expire request

	lastType = TypeExpiry
)

var typeNames = map[Type]string{
	TypeAdd: "add", TypeHas: "has", TypeSync: "sync", TypePeer: "peer", TypeAck: "ack",
	TypeAddBatch: "add batch", TypeHasBatch: "has batch", TypeHasResult: "has result",
	TypeAddResult: "add result", TypeRowSync: "row sync", TypeRowAck: "row ack",
	TypeDigest: "digest", TypePull: "pull", TypePing: "ping", TypePong: "pong",
	TypeStatsReq: "stats request", TypeStats: "stats", TypeError: "error",
	TypePullDone: "pull done", TypeMembersReq: "members request", TypeMembers: "members",
	TypeNodeMeta: "node metadata", TypeLocalState: "local state",
	TypeSealed: "sealed", TypePeerRequest: "peer request", TypePeerResult: "peer result", TypeNamed: "named", TypeFilterReq: "filter request", TypeFilters: "filters", TypeCatalog: "catalog",
	TypeSparseSync: "sparse row sync", TypeDumpReq: "dump request", TypeDumpChunk: "dump chunk", TypeLoadReq: "load request", TypeLoaded: "loaded",
	TypePeersReq: "peers request", TypePeers: "peers", TypeExpireReq: "expire request", TypeExpiry: "expiry",
}

// String names the frame type.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %#02x", uint8(t))
}

// Extended reports whether t is an extended (length-prefixed) frame type.
func (t Type) Extended() bool { return t >= TypeAddBatch && t <= lastType }

// Sizes and limits. Every length read off the wire is checked against one
// of these before anything is sliced or allocated.
const (
	// HeaderSize is the type byte and uint32 body length of extended frames.
	HeaderSize = 5
	// MaxFrameBody bounds the body of an extended frame.
	MaxFrameBody = 1 << 20
	// MaxFrame bounds any frame.
	MaxFrame = HeaderSize + MaxFrameBody
	// MaxDatagram is the default largest UDP payload senders produce.
	MaxDatagram = 1400
)

// Frames yields the whole frames b holds one after another, stopping at
// the first that is short or does not decode its length.
func Frames(b []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			l, err := FrameLen(b)
			if err != nil || l > len(b) || !yield(b[:l:l]) {
				return
			}
			b = b[l:]
		}
	}
}

// FrameLen returns the length of the frame that b starts with. It needs one
// byte for classic frames and HeaderSize bytes for extended ones; with fewer
// it returns ErrShort, which on a stream means "read more".
func FrameLen(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, frameErr(0, 0, ErrShort)
	}
	t := Type(b[0])
	switch t {
	case TypeAdd, TypeHas:
		return ClassicKeyFrameSize, nil
	case TypeSync:
		return ClassicSyncSize, nil
	case TypePeer:
		return ClassicPeerSize, nil
	case TypeAck:
		return ClassicAckSize, nil
	}
	if !t.Extended() {
		return 0, frameErr(t, 0, ErrType)
	}
	if len(b) < HeaderSize {
		return 0, frameErr(t, len(b), ErrShort)
	}
	n := binary.BigEndian.Uint32(b[1:])
	if n > MaxFrameBody {
		return 0, frameErr(t, 1, ErrTooLarge)
	}
	return HeaderSize + int(n), nil
}

// beginExt appends an extended header with a zero length; endExt fills the
// length in once the body is written.
func beginExt(dst []byte, t Type) ([]byte, int) {
	return append(dst, byte(t), 0, 0, 0, 0), len(dst)
}

// PadFrame appends zeros to the extended frame that starts at start in
// dst, up to size bytes in all, and fixes its length. Requests over UDP
// are padded so that a node may answer with as many bytes as it got: it
// never sends an unverified address more than that. Decoders of the
// requests that may be padded (ping, stats, members, peer) take trailing
// zeros.
func PadFrame(dst []byte, start, size int) ([]byte, error) {
	if len(dst)-start >= size {
		return dst, nil
	}
	dst = append(dst, make([]byte, size-(len(dst)-start))...)
	return endExt(dst, start)
}

func endExt(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start - HeaderSize
	if n > MaxFrameBody {
		return dst[:start], frameErr(Type(dst[start]), start, ErrTooLarge)
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(n))
	return dst, nil
}

// RequestID returns the request id of an extended request, which every
// one carries first (a pull has none: 0, answered in its stream); ok is
// false for frames that are not requests, or too short to hold one.
func RequestID(frame []byte) (id uint32, ok bool) {
	if len(frame) == 0 {
		return 0, false
	}
	switch Type(frame[0]) {
	case TypePull:
		return 0, true
	case TypeAddBatch, TypeHasBatch, TypePing, TypeStatsReq, TypeMembersReq, TypePeerRequest, TypeFilterReq, TypeDumpReq, TypeLoadReq, TypePeersReq,
		TypeExpireReq:
		if len(frame) >= HeaderSize+4 {
			return binary.BigEndian.Uint32(frame[HeaderSize:]), true
		}
	}
	return 0, false
}
