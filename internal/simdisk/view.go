package simdisk

import (
	"io"
	"io/fs"
	"maps"
	"os"
	"strings"
	"syscall"

	"github.com/rmbd/rmbd/store"
)

// view is the FS of one incarnation of a Disk: it works until the disk
// crashes. Errors are *fs.PathError holding a syscall.Errno, as the
// operating system's, or ErrCrashed.
type view struct {
	d   *Disk
	gen uint64
}

// begin locks the disk and returns nil if v's incarnation is alive, or
// unlocks it and returns the error a dead one fails op with.
func (v *view) begin(op, name string) error {
	v.d.mu.Lock()
	if v.d.planned && v.gen == v.d.gen {
		if v.d.plannedIn == 0 {
			v.d.crash(v.d.plannedTear)
		}
		v.d.plannedIn--
	}
	if v.gen != v.d.gen {
		v.d.mu.Unlock()
		return &fs.PathError{Op: op, Path: name, Err: ErrCrashed}
	}
	return nil
}

// OpenFile opens the file name with os.OpenFile's flags (O_RDONLY,
// O_WRONLY, O_RDWR, O_CREATE, O_EXCL, O_TRUNC, O_APPEND; others are
// ignored). It opens files only: a directory is EISDIR.
func (v *view) OpenFile(name string, flag int, perm fs.FileMode) (store.File, error) {
	if err := v.begin("open", name); err != nil {
		return nil, err
	}
	defer v.d.mu.Unlock()
	n, err := v.d.open(clean(name), flag, perm)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{v: v, n: n, path: name, flag: flag}, nil
}

// open opens or creates the file p. d.mu is held.
func (d *Disk) open(p string, flag int, perm fs.FileMode) (*inode, error) {
	dir, base, err := d.parent(p)
	if err != nil {
		if p == "/" {
			err = syscall.EISDIR
		}
		return nil, err
	}
	n, ok := dir.live[base]
	switch {
	case ok && flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return nil, syscall.EEXIST
	case ok && n.dir:
		return nil, syscall.EISDIR
	case !ok && flag&os.O_CREATE == 0:
		return nil, syscall.ENOENT
	case !ok:
		n = &inode{mode: perm.Perm()}
		dir.live[base] = n
	}
	if flag&os.O_TRUNC != 0 && writable(flag) {
		n.cut(0)
	}
	return n, nil
}

// ReadDir lists the directory name, sorted by name.
func (v *view) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := v.begin("readdirent", name); err != nil {
		return nil, err
	}
	defer v.d.mu.Unlock()
	n, err := v.d.lookup(clean(name))
	if err == nil && !n.dir {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, &fs.PathError{Op: "readdirent", Path: name, Err: err}
	}
	names := sortedNames(n.live)
	out := make([]fs.DirEntry, len(names))
	for i, base := range names {
		out[i] = fs.FileInfoToDirEntry(info(base, n.live[base]))
	}
	return out, nil
}

// Stat describes name.
func (v *view) Stat(name string) (fs.FileInfo, error) {
	if err := v.begin("stat", name); err != nil {
		return nil, err
	}
	defer v.d.mu.Unlock()
	p := clean(name)
	n, err := v.d.lookup(p)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	base := p[strings.LastIndexByte(p, '/')+1:]
	if p == "/" {
		base = "/"
	}
	return info(base, n), nil
}

// Mkdir makes the directory name: EEXIST if something has the name,
// ENOENT if its parent is missing.
func (v *view) Mkdir(name string, perm fs.FileMode) error {
	if err := v.begin("mkdir", name); err != nil {
		return err
	}
	defer v.d.mu.Unlock()
	dir, base, err := v.d.parent(clean(name))
	switch {
	case err == syscall.EBUSY: // the root
		err = syscall.EEXIST
	case err != nil:
	case dir.live[base] != nil:
		err = syscall.EEXIST
	default:
		dir.live[base] = newDir(perm)
	}
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return nil
}

// Rename moves oldname to newname, replacing a file there (or an empty
// directory, if oldname is one), as rename(2).
func (v *view) Rename(oldname, newname string) error {
	if err := v.begin("rename", oldname); err != nil {
		return err
	}
	defer v.d.mu.Unlock()
	if err := v.d.rename(clean(oldname), clean(newname)); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// rename does Rename on clean paths. d.mu is held.
func (d *Disk) rename(from, to string) error {
	odir, obase, err := d.parent(from)
	if err != nil {
		return err
	}
	ndir, nbase, err := d.parent(to)
	if err != nil {
		return err
	}
	n, ok := odir.live[obase]
	if !ok {
		return syscall.ENOENT
	}
	if from == to || ndir.live[nbase] == n { // one file under both names: nothing to do, as rename(2)
		return nil
	}
	if n.dir && strings.HasPrefix(to, from+"/") {
		return syscall.EINVAL // into itself
	}
	if old, ok := ndir.live[nbase]; ok {
		switch {
		case old.dir && !n.dir:
			return syscall.EISDIR
		case !old.dir && n.dir:
			return syscall.ENOTDIR
		case old.dir && len(old.live) > 0:
			return syscall.ENOTEMPTY
		}
	}
	delete(odir.live, obase)
	ndir.live[nbase] = n
	return nil
}

// Remove removes a file or an empty directory (ENOTEMPTY otherwise).
func (v *view) Remove(name string) error {
	if err := v.begin("remove", name); err != nil {
		return err
	}
	defer v.d.mu.Unlock()
	dir, base, err := v.d.parent(clean(name))
	if err == nil {
		n, ok := dir.live[base]
		switch {
		case !ok:
			err = syscall.ENOENT
		case n.dir && len(n.live) > 0:
			err = syscall.ENOTEMPTY
		default:
			delete(dir.live, base)
		}
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// SyncDir makes the live entries of the directory name its durable ones.
// It syncs directories only: a file is ENOTDIR.
func (v *view) SyncDir(name string) error {
	if err := v.begin("sync", name); err != nil {
		return err
	}
	defer v.d.mu.Unlock()
	n, err := v.d.lookup(clean(name))
	if err == nil && !n.dir {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return &fs.PathError{Op: "sync", Path: name, Err: err}
	}
	n.synced = maps.Clone(n.live)
	v.d.counters.DirSyncs++
	return nil
}

// Lock takes the lock name, creating it as an empty file if missing (as
// the operating system's lock file is, its name not durable), for this
// incarnation alone: another Lock of it fails with store.ErrLocked until
// the Closer is closed or the disk crashes.
func (v *view) Lock(name string) (io.Closer, error) {
	if err := v.begin("lock", name); err != nil {
		return nil, err
	}
	defer v.d.mu.Unlock()
	p := clean(name)
	if _, err := v.d.open(p, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, &fs.PathError{Op: "lock", Path: name, Err: err}
	}
	if v.d.locks[p] != nil {
		return nil, &fs.PathError{Op: "lock", Path: name, Err: store.ErrLocked}
	}
	l := &lock{v: v, path: p}
	v.d.locks[p] = l
	return l, nil
}

// lock is a lock taken through a view.
type lock struct {
	v    *view
	path string
}

// Close lets go of the lock; after a crash it fails with ErrCrashed (the
// crash let go of it).
func (l *lock) Close() error {
	if err := l.v.begin("unlock", l.path); err != nil {
		return err
	}
	defer l.v.d.mu.Unlock()
	if l.v.d.locks[l.path] != l {
		return &fs.PathError{Op: "unlock", Path: l.path, Err: fs.ErrClosed}
	}
	delete(l.v.d.locks, l.path)
	return nil
}
