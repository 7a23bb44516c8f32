package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/hostport"
	"github.com/rmbd/rmbd/internal/latest"
	"github.com/rmbd/rmbd/internal/shed"
	"github.com/rmbd/rmbd/internal/sockets"
	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/membership"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/replicate"
	"github.com/rmbd/rmbd/respserver"
	"github.com/rmbd/rmbd/store"
)

// Node is one rmbd daemon. Create it with New, serve with Run.
type Node struct {
	cfg      Config
	log      *slog.Logger
	name     []byte
	tr       Transport
	reg      *registry.Registry    // every filter, the default included
	repl     *replicate.Replicator // gossip: peers, members, a round per segment
	keys     *keys                 // with a cluster key: sealing and opening; nil without
	policy   access.Policy         // who may do what
	creators *access.Creators      // what clients that are not admins created: their quotas
	conns    *conns.Table          // TCP connections, binary and RESP
	bufs     *bufpool.Pool         // stream buffers, under --max-buffer-bytes
	shed     []*shed.Shedder       // per datagram reader: who floods it
	mem      atomic.Pointer[membership.Membership]
	meters   *meters            // counters and latency histograms
	resp     *respserver.Server // nil without --resp-listen
	life     lifecycle
	gates    gates
	serve    dispatcher  // the handler of each frame type
	repairs  repairQueue // members' states to compare, one at a time
	placing  placing     // filters on some members: forwarding, filling (place.go)
}

// repairQueue is the members' states waiting to be compared, one at a
// time, newest per member, and whether those the join brought were.
type repairQueue struct {
	*latest.Queue[string, repairState]
	joined atomic.Bool // filled from the cluster at the join (readiness)
}

// lifecycle is what starting and stopping a node needs. Goroutines
// started from callbacks (membership, lookups) go through spawn, so that
// none starts once shutdown waits for them.
type lifecycle struct {
	ctx     context.Context // ends when shutdown begins
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	ready   chan struct{} // closed once serving
	ran     atomic.Bool
	started time.Time

	mu  sync.Mutex
	off bool // shutting down: spawn starts nothing
}

