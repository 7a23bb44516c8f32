package simdisk_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/rmbd/rmbd/internal/simdisk"
)

// A file written and fsynced, its name made durable by a SyncDir, then
// appended to without an fsync: a crash keeps what was synced, and the
// file created since and never dir-synced is gone.
func Example() {
	d := simdisk.New(1)
	fsys := d.FS()
	f, _ := fsys.OpenFile("/data/log", os.O_WRONLY|os.O_CREATE, 0o644)
	fmt.Println(f == nil) // no directory /data yet

	fsys.Mkdir("/data", 0o755)
	fsys.SyncDir("/")
	f, _ = fsys.OpenFile("/data/log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	f.Write([]byte("kept "))
	f.Sync()
	fsys.SyncDir("/data")
	f.Write([]byte("lost"))
	g, _ := fsys.OpenFile("/data/new", os.O_WRONLY|os.O_CREATE, 0o644)
	g.Sync()

	d.Crash(false)
	_, err := f.Write([]byte("after"))
	fmt.Println(err)

	fsys = d.FS()
	f, _ = fsys.OpenFile("/data/log", os.O_RDONLY, 0)
	b := make([]byte, 100)
	n, _ := f.ReadAt(b, 0)
	fmt.Printf("%q\n", b[:n])
	_, err = fsys.Stat("/data/new")
	fmt.Println(err, errors.Is(err, fs.ErrNotExist))
	// Output:
	// true
	// write /data/log: simdisk: the process crashed
	// "kept "
	// stat /data/new: no such file or directory true
}
