//go:build linux

package sockets

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket memory figures SO_MEMINFO reports, by index (linux/sock_diag.h).
const (
	meminfoRmemAlloc = 0
	meminfoRcvbuf    = 1
	meminfoDrops     = 8
	meminfoVars      = 9
)

// queueOf asks the kernel how full u's receive queue is and how many
// datagrams it dropped because it was full (SO_MEMINFO).
func queueOf(u *net.UDPConn) (q Queue) {
	rc, err := u.SyscallConn()
	if err != nil {
		return q
	}
	var info [meminfoVars]uint32
	rc.Control(func(fd uintptr) {
		n := uint32(unsafe.Sizeof(info))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
		if errno == 0 {
			q = Queue{Bytes: int(info[meminfoRmemAlloc]), Size: int(info[meminfoRcvbuf]), Drops: uint64(info[meminfoDrops])}
		}
	})
	return q
}
