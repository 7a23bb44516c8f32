// Package sockets binds the socket set an rmbd server listens on: several
// UDP sockets sharing one address through SO_REUSEPORT (the kernel spreads
// datagrams over them, one reader each) and a TCP listener on the same
// address and port.
package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// udpBuffer is the socket buffer size asked for (the kernel may give less:
// net.core.rmem_max): bursts of sync frames must not overflow it.
const udpBuffer = 4 << 20

// Set is the sockets of one server.
type Set struct {
	UDP  []*net.UDPConn
	TCP  *net.TCPListener
	Addr netip.AddrPort // bound address, IPv4-mapped addresses unmapped
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	return errors.Join(err, serr)
}

// Listen binds n UDP sockets and one TCP listener on addr. With port 0 it
// retries until UDP and TCP get the same free port.
func Listen(ctx context.Context, addr string, n int) (*Set, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	network := "udp"
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().Is4() {
		network = "udp4"
	} else if err == nil {
		network = "udp6"
	}
	var lastErr error
	for range 20 {
		l, err := listenOnce(ctx, network, host, port, n)
		if err == nil {
			return l, nil
		}
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, lastErr
}

func listenOnce(ctx context.Context, network, host, port string, n int) (*Set, error) {
	lc := net.ListenConfig{Control: reusePort}
	l := &Set{}
	pc, err := lc.ListenPacket(ctx, network, net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("listen UDP: %w", err)
	}
	first := pc.(*net.UDPConn)
	first.SetReadBuffer(udpBuffer)
	first.SetWriteBuffer(udpBuffer)
	l.UDP = append(l.UDP, first)
	bound := first.LocalAddr().(*net.UDPAddr).AddrPort()
	l.Addr = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	at := net.JoinHostPort(host, strconv.Itoa(int(bound.Port())))
	for len(l.UDP) < n {
		pc, err := lc.ListenPacket(ctx, network, at)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listen UDP: %w", err)
		}
		u := pc.(*net.UDPConn)
		u.SetReadBuffer(udpBuffer)
		u.SetWriteBuffer(udpBuffer)
		l.UDP = append(l.UDP, u)
	}
	tcpNet := "tcp" + network[3:]
	ln, err := (&net.ListenConfig{}).Listen(ctx, tcpNet, at)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("listen TCP: %w", err)
	}
	l.TCP = ln.(*net.TCPListener)
	return l, nil
}

// Close closes every socket.
func (l *Set) Close() {
	for _, u := range l.UDP {
		u.Close()
	}
	if l.TCP != nil {
		l.TCP.Close()
	}
}
