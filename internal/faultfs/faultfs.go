// Package faultfs is a store.FS that fails on request, as a full or
// failing disk does, for tests.
//
// It wraps another FS (the operating system's by default). While a fault
// is on, the operations it names fail with what the real thing returns:
// an *os.PathError holding a syscall.Errno, ENOSPC unless told otherwise.
// A fault may leave room for some bytes first: the write that needs more
// writes what fits and then fails, a short write, as a disk that fills up
// mid-write does. Heal switches the fault off ("space freed").
//
// Crash makes it behave as a process that died: every call fails from
// then on and the locks it took are let go, so that the directory can be
// opened again through another FS, as a restart would (what was written
// stays: the operating system has it). CrashAfter dies at a chosen call,
// to walk a crash through every step of a procedure.
//
//	ffs := faultfs.New(nil)
//	opts := store.DefaultOptions()
//	opts.FS = ffs
//	s, _, err := store.Open(dir, def, f, opts)
//	ffs.Inject(faultfs.Fault{Ops: faultfs.Full})  // the disk is full
//	...
//	ffs.Heal()                                    // space again
package faultfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"

	"github.com/rmbd/rmbd/store"
)

// Op is a kind of operation a fault fails; they combine as bits.
type Op uint8

// Operations.
const (
	Write   Op = 1 << iota // File.Write
	Sync                   // File.Sync
	SyncDir                // FS.SyncDir
	Create                 // OpenFile with O_CREATE, and Mkdir
	Rename                 // FS.Rename
)

// Full is what a full disk fails: writes, fsyncs and creates.
const Full = Write | Sync | Create

// ErrCrashed is what every call fails with after Crash.
var ErrCrashed = errors.New("faultfs: the process crashed")

// Fault is a failure switched on by Inject.
type Fault struct {
	// Ops are the operations that fail.
	Ops Op
	// Errno is the error they fail with; 0 is ENOSPC.
	Errno syscall.Errno
	// Room is how many bytes writes may still write before the fault
	// strikes; the write that needs more writes what fits, then fails.
	// Other operations fail once there is no room left.
	Room int64
}

// FS wraps a store.FS and fails what it is told to. It is safe for
// concurrent use.
type FS struct {
	inner store.FS

	mu         sync.Mutex
	fault      Fault
	on         bool
	crashAfter int // calls left before the crash; -1: none planned
	crashed    bool
	locks      map[*lock]bool
	failed     int
	hook       func(name, path string) error
}

// New wraps inner (nil: the operating system's file system) with no fault
// on.
func New(inner store.FS) *FS {
	if inner == nil {
		inner = store.OSFS{}
	}
	return &FS{inner: inner, crashAfter: -1, locks: map[*lock]bool{}}
}

// Inject switches fault on, in place of any other.
func (f *FS) Inject(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fault.Errno == 0 {
		fault.Errno = syscall.ENOSPC
	}
	f.fault, f.on = fault, true
}

// Heal switches the fault off.
func (f *FS) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = false
}

// Failed returns how many calls a fault or the crash failed.
func (f *FS) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Crash makes every call fail from now on with ErrCrashed, and lets go
// of the locks taken through f.
func (f *FS) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crash()
}

// CrashAfter lets n more calls through and crashes at the next; a write
// it crashes in writes half its bytes first (a torn write). A negative n
// calls the crash off.
func (f *FS) CrashAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashAfter = max(n, -1)
}

