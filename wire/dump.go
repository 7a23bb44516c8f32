package wire

import "encoding/binary"

// Dumps and loads: a filter copied out of a node and into another, a
// chunk at a time (package dump gives the chunks' own format).
//
//	dump request  0x28: request id:uint32, name (length:uint8, bytes; empty:
//	              the default filter), iterator:uint64 (0: from the start),
//	              then optional zero padding
//	dump chunk    0x29: request id:uint32, iterator:uint64 (the next; 0: the
//	              dump has ended, and no chunk follows), then the chunk: the
//	              rest of the frame
//	load request  0x2a: request id:uint32, name (length:uint8, bytes; empty:
//	              the default filter), then the chunk: the rest of the frame
//	loaded        0x2b: request id:uint32, flags:uint8 (bit 0: the chunk made
//	              the filter), rows:uint32 (the rows the chunk carried),
//	              changed:uint32 (those that gained bits)
//
// A chunk is larger than a datagram: a node answers a dump request over
// UDP with "use TCP", and load requests go over TCP.

// DumpRequest is a decoded dump request.
type DumpRequest struct {
	ReqID    uint32
	Name     []byte // sub-slice of the frame
	Iterator uint64
	Pad      int // zero bytes after, to this frame size in all (encode only)
}

// AppendDumpRequest appends a dump request.
func AppendDumpRequest(dst []byte, q DumpRequest) ([]byte, error) {
	if len(q.Name) > MaxNameLen {
		return dst, frameErr(TypeDumpReq, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypeDumpReq)
	dst = binary.BigEndian.AppendUint32(dst, q.ReqID)
	dst = append(dst, byte(len(q.Name)))
	dst = append(dst, q.Name...)
	dst = binary.BigEndian.AppendUint64(dst, q.Iterator)
	dst, err := endExt(dst, start)
	if err != nil || q.Pad == 0 {
		return dst, err
	}
	return PadFrame(dst, start, q.Pad)
}

// DecodeDumpRequest reads a dump request.
func DecodeDumpRequest(b []byte) (DumpRequest, error) {
	r := extReader(b, TypeDumpReq)
	q := DumpRequest{ReqID: r.U32()}
	if n := int(r.U8()); n > 0 {
		q.Name = r.Bytes(n)
	}
	q.Iterator = r.U64()
	r.padding()
	if err := r.done(); err != nil {
		return DumpRequest{}, err
	}
	return q, nil
}

// DumpChunk is a decoded dump chunk frame.
type DumpChunk struct {
	ReqID    uint32
	Iterator uint64 // the next; 0: the end
	Chunk    []byte // sub-slice of the frame
}

// AppendDumpChunk appends a dump chunk frame.
func AppendDumpChunk(dst []byte, c DumpChunk) ([]byte, error) {
	dst, start := beginExt(dst, TypeDumpChunk)
	dst = binary.BigEndian.AppendUint32(dst, c.ReqID)
	dst = binary.BigEndian.AppendUint64(dst, c.Iterator)
	dst = append(dst, c.Chunk...)
	return endExt(dst, start)
}

// DecodeDumpChunk reads a dump chunk frame.
func DecodeDumpChunk(b []byte) (DumpChunk, error) {
	r := extReader(b, TypeDumpChunk)
	c := DumpChunk{ReqID: r.U32(), Iterator: r.U64()}
	c.Chunk = r.Bytes(r.Left())
	if err := r.done(); err != nil {
		return DumpChunk{}, err
	}
	return c, nil
}

// LoadRequest is a decoded load request.
type LoadRequest struct {
	ReqID uint32
	Name  []byte // sub-slice of the frame
	Chunk []byte // sub-slice of the frame
}

// AppendLoadRequest appends a load request.
func AppendLoadRequest(dst []byte, q LoadRequest) ([]byte, error) {
	if len(q.Name) > MaxNameLen {
		return dst, frameErr(TypeLoadReq, len(dst), ErrValue)
	}
	dst, start := beginExt(dst, TypeLoadReq)
	dst = binary.BigEndian.AppendUint32(dst, q.ReqID)
	dst = append(dst, byte(len(q.Name)))
	dst = append(dst, q.Name...)
	dst = append(dst, q.Chunk...)
	return endExt(dst, start)
}

// DecodeLoadRequest reads a load request.
func DecodeLoadRequest(b []byte) (LoadRequest, error) {
	r := extReader(b, TypeLoadReq)
	q := LoadRequest{ReqID: r.U32()}
	if n := int(r.U8()); n > 0 {
		q.Name = r.Bytes(n)
	}
	q.Chunk = r.Bytes(r.Left())
	if err := r.done(); err != nil {
		return LoadRequest{}, err
	}
	return q, nil
}

// LoadedCreated flags a loaded frame whose chunk made the filter.
const LoadedCreated uint8 = 1 << 0

// Loaded is a decoded loaded frame.
type Loaded struct {
	ReqID         uint32
	Flags         uint8
	Rows, Changed uint32
}

// AppendLoaded appends a loaded frame.
func AppendLoaded(dst []byte, l Loaded) ([]byte, error) {
	dst, start := beginExt(dst, TypeLoaded)
	dst = binary.BigEndian.AppendUint32(dst, l.ReqID)
	dst = append(dst, l.Flags)
	dst = binary.BigEndian.AppendUint32(dst, l.Rows)
	dst = binary.BigEndian.AppendUint32(dst, l.Changed)
	return endExt(dst, start)
}

// DecodeLoaded reads a loaded frame.
func DecodeLoaded(b []byte) (Loaded, error) {
	r := extReader(b, TypeLoaded)
	l := Loaded{ReqID: r.U32(), Flags: r.U8(), Rows: r.U32(), Changed: r.U32()}
	if err := r.done(); err != nil {
		return Loaded{}, err
	}
	return l, nil
}
