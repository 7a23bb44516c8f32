package store

import (
	"encoding/binary"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Log segment files: a header, then records of local adds, each with its
// own checksum. Layouts in docs/FORMAT.md.
const (
	logMagic      = "RMBDLOG\x00"
	logVersion    = 1
	logHeaderSize = 8 + 2 + 2 + filter.FingerprintSize + 8 + 8

	// Record kinds.
	recordHashes uint8 = 1 // blocked layout: the keys' 64-bit hashes
	recordKeys   uint8 = 2 // classic layout: the keys themselves

	// recordHead is a record's size, kind and count.
	recordHead = 4 + 1 + 2
	// maxRecordBody bounds a record's kind, count and items: a batch of
	// the most keys of the longest length.
	maxRecordBody = 1 + 2 + wire.MaxBatchKeys*(2+wire.MaxKeyLen)
)

// appendLogHeader appends the header of segment seq of a filter with
// fingerprint fp.
func appendLogHeader(dst []byte, fp filter.Fingerprint, seq uint64) []byte {
	start := len(dst)
	dst = append(dst, logMagic...)
	dst = binary.BigEndian.AppendUint16(dst, logVersion)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst, _ = fp.AppendBinary(dst)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return binary.BigEndian.AppendUint64(dst, xxh3.Hash(dst[start:]))
}

// decodeLogHeader reads a segment's header.
func decodeLogHeader(b []byte) (fp filter.Fingerprint, seq uint64, off int, err error) {
	r := newReader(b)
	r.Check(string(r.Bytes(len(logMagic))) != logMagic, damaged("not a log segment"))
	r.Check(r.U16() != logVersion, ErrVersion)
	r.Check(r.U16() != 0, damaged("reserved header bytes"))
	fp, ferr := filter.DecodeFingerprint(r.Bytes(filter.FingerprintSize))
	r.Check(ferr != nil, damaged("fingerprint"))
	seq = r.U64()
	sum := r.U64()
	r.Check(r.Err() == nil && sum != xxh3.Hash(b[:logHeaderSize-8]), damaged("header checksum"))
	if r.Err() != nil {
		return filter.Fingerprint{}, 0, r.ErrOffset(), r.Err()
	}
	return fp, seq, r.Offset(), nil
}

// appendHashRecord appends a record of key hashes (1..MaxBatchKeys).
func appendHashRecord(dst []byte, hs []uint64) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+2+8*len(hs)))
	dst = append(dst, recordHashes)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(hs)))
	for _, h := range hs {
		dst = binary.BigEndian.AppendUint64(dst, h)
	}
	return binary.BigEndian.AppendUint64(dst, xxh3.Hash(dst[start:]))
}

// appendKeyRecord appends a record of keys (1..MaxBatchKeys, each at
// most wire.MaxKeyLen bytes).
func appendKeyRecord(dst []byte, keys [][]byte) []byte {
	start := len(dst)
	size := 1 + 2
	for _, k := range keys {
		size += 2 + len(k)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = append(dst, recordKeys)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(keys)))
	for _, k := range keys {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
	}
	return binary.BigEndian.AppendUint64(dst, xxh3.Hash(dst[start:]))
}

// record is one verified record.
type record struct {
	kind  uint8
	count int
	items []byte // hashes: count × 8 bytes; keys: count × (length:uint16, bytes)
}

// hashes yields a hash record's hashes.
func (rc record) hashes(yield func(uint64) bool) {
	for i := range rc.count {
		if !yield(binary.BigEndian.Uint64(rc.items[i*8:])) {
			return
		}
	}
}

// keys yields a key record's keys.
func (rc record) keys(yield func([]byte) bool) {
	b := rc.items
	for range rc.count {
		n := int(binary.BigEndian.Uint16(b))
		if !yield(b[2 : 2+n]) {
			return
		}
		b = b[2+n:]
	}
}

// nextRecord reads the record at the start of b. It returns the record
// and its length, or an error saying why the bytes are not a whole,
// verified record (a torn tail or damage).
func nextRecord(b []byte) (record, int, error) {
	r := newReader(b)
	size := int(r.U32())
	r.Check(r.Err() == nil && (size < 3 || size > maxRecordBody), damaged("record size"))
	body := r.Bytes(size)
	sum := r.U64()
	if r.Err() != nil {
		return record{}, 0, r.Err()
	}
	if sum != xxh3.Hash(b[:4+size]) {
		return record{}, 0, damaged("record checksum")
	}
	rc := record{kind: body[0], count: int(binary.BigEndian.Uint16(body[1:])), items: body[3:]}
	switch {
	case rc.count == 0 || rc.count > wire.MaxBatchKeys:
		return record{}, 0, damaged("record count")
	case rc.kind == recordHashes && len(rc.items) != 8*rc.count:
		return record{}, 0, damaged("hash record length")
	case rc.kind == recordKeys:
		rest := rc.items
		for range rc.count {
			if len(rest) < 2 || int(binary.BigEndian.Uint16(rest)) > min(len(rest)-2, wire.MaxKeyLen) {
				return record{}, 0, damaged("key record")
			}
			rest = rest[2+int(binary.BigEndian.Uint16(rest)):]
		}
		if len(rest) != 0 {
			return record{}, 0, damaged("key record length")
		}
	case rc.kind != recordHashes:
		return record{}, 0, damaged("record kind")
	}
	return rc, 4 + size + 8, nil
}
