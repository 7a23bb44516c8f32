//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// Map maps a file read-only: recovery reads checkpoints in place, without
// a copy the size of the filter.
func (OSFS) Map(path string) (data []byte, unmap func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() {}, nil
	}
	data, err = unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	unix.Madvise(data, unix.MADV_SEQUENTIAL)
	return data, func() { unix.Munmap(data) }, nil
}

// MapPrivate maps n bytes of path from offset off (page aligned) copy on
// write: the bytes come from the page cache without a copy, and a write
// copies only the page it touches. The file must not change meanwhile:
// checkpoints never do once written.
func (OSFS) MapPrivate(path string, off int64, n int) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), off, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	unix.Madvise(m, unix.MADV_SEQUENTIAL)
	return m, func() { unix.Munmap(m) }, nil
}
