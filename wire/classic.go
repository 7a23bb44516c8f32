package wire

import (
	"bytes"
	"encoding/binary"
)

// Classic frame sizes and limits (DESIGN.md, "Classic frames").
const (
	// ClassicKeySize is a key as a Pascal string: length byte, key, zeros.
	ClassicKeySize = 140
	// MaxClassicKey is the longest key a classic frame carries.
	MaxClassicKey = ClassicKeySize - 1
	// ClassicKeyFrameSize is the size of add and has frames.
	ClassicKeyFrameSize = 1 + ClassicKeySize
	// ClassicHasReplySize is the has reply: the key form and a bool, no type.
	ClassicHasReplySize = ClassicKeySize + 1
	// ClassicRowBits is the bits (one byte each) of a classic sync row.
	ClassicRowBits = 400
	// ClassicSyncSize is type, row:uint16, 400 one-byte bits.
	ClassicSyncSize = 1 + 2 + ClassicRowBits
	// ClassicPeerSize is type, host (Pascal string), port:uint32.
	ClassicPeerSize = 1 + ClassicKeySize + 4
	// ClassicAckSize is the one-byte ack.
	ClassicAckSize = 1
	// MaxPort is the largest port a peer frame may name.
	MaxPort = 65535
)

// appendPascal writes s as a 140-byte Pascal string.
func appendPascal(dst []byte, t Type, s []byte) ([]byte, error) {
	if len(s) > MaxClassicKey {
		return dst, frameErr(t, len(dst), ErrKeyLength)
	}
	dst = append(dst, byte(len(s)))
	dst = append(dst, s...)
	var zeros [ClassicKeySize]byte
	return append(dst, zeros[:MaxClassicKey-len(s)]...), nil
}

// pascal reads a 140-byte Pascal string: the length byte must be ≤ 139 and
// the padding zero, so that every accepted frame re-encodes identically.
func (r *reader) pascal() []byte {
	field := r.Bytes(ClassicKeySize)
	if field == nil {
		return nil
	}
	n := int(field[0])
	at := r.Offset() - ClassicKeySize
	if n > MaxClassicKey {
		r.FailAt(at, ErrKeyLength)
		return nil
	}
	var zeros [ClassicKeySize]byte
	if pad := field[1+n:]; !bytes.Equal(pad, zeros[:len(pad)]) {
		i := bytes.IndexFunc(pad, func(c rune) bool { return c != 0 })
		r.FailAt(at+1+n+i, ErrValue)
		return nil
	}
	return field[1 : 1+n : 1+n]
}

// classicReader checks a classic frame's type and exact size.
func classicReader(b []byte, t Type, size int) reader {
	r := newReader(b, t)
	switch {
	case len(b) == 0:
		r.Fail(ErrShort)
	case Type(b[0]) != t:
		r.Fail(ErrType)
	case len(b) < size:
		r.FailAt(len(b), ErrShort)
	case len(b) > size:
		r.FailAt(size, ErrTrailing)
	default:
		r.U8() // the type
	}
	return r
}

// AppendClassicAdd appends a classic add frame for key (at most 139 bytes).
func AppendClassicAdd(dst, key []byte) ([]byte, error) {
	return appendPascal(append(dst, byte(TypeAdd)), TypeAdd, key)
}

// AppendClassicHas appends a classic has frame for key (at most 139 bytes).
func AppendClassicHas(dst, key []byte) ([]byte, error) {
	return appendPascal(append(dst, byte(TypeHas)), TypeHas, key)
}

// DecodeClassicKey decodes a classic add or has frame of type t and returns
// its key, a sub-slice of b.
func DecodeClassicKey(b []byte, t Type) ([]byte, error) {
	r := classicReader(b, t, ClassicKeyFrameSize)
	key := r.pascal()
	return key, r.done()
}

// AppendClassicHasReply appends the reply to a classic has: the key in its
// 140-byte form and 0x01 if present, 0x00 if not. It has no type byte.
func AppendClassicHasReply(dst, key []byte, present bool) ([]byte, error) {
	dst, err := appendPascal(dst, TypeHas, key)
	if err != nil {
		return dst, err
	}
	if present {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

// DecodeClassicHasReply decodes a classic has reply.
func DecodeClassicHasReply(b []byte) (key []byte, present bool, err error) {
	r := newReader(b, TypeHas)
	if len(b) < ClassicHasReplySize {
		r.FailAt(len(b), ErrShort)
		return nil, false, r.failure()
	}
	key = r.pascal()
	v := r.U8()
	r.check(v > 1, 1, ErrValue)
	return key, v == 1, r.done()
}

// ClassicSync is a decoded classic sync frame: one row of 400 bits, each
// bit a byte 0x00 or 0x01.
type ClassicSync struct {
	Row  uint16
	Bits []byte // 400 bytes, sub-slice of the frame
}

// Pack appends the row in filter form (bit j is bit j%8 of byte j/8, 50
// bytes), ready for filter.MergeRows.
func (s ClassicSync) Pack(dst []byte) []byte {
	var packed [ClassicRowBits / 8]byte
	for i, bit := range s.Bits {
		packed[i/8] |= bit << (i % 8)
	}
	return append(dst, packed[:]...)
}

// AppendClassicSync appends a classic sync frame for row, given in filter
// form (50 packed bytes).
func AppendClassicSync(dst []byte, row uint16, packed []byte) ([]byte, error) {
	if len(packed) != ClassicRowBits/8 {
		return dst, frameErr(TypeSync, len(dst)+3, ErrValue)
	}
	dst = append(dst, byte(TypeSync))
	dst = binary.BigEndian.AppendUint16(dst, row)
	for i := range ClassicRowBits {
		dst = append(dst, packed[i/8]>>(i%8)&1)
	}
	return dst, nil
}

// DecodeClassicSync decodes a classic sync frame. Every bit byte must be
// 0x00 or 0x01. Whether the row exists is the filter's business.
func DecodeClassicSync(b []byte) (ClassicSync, error) {
	r := classicReader(b, TypeSync, ClassicSyncSize)
	s := ClassicSync{Row: r.U16()}
	at := r.Offset()
	s.Bits = r.Bytes(ClassicRowBits)
	for i, bit := range s.Bits {
		if bit > 1 {
			r.FailAt(at+i, ErrValue)
			break
		}
	}
	return s, r.done()
}

// ClassicPeer is a decoded classic peer frame.
type ClassicPeer struct {
	Host []byte // sub-slice of the frame
	Port uint16
}

// AppendClassicPeer appends a classic peer frame.
func AppendClassicPeer(dst, host []byte, port uint16) ([]byte, error) {
	dst, err := appendPascal(append(dst, byte(TypePeer)), TypePeer, host)
	if err != nil {
		return dst, err
	}
	return binary.BigEndian.AppendUint32(dst, uint32(port)), nil
}

// DecodeClassicPeer decodes a classic peer frame; the port must be ≤ 65535.
func DecodeClassicPeer(b []byte) (ClassicPeer, error) {
	r := classicReader(b, TypePeer, ClassicPeerSize)
	p := ClassicPeer{Host: r.pascal()}
	port := r.U32()
	r.check(port > MaxPort, 4, ErrValue)
	p.Port = uint16(port)
	return p, r.done()
}

// AppendClassicAck appends the one-byte ack.
func AppendClassicAck(dst []byte) []byte { return append(dst, byte(TypeAck)) }

// DecodeClassicAck checks a classic ack: exactly the byte 0x04.
func DecodeClassicAck(b []byte) error {
	r := classicReader(b, TypeAck, ClassicAckSize)
	return r.done()
}
