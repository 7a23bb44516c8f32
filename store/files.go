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
	f         *os.File
	dir, name string
}

func createTemp(dir, name string) (*tempFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, tempPrefix+name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &tempFile{f: f, dir: dir, name: name}, nil
}

func (t *tempFile) Write(b []byte) (int, error) { return t.f.Write(b) }

// commit makes the file durable under its real name.
func (t *tempFile) commit() error {
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.f.Name(), filepath.Join(t.dir, t.name))
	}
	if err == nil {
		err = syncDir(t.dir)
	}
	if err != nil {
		os.Remove(t.f.Name())
		return fmt.Errorf("writing %s: %w", filepath.Join(t.dir, t.name), err)
	}
	return nil
}

// abort removes the unfinished file.
func (t *tempFile) abort() {
	t.f.Close()
	os.Remove(t.f.Name())
}

// writeFile creates dir/name holding data, atomically and durably.
func writeFile(dir, name string, data []byte) error {
	t, err := createTemp(dir, name)
	if err != nil {
		return err
	}
	if _, err := t.Write(data); err != nil {
		t.abort()
		return err
	}
	return t.commit()
}

// syncDir makes the names in dir durable: created, renamed and removed
// files.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeTemps removes files a crash left half written.
func removeTemps(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) { // a file, or a removed filter's folder
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
