//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package filter

// allocWords returns n zero words starting on a 64-byte boundary, from
// the heap.
func allocWords(n uint64) ([]uint64, func()) { return alignedWords(n), func() {} }
