// Package respserver serves a node's filters over the Redis protocol
// (RESP2 and RESP3): RedisBloom's BF.* commands, a filter's name as the
// key, so that every Redis client works against rmbd unchanged. It sees
// the node only through Backend (its filters, creating and dropping them,
// the keys of filters placed on other members, figures for INFO), an
// access.Policy, and the node's connection table and buffer pool, whose
// bounds its connections share.
//
//	srv := respserver.New(cfg, backend)
//	srv.Start()       // accepts on cfg.Listener until Close
//	defer srv.Close() // the node's connection table drains the rest
package respserver

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
)

// Backend is the node as the RESP server sees it.
type Backend interface {
	// Registry holds the node's filters: lookups and descriptions.
	Registry() *registry.Registry
	// FilterFor returns the filter adds to name go to, creating it as
	// the node's --auto-create says for a client at from.
	FilterFor(name []byte, from netip.Addr) (*registry.Filter, error)
	// Create creates a filter, everywhere in the cluster, for a client at
	// from: the backend decides whether it may, and holds it to its
	// quota.
	Create(name string, s registry.Sizing, from netip.Addr) (*registry.Filter, error)
	// Drop drops a filter, everywhere in the cluster.
	Drop(name string) error
	// Batch serves an add or has batch (wire.AppendBatch) of the filter
	// called name as the node serves a client's at from: for a filter
	// placed on some members, on the owners (forwarded when this node is
	// not one, an add waiting for --write-quorum of them). It returns the
	// answer frame, a result or an error frame, built in dst's array,
	// once it may go (an add on disk as --fsync says); the error is why
	// it may not.
	Batch(name, batch []byte, from netip.Addr, dst []byte) ([]byte, error)
	// SetDeadline sets when a filter is dropped, everywhere in the
	// cluster (the zero time: never), if cond (nil: always) says so of the
	// current deadline: registry.SetDeadline.
	SetDeadline(name string, deadline time.Time, cond func(current time.Time) bool) error
	// LoadChunk loads a dump's chunk into the filter called name (a
	// header may create it) for an admin at from: as dump.Load, durable
	// as the node's --fsync says before it returns.
	LoadChunk(name string, chunk []byte, from netip.Addr) (dump.Loaded, error)
	// Info returns the node's figures for INFO.
	Info() Info
}

// Info is what INFO tells of the node beside the server's own counts.
type Info struct {
	Listen, Name, Profile string
	RESPListen            string // where RESP clients connect
	DataDir               bool   // the node keeps its filters in a data directory
	Fsync                 string // when its log reaches the disk, as --fsync says
	Started               time.Time
	OpenConns             int
	MaxConns              int
	MaxConnsPerSource     int
	ConnsReceived         uint64 // every protocol's
	Rejected, Evicted     uint64
	Adds, AddsNew         uint64 // every protocol's
	Asked, Found          uint64
}

// Config configures a Server.
type Config struct {
	// Listener is where clients connect.
	Listener net.Listener
	// Passwords, when not empty, make clients AUTH with one of them.
	Passwords []string
	// Auth bounds password guessing; zero fields take
	// DefaultAuthLimits'.
	Auth AuthLimits
	// Limits bound one command once a client is authenticated.
	Limits resp.Limits
	// IdleTimeout closes a connection that sends nothing for this long;
	// FrameTimeout one that takes longer to finish a command it began, or
	// to take its replies.
	IdleTimeout, FrameTimeout time.Duration
	// AutoCreate: an add to a filter that does not exist creates it
	// (BF.INSERT's default; the Backend applies it to BF.ADD).
	AutoCreate bool
	// Sizing is what BF.INSERT creates a filter with unless told.
	Sizing registry.Sizing
	// Policy says who may run which command.
	Policy *access.Policy
	// Conns is the node's connection table; Buffers its buffer pool.
	Conns   *conns.Table
	Buffers *bufpool.Pool
	// Context ends when the node shuts down; Spawn runs a goroutine the
	// node waits for (false: shutting down).
	Context context.Context
	Spawn   func(func()) bool
	// Logger receives the server's logs.
	Logger *slog.Logger
}

