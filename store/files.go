package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tempPrefix starts the names of files being written; they are renamed
// to their real names once complete and on disk, and any left by a crash
// are removed at start.
const tempPrefix = ".tmp-"

// tempFile is a file being created: written under a temporary name,
// then fsynced, renamed into place and its directory fsynced, so that the
// real name only ever names a complete file.
type tempFile struct {
	fsys      FS
	f         File
	dir, name string
}

func createTemp(fsys FS, dir, name string) (*tempFile, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, tempPrefix+name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &tempFile{fsys: fsys, f: f, dir: dir, name: name}, nil
}

func (t *tempFile) Write(b []byte) (int, error) { return t.f.Write(b) }

func (t *tempFile) tempPath() string { return filepath.Join(t.dir, tempPrefix+t.name) }

// commit makes the file durable under its real name.
func (t *tempFile) commit() error {
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = t.fsys.Rename(t.tempPath(), filepath.Join(t.dir, t.name))
	}
	if err == nil {
		err = t.fsys.SyncDir(t.dir)
	}
	if err != nil {
		t.fsys.Remove(t.tempPath())
		return fmt.Errorf("writing %s: %w", filepath.Join(t.dir, t.name), err)
	}
	return nil
}

// abort removes the unfinished file.
func (t *tempFile) abort() {
	t.f.Close()
	t.fsys.Remove(t.tempPath())
}

// writeFile creates dir/name holding data, atomically and durably.
func writeFile(fsys FS, dir, name string, data []byte) error {
	t, err := createTemp(fsys, dir, name)
	if err != nil {
		return err
	}
	if _, err := t.Write(data); err != nil {
		t.abort()
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	return t.commit()
}

// removeTemps removes files a crash left half written.
func removeTemps(fsys FS, dir string) error {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) { // a file, or a removed filter's folder
			errs = append(errs, removeAll(fsys, filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