// SetHook sets a function called before every call, outside any lock,
// with the call's name (open, write, sync, rename, remove, …, as in an
// *os.PathError) and path; nil removes it. A test acts there at a chosen
// step of a procedure, and fails the call by returning an error (which
// the call returns in an *os.PathError).
func (f *FS) SetHook(hook func(name, path string) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

// callHook calls the hook, if any, and returns its error as a PathError.
func (f *FS) callHook(name, path string) error {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook == nil {
		return nil
	}
	if err := hook(name, path); err != nil {
		f.mu.Lock()
		f.failed++
		f.mu.Unlock()
		return &os.PathError{Op: name, Path: path, Err: err}
	}
	return nil
}

// Crashed reports whether f crashed.
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// crash does Crash; f.mu is held.
func (f *FS) crash() {
	f.crashed = true
	for l := range f.locks {
		l.inner.Close()
	}
	clear(f.locks)
}

// check decides whether a call of kind op (0: one no fault fails) on path
// goes through, and returns the error it fails with otherwise.
func (f *FS) check(op Op, name, path string) error {
	if err := f.callHook(name, path); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.tick(name, path); err != nil {
		return err
	}
	if f.on && f.fault.Ops&op != 0 && f.fault.Room <= 0 {
		f.failed++
		return &os.PathError{Op: name, Path: path, Err: f.fault.Errno}
	}
	return nil
}

// tick counts a call towards a planned crash and fails it if the process
// is dead. f.mu is held.
func (f *FS) tick(name, path string) error {
	if f.crashAfter == 0 {
		f.crashAfter = -1
		f.crash()
	} else if f.crashAfter > 0 {
		f.crashAfter--
	}
	if f.crashed {
		f.failed++
		return &os.PathError{Op: name, Path: path, Err: ErrCrashed}
	}
	return nil
}

// room decides how much of a write of n bytes to path goes through, and
// the error it fails with if not all of it.
func (f *FS) room(path string, n int) (int, error) {
	if err := f.callHook("write", path); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashAfter == 0 { // dies in the middle of this write
		f.crashAfter = -1
		f.crash()
		f.failed++
		return n / 2, &os.PathError{Op: "write", Path: path, Err: ErrCrashed}
	}
	if err := f.tick("write", path); err != nil {
		return 0, err
	}
	if !f.on || f.fault.Ops&Write == 0 || int64(n) <= f.fault.Room {
		if f.on {
			f.fault.Room = max(0, f.fault.Room-int64(n))
		}
		return n, nil
	}
	k := int(max(0, f.fault.Room))
	f.fault.Room = 0
	f.failed++
	return k, &os.PathError{Op: "write", Path: path, Err: f.fault.Errno}
}

// creates returns Create if name does not exist yet: making it takes
// room; opening what exists does not.
func (f *FS) creates(name string) Op {
	if _, err := f.inner.Stat(name); errors.Is(err, fs.ErrNotExist) {
		return Create
	}
	return 0
}

// OpenFile opens name in the wrapped FS; with O_CREATE, of a file that
// does not exist, it is a Create.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (store.File, error) {
	op := Op(0)
	if flag&os.O_CREATE != 0 {
		op = f.creates(name)
	}
	if err := f.check(op, "open", name); err != nil {
		return nil, err
	}
	inner, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &file{fs: f, inner: inner, path: name}, nil
}

// ReadDir lists name in the wrapped FS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := f.check(0, "readdirent", name); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(name)
}

// Stat describes name in the wrapped FS.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if err := f.check(0, "stat", name); err != nil {
		return nil, err
	}
	return f.inner.Stat(name)
}

// Mkdir is a Create, unless name exists (fs.ErrExist, as the real thing).
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	if err := f.check(f.creates(name), "mkdir", name); err != nil {
		return err
	}
	return f.inner.Mkdir(name, perm)
}

// Rename is a Rename.
func (f *FS) Rename(oldname, newname string) error {
	if err := f.check(Rename, "rename", oldname); err != nil {
		return err
	}
	return f.inner.Rename(oldname, newname)
}

// Remove removes name; only a crash fails it (removing frees space).
func (f *FS) Remove(name string) error {
	if err := f.check(0, "remove", name); err != nil {
		return err
	}
	return f.inner.Remove(name)
}

// SyncDir is a SyncDir.
func (f *FS) SyncDir(name string) error {
	if err := f.check(SyncDir, "sync", name); err != nil {
		return err
	}
	return f.inner.SyncDir(name)
}

// Lock takes the lock in the wrapped FS; a crash lets go of it.
func (f *FS) Lock(name string) (io.Closer, error) {
	if err := f.check(0, "lock", name); err != nil {
		return nil, err
	}
	inner, err := f.inner.Lock(name)
	if err != nil {
		return nil, err
	}
	l := &lock{fs: f, inner: inner}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locks[l] = true
	return l, nil
}

type lock struct {
	fs    *FS
	inner io.Closer
}

// Close lets go of the lock, unless a crash did.
func (l *lock) Close() error {
	l.fs.mu.Lock()
	defer l.fs.mu.Unlock()
	if !l.fs.locks[l] {
		return nil
	}
	delete(l.fs.locks, l)
	return l.inner.Close()
}

// file is a file opened through FS.
type file struct {
	fs    *FS
	inner store.File
	path  string
}

// Write writes what the fault leaves room for.
func (w *file) Write(b []byte) (int, error) {
	k, ferr := w.fs.room(w.path, len(b))
	if k == 0 && ferr != nil {
		return 0, ferr
	}
	n, err := w.inner.Write(b[:k])
	if err == nil {
		err = ferr
	}
	return n, err
}

// ReadAt reads; only a crash fails it.
func (w *file) ReadAt(b []byte, off int64) (int, error) {
	if err := w.fs.check(0, "read", w.path); err != nil {
		return 0, err
	}
	return w.inner.ReadAt(b, off)
}

// Sync is a Sync.
func (w *file) Sync() error {
	if err := w.fs.check(Sync, "sync", w.path); err != nil {
		return err
	}
	return w.inner.Sync()
}

// Truncate truncates; only a crash fails it.
func (w *file) Truncate(size int64) error {
	if err := w.fs.check(0, "truncate", w.path); err != nil {
		return err
	}
	return w.inner.Truncate(size)
}

// Close closes the file underneath in any case (a dead process's files
// close too), and fails after a crash.
func (w *file) Close() error {
	err := w.inner.Close()
	if cerr := w.fs.check(0, "close", w.path); cerr != nil {
		return cerr
	}
	return err
}
