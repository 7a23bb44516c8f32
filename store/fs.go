package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the file system a data directory lives in: the operating
// system's (OSFS, the default), or one a test puts in its place — one
// that fails on request (internal/faultfs), or a simulated disk that loses
// what was not fsynced. The store does every file operation through it.
//
// The surface is small and explicit, so that a simulation can model each
// call: files are written only by appending (or from empty), made durable
// only by File.Sync, and their names (created, renamed, removed) only by
// SyncDir of their directory. Mapping files into memory is optional
// (Mapper); without it the store reads them.
type FS interface {
	// OpenFile opens name as os.OpenFile does. The store uses the flags
	// O_RDONLY, O_WRONLY, O_RDWR, O_CREATE, O_TRUNC and O_APPEND.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// ReadDir lists the directory name, sorted by file name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat describes name.
	Stat(name string) (fs.FileInfo, error)
	// Mkdir creates the directory name (fs.ErrExist if it exists).
	Mkdir(name string, perm fs.FileMode) error
	// Rename renames oldname to newname, replacing newname if it exists.
	Rename(oldname, newname string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// SyncDir makes the names in the directory name durable: the files
	// created, renamed and removed in it.
	SyncDir(name string) error
	// Lock takes the lock file name for this process alone (ErrLocked if
	// another holds it) until the Closer is closed or the process ends.
	Lock(name string) (io.Closer, error)
}

// File is an open file of an FS.
type File interface {
	io.Writer
	io.ReaderAt
	// Sync makes what was written durable.
	Sync() error
	// Truncate cuts the file to size bytes.
	Truncate(size int64) error
	Close() error
}

// Mapper is an FS that maps files into memory. Without it the store
// reads files into memory instead, and a restart copies an image
// checkpoint rather than mapping it.
type Mapper interface {
	// Map maps name read-only, whole. The file must not change until
	// unmap is called.
	Map(name string) (data []byte, unmap func(), err error)
	// MapPrivate maps n bytes of name from off (a multiple of the page
	// size) copy on write: writes to data change no file.
	MapPrivate(name string, off int64, n int) (data []byte, unmap func(), err error)
}

// OSFS is the operating system's file system. It maps files on systems
// with mmap.
type OSFS struct{}

// OpenFile opens name with os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return f, nil
}

// ReadDir lists name with os.ReadDir.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Stat describes name with os.Stat.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// Mkdir creates name with os.Mkdir.
func (OSFS) Mkdir(name string, perm fs.FileMode) error { return os.Mkdir(name, perm) }

// Rename renames with os.Rename.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// Remove removes name with os.Remove.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// SyncDir opens the directory name and fsyncs it.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock takes the lock file name: flock where there is one.
func (OSFS) Lock(name string) (io.Closer, error) {
	f, err := lockDir(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// orOS returns fsys, or the operating system's if it is nil.
func orOS(fsys FS) FS {
	if fsys == nil {
		return OSFS{}
	}
	return fsys
}

// readFile reads the whole of name.
func readFile(fsys FS, name string) ([]byte, error) {
	st, err := fsys.Stat(name)
	if err != nil {
		return nil, err
	}
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if errors.Is(err, io.EOF) && n == len(b) {
		err = nil
	}
	return b[:n], err
}

// removeAll removes name and, if it is a directory, everything in it.
// Nothing there is not an error.
func removeAll(fsys FS, name string) error {
	st, err := fsys.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		ents, err := fsys.ReadDir(name)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := removeAll(fsys, filepath.Join(name, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := fsys.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// truncate cuts the file name to size bytes, durably.
func truncate(fsys FS, name string, size int64) error {
	f, err := fsys.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
