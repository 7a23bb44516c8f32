// Package conns is the table of a node's TCP connections, shared by every
// protocol it serves on streams (its own frames and RESP). Holding a
// connection open costs a sender nothing, so the table has two bounds: a
// source address may hold at most Config.MaxPerSource connections (more
// are refused), and when the table is full (Config.Max) the connection
// idle longest is closed to let a new one in — an attacker holding idle
// connections cannot lock clients out.
//
//	t := conns.New(conns.Config{Max: 1024, MaxPerSource: 64})
//	go t.AcceptLoop(ctx, l, log, spawn, serve) // serve(c) owns c, then t.Release(c)
package conns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds the table.
type Config struct {
	// Max bounds the connections open at once: past it, the one idle
	// longest is closed to let a new one in.
	Max int
	// MaxPerSource bounds the connections one source address may hold;
	// more are refused.
	MaxPerSource int
}

// Conn is an open connection and what the table knows of it.
type Conn struct {
	C    net.Conn
	From netip.AddrPort
	last atomic.Int64 // unix nanoseconds: accepted, or last drained its requests
}

// Touch records that c has drained its requests now: it is idle from now.
func (c *Conn) Touch() { c.last.Store(time.Now().UnixNano()) }

// Table is the open connections. It is safe for concurrent use.
type Table struct {
	cfg      Config
	mu       sync.Mutex
	conns    map[net.Conn]*Conn
	bySource map[netip.Addr]int
	closing  bool

	refused, evicted atomic.Uint64
}

// Counts are what the table refused and evicted so far.
type Counts struct {
	Refused uint64 // connections refused: their source held MaxPerSource
	Evicted uint64 // connections closed, idle longest, to let a new one in
}

// New returns an empty table.
func New(cfg Config) *Table {
	return &Table{cfg: cfg, conns: map[net.Conn]*Conn{}, bySource: map[netip.Addr]int{}}
}

// Counts returns what the table refused and evicted so far.
func (t *Table) Counts() Counts { return Counts{Refused: t.refused.Load(), Evicted: t.evicted.Load()} }

// Len returns the connections open now.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// Admit registers c, closing the connection idle longest if the table is
// full. It refuses (false) once the table is closing, and when c's source
// holds MaxPerSource connections already.
func (t *Table) Admit(c net.Conn) (*Conn, bool) {
	cn := &Conn{C: c, From: RemoteAddr(c)}
	cn.Touch()
	src := cn.From.Addr()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return nil, false
	}
	if t.bySource[src] >= t.cfg.MaxPerSource {
		t.refused.Add(1)
		return nil, false
	}
	if len(t.conns) >= t.cfg.Max {
		var idlest *Conn
		for _, o := range t.conns {
			if idlest == nil || o.last.Load() < idlest.last.Load() {
				idlest = o
			}
		}
		t.drop(idlest) // its handler finds it closed and returns
		idlest.C.Close()
		t.evicted.Add(1)
	}
	t.conns[c] = cn
	t.bySource[src]++
	return cn, true
}

// Release forgets cn and closes it. It may run after Admit evicted cn.
func (t *Table) Release(cn *Conn) {
	t.mu.Lock()
	if t.conns[cn.C] == cn {
		t.drop(cn)
	}
	t.mu.Unlock()
	cn.C.Close()
}

// drop removes cn from the table; callers hold mu.
func (t *Table) drop(cn *Conn) {
	delete(t.conns, cn.C)
	src := cn.From.Addr()
	if t.bySource[src]--; t.bySource[src] <= 0 {
		delete(t.bySource, src)
	}
}

// Drain admits no more connections and makes every open one's next read
// fail now: their handlers finish the request in hand, flush and close.
func (t *Table) Drain() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closing = true
	now := time.Now()
	for c := range t.conns {
		c.SetReadDeadline(now)
	}
}

// CloseAll closes every open connection.
func (t *Table) CloseAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
}

// AcceptLoop admits l's connections into the table and hands each to
// serve, on a goroutine spawn starts (false: shutting down, the
// connection is released), until l closes or ctx ends. serve owns the
// connection and releases it when done. accepted, if not nil, is called
// for each connection admitted.
func (t *Table) AcceptLoop(ctx context.Context, l net.Listener, log *slog.Logger, spawn func(func()) bool, accepted func(), serve func(*Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("accept failed", "addr", l.Addr().String(), "err", err)
			select { // e.g. out of file descriptors: let some close
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return
			}
			continue
		}
		cn, ok := t.Admit(c)
		if !ok {
			c.Close()
			continue
		}
		if accepted != nil {
			accepted()
		}
		if !spawn(func() { serve(cn) }) {
			t.Release(cn)
		}
	}
}

// RemoteAddr is c's peer address, IPv4-in-IPv6 unmapped.
func RemoteAddr(c net.Conn) netip.AddrPort {
	a, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// Closing a connection with bytes from the client still unread makes the
// kernel reset it, and a reset can reach the client before the last reply
// that explains why. So a connection closed for a bad request says it
// sends no more (a FIN after that reply) and reads on, discarding, until
// the client closes too — for at most lingerFor and lingerBytes.
const (
	lingerFor   = 250 * time.Millisecond
	lingerBytes = 1 << 20
)

// LingerClose half-closes c, everything written, and drains what the
// client still sends, within lingerFor and lingerBytes; the caller then
// closes it.
func LingerClose(c net.Conn) {
	tc, ok := c.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(lingerFor))
	var buf [4096]byte
	for left := lingerBytes; left > 0; {
		m, err := c.Read(buf[:])
		left -= m
		if err != nil {
			return
		}
	}
}
