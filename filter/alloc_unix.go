//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package filter

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapMin is the smallest filter whose words are mapped from the OS rather
// than allocated on the heap.
const mapMin = 1 << 20

// allocWords returns n zero words starting on a 64-byte boundary (so that
// each blocked row is exactly one cache line), and how to give them back.
// Large filters are mapped straight from the OS: their pages cost nothing
// until a bit in them is set, so an empty filter of any size is free.
func allocWords(n uint64) ([]uint64, func()) {
	if n*8 < mapMin {
		return alignedWords(n), func() {}
	}
	m, err := unix.Mmap(-1, 0, int(n*8), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return alignedWords(n), func() {} // the heap will do
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m))), n), func() { unix.Munmap(m) }
}
