//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package sockets

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort returns a socket control that lets several sockets bind one
// address; the kernel spreads datagrams over them.
func reusePort() func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}
}
