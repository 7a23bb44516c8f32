//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package bufpool

import "golang.org/x/sys/unix"

// alloc returns n bytes mapped from the OS, outside the garbage-collected
// heap: what the pool drops goes back to the OS at once (free), instead
// of waiting for a collection and the runtime's scavenger.
func alloc(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
}

// free unmaps what alloc mapped.
func free(b []byte) { unix.Munmap(b) }
