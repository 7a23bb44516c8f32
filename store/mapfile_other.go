//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package store

import "os"

// mapFile reads a whole file where mapping it is not available.
func mapFile(path string) (data []byte, unmap func(), err error) {
	data, err = os.ReadFile(path)
	return data, func() {}, err
}

// canMapPrivate reports whether mapPrivate maps rather than reads.
const canMapPrivate = false

// mapPrivate reads n bytes of path from offset off.
func mapPrivate(path string, off int64, n int) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	return b, func() {}, err
}
