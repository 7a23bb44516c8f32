// Package wire encodes and decodes every rmbd frame, classic and extended.
// It is pure: no I/O, no goroutines, no package state.
//
// Classic frames are byte-exact with the original rmbd (see DESIGN.md):
// fixed sizes, big-endian, keys as 140-byte Pascal strings. Extended frames
// (type bytes from 0x10) start with the type and a big-endian uint32 body
// length, so one byte stream can carry both kinds: FrameLen tells, from a
// frame's first bytes, how long the whole frame is. docs/PROTOCOL.md gives
// every layout byte by byte.
//
// Encoders append to a caller's buffer and allocate only when it is too
// small. Decoders check every length before slicing, return sub-slices of
// their input instead of copies, never panic, and report errors as
// *FrameError values wrapping one of the package's sentinel errors, naming
// the frame and the offset where decoding stopped. They read through a
// Cursor, the bounded reader that the store's files and gossip's catalog
// bytes are read with too. FrameRows turns a filter's changed rows into
// row sync frames, for gossip's pulls and the store's checkpoints alike.
//
//	buf, _ := wire.AppendBatch(nil, wire.TypeHasBatch, 7, 0, [][]byte{[]byte("alice")})
//	b, err := wire.DecodeBatch(buf)
//	for k := range b.Keys.All() { ... }
package wire
