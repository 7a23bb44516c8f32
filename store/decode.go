package store

import "github.com/rmbd/rmbd/wire"

// errTruncated is what a read past the end of a file's bytes fails with:
// one value, so that decoding a record allocates nothing until it fails.
var errTruncated = damaged("truncated")

// newReader returns a cursor over bytes read from a file, checking the
// length before every read. After the first failure every read returns
// zero; Err keeps the first error and ErrOffset where it happened, which
// the decoders report as a FileError's offset.
func newReader(b []byte) wire.Cursor { return wire.NewCursor(b, errTruncated) }
