//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package bufpool

// alloc makes n bytes on the heap where mapping is not at hand.
func alloc(n int) ([]byte, error) { return make([]byte, n), nil }

// free leaves the buffer to the collector.
func free([]byte) {}
