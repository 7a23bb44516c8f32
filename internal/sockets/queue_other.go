//go:build !linux

package sockets

import "net"

// queueOf knows nothing of the queue outside Linux.
func queueOf(*net.UDPConn) Queue { return Queue{} }
