package wire

import (
	"encoding/binary"

	"github.com/rmbd/rmbd/filter"
)

// What nodes tell each other through memberlist: the metadata each member
// carries, and the local state two members swap in a push/pull. Neither
// is a frame on rmbd's own ports, but both come off the network, so they
// are decoded as strictly as frames. Errors name them as these types.
const (
	TypeNodeMeta   Type = 0xf0 // memberlist node metadata (not a frame)
	TypeLocalState Type = 0xf1 // memberlist push/pull state (not a frame)
)

// NodeMeta is what a member advertises about itself.
type NodeMeta struct {
	// Version is the protocol version the member speaks; members of
	// another version are refused.
	Version uint8
	// FP is the member's filter.
	FP filter.Fingerprint
	// DataPort is the port of its data address; the host is its gossip
	// address's.
	DataPort uint16
	// Flags says what the member is doing (MetaLeaving) and what it takes
	// (MetaSparseRows).
	Flags uint8
	// SealID is the id frames sealed for the member carry (its sealer's
	// sender id); 0 without a cluster key.
	SealID uint64
}

// Node metadata flags.
const (
	// MetaLeaving: the member is shutting down and leaving on purpose.
	// memberlist reports a member that left like one that failed; the
	// flag, sent just before leaving, tells them apart.
	MetaLeaving uint8 = 1 << 0
	// MetaSparseRows: the member takes sparse row syncs (TypeSparseSync).
	MetaSparseRows uint8 = 1 << 1
)

// NodeMetaSize is the size of encoded metadata of ProtocolVersion.
const NodeMetaSize = 1 + filter.FingerprintSize + 2 + 1 + 8

// AppendNodeMeta appends m: version, fingerprint, data port, flags, seal
// id.
func AppendNodeMeta(dst []byte, m NodeMeta) []byte {
	dst = append(dst, m.Version)
	dst, _ = m.FP.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint16(dst, m.DataPort)
	dst = append(dst, m.Flags)
	return binary.BigEndian.AppendUint64(dst, m.SealID)
}

// DecodeNodeMeta decodes a member's metadata. Metadata of another protocol
// version is refused with ErrVersion, before its length is looked at:
// other versions may lay it out differently.
func DecodeNodeMeta(b []byte) (NodeMeta, error) {
	r := newReader(b, TypeNodeMeta)
	m := NodeMeta{Version: r.U8()}
	r.check(m.Version != ProtocolVersion, 1, ErrVersion)
	m.FP = r.fingerprint()
	m.DataPort = r.U16()
	r.check(m.DataPort == 0, 2, ErrValue)
	m.Flags = r.U8()
	r.check(m.Flags&^(MetaLeaving|MetaSparseRows) != 0, 1, ErrValue)
	m.SealID = r.U64()
	if err := r.done(); err != nil {
		return NodeMeta{}, err
	}
	return m, nil
}

// MaxLocalStateFrames bounds the digest frames of a local state: enough
// for the largest filter (2^32 rows in blocks of 1,024, 8,192 sums a frame).
const MaxLocalStateFrames = 512

// LocalState is what a member sends in a push/pull: its name and the
// digests of its rows, for anti-entropy, then its catalog of named
// filters, if any.
type LocalState struct {
	Version uint8
	Name    []byte // sub-slice of the input
	// Digests are the digest frames, each checked by DecodeDigest.
	Digests []byte
	// Named are the named filters' digests: named frames each wrapping a
	// digest frame, checked.
	Named []byte
	// Catalog is the catalog frame's entries (nil without one).
	Catalog []byte
}

// MaxLocalStateNamed bounds the named digest frames of a local state.
const MaxLocalStateNamed = 4096

// AppendLocalStateHeader appends the start of a local state: protocol
// version and node name (at most MaxNameLen bytes). The digest frames
// follow it.
func AppendLocalStateHeader(dst, name []byte) ([]byte, error) {
	if len(name) > MaxNameLen {
		return dst, frameErr(TypeLocalState, len(dst), ErrTooLarge)
	}
	dst = append(dst, ProtocolVersion, byte(len(name)))
	return append(dst, name...), nil
}

// DecodeLocalState decodes a local state and checks every digest frame in
// it. A state of another protocol version is refused with ErrVersion.
func DecodeLocalState(b []byte) (LocalState, error) {
	r := newReader(b, TypeLocalState)
	s := LocalState{Version: r.U8()}
	r.check(s.Version != ProtocolVersion, 1, ErrVersion)
	s.Name = r.Bytes(int(r.U8()))
	start, namedStart, named := r.Offset(), -1, 0
	for frames := 0; r.Err() == nil && r.Left() > 0; frames++ {
		if frames == MaxLocalStateFrames && namedStart < 0 {
			r.Fail(ErrTooLarge)
			break
		}
		at := r.Offset()
		n, err := FrameLen(b[at:])
		switch {
		case err == nil && Type(b[at]) == TypeCatalog && n <= len(b)-at:
			// The catalog ends the state.
			if s.Catalog, err = DecodeCatalogFrame(b[at : at+n]); err != nil {
				r.Fail(ErrValue)
				break
			}
			s.Digests, s.Named = b[start:at], nil
			if namedStart >= 0 {
				s.Digests, s.Named = b[start:namedStart], b[namedStart:at]
			}
			r.Bytes(n)
			if err := r.done(); err != nil {
				return LocalState{}, err
			}
			return s, nil
		case err == nil && Type(b[at]) == TypeNamed && n <= len(b)-at:
			// Named digests follow the default's.
			nd, err := DecodeNamed(b[at : at+n])
			if err != nil || Type(nd.Inner[0]) != TypeDigest || named == MaxLocalStateNamed {
				r.Fail(ErrValue)
				break
			}
			if _, err := DecodeDigest(nd.Inner); err != nil {
				r.Fail(ErrValue)
				break
			}
			if namedStart < 0 {
				namedStart = at
			}
			named++
			r.Bytes(n)
		case namedStart >= 0:
			r.Fail(ErrType) // a digest of the default after named ones
		case err != nil || Type(b[at]) != TypeDigest:
			r.Fail(ErrType)
		case n > len(b)-at:
			r.Fail(ErrShort)
		default:
			if _, err := DecodeDigest(b[at : at+n]); err != nil {
				r.Fail(ErrValue)
			} else {
				r.Bytes(n)
			}
		}
	}
	if err := r.done(); err != nil {
		return LocalState{}, err
	}
	s.Digests = b[start:]
	if namedStart >= 0 {
		s.Digests, s.Named = b[start:namedStart], b[namedStart:]
	}
	return s, nil
}