// spawn runs f on a goroutine that shutdown waits for, unless shutdown
// has begun, in which case it reports false and runs nothing.
func (l *lifecycle) spawn(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.off {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// gates bound background work: host lookups, pulls served, catalog changes.
type gates struct {
	resolving chan struct{} // host lookups for peer requests in flight
	pulling   chan struct{} // pulls served at once
	catalog   chan []byte   // catalog entries from members, to merge (catalog.go)
}

// New validates cfg, opens the data directory and its filters and binds
// the sockets (unless cfg.Transport is given). The node serves nothing
// until Run.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Resolver = cmp.Or[Resolver](cfg.Resolver, net.DefaultResolver)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := &Node{cfg: cfg, log: log, meters: newMeters(), bufs: bufpool.New(cfg.MaxBufferBytes, cfg.MaxBufferBytes/16)}
	var undo []func() error
	fail := func(err error) (*Node, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		var err error
		if tr, err = sockets.Listen(context.Background(), cfg.Listen, cfg.UDPSockets); err != nil {
			return fail(err)
		}
	}
	n.tr = tr
	undo = append(undo, tr.Close)
	n.name = []byte(cfg.Name)
	if cfg.Name == "" {
		n.name = []byte(defaultName(cfg.Listen, tr.Addr()))
	}
	reg, err := n.openRegistry()
	if err != nil {
		return fail(err)
	}
	undo = append(undo, reg.Close)
	n.reg = reg
	n.keys = newKeys(cfg.ClusterKeys)
	if n.repl, err = newReplicator(n); err != nil {
		return fail(err)
	}
	n.newPolicy()
	n.newPlacing()
	n.conns = conns.New(conns.Config{Max: cfg.MaxConns, MaxPerSource: cfg.MaxConnsPerSource})
	n.shed = shed.New(tr.Readers(), tr, log)
	n.gates = gates{resolving: make(chan struct{}, 8), pulling: make(chan struct{}, maxPullsServed), catalog: make(chan []byte, catalogQueue)}
	n.repairs.Queue = latest.New[string, repairState](cfg.MaxPeers)
	n.serve = newDispatcher()
	ctx, cancel := context.WithCancel(context.Background())
	n.life = lifecycle{ctx: ctx, cancel: cancel, ready: make(chan struct{})}
	if cfg.RESPListen != "" {
		if n.resp, err = n.newRESP(); err != nil {
			cancel()
			return fail(fmt.Errorf("RESP listener: %w", err))
		}
	}
	return n, nil
}

// openRegistry opens the data directory, if there is one, and restores
// every filter it holds.
func (n *Node) openRegistry() (*registry.Registry, error) {
	cfg := n.cfg
	rc := registry.Config{Node: string(n.name), Default: cfg.sizing(), MaxFilterBytes: cfg.MaxFilterBytes,
		MaxFilters: cfg.MaxFilters, MaxMemory: cfg.MaxMemory, TombstoneTTL: cfg.TombstoneTTL, HandoffGrace: cfg.HandoffGrace,
		Now: cfg.Now, Logger: n.log}
	if cfg.DataDir != "" {
		dir, err := store.OpenDirFS(cfg.FS, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		rc.Dir = dir
		rc.Store = store.DefaultOptions()
		rc.Store.Fsync, rc.Store.Repair, rc.Store.CheckpointInterval, rc.Store.Logger = cfg.Fsync, cfg.Repair, cfg.CheckpointInterval, n.log
	}
	reg, err := registry.Open(rc)
	switch {
	case err == nil:
		return reg, nil
	case rc.Dir != nil:
		rc.Dir.Close()
	}
	if errors.Is(err, store.ErrMismatch) || errors.Is(err, filter.ErrCapacity) {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil, err
}

// Addr returns the address datagrams and streams are served on.
func (n *Node) Addr() netip.AddrPort { return n.tr.Addr() }

// Name returns the node's name.
func (n *Node) Name() string { return string(n.name) }

// Filter returns the default filter's rows (its first segment).
func (n *Node) Filter() *filter.Filter { return n.reg.Default().Segments()[0].Rows() }

// Registry returns the node's filters.
func (n *Node) Registry() *registry.Registry { return n.reg }

// Ready is closed once the node serves.
func (n *Node) Ready() <-chan struct{} { return n.life.ready }

// Run serves until ctx is cancelled, then shuts down: it stops accepting,
// lets in-flight requests finish and flush (bounded by ShutdownTimeout),
// leaves the cluster and closes every socket. It returns nil after a
// clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	if n.life.ran.Swap(true) {
		return errors.New("node: Run called twice")
	}
	fp := n.reg.Default().Version().Def.FP
	n.log.Info("rmbd listening", "addr", n.Addr().String(), "profile", string(n.cfg.Profile),
		"filter", fp.String(), "filter_bytes", n.reg.Default().Bytes(), "udp_sockets", n.tr.Readers(),
		"sync_interval", n.cfg.SyncInterval.String(), "version", version.String())
	if n.keys == nil {
		n.log.Warn("cluster traffic is unauthenticated: anyone who can reach this node's port can write rows " +
			"into its filter, and anyone who can reach its gossip port can join; give every node " +
			"--cluster-key-file (rmbd keygen makes a key)")
	}
	n.reg.Start()
	n.life.started = time.Now()
	n.placeMembers() // alone: at once; in a cluster, once members are known
	packets := n.tr.ServePackets(n.life.ctx, n.newPacketHandler())
	n.life.spawn(func() {
		n.conns.AcceptLoop(n.life.ctx, n.tr.Listener(), n.log, n.life.spawn,
			func() { n.meters.c.Inc(counter.TCPConns) }, n.serveConn)
	})
	if n.resp != nil {
		n.resp.Start()
	}
	n.life.spawn(n.housekeep)
	n.life.spawn(func() { n.reg.RefreshStatsUntil(n.life.ctx.Done()) })
	n.life.spawn(n.catalogLoop)
	if !n.cfg.ManualTicks {
		n.life.spawn(n.syncLoop)
	}
	for _, p := range n.cfg.Peers {
		host, port, _ := hostport.Split(p) // validated
		n.addPeer(host, port, true, nil)
	}
	if n.cfg.clustered() {
		if err := n.startMembership(); err != nil {
			n.shutdown(packets)
			return err
		}
		n.placeSoon()
	}
	close(n.life.ready)
	<-ctx.Done()
	return n.shutdown(packets)
}

func (n *Node) shutdown(packets <-chan struct{}) error {
	n.log.Info("rmbd shutting down", "addr", n.Addr().String())
	if m := n.mem.Load(); m != nil {
		m.Leave(n.cfg.LeaveTimeout)
		n.handOff() // serving still: the members taking placed filters over pull them from here
	}
	n.life.cancel() // readers finish the datagram in hand; lookups, pulls and rejoins stop
	n.tr.Listener().Close()
	if n.resp != nil {
		n.resp.Close()
	}
	n.conns.Drain() // handlers finish the frame in hand, flush, close
	n.placing.fwd.Close()
	n.life.mu.Lock()
	n.life.off = true
	n.life.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.life.wg.Wait()
		<-packets
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(n.cfg.ShutdownTimeout):
		n.log.Warn("shutdown timed out; closing connections")
		n.meters.c.Inc(counter.ForcedShutdowns)
		n.conns.CloseAll()
		select {
		case <-done:
		case <-time.After(n.cfg.ShutdownTimeout / 4):
			n.log.Error("shutdown left goroutines running")
		}
	}
	return errors.Join(n.reg.Close(), n.tr.Close())
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
