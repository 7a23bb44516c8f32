package store

import (
	"errors"
	"io"
	"os"
)

// mapFile maps a file read-only when fsys can (recovery then reads
// checkpoints and segments in place, without a copy the size of the
// filter), and reads it whole otherwise.
func mapFile(fsys FS, path string) (data []byte, unmap func(), err error) {
	if m, ok := fsys.(Mapper); ok {
		return m.Map(path)
	}
	data, err = readFile(fsys, path)
	return data, func() {}, err
}

// mapPrivate maps n bytes of path from offset off (page aligned) copy on
// write when fsys can, and reads them otherwise; mapped says which.
func mapPrivate(fsys FS, path string, off int64, n int) (data []byte, unmap func(), mapped bool, err error) {
	if m, ok := fsys.(Mapper); ok {
		data, unmap, err = m.MapPrivate(path, off, n)
		return data, unmap, true, err
	}
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	data = make([]byte, n)
	if k, err := f.ReadAt(data, off); err != nil && !(errors.Is(err, io.EOF) && k == n) {
		return nil, nil, false, err
	}
	return data, func() {}, false, nil
}
