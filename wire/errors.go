package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Decoders wrap them in a *FrameError.
var (
	ErrShort     = errors.New("wire: short frame")
	ErrTrailing  = errors.New("wire: trailing bytes")
	ErrType      = errors.New("wire: unknown frame type")
	ErrKeyLength = errors.New("wire: key too long")
	ErrValue     = errors.New("wire: bad value")
	ErrTooLarge  = errors.New("wire: length over limit")
	ErrVersion   = errors.New("wire: unknown protocol version")
)

// FrameError says which frame failed to decode or encode, where, and why.
type FrameError struct {
	Frame  Type
	Offset int
	Err    error
}

// Error renders e.g. "wire: short frame: has batch at offset 5".
func (e *FrameError) Error() string {
	return fmt.Sprintf("%v: %v at offset %d", e.Err, e.Frame, e.Offset)
}

// Unwrap returns the sentinel.
func (e *FrameError) Unwrap() error { return e.Err }

func frameErr(t Type, off int, err error) error { return &FrameError{Frame: t, Offset: off, Err: err} }
