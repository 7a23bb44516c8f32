package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rmbd/rmbd/filter"
	"github.com/zeebo/xxh3"
)

// Dir is an open data directory: its lock, held while it is open, the
// catalog of named filters, and a folder per filter, each opened as a
// Store. One process opens a directory at a time.
type Dir struct {
	path string
	fs   FS
	lock io.Closer

	mu     sync.Mutex
	open   map[string]bool // filters with an open Store, by name
	closed bool
}

// OpenDir opens the data directory path, creating it if missing, and
// takes its lock (ErrLocked if another process holds it).
func OpenDir(path string) (*Dir, error) { return OpenDirFS(nil, path) }

// OpenDirFS is OpenDir in the file system fsys (nil: the operating
// system's). Every filter opened from the Dir keeps its files there.
func OpenDirFS(fsys FS, path string) (*Dir, error) {
	fsys = orOS(fsys)
	if err := mkdirs(fsys, path, filepath.Join(path, filtersDir)); err != nil {
		return nil, err
	}
	lock, err := fsys.Lock(filepath.Join(path, "LOCK"))
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{path, filepath.Join(path, filtersDir)} {
		if err := removeTemps(fsys, dir); err != nil { // a half-written catalog, a half-removed folder
			lock.Close()
			return nil, err
		}
	}
	return &Dir{path: path, fs: fsys, lock: lock, open: map[string]bool{}}, nil
}

// FS returns the file system the directory is in.
func (d *Dir) FS() FS { return d.fs }

// Open opens the folder of the filter def in d, creating what is missing,
// and loads it into f (see the package-level Open). A filter is open once
// at a time.
func (d *Dir) Open(def Definition, f *filter.Filter, opts Options) (*Store, Recovery, error) {
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return nil, Recovery{}, errors.New("store: data directory closed")
	case d.open[def.Name]:
		d.mu.Unlock()
		return nil, Recovery{}, fmt.Errorf("store: filter %q is open already", def.Name)
	}
	d.open[def.Name] = true
	d.mu.Unlock()
	s, rec, err := openStore(d, def, f, opts)
	if err != nil {
		d.release(def.Name)
	}
	return s, rec, err
}

// release marks name's Store closed.
func (d *Dir) release(name string) {
	d.mu.Lock()
	delete(d.open, name)
	d.mu.Unlock()
}

// Definitions lists the filters whose folders d holds, by name. A folder
// whose FILTER file does not read is an error naming it.
func (d *Dir) Definitions() ([]Definition, error) {
	root := filepath.Join(d.path, filtersDir)
	ents, err := d.fs.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []Definition
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		b, err := readFile(d.fs, filepath.Join(root, e.Name(), defFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue // created and never finished: nothing in it
		}
		if err != nil {
			return nil, err
		}
		def, _, off, err := decodeDefinition(b)
		if err != nil {
			return nil, fmt.Errorf("%s at byte %d: %w", filepath.Join(root, e.Name(), defFile), off, err)
		}
		out = append(out, def)
	}
	slices.SortFunc(out, func(a, b Definition) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Folders lists the folders d holds, by folder name, reading none of
// them: a folder whose FILTER file is damaged is listed too (opening it
// says what is wrong, and --repair rewrites the file).
func (d *Dir) Folders() ([]string, error) {
	ents, err := d.fs.ReadDir(filepath.Join(d.path, filtersDir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Remove deletes the folder of the filter name, which must not be open:
// renamed first to a temporary name, so that a crash halfway leaves
// nothing OpenDir does not remove.
func (d *Dir) Remove(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.open[name] {
		return fmt.Errorf("store: filter %q is open", name)
	}
	root := filepath.Join(d.path, filtersDir)
	folder := filepath.Join(root, FolderName(name))
	gone := filepath.Join(root, tempPrefix+FolderName(name))
	if err := d.fs.Rename(folder, gone); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := d.fs.SyncDir(root); err != nil {
		return err
	}
	return removeAll(d.fs, gone)
}

// The CATALOG file: what the node knows of the cluster's named filters,
// kept whole and replaced whole.
const (
	catalogFile    = "CATALOG"
	catalogMagic   = "RMBDCTLG"
	catalogVersion = 1
	// MaxCatalogBytes bounds the CATALOG file.
	MaxCatalogBytes = 64 << 20
)

// WriteCatalog replaces the CATALOG file with payload (gossip's catalog
// bytes), atomically and durably.
func (d *Dir) WriteCatalog(payload []byte) error {
	if len(payload) > MaxCatalogBytes {
		return fmt.Errorf("store: catalog of %d bytes, at most %d", len(payload), MaxCatalogBytes)
	}
	return writeFile(d.fs, d.path, catalogFile, encodeCatalogFile(payload))
}

// ReadCatalog returns the payload of the CATALOG file; nil, nil if there
// is none. A damaged file is an error (ErrDamaged).
func (d *Dir) ReadCatalog() ([]byte, error) {
	b, err := readFile(d.fs, filepath.Join(d.path, catalogFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	payload, err := decodeCatalogFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(d.path, catalogFile), err)
	}
	return payload, nil
}

// SetCatalogAside renames a damaged CATALOG file to CATALOG.damaged
// (replacing an earlier one), so that the node starts without it and
// learns the catalog again from the cluster's members.
func (d *Dir) SetCatalogAside() error {
	path := filepath.Join(d.path, catalogFile)
	if err := d.fs.Rename(path, path+".damaged"); err != nil {
		return err
	}
	return d.fs.SyncDir(d.path)
}

// encodeCatalogFile: magic, version:uint16, payload length:uint32,
// payload, xxh3 of everything before.
func encodeCatalogFile(payload []byte) []byte {
	b := append([]byte(catalogMagic), 0, catalogVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return binary.BigEndian.AppendUint64(b, xxh3.Hash(b))
}

// The checksum is verified before the version: a version that reads
// unknown because a bit flipped is damage (which --repair sets aside),
// not a file of a newer rmbd (which it must not touch).
func decodeCatalogFile(b []byte) ([]byte, error) {
	head := len(catalogMagic) + 2 + 4
	switch {
	case len(b) < head+8 || string(b[:len(catalogMagic)]) != catalogMagic:
		return nil, damaged("not a CATALOG file")
	case binary.BigEndian.Uint64(b[len(b)-8:]) != xxh3.Hash(b[:len(b)-8]):
		return nil, damaged("checksum")
	case binary.BigEndian.Uint16(b[len(catalogMagic):]) != catalogVersion:
		return nil, ErrVersion
	}
	n := binary.BigEndian.Uint32(b[len(catalogMagic)+2:])
	if uint64(n) != uint64(len(b)-head-8) {
		return nil, damaged("catalog length")
	}
	return b[head : len(b)-8 : len(b)-8], nil
}

// Close lets go of the lock. Every Store opened from d must be closed
// first.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if len(d.open) > 0 {
		return fmt.Errorf("store: %d filters still open", len(d.open))
	}
	d.closed = true
	return d.lock.Close()
}
