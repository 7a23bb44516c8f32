package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/internal/simdisk"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
)

// The cluster: members running the real node on the in-memory network,
// each with a simulated disk and a clock of its own.

// Settings every member runs with: short intervals, so that a history of
// half a minute sees many gossip rounds, anti-entropy swaps, rejoins and
// checkpoints.
const (
	syncInterval        = 200 * time.Millisecond
	antiEntropyInterval = 2 * time.Second
	rejoinInterval      = 2 * time.Second
	checkpointInterval  = 3 * time.Second
	placedCheckpoints   = 10 * time.Second
	maxMemory           = 64 << 20
	maxBufferBytes      = 8 << 20
	maxPeers            = 16
	dataDir             = "/data"
)

// member is one node of the cluster, across its restarts.
type member struct {
	i        int
	addr     netip.AddrPort // data; gossip is the same host, port 7946
	disk     *simdisk.Disk
	fsync    store.FsyncPolicy
	capacity uint64 // the default filter's
	offset   atomic.Int64

	n      *node.Node // nil while down
	cancel context.CancelFunc
	done   chan error
	// exited is closed once the last run returned; leaving is the node
	// while it leaves (Leave): it still ticks until it exits, as its own
	// sync loop would while it hands its filters off.
	exited  chan struct{}
	leaving *node.Node
	// crashes are the moments it died, for the checks of what an
	// unsynced crash may lose.
	crashes []time.Duration
	paused  bool
	logs    *logRing
	// dying is set from the moment a power cut is planned on its disk
	// until the member is killed, by then (deadline) at the latest.
	dying    bool
	deadline time.Duration
	tear     bool
	// left: it stopped gracefully (Leave) and never comes back.
	left bool
	// restartDue: a restart waits for the last run to wind down
	// (cluster.restart).
	restartDue bool
}

func (m *member) gossip() netip.AddrPort { return netip.AddrPortFrom(m.addr.Addr(), 7946) }

// up reports whether the member runs and answers.
func (m *member) up() bool { return m.n != nil && !m.paused }

func (m *member) now() time.Time { return time.Now().Add(time.Duration(m.offset.Load())) }

// memberAddr is the i'th member's data address.
func memberAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(1 + i)}), 8000)
}

// links is what cuts the network: partitions, members down or deaf. The
// network asks it for every datagram, stream and gossip packet, from
// any goroutine.
type links struct {
	mu    sync.Mutex
	side  map[netip.Addr]int  // Halves: 1 or 2; absent: reaches everyone
	down  map[netip.Addr]bool // crashed or paused: cut from everyone, clients too
	alone map[netip.Addr]bool // isolated: cut from the other members
	boot  map[netip.Addr]bool // restarting: cut from the other members until checked
	deaf  map[netip.Addr]bool // hears no other member
}

// members is where members live; clients are elsewhere, and partitions
// between members leave them reaching every member.
var members = netip.MustParsePrefix("10.0.1.0/24")

func (l *links) cut(from, to netip.AddrPort) bool {
	a, b := from.Addr().Unmap(), to.Addr().Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down[a] || l.down[b] {
		return true
	}
	if a == b || !members.Contains(a) || !members.Contains(b) {
		return false
	}
	if l.alone[a] || l.alone[b] || l.boot[a] || l.boot[b] || l.deaf[b] {
		return true
	}
	sa, sb := l.side[a], l.side[b]
	return sa != 0 && sb != 0 && sa != sb
}