// Server is the RESP listener.
type Server struct {
	cfg   Config
	b     Backend
	reg   *registry.Registry
	log   *slog.Logger
	ids   atomic.Int64 // numbers connections
	c     counters
	cmds  commandTable
	auth  *authThrottle
	turns longTurns
	// gate is held for reading by every connection running commands, for
	// writing by EXEC (multi.go).
	gate sync.RWMutex
}

// New returns a server of b's filters; it accepts nothing until Start.
func New(cfg Config, b Backend) *Server {
	return &Server{cfg: cfg, b: b, reg: b.Registry(), log: cfg.Logger, cmds: newCommandTable(),
		auth: newAuthThrottle(cfg.Auth), turns: newLongTurns()}
}

// Addr is the address clients connect to; invalid without a listener.
func (s *Server) Addr() netip.AddrPort {
	if s.cfg.Listener == nil {
		return netip.AddrPort{}
	}
	a, _ := netip.ParseAddrPort(s.cfg.Listener.Addr().String())
	return a
}

// Start accepts connections until Close.
func (s *Server) Start() {
	s.log.Info("RESP listening", "addr", s.cfg.Listener.Addr().String(), "auth", len(s.cfg.Passwords) > 0)
	s.cfg.Spawn(func() {
		s.cfg.Conns.AcceptLoop(s.cfg.Context, s.cfg.Listener, s.log, s.cfg.Spawn, func() { s.c.inc(cConns) }, s.serve)
	})
}

// Close stops accepting; open connections end with the node's.
func (s *Server) Close() error { return s.cfg.Listener.Close() }

// counter names one of the server's counts.
type counter int

const (
	cConns counter = iota
	cCommands
	cErrors
	cProtocolErrors
	cAdds
	cAddsNew
	cHasQueries
	cHasHits
	cForbidden
	cAuthFailed
	cIdleTimeouts
	cFrameTimeouts
	cNoMemory
	cProtected
	cAuthDelayed
	cAuthRefused
	numCounters
)

type counters struct{ v [numCounters]atomic.Uint64 }

func (c *counters) inc(k counter)           { c.v[k].Add(1) }
func (c *counters) add(k counter, n uint64) { c.v[k].Add(n) }

// Counts are what the server has done; the node adds them to its own
// figures.
type Counts struct {
	Conns, Commands, Errors, ProtocolErrors uint64
	Adds, AddsNew, HasQueries, HasHits      uint64
	Forbidden                               uint64
	AuthFailed                              uint64 // wrong passwords (AUTH, HELLO AUTH): resp_auth_failures
	AuthDelayed                             uint64 // AUTH attempts made to wait: their source failed before
	AuthRefused                             uint64 // AUTH attempts refused unchecked: their source failed too often of late
	IdleTimeouts, FrameTimeouts, NoMemory   uint64
	Protected                               uint64 // connections refused: protected mode
}

// Counts returns what the server has done so far.
func (s *Server) Counts() Counts {
	v := func(k counter) uint64 { return s.c.v[k].Load() }
	return Counts{Conns: v(cConns), Commands: v(cCommands), Errors: v(cErrors), ProtocolErrors: v(cProtocolErrors),
		Adds: v(cAdds), AddsNew: v(cAddsNew), HasQueries: v(cHasQueries), HasHits: v(cHasHits),
		Forbidden: v(cForbidden), AuthFailed: v(cAuthFailed), AuthDelayed: v(cAuthDelayed), AuthRefused: v(cAuthRefused),
		IdleTimeouts: v(cIdleTimeouts), FrameTimeouts: v(cFrameTimeouts), NoMemory: v(cNoMemory), Protected: v(cProtected)}
}
