package wire

import "encoding/binary"

// Batch limits.
const (
	// MaxKeyLen is the longest key an extended frame carries.
	MaxKeyLen = 4096
	// MaxBatchKeys is the most keys one batch (and one result) carries.
	MaxBatchKeys = 4096
	// BatchHeaderSize is the header, request id, flags and count.
	BatchHeaderSize = HeaderSize + 4 + 1 + 2
	// BatchFlagsAt is where a batch's flags are in its frame.
	BatchFlagsAt = HeaderSize + 4
	// KeyOverhead is the per-key length prefix in a batch.
	KeyOverhead = 2
)

// Batch flags.
const (
	// FlagAck asks for an AddResult answering an add batch.
	FlagAck uint8 = 1 << 0
	// FlagForwarded marks a batch a member forwarded to an owner of its
	// filter (package route): the member asked serves it itself, or
	// answers CodeNotHere, and never forwards it again.
	FlagForwarded uint8 = 1 << 1
)

// Batch is a decoded add batch or has batch.
type Batch struct {
	Type  Type // TypeAddBatch or TypeHasBatch
	ReqID uint32
	Flags uint8
	Keys  Keys
}

// Keys is a validated list of length-prefixed keys inside a frame.
type Keys struct {
	n   int
	raw []byte
}

// Len returns the number of keys.
func (k Keys) Len() int { return k.n }

// Next returns the first key and the rest. Call it Len times.
func (k Keys) Next() ([]byte, Keys) {
	if k.n == 0 || len(k.raw) < KeyOverhead {
		return nil, Keys{}
	}
	l := int(binary.BigEndian.Uint16(k.raw))
	if l > len(k.raw)-KeyOverhead {
		return nil, Keys{}
	}
	end := KeyOverhead + l
	return k.raw[KeyOverhead:end:end], Keys{n: k.n - 1, raw: k.raw[end:]}
}

// All yields every key in order; each is a sub-slice of the frame.
func (k Keys) All() func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for rest := k; rest.n > 0; {
			var key []byte
			key, rest = rest.Next()
			if !yield(key) {
				return
			}
		}
	}
}

// BatchSize returns the encoded size of a batch holding keys whose lengths
// add up to keyBytes: senders use it to fill datagrams.
func BatchSize(keys, keyBytes int) int { return BatchHeaderSize + keys*KeyOverhead + keyBytes }

// AppendBatch appends an add batch or has batch. Has batches take no flags.
func AppendBatch(dst []byte, t Type, reqID uint32, flags uint8, keys [][]byte) ([]byte, error) {
	if t != TypeAddBatch && t != TypeHasBatch || t == TypeHasBatch && flags != 0 || flags&^FlagAck != 0 {
		return dst, frameErr(t, len(dst), ErrValue)
	}
	if len(keys) > MaxBatchKeys {
		return dst, frameErr(t, len(dst)+HeaderSize+5, ErrTooLarge)
	}
	dst, start := beginExt(dst, t)
	dst = binary.BigEndian.AppendUint32(dst, reqID)
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(keys)))
	for _, k := range keys {
		if len(k) > MaxKeyLen {
			return dst[:start], frameErr(t, len(dst), ErrKeyLength)
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
	}
	return endExt(dst, start)
}

// DecodeBatch decodes an add batch or has batch. It walks every key once,
// so that Keys never meets a malformed list.
func DecodeBatch(b []byte) (Batch, error) {
	t := TypeAddBatch
	if len(b) > 0 && Type(b[0]) == TypeHasBatch {
		t = TypeHasBatch
	}
	r := extReader(b, t)
	bt := Batch{Type: t, ReqID: r.U32(), Flags: r.U8()}
	r.check(bt.Flags&^(FlagAck|FlagForwarded) != 0 || t == TypeHasBatch && bt.Flags&^FlagForwarded != 0, 1, ErrValue)
	n := int(r.U16())
	r.check(n > MaxBatchKeys, 2, ErrTooLarge)
	start := r.Offset()
	for i := 0; i < n && r.Err() == nil; i++ {
		l := int(r.U16())
		r.check(l > MaxKeyLen, 2, ErrKeyLength)
		r.Bytes(l)
	}
	if err := r.done(); err != nil {
		return Batch{Type: t}, err
	}
	bt.Keys = Keys{n: n, raw: b[start:]}
	return bt, nil
}

// Result is a decoded has result or add result: bit i answers key i of
// the batch with request id ReqID.
type Result struct {
	Type  Type // TypeHasResult or TypeAddResult
	ReqID uint32
	Count int
	Bits  []byte // ceil(Count/8) bytes, bit i = Bits[i/8] >> (i%8) & 1
}

// Get returns the answer for key i.
func (r Result) Get(i int) bool { return i >= 0 && i < r.Count && r.Bits[i/8]>>(i%8)&1 == 1 }

// BitmapLen is the size of a result bitmap for n keys.
func BitmapLen(n int) int { return (n + 7) / 8 }

// AppendResult appends a has result or add result for count keys, whose
// answers are the bits of bitmap (BitmapLen(count) bytes).
func AppendResult(dst []byte, t Type, reqID uint32, count int, bitmap []byte) ([]byte, error) {
	if t != TypeHasResult && t != TypeAddResult || len(bitmap) != BitmapLen(count) ||
		count%8 != 0 && bitmap[len(bitmap)-1]>>(count%8) != 0 {
		return dst, frameErr(t, len(dst), ErrValue)
	}
	if count > MaxBatchKeys {
		return dst, frameErr(t, len(dst)+HeaderSize+4, ErrTooLarge)
	}
	dst, start := beginExt(dst, t)
	dst = binary.BigEndian.AppendUint32(dst, reqID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(count))
	dst = append(dst, bitmap...)
	return endExt(dst, start)
}

// DecodeResult decodes a has result or add result. Bits past Count must be
// zero.
func DecodeResult(b []byte) (Result, error) {
	t := TypeHasResult
	if len(b) > 0 && Type(b[0]) == TypeAddResult {
		t = TypeAddResult
	}
	r := extReader(b, t)
	res := Result{Type: t, ReqID: r.U32(), Count: int(r.U16())}
	r.check(res.Count > MaxBatchKeys, 2, ErrTooLarge)
	res.Bits = r.Bytes(BitmapLen(res.Count))
	if r.Err() == nil && res.Count%8 != 0 && res.Bits[len(res.Bits)-1]>>(res.Count%8) != 0 {
		r.check(true, 1, ErrValue)
	}
	if err := r.done(); err != nil {
		return Result{Type: t}, err
	}
	return res, nil
}
