package simdisk

import (
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// file is a file opened through a view.
type file struct {
	v      *view
	n      *inode
	path   string
	flag   int
	pos    int64 // where the next write goes, without O_APPEND
	closed bool
}

func writable(flag int) bool { return flag&(os.O_WRONLY|os.O_RDWR) != 0 }

func readable(flag int) bool { return flag&os.O_WRONLY == 0 }

// begin locks the disk and returns nil if f may do op, or unlocks it and
// returns why not.
func (f *file) begin(op string) error {
	if err := f.v.begin(op, f.path); err != nil {
		return err
	}
	if f.closed {
		f.v.d.mu.Unlock()
		return &fs.PathError{Op: op, Path: f.path, Err: fs.ErrClosed}
	}
	return nil
}

// Write writes b at the file's position, or at its end with O_APPEND,
// filling a gap past the end with zeros.
func (f *file) Write(b []byte) (int, error) {
	if err := f.begin("write"); err != nil {
		return 0, err
	}
	d := f.v.d
	defer d.mu.Unlock()
	if !writable(f.flag) {
		return 0, &fs.PathError{Op: "write", Path: f.path, Err: syscall.EBADF}
	}
	n := f.n
	off := f.pos
	if f.flag&os.O_APPEND != 0 {
		off = int64(len(n.data))
	}
	n.own(off)
	n.grow(off + int64(len(b)))
	copy(n.data[off:], b)
	f.pos = off + int64(len(b))
	d.counters.Writes++
	d.counters.WrittenBytes += uint64(len(b))
	return len(b), nil
}

// ReadAt reads as io.ReaderAt: io.EOF when it reads short.
func (f *file) ReadAt(b []byte, off int64) (int, error) {
	if err := f.begin("read"); err != nil {
		return 0, err
	}
	d := f.v.d
	defer d.mu.Unlock()
	switch {
	case !readable(f.flag):
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: syscall.EBADF}
	case off < 0:
		return 0, &fs.PathError{Op: "read", Path: f.path, Err: syscall.EINVAL}
	}
	k := 0
	if off < int64(len(f.n.data)) {
		k = copy(b, f.n.data[off:])
	}
	if k > 0 && d.readP > 0 && d.readRng.Float64() < d.readP {
		b[d.readRng.IntN(k)] ^= 1 << d.readRng.IntN(8)
		d.counters.ReadFaults++
	}
	if k < len(b) {
		return k, io.EOF
	}
	return k, nil
}

// Sync makes the file's content durable.
func (f *file) Sync() error {
	if err := f.begin("sync"); err != nil {
		return err
	}
	d := f.v.d
	defer d.mu.Unlock()
	f.n.durable = f.n.data[:len(f.n.data):len(f.n.data)]
	d.counters.Syncs++
	return nil
}

// Truncate cuts the file to size bytes, or extends it with zeros.
func (f *file) Truncate(size int64) error {
	if err := f.begin("truncate"); err != nil {
		return err
	}
	defer f.v.d.mu.Unlock()
	switch {
	case !writable(f.flag):
		return &fs.PathError{Op: "truncate", Path: f.path, Err: syscall.EBADF}
	case size < 0:
		return &fs.PathError{Op: "truncate", Path: f.path, Err: syscall.EINVAL}
	}
	f.n.cut(size)
	f.n.grow(size)
	return nil
}

// Close closes the file; after a crash it fails with ErrCrashed.
func (f *file) Close() error {
	d := f.v.d
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case f.v.gen != d.gen:
		f.closed = true
		return &fs.PathError{Op: "close", Path: f.path, Err: ErrCrashed}
	case f.closed:
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	f.closed = true
	return nil
}

// fileInfo describes a file or a directory.
type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func info(name string, n *inode) fileInfo {
	return fileInfo{name: name, size: int64(len(n.data)), mode: n.mode}
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }
