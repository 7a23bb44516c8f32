package node

import (
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

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/rmbd/rmbd/internal/sockets"
	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/membership"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Node is one rmbd daemon. Create it with New, serve with Run.
type Node struct {
	cfg  Config
	log  *slog.Logger
	f    *filter.Filter
	tr   Transport
	name []byte
	c    *counters   // shared: TCP, peers, gossip
	udpC []*counters // one shard per datagram reader

	// mu guards g, the gossip state machine, and members. Gossip only
	// decides: the frames it decides go out after mu is let go.
	mu       sync.Mutex
	g        *gossip.Gossip
	members  map[string]memberRec // cluster members by name
	tickOut  gossip.Outbox        // owned by whoever calls tick
	tickSeal []byte               // scratch to seal tickOut's frames in

	// ctx ends when shutdown begins: every background task (lookups,
	// pulls, membership) stops with it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  chan struct{} // closed once serving
	ran    atomic.Bool

	// spawnMu orders goroutines started from callbacks (membership,
	// lookups) with shutdown: none starts once wg is being waited for.
	spawnMu  sync.Mutex
	spawnOff bool

	resolving chan struct{}  // bounds concurrent host lookups for peer frames
	lookups   sync.WaitGroup // host lookups in flight (tests wait for them)
	repairing chan struct{}  // one anti-entropy pull at a time
	// repairingNamed: one round of the named filters' pulls at a time.
	repairingNamed chan struct{}

	connMu   sync.Mutex
	conns    map[net.Conn]*conn // open TCP connections (conns.go)
	bySource map[netip.Addr]int // how many each source address holds
	bufs     *bufpool.Pool      // stream buffers, under --max-buffer-bytes
	shed     []*shedder         // per datagram reader: who floods it (shed.go)

	mem atomic.Pointer[membership.Membership] // nil without membership; set by Run
	// fstats is the filter's statistics, refreshed in the background
	// (filterstats.go): a stats request never reads the filter.
	fstats atomic.Pointer[filterStats]
	// alarmBits and alarm are the capacity alarms (health.go).
	alarmBits atomic.Uint32
	alarm     alarmState
	// joinPulled: the first pull from the cluster is done (readiness).
	joinPulled atomic.Bool
	lat        [numLatencies]histogram // latency.go
	st         *store.Store            // nil without a data directory
	dir        *store.Dir              // the data directory; nil without
	named      *named                  // the named filters (named.go)
	namedTurn  uint64                  // the named filter the next tick starts with (tickNamed)

	// With a cluster key: what seals the frames the node sends and opens
	// the ones it gets (nil without).
	sealer *auth.Sealer
	opener *auth.Opener
	// Under mu: challenges sent to peers not yet verified, and the
	// addresses of members (admin requests from them are allowed when
	// there is no key to prove membership).
	challenges map[netip.AddrPort]*challenge
	memberIPs  map[netip.Addr]int
	pulling    chan struct{} // bounds the pulls served at once

	// The RESP listener (resp.go), nil without; respIDs numbers its
	// connections; started is when Run began (INFO's uptime).
	respLn  net.Listener
	respIDs atomic.Int64
	started time.Time

	// manualTicks leaves ticking to the caller (tests tick by hand), and
	// after is how the node waits before trying again (tests need not).
	manualTicks bool
	after       func(time.Duration) <-chan time.Time
}

// New validates cfg, builds the filter and binds the sockets (unless
// cfg.Transport is given). The node serves nothing until Run.
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
	gcfg.MaxPeers = cfg.MaxPeers
	if len(cfg.ClusterKeys) > 0 {
		gcfg.MaxFrame -= wire.SealedOverhead // sealed, a frame still fits a datagram
	}
	gcfg.Seed = xxh3.HashString(cfg.Listen + cfg.Name)
	g, err := gossip.New(gcfg, f)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, st, err := openStore(cfg, f, log)
	if err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		if tr, err = sockets.Listen(context.Background(), cfg.Listen, cfg.UDPSockets); err != nil {
			if st != nil {
				st.Close()
				dir.Close()
			}
			return nil, err
		}
	}
	respLn, err := listenRESP(cfg)
	if err != nil {
		tr.Close()
		if st != nil {
			st.Close()
			dir.Close()
		}
		return nil, fmt.Errorf("RESP listener: %w", err)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	name := cfg.Name
	if name == "" {
		name = defaultName(cfg.Listen, tr.Addr())
	}
	udpC := make([]*counters, tr.Readers())
	for i := range udpC {
		udpC[i] = new(counters)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var sealer *auth.Sealer
	var opener *auth.Opener
	if len(cfg.ClusterKeys) > 0 {
		ring, _ := auth.NewKeyring(cfg.ClusterKeys) // validated
		sealer, opener = auth.NewSealer(ring), auth.NewOpener(ring)
	}
	n := &Node{
		sealer: sealer, opener: opener, dir: dir, named: newNamed(cfg.TombstoneTTL),
		challenges: map[netip.AddrPort]*challenge{}, memberIPs: map[netip.Addr]int{},
		pulling: make(chan struct{}, maxPullsServed),
		cfg:     cfg, log: log, f: f, tr: tr, st: st, name: []byte(name), g: g, c: new(counters), udpC: udpC,
		members: map[string]memberRec{},
		ctx:     ctx, cancel: cancel, ready: make(chan struct{}),
		resolving:      make(chan struct{}, 8),
		repairing:      make(chan struct{}, 1),
		repairingNamed: make(chan struct{}, 1),
		conns:          map[net.Conn]*conn{},
		bySource:       map[netip.Addr]int{},
		shed:           newShedders(tr.Readers()),
		bufs:           bufpool.New(cfg.MaxBufferBytes, cfg.MaxBufferBytes/16),
		after:          time.After,
		respLn:         respLn,
	}
	if err := n.loadNamed(); err != nil {
		n.closeStores()
		tr.Close()
		if respLn != nil {
			respLn.Close()
		}
		return nil, err
	}
	return n, nil
}

// Addr returns the address datagrams and streams are served on.
func (n *Node) Addr() netip.AddrPort { return n.tr.Addr() }

// Name returns the node's name.
func (n *Node) Name() string { return string(n.name) }

// Filter returns the node's filter.
func (n *Node) Filter() *filter.Filter { return n.f }

// Ready is closed once the node serves.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Run serves until ctx is cancelled, then shuts down: it stops accepting,
// lets in-flight requests finish and flush (bounded by ShutdownTimeout),
// leaves the cluster and closes every socket. It returns nil after a
// clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	if n.ran.Swap(true) {
		return errors.New("node: Run called twice")
	}
	fp := n.f.Fingerprint()
	n.log.Info("rmbd listening", "addr", n.Addr().String(), "profile", string(n.cfg.Profile),
		"filter", fp.String(), "filter_bytes", n.f.SizeBytes(), "udp_sockets", n.tr.Readers(),
		"sync_interval", n.cfg.SyncInterval.String(), "version", version.String())
	if !n.keyed() {
		n.log.Warn("cluster traffic is unauthenticated: anyone who can reach this node's port can write rows " +
			"into its filter, and anyone who can reach its gossip port can join; give every node " +
			"--cluster-key-file (rmbd keygen makes a key)")
	}
	if n.st != nil {
		n.st.Start()
		n.named.mu.RLock()
		for _, vs := range n.named.byName {
			for _, nf := range vs {
				nf.st.Start()
			}
		}
		n.named.mu.RUnlock()
	}
	n.started = time.Now()
	packets := n.tr.ServePackets(n.ctx, n.newPacketHandler())
	n.wg.Add(1)
	go n.acceptLoop(n.tr.Listener(), TCPConns, n.serveConn)
	if n.respLn != nil {
		n.wg.Add(1)
		go n.acceptLoop(n.respLn, RESPConns, n.serveRESP)
		n.log.Info("RESP listening", "addr", n.respLn.Addr().String(), "auth", len(n.cfg.RESPPasswords) > 0)
	}
	n.spawn(n.filterStatsLoop)
	n.spawn(n.housekeep)
	if !n.manualTicks {
		n.wg.Add(1)
		go n.syncLoop()
	}
	for _, p := range n.cfg.Peers {
		host, port, _ := splitPeer(p) // validated
		n.addPeer(host, port, true, nil)
	}
	if n.cfg.clustered() {
		if err := n.startMembership(); err != nil {
			n.shutdown(packets)
			return err
		}
	}
	close(n.ready)
	<-ctx.Done()
	return n.shutdown(packets)
}

func (n *Node) shutdown(packets <-chan struct{}) error {
	n.log.Info("rmbd shutting down", "addr", n.Addr().String())
	n.cancel() // readers finish the datagram in hand; lookups, pulls and rejoins stop
	if m := n.mem.Load(); m != nil {
		m.Leave(n.cfg.LeaveTimeout)
	}
	n.tr.Listener().Close()
	if n.respLn != nil {
		n.respLn.Close()
	}
	now := time.Now()
	n.connMu.Lock()
	for c := range n.conns {
		c.SetReadDeadline(now) // handlers finish the frame in hand, flush, close
	}
	n.connMu.Unlock()

	n.spawnMu.Lock()
	n.spawnOff = true
	n.spawnMu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		<-packets
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(n.cfg.ShutdownTimeout):
		n.log.Warn("shutdown timed out; closing connections")
		n.c.inc(ForcedShutdowns)
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
	return errors.Join(n.closeStores(), n.tr.Close())
}

// closeStores writes a last checkpoint of every filter (nothing adds any
// more) and lets go of the data directory.
func (n *Node) closeStores() error {
	if n.dir == nil {
		return nil
	}
	var errs []error
	if err := n.st.Close(); err != nil {
		n.log.Error("the last checkpoint failed; the log still holds every add", "err", err)
		errs = append(errs, err)
	}
	n.named.mu.Lock()
	for name, vs := range n.named.byName {
		for _, nf := range vs {
			if err := n.closeNamed(nf, false); err != nil {
				n.log.Error("the last checkpoint failed; the log still holds every add", "filter", name, "err", err)
				errs = append(errs, err)
			}
		}
	}
	n.named.mu.Unlock()
	return errors.Join(append(errs, n.dir.Close())...)
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
// filter. The filter's figures (bits set, estimated keys and
// false-positive rate) are as of the last background refresh, at most a
// second or so old: Stats costs the same whatever the filter's size.
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
	s.PeersEvicted = gc.Evicted
	named := n.named.all()
	n.mu.Lock()
	for _, nf := range named { // the named filters' rounds count with the default's
		c := nf.g.Counters()
		s.SyncSent, s.SyncBytesSent, s.SyncRowsSent = s.SyncSent+c.Frames, s.SyncBytesSent+c.Bytes, s.SyncRowsSent+c.Rows
		s.Resent, s.Acks, s.StrayAcks = s.Resent+c.Resent, s.Acks+c.Acks, s.StrayAcks+c.StrayAcks
	}
	n.mu.Unlock()
	if m := n.mem.Load(); m != nil {
		mc := m.Counters()
		s.Counts[MemberBadMeta] += mc.BadMeta
		s.Counts[MemberBadState] += mc.BadState
	}
	n.connMu.Lock()
	s.OpenConns = len(n.conns)
	s.Buffers = n.bufs.Stats()
	for _, sh := range n.shed {
		s.UDPBlockedNow += sh.blockedCount()
	}
	for i := range n.tr.Readers() {
		s.UDPQueueDrops += n.tr.Queue(i).Drops
	}
	n.connMu.Unlock()
	if n.st != nil {
		s.Store = n.st.Stats()
	}
	s.Authenticated = n.keyed()
	fs := n.cachedFilterStats()
	s.FilterBytes, s.SetBits, s.TotalBits = n.f.SizeBytes(), fs.SetBits, fs.TotalBits
	s.EstimatedKeys, s.EstimatedFPRate = fs.EstimatedKeys, fs.EstimatedFPRate
	if n.cfg.Profile != ProfileClassic {
		s.Capacity, s.TargetFPRate = n.cfg.Capacity, n.cfg.FPRate
	}
	s.Alarms, s.Health, s.SyncInterval = n.alarms(), n.Health(), n.cfg.SyncInterval
	for i := range s.Latency {
		s.Latency[i] = n.lat[i].snapshot()
	}
	s.Named = n.named.stats()
	return s
}

// AddPeer makes addr a static push target, as --peer does: it is
// challenged each tick until it answers, and gets rows from then on.
func (n *Node) AddPeer(addr netip.AddrPort) { n.addPeerAddr(addr, true) }

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
