package faultfs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/faultfs"
	"github.com/rmbd/rmbd/store"
)

// A store on a disk that fills up: adds to keep are refused while it is
// full, and taken again once a retry finds room.
func Example() {
	dir, _ := os.MkdirTemp("", "faultfs-example")
	defer os.RemoveAll(dir)
	f, _ := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01})
	ffs := faultfs.New(nil)
	opts := store.DefaultOptions()
	opts.Fsync, opts.FS = store.FsyncAlways, ffs
	s, _, err := store.Open(dir, store.Definition{Name: "default", FP: f.Fingerprint(), Capacity: 1000, FPRate: 0.01}, f, opts)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	add := func(key string) error {
		_, wait, err := s.Add([][]byte{[]byte(key)}, make([]byte, 1), &store.Scratch{})
		if err != nil {
			return err
		}
		return wait.Wait(context.Background())
	}

	ffs.Inject(faultfs.Fault{Ops: faultfs.Full})
	err = add("a") // taken, and failed on its way to the disk
	fmt.Println(errors.Is(err, store.ErrUnwritable), errors.Is(err, syscall.ENOSPC))
	err = add("b") // refused
	fmt.Println(errors.Is(err, store.ErrUnwritable), f.Has([]byte("a")))

	ffs.Heal()
	fmt.Println(s.Retry(), add("c"))
	// Output:
	// true true
	// true true
	// <nil> <nil>
}
