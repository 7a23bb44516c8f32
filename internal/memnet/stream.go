package memnet

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// listener accepts streams dialled to one address.
type listener struct {
	n      *Network
	addr   netip.AddrPort
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// acceptQueue bounds streams dialled and not yet accepted; more are
// refused, as a full backlog refuses them.
const acceptQueue = 128

// Listen accepts streams dialled to addr until the listener is closed.
func (n *Network) Listen(addr netip.AddrPort) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.listeners[addr]; ok {
		return nil, &net.OpError{Op: "listen", Net: "memnet", Addr: tcpAddr(addr), Err: syscall.EADDRINUSE}
	}
	l := &listener{n: n, addr: addr, conns: make(chan net.Conn, acceptQueue), closed: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

// Dial connects from → to: a stream to to's listener, unless there is
// none or the link is cut either way, which is refused at once.
func (n *Network) Dial(ctx context.Context, from, to netip.AddrPort) (net.Conn, error) {
	refused := &net.OpError{Op: "dial", Net: "memnet", Source: tcpAddr(from), Addr: tcpAddr(to), Err: syscall.ECONNREFUSED}
	n.mu.Lock()
	l, ok := n.listeners[to]
	n.mu.Unlock()
	if !ok || !n.Linked(from, to) {
		return nil, refused
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	select {
	case l.conns <- &conn{Conn: server, local: to, remote: from}:
		return &conn{Conn: client, local: from, remote: to}, nil
	case <-l.closed:
	default: // backlog full
	}
	client.Close()
	server.Close()
	return nil, refused
}

// Accept waits for the next stream.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and refuses streams queued and not accepted.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.n.mu.Lock()
		if l.n.listeners[l.addr] == l {
			delete(l.n.listeners, l.addr)
		}
		l.n.mu.Unlock()
		for {
			select {
			case c := <-l.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *listener) Addr() net.Addr { return tcpAddr(l.addr) }

// conn is one end of a pipe with the addresses of a TCP connection.
type conn struct {
	net.Conn
	local, remote netip.AddrPort
}

func (c *conn) LocalAddr() net.Addr  { return tcpAddr(c.local) }
func (c *conn) RemoteAddr() net.Addr { return tcpAddr(c.remote) }

func tcpAddr(a netip.AddrPort) *net.TCPAddr { return net.TCPAddrFromAddrPort(a) }
