package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/sockets"
	"github.com/zeebo/xxh3"
)

// Node is one rmbd daemon. Create it with New, serve with Run.
type Node struct {
	cfg  Config
	log  *slog.Logger
	f    *filter.Filter
	l    *sockets.Set
	name []byte
	c    *counters   // shared: TCP, peers, gossip
	udpC []*counters // one shard per UDP reader

	// mu guards g, the gossip state machine: the ticker and the UDP
	// readers (acks, peer frames) take turns through it.
	mu sync.Mutex
	g  *gossip.Gossip

	resolving chan struct{} // bounds concurrent host lookups for peer frames
	stop      chan struct{} // closed when shutting down
	wg        sync.WaitGroup

	// spawnMu orders goroutines started from callbacks (memberlist,
	// lookups) with shutdown: none starts once wg is being waited for.
	spawnMu  sync.Mutex
	spawnOff bool

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	ran    bool

	cluster atomic.Pointer[cluster] // nil without membership; set by Run
}

// New validates cfg, builds the filter and binds the sockets. The node
// serves nothing until Run.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	f, err := cfg.newFilter()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	gcfg := gossip.DefaultConfig()
	if cfg.Profile == ProfileClassic {
		gcfg = gossip.ClassicConfig()
	}
	gcfg.PruneAfter = cfg.PruneAfter
	gcfg.MaxFrame = cfg.MaxDatagram
	gcfg.Seed = xxh3.HashString(cfg.Listen + cfg.Name)
	g, err := gossip.New(gcfg, f)
	if err != nil {
		return nil, err
	}
	l, err := sockets.Listen(context.Background(), cfg.Listen, cfg.UDPSockets)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	name := cfg.Name
	if name == "" {
		name = defaultName(cfg.Listen, l.Addr)
	}
	udpC := make([]*counters, len(l.UDP))
	for i := range udpC {
		udpC[i] = new(counters)
	}
	return &Node{
		cfg: cfg, log: log, f: f, l: l, name: []byte(name), g: g, c: new(counters), udpC: udpC,
		resolving: make(chan struct{}, 8),
		stop:      make(chan struct{}),
		conns:     map[net.Conn]struct{}{},
	}, nil
}

// Addr returns the address UDP and TCP are bound to.
func (n *Node) Addr() netip.AddrPort { return n.l.Addr }

// Name returns the node's name.
func (n *Node) Name() string { return string(n.name) }

// Filter returns the node's filter.
func (n *Node) Filter() *filter.Filter { return n.f }

// Run serves until ctx is cancelled, then shuts down: it stops accepting,
// lets in-flight requests finish and flush (bounded by ShutdownTimeout)
// and closes every socket. It returns nil after a clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	if n.ran {
		return errors.New("node: Run called twice")
	}
	n.ran = true
	fp := n.f.Fingerprint()
	n.log.Info("rmbd listening", "addr", n.l.Addr.String(), "profile", string(n.cfg.Profile),
		"filter", fp.String(), "filter_bytes", n.f.SizeBytes(), "udp_sockets", len(n.l.UDP),
		"sync_interval", n.cfg.SyncInterval.String())
	for i, u := range n.l.UDP {
		n.wg.Add(1)
		go n.serveUDP(u, n.udpC[i])
	}
	n.wg.Add(2)
	go n.acceptTCP()
	go n.syncLoop()
	for _, p := range n.cfg.Peers {
		host, port, _ := splitPeer(p) // validated
		n.addPeer(host, port)
	}
	if n.cfg.clustered() {
		if err := n.startCluster(); err != nil {
			n.shutdown()
			return err
		}
	}

	<-ctx.Done()
	return n.shutdown()
}

func (n *Node) shutdown() error {
	n.log.Info("rmbd shutting down", "addr", n.l.Addr.String())
	close(n.stop)
	if c := n.cluster.Load(); c != nil {
		c.stop()
	}
	n.l.TCP.Close()
	now := time.Now()
	for _, u := range n.l.UDP {
		u.SetReadDeadline(now)
	}
	n.connMu.Lock()
	for c := range n.conns {
		c.SetReadDeadline(now) // handlers finish the frame in hand, flush, close
	}
	n.connMu.Unlock()

	n.spawnMu.Lock()
	n.spawnOff = true
	n.spawnMu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(n.cfg.ShutdownTimeout):
		n.log.Warn("shutdown timed out; closing connections")
		n.connMu.Lock()
		for c := range n.conns {
			c.Close()
		}
		n.connMu.Unlock()
		select {
		case <-done:
		case <-time.After(n.cfg.ShutdownTimeout / 4):
			n.log.Error("shutdown left goroutines running")
		}
	}
	for _, u := range n.l.UDP {
		u.Close()
	}
	return nil
}

// spawn runs f on a goroutine that shutdown waits for, unless shutdown has
// begun, in which case it reports false and runs nothing.
func (n *Node) spawn(f func()) bool {
	n.spawnMu.Lock()
	defer n.spawnMu.Unlock()
	if n.spawnOff {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// Stats returns a snapshot of the node's counters, its gossip and its
// filter. It reads the whole filter (to estimate keys): do not call it on
// a hot path.
func (n *Node) Stats() Stats {
	var s Stats
	s.addShard(n.c)
	for _, c := range n.udpC {
		s.addShard(c)
	}
	n.mu.Lock()
	gc := n.g.Counters()
	s.Peers = len(n.g.Peers())
	n.mu.Unlock()
	s.Ticks, s.SyncSent, s.SyncBytesSent, s.SyncRowsSent, s.Pruned = gc.Ticks, gc.Frames, gc.Bytes, gc.Rows, gc.Pruned
	s.Resent, s.Acks, s.StrayAcks = gc.Resent, gc.Acks, gc.StrayAcks
	n.connMu.Lock()
	s.OpenConns = len(n.conns)
	n.connMu.Unlock()
	fs := n.f.Stats()
	s.FilterBytes, s.SetBits, s.TotalBits = n.f.SizeBytes(), fs.SetBits, fs.TotalBits
	s.EstimatedKeys, s.EstimatedFPRate = fs.EstimatedKeys, fs.EstimatedFPRate
	return s
}

// AddPeer makes addr a static push target, as a peer frame does.
func (n *Node) AddPeer(addr netip.AddrPort) { n.addPeerAddr(addr) }

// Peers lists the node's push targets.
func (n *Node) Peers() []gossip.PeerStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.g.Peers()
}

// defaultName is HOST:PORT of the listen address, with the machine's host
// name when the host is a wildcard (so that containers differ).
func defaultName(listen string, bound netip.AddrPort) string {
	host, _, _ := net.SplitHostPort(listen)
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, strconv.Itoa(int(bound.Port())))
		}
	}
	return bound.String()
}
