package faultfs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rmbd/rmbd/internal/faultfs"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A full disk: the write that crosses the room left writes what fits and
// fails as the real thing does; later writes, fsyncs and creates fail
// until the space comes back.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(nil)
	path := filepath.Join(dir, "f")
	f, err := ffs.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()

	ffs.Inject(faultfs.Fault{Ops: faultfs.Full, Room: 5})
	n, err := f.Write([]byte("0123456789"))
	assert.Equal(t, 5, n, "a short write")
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, path, pe.Path)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, "write "+path+": no space left on device", err.Error())

	_, err = f.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.ErrorIs(t, f.Sync(), syscall.ENOSPC)
	_, err = ffs.OpenFile(filepath.Join(dir, "g"), os.O_RDWR|os.O_CREATE, 0o644)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.NoError(t, ffs.SyncDir(dir), "not in the fault's operations")
	assert.Equal(t, 4, ffs.Failed())

	ffs.Heal()
	_, err = f.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "01234abc", string(b))
}

// Another errno, and a fault on fsyncs alone.
func TestFsyncFails(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(nil)
	f, err := ffs.OpenFile(filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	ffs.Inject(faultfs.Fault{Ops: faultfs.Sync, Errno: syscall.EIO})
	_, err = f.Write([]byte("kept in the page cache"))
	require.NoError(t, err)
	assert.ErrorIs(t, f.Sync(), syscall.EIO)
}

// A crash lets go of the lock and fails everything after; a crash planned
// in a write tears it.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	ffs := faultfs.New(nil)
	l, err := ffs.Lock(filepath.Join(dir, "LOCK"))
	require.NoError(t, err)
	f, err := ffs.OpenFile(filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	ffs.CrashAfter(1)
	_, err = f.Write([]byte("whole"))
	require.NoError(t, err)
	_, err = f.Write([]byte("torn"))
	assert.ErrorIs(t, err, faultfs.ErrCrashed)
	assert.True(t, ffs.Crashed())
	assert.ErrorIs(t, f.Close(), faultfs.ErrCrashed)
	_, err = ffs.Stat(dir)
	assert.ErrorIs(t, err, faultfs.ErrCrashed)
	assert.NoError(t, l.Close(), "the crash let go of it already")

	again, err := store.OSFS{}.Lock(filepath.Join(dir, "LOCK"))
	require.NoError(t, err, "a restart takes the lock")
	again.Close()
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	require.NoError(t, err)
	assert.Equal(t, "wholeto", string(b), "what the process wrote stays; the torn write half")
}