func (l *links) set(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

// cluster runs the members of one history.
type cluster struct {
	plan    Plan
	nw      *memnet.Network
	links   *links
	members []*member
	keys    []auth.Key // what a member (re)started now is given
	start   time.Time
	// failures the cluster itself saw: a member that would not start.
	failures []string
	// corrupt is told when a member that is to be corrupted stops, and
	// again as the bit flips; flipped which of its files it flipped in.
	corrupt func(*member)
	flipped func(m *member, path string)
	// restarted is told of a member restarted after a crash, before it
	// can reach any other member: what it holds is its disk's alone.
	restarted func(*member)
	// active are the partitions and lossy spells in force, by index.
	active map[int]Fault
	// refused counts starts refused on a corrupted disk.
	refused int
	// streams are the members' open streams, cut with their links.
	streams *streams
	// stopping is told of a member about to stop (killed, leaving, or at
	// the end), while its node still answers: its counters are read.
	// departing is told of a member about to leave, before stopping.
	stopping, departing func(*member)
}

func newCluster(p Plan) *cluster {
	c := &cluster{plan: p, nw: memnet.New(p.Seed),
		links: &links{side: map[netip.Addr]int{}, down: map[netip.Addr]bool{}, alone: map[netip.Addr]bool{}, boot: map[netip.Addr]bool{},
			deaf: map[netip.Addr]bool{}},
		start: time.Now(), active: map[int]Fault{}, streams: newStreams()}
	c.nw.Cut(c.links.cut)
	if p.Keyed {
		c.keys = []auth.Key{keyFrom(p.Seed, 0)}
	}
	for i := range p.Nodes {
		c.add(p.Fsync[i], DefaultCapacity)
	}
	return c
}

// keyFrom derives cluster key i of a history from its seed, so that a
// replay seals with the same keys.
func keyFrom(seed uint64, i int) auth.Key {
	var k auth.Key
	for j := range k {
		k[j] = byte(seed>>(8*(j%8))) ^ byte(i*31+j*7+1)
	}
	return k
}

// add makes a member (not yet started).
func (c *cluster) add(fsync store.FsyncPolicy, capacity uint64) *member {
	i := len(c.members)
	m := &member{i: i, addr: memberAddr(i), disk: simdisk.New(c.plan.Seed*1000 + uint64(i)), fsync: fsync,
		capacity: capacity, logs: newLogRing(64)}
	// Clocks start up to a second either side of true time; in a
	// windowed history, up to WindowSkew.
	spread := time.Second
	if c.plan.Window != nil {
		spread = WindowSkew
	}
	ms := uint64(2*spread/time.Millisecond) + 1
	m.offset.Store(int64(time.Duration((c.plan.Seed*7919+uint64(i)*104729)%ms)*time.Millisecond - spread))
	c.members = append(c.members, m)
	return m
}

// cutOff reports whether m is cut off from the others now: isolated,
// deaf, on a side of a partition, or restarting.
func (c *cluster) cutOff(m *member) bool {
	a := m.addr.Addr()
	c.links.mu.Lock()
	defer c.links.mu.Unlock()
	return c.links.alone[a] || c.links.deaf[a] || c.links.side[a] != 0 || c.links.boot[a]
}

// elapsed is the time since the history began.
func (c *cluster) elapsed() time.Duration { return time.Since(c.start) }

// boot starts m: a fresh node on its disk, joining every other member.
func (c *cluster) boot(m *member, repair bool) error {
	cfg := node.DefaultConfig()
	cfg.Name = fmt.Sprintf("n%d", m.i)
	cfg.Capacity, cfg.FPRate = m.capacity, FPRate
	cfg.SyncInterval, cfg.AntiEntropyInterval, cfg.RejoinInterval = syncInterval, antiEntropyInterval, rejoinInterval
	cfg.CheckpointInterval, cfg.Fsync, cfg.DataDir, cfg.FS, cfg.Repair = checkpointInterval, m.fsync, dataDir, m.disk.FS(), repair
	cfg.MaxMemory, cfg.MaxBufferBytes, cfg.MaxPeers = maxMemory, maxBufferBytes, maxPeers
	cfg.ProtectedMode, cfg.AutoCreate, cfg.ManualTicks = false, false, true
	cfg.ClusterKeys = c.keys
	if c.plan.TombstoneTTL > 0 {
		cfg.TombstoneTTL = c.plan.TombstoneTTL
	}
	if pl := c.plan.Placement; pl != nil {
		// Up to 20 filters a member, each its own store: checkpoints less
		// often (each allocates its writer's buffer, 1 MiB).
		cfg.WriteQuorum, cfg.HandoffGrace, cfg.CheckpointInterval = pl.Quorum, pl.Grace, placedCheckpoints
	}
	cfg.Now = m.now
	cfg.Resolver = noDNS{}
	cfg.Logger = slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ep, err := c.nw.Endpoint(m.addr)
	if err != nil {
		return err
	}
	g, err := c.nw.Gossip(m.gossip())
	if err != nil {
		ep.Close()
		return err
	}
	cfg.Transport, cfg.GossipTransport, cfg.GossipListen = transport{ep, c.streams}, g, m.gossip().String()
	for _, o := range c.members {
		if o != m {
			cfg.Join = append(cfg.Join, o.gossip().String())
		}
	}
	n, err := node.New(cfg)
	if err != nil {
		ep.Close()
		g.Shutdown()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, exited := make(chan error, 1), make(chan struct{})
	go func() {
		err := n.Run(ctx)
		close(exited)
		done <- err
	}()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		return err
	}
	m.n, m.cancel, m.done, m.exited = n, cancel, done, exited
	return nil
}

// kill stops m as kill -9 would: cut off at once, its disk crashed
// (what was not fsynced is lost, the last write maybe torn). Its
// goroutines wind down in the background, writing nothing (the disk is
// gone) and reaching no one; a restart waits for them.
func (c *cluster) kill(m *member, tear bool) {
	if m.n == nil {
		return
	}
	c.stop1(m)
	m.crashes = append(m.crashes, c.elapsed())
	c.links.set(func() { c.links.down[m.addr.Addr()] = true })
	if !m.disk.Crashed() {
		m.disk.Crash(tear)
	}
	m.dying = false
	m.cancel()
	m.n, m.paused = nil, false
}

// cutPower plans a power cut on m's disk after its next after calls, and
// kills m once it strikes (or within two seconds, if m makes no call).
func (c *cluster) cutPower(m *member, after int, tear bool) {
	if m.n == nil {
		return
	}
	m.disk.CrashAfter(after, tear)
	m.dying, m.deadline, m.tear = true, c.elapsed()+2*time.Second, tear
}

// killDying kills the members whose power cut struck, or is due, and
// restarts those whose last run wound down since their restart was due.
func (c *cluster) killDying() {
	for _, m := range c.members {
		if m.dying && (m.disk.Crashed() || c.elapsed() >= m.deadline) {
			c.kill(m, m.tear)
		}
		if m.restartDue && m.wound() {
			m.restartDue = false
			c.restart(m, false)
		}
	}
}

// wound reports whether m's last run returned.
func (m *member) wound() bool {
	if m.exited == nil {
		return true
	}
	select {
	case <-m.exited:
		return true
	default:
		return false
	}
}

// reap waits for m's last run to have wound down: its addresses free.
func (m *member) reap() {
	if m.done != nil {
		<-m.done // an error, often: the disk is gone
		m.done = nil
	}
}

// restart boots m again, lets the checks see what its disk kept, then
// lets it reach the other members. In a placement history a killed
// member's last run may take a while to wind down — its context ended,
// it hands its placed filters off, cut off from everyone, until
// route.LeftFor — and the history goes on meanwhile: the restart is due
// (killDying does it), and the member stays down until then.
func (c *cluster) restart(m *member, repair bool) {
	if m.n != nil || m.left {
		return
	}
	if c.plan.Placement != nil && !m.wound() {
		m.restartDue = true
		return
	}
	m.reap()
	c.links.set(func() { c.links.boot[m.addr.Addr()] = true })
	defer c.links.set(func() { delete(c.links.boot, m.addr.Addr()) })
	if err := c.boot(m, repair); err != nil {
		c.failures = append(c.failures, fmt.Sprintf("%v: n%d would not start: %v", c.elapsed(), m.i, err))
		return
	}
	if len(m.crashes) > 0 && c.restarted != nil {
		c.restarted(m)
	}
	c.links.set(func() { delete(c.links.down, m.addr.Addr()) })
}

// corruptAndRestart flips a bit of one of m's files while it is down,
// then starts it: a damaged checkpoint must be refused (and is counted),
// then taken with --repair, which keeps every row that verifies.
func (c *cluster) corruptAndRestart(m *member, file string, offset int64) {
	if m.n != nil {
		return
	}
	m.reap()
	c.corrupt(m) // again: another fault may have restarted it since it stopped
	p, ok := file, true
	if offset > 0 {
		ok = m.disk.CorruptFile(file, offset) == nil
	} else {
		p, _, ok = m.disk.Corrupt(func(p string) bool { return file == "" || path.Base(p) == file })
	}
	if !ok && file != "" {
		c.failures = append(c.failures, fmt.Sprintf("n%d has no file %s to corrupt", m.i, file))
	}
	c.flipped(m, p)
	if err := c.boot(m, false); err != nil {
		c.refused++
		if err := c.boot(m, true); err != nil {
			c.failures = append(c.failures, fmt.Sprintf("%v: n%d would not start with --repair: %v", c.elapsed(), m.i, err))
			return
		}
	}
	c.links.set(func() { delete(c.links.down, m.addr.Addr()) })
}

// stop shuts every member down cleanly, at the end of a history.
func (c *cluster) stop() {
	for _, m := range c.members {
		if m.n != nil {
			c.stop1(m)
			m.cancel()
			m.n = nil
		}
		m.reap()
	}
}

// stop1 tells the cluster's watcher that m is about to stop.
func (c *cluster) stop1(m *member) {
	if c.stopping != nil && m.n != nil {
		c.stopping(m)
	}
}

// leave stops m as an operator does: gracefully (it tells the members it
// leaves, and finishes the requests in hand), for good. Its shutdown runs
// on in the background, on the network, while the history goes on.
func (c *cluster) leave(m *member) {
	if m.n == nil || m.paused || m.dying {
		return
	}
	if c.departing != nil {
		c.departing(m)
	}
	c.stop1(m)
	m.cancel()
	m.n, m.leaving, m.left = nil, m.n, true
}

// ticking returns the node to tick: m's when it is up, or while it
// leaves; nil otherwise.
func (m *member) ticking() *node.Node {
	if m.up() {
		return m.n
	}
	if m.leaving != nil && m.wound() {
		m.leaving = nil
	}
	return m.leaving
}

// live returns the members up now.
func (c *cluster) live() []*member {
	var ms []*member
	for _, m := range c.members {
		if m.up() {
			ms = append(ms, m)
		}
	}
	return ms
}

// noDNS answers literal addresses only: the simulator asks no DNS.
type noDNS struct{}

func (noDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// logRing keeps a member's last log lines, printed when a history fails.
type logRing struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newLogRing(max int) *logRing { return &logRing{max: max} }

func (l *logRing) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == l.max {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logRing) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ""
	for _, line := range l.lines {
		s += line
	}
	return s
}
