package store

import (
	"errors"
	"fmt"
)

// Errors. A file the store cannot use is reported with its path and the
// offset where reading stopped, wrapping one of these.
var (
	// ErrDamaged: a file's bytes do not verify (checksum, magic, lengths).
	ErrDamaged = errors.New("store: damaged file")
	// ErrVersion: a file of a format version this build does not know.
	ErrVersion = errors.New("store: unknown file format version")
	// ErrMismatch: the data directory holds another filter than the one
	// asked for.
	ErrMismatch = errors.New("store: the data directory was made with other flags")
	// ErrMissing: a file the data directory says it holds is gone.
	ErrMissing = errors.New("store: missing from the data directory")
	// ErrLocked: another process uses the data directory.
	ErrLocked = errors.New("store: data directory in use")
)

// FileError says which file failed, where and why.
type FileError struct {
	Path   string
	Offset int64
	Err    error
}

// Error renders e.g. "store: damaged file: checkpoint checksum: /d/x.ckpt at offset 54".
func (e *FileError) Error() string {
	return fmt.Sprintf("%v at offset %d of %s", e.Err, e.Offset, e.Path)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// damaged wraps what is wrong with a file as ErrDamaged.
func damaged(what string) error { return fmt.Errorf("%w: %s", ErrDamaged, what) }
