//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package sockets

import "syscall"

// reusePort returns nil where SO_REUSEPORT is missing: one UDP socket,
// one reader.
func reusePort() func(network, address string, c syscall.RawConn) error { return nil }
