package node

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/respserver"
	"github.com/rmbd/rmbd/store"
)

// The Redis protocol (Config.RESPListen), served by package respserver
// over the node's filters, access policy, connection table and buffer
// pool.

// newRESP binds the RESP listener and makes its server.
func (n *Node) newRESP() (*respserver.Server, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", n.cfg.RESPListen)
	if err != nil {
		return nil, err
	}
	return respserver.New(respserver.Config{
		Listener: l, Passwords: n.cfg.RESPPasswords, Limits: n.cfg.respLimits(),
		IdleTimeout: n.cfg.IdleTimeout, FrameTimeout: n.cfg.FrameTimeout,
		AutoCreate: n.cfg.AutoCreate, Sizing: n.autoSizing(), Policy: &n.policy,
		Conns: n.conns, Buffers: n.bufs, Context: n.life.ctx, Spawn: n.life.spawn, Logger: n.log,
	}, respBackend{n}), nil
}

// RESPAddr is the address the RESP listener is bound to; invalid without
// one.
func (n *Node) RESPAddr() netip.AddrPort {
	if n.resp == nil {
		return netip.AddrPort{}
	}
	return n.resp.Addr()
}

// respBackend is the node as the RESP server sees it.
type respBackend struct{ n *Node }

func (b respBackend) Registry() *registry.Registry { return b.n.reg }

func (b respBackend) FilterFor(name []byte, from netip.Addr) (*registry.Filter, error) {
	return b.n.filterFor(from, false, name)
}

func (b respBackend) Create(name string, s registry.Sizing, from netip.Addr) (*registry.Filter, error) {
	return b.n.createFor(from, false, name, s)
}

func (b respBackend) Drop(name string) error { return b.n.dropFilter(name) }

// Batch serves an add or has batch for the filter name as a frame from a
// client at from would be: for a placed filter, forwarded to its owners.
// It returns once the answer may go (adds on disk as --fsync says).
func (b respBackend) Batch(name, batch []byte, from netip.Addr, dst []byte) ([]byte, error) {
	n := b.n
	q := request{frame: batch, from: netip.AddrPortFrom(from, 0), tcp: true, named: true, name: name,
		w: &worker{c: n.meters.c, buf: dst}}
	r := n.batch(&q)
	var ws store.Waits
	ws.Add(r.wait)
	return r.frame, ws.Wait()
}

func (b respBackend) SetDeadline(name string, d time.Time, cond func(time.Time) bool) error {
	return b.n.setDeadline(name, d, cond)
}

func (b respBackend) LoadChunk(name string, chunk []byte, from netip.Addr) (dump.Loaded, error) {
	return b.n.loadChunk(from, false, name, chunk)
}

func (b respBackend) Info() respserver.Info {
	n := b.n
	s := n.Stats()
	c := s.Counts
	return respserver.Info{Listen: n.Addr().String(), Name: n.Name(), Profile: string(n.cfg.Profile),
		RESPListen: n.RESPAddr().String(), DataDir: n.cfg.DataDir != "", Fsync: n.cfg.Fsync.String(),
		Started: n.life.started, OpenConns: s.OpenConns, MaxConns: n.cfg.MaxConns, MaxConnsPerSource: n.cfg.MaxConnsPerSource,
		ConnsReceived: c[counter.RESPConns] + c[counter.TCPConns], Rejected: c[counter.TCPRefusedPerSource], Evicted: c[counter.TCPEvicted],
		Adds: c[counter.Adds], AddsNew: c[counter.AddsNew], Asked: c[counter.HasQueries], Found: c[counter.HasHits]}
}

// addRESPStats adds the RESP server's counts to s.
func (n *Node) addRESPStats(s *Stats) {
	rc := n.resp.Counts()
	for c, v := range map[Counter]uint64{
		counter.RESPConns: rc.Conns, counter.RESPCommands: rc.Commands, counter.RESPErrors: rc.Errors, counter.RESPProtocolErrors: rc.ProtocolErrors,
		counter.Adds: rc.Adds, counter.AddsNew: rc.AddsNew, counter.HasQueries: rc.HasQueries, counter.HasHits: rc.HasHits,
		counter.Forbidden: rc.Forbidden, counter.ProtectedRefused: rc.Protected,
		counter.RESPAuthFailures: rc.AuthFailed, counter.RESPAuthDelayed: rc.AuthDelayed, counter.RESPAuthRefused: rc.AuthRefused,
		counter.TCPIdleTimeouts: rc.IdleTimeouts, counter.TCPFrameTimeouts: rc.FrameTimeouts, counter.TCPNoMemory: rc.NoMemory,
	} {
		s.Counts[c] += v
	}
}
