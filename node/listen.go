package node

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

// listeners are the sockets a node serves on: several UDP sockets sharing
// one address through SO_REUSEPORT (the kernel spreads datagrams over
// them, one reader goroutine each) and a TCP listener on the same address.
type listeners struct {
	udp  []*net.UDPConn
	tcp  *net.TCPListener
	addr netip.AddrPort
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	return errors.Join(err, serr)
}

// listen binds n UDP sockets and one TCP listener on addr. With port 0 it
// retries until UDP and TCP get the same free port.
func listen(ctx context.Context, addr string, n int) (*listeners, error) {
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

func listenOnce(ctx context.Context, network, host, port string, n int) (*listeners, error) {
	lc := net.ListenConfig{Control: reusePort}
	l := &listeners{}
	pc, err := lc.ListenPacket(ctx, network, net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("listen UDP: %w", err)
	}
	first := pc.(*net.UDPConn)
	l.udp = append(l.udp, first)
	bound := first.LocalAddr().(*net.UDPAddr).AddrPort()
	l.addr = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
	at := net.JoinHostPort(host, strconv.Itoa(int(bound.Port())))
	for len(l.udp) < n {
		pc, err := lc.ListenPacket(ctx, network, at)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("listen UDP: %w", err)
		}
		l.udp = append(l.udp, pc.(*net.UDPConn))
	}
	tcpNet := "tcp" + network[3:]
	ln, err := (&net.ListenConfig{}).Listen(ctx, tcpNet, at)
	if err != nil {
		l.close()
		return nil, fmt.Errorf("listen TCP: %w", err)
	}
	l.tcp = ln.(*net.TCPListener)
	return l, nil
}

func (l *listeners) close() {
	for _, u := range l.udp {
		u.Close()
	}
	if l.tcp != nil {
		l.tcp.Close()
	}
}
