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
	"runtime"
	"strconv"
	"sync"
	"time"
)

// udpBuffer is the socket buffer size asked for (the kernel may give less:
// net.core.rmem_max): bursts of sync frames must not overflow it.
const udpBuffer = 4 << 20

// Set is the sockets of one server.
type Set struct {
	UDP  []*net.UDPConn
	TCP  *net.TCPListener
	addr netip.AddrPort // bound address, IPv4-mapped addresses unmapped
}

// Queue is a datagram socket's receive queue as the kernel sees it.
type Queue struct {
	Bytes, Size int    // bytes queued (the kernel's accounting), and the most it holds
	Drops       uint64 // datagrams dropped since the socket was made: the queue was full
}

// Addr returns the bound address, IPv4-mapped addresses unmapped.
func (l *Set) Addr() netip.AddrPort { return l.addr }

// Listen binds n UDP sockets and one TCP listener on addr. With port 0 it
// retries until UDP and TCP get the same free port. Where SO_REUSEPORT is
// missing, it binds one UDP socket whatever n.
func Listen(ctx context.Context, addr string, n int) (*Set, error) {
	if reusePort() == nil {
		n = 1
	}
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
	lc := net.ListenConfig{Control: reusePort()}
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
	l.addr = netip.AddrPortFrom(bound.Addr().Unmap(), bound.Port())
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
func (l *Set) Close() error {
	for _, u := range l.UDP {
		u.Close()
	}
	if l.TCP != nil {
		l.TCP.Close()
	}
	return nil
}

// Readers returns the number of UDP sockets, one reader each.
func (l *Set) Readers() int { return len(l.UDP) }

// Queue returns reader's socket receive queue (Linux; zero elsewhere). It
// costs a system call.
func (l *Set) Queue(reader int) Queue { return queueOf(l.UDP[reader]) }

// ServePackets reads every UDP socket on a goroutine of its own and calls
// h with each datagram (its source unmapped from IPv4-in-IPv6) until ctx
// ends, when the readers finish the datagram in hand and stop; the channel
// is closed then.
func (l *Set) ServePackets(ctx context.Context, h func(reader int, frame []byte, from netip.AddrPort)) <-chan struct{} {
	var wg sync.WaitGroup
	for i, u := range l.UDP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, maxPayload)
			for n := 1; ; n++ {
				m, from, err := u.ReadFromUDPAddrPort(buf)
				if err != nil {
					if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
						return
					}
					continue // transient, e.g. a truncated datagram
				}
				h(i, buf[:m], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
				if n%yieldEvery == 0 {
					runtime.Gosched() // a busy reader lets the node's streams run
				}
			}
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		now := time.Now()
		for _, u := range l.UDP {
			u.SetReadDeadline(now)
		}
	})
	done := make(chan struct{})
	go func() {
		wg.Wait()
		stop()
		close(done)
	}()
	return done
}

// yieldEvery: a reader that always finds a datagram waiting would keep
// its core until the runtime preempts it, 10 ms later; it yields every
// so many datagrams instead, so that the node's other work (TCP clients)
// waits a fraction of a millisecond under a flood, not ten.
const yieldEvery = 256

// maxPayload is the largest datagram a reader accepts.
const maxPayload = 65535

// WriteTo sends a datagram from the bound address through reader i's
// socket.
func (l *Set) WriteTo(i int, frame []byte, to netip.AddrPort) error {
	_, err := l.UDP[i].WriteToUDPAddrPort(frame, to)
	return err
}

// Listener returns the TCP listener.
func (l *Set) Listener() net.Listener { return l.TCP }

// Dial opens a TCP connection to addr.
func (l *Set) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr.String())
}
