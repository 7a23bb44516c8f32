//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// udpLoop runs every UDP client in one event loop, the way redis-benchmark
// drives its connections: each client is a connected non-blocking socket
// with one request in flight, and a single thread waits on all of them
// with epoll. A load generator's own cost comes out of what the machine
// can give the server; this keeps it to system calls.
type udpLoop struct {
	c       config
	epfd    int
	clients []*loopClient
	buf     []byte
}

type loopClient struct {
	fd   int
	id   uint32
	o    op
	keys [][]byte
	sent time.Time
	out  []byte
	i    int
	pick func(int) (op, [][]byte)
}

func newUDPLoop(c config, picks []func(int) (op, [][]byte)) (*udpLoop, error) {
	ap, err := netip.ParseAddrPort(c.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q must be IP:PORT for UDP load: %w", c.addr, err)
	}
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	if !ap.Addr().Unmap().Is4() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &udpLoop{c: c, epfd: epfd, buf: make([]byte, 65536)}
	for i, pick := range picks {
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			l.close()
			return nil, err
		}
		l.clients = append(l.clients, &loopClient{fd: fd, id: uint32(i) << 24, pick: pick})
		if err := unix.Connect(fd, sa); err != nil {
			l.close()
			return nil, err
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			l.close()
			return nil, err
		}
	}
	return l, nil
}

func (l *udpLoop) close() {
	for _, cl := range l.clients {
		unix.Close(cl.fd)
	}
	unix.Close(l.epfd)
}

// send issues cl's next request.
func (l *udpLoop) send(cl *loopClient) error {
	cl.o, cl.keys = cl.pick(cl.i)
	cl.i++
	cl.id++
	var err error
	if cl.out, err = encode(cl.out[:0], l.c.classic, cl.o, cl.id, cl.keys); err != nil {
		return err
	}
	cl.sent = time.Now()
	for {
		_, err = unix.Write(cl.fd, cl.out)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.ECONNREFUSED || err == unix.EAGAIN {
		return nil // counted as lost when the timeout passes
	}
	return err
}

// run drives the clients until ctx ends.
func (l *udpLoop) run(ctx context.Context, s *stats) error {
	for _, cl := range l.clients {
		if err := l.send(cl); err != nil {
			return err
		}
	}
	events := make([]unix.EpollEvent, len(l.clients))
	lastSweep := time.Now()
	for ctx.Err() == nil {
		n, err := unix.EpollWait(l.epfd, events, 10)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			if err := l.drain(l.clients[ev.Fd], s); err != nil {
				return err
			}
		}
		if now := time.Now(); now.Sub(lastSweep) > 10*time.Millisecond {
			lastSweep = now
			for _, cl := range l.clients {
				if now.Sub(cl.sent) > l.c.timeout {
					s.lost++
					if err := l.send(cl); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// drain reads every datagram waiting on cl's socket.
func (l *udpLoop) drain(cl *loopClient, s *stats) error {
	for {
		m, err := unix.Read(cl.fd, l.buf)
		switch err {
		case nil:
		case unix.EAGAIN:
			return nil
		case unix.EINTR, unix.ECONNREFUSED:
			continue
		default:
			return err
		}
		wrong, ok, err := check(l.buf[:m], l.c.classic, cl.o, cl.id, cl.keys)
		if err != nil {
			return err
		}
		if !ok {
			continue // a late reply to a request already counted lost
		}
		s.hist.RecordValue(time.Since(cl.sent).Microseconds())
		s.requests++
		s.keys += int64(len(cl.keys))
		s.wrong += int64(wrong)
		if err := l.send(cl); err != nil {
			return err
		}
	}
}
