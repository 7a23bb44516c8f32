package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// cluster ties the node to hashicorp/memberlist: members with the same
// filter fingerprint become push targets, failed ones stop being targets,
// digests of rows ride memberlist's push/pull for anti-entropy, and a loop
// re-joins seeds and recently failed members so that partitions heal.
type cluster struct {
	n  *Node
	ml *memberlist.Memberlist

	mu       sync.Mutex
	mismatch map[string]bool      // members already logged for another fingerprint
	failed   map[string]failedRec // by member name
	members  map[string]memberRec // last known, by name

	repairing chan struct{} // one anti-entropy pull at a time
}

type failedRec struct {
	addr string // gossip address
	at   time.Time
	left bool // left on purpose, rather than failed
}

type memberRec struct {
	gossip string
	data   netip.AddrPort
	fp     filter.Fingerprint
	match  bool
}

// metaSize is a member's metadata: protocol version, fingerprint, data port.
const metaSize = 1 + filter.FingerprintSize + 2

// forgetFailedAfter drops a failed member from the rejoin list.
const forgetFailedAfter = 30 * time.Minute

func (n *Node) startCluster() error {
	cfg := n.cfg
	host, port, _ := net.SplitHostPort(cfg.gossipListen())
	p, _ := strconv.Atoi(port)
	mc := memberlist.DefaultLANConfig()
	mc.Name = string(n.name)
	mc.BindAddr, mc.BindPort = host, p
	if host == "" {
		mc.BindAddr = "0.0.0.0"
	}
	mc.AdvertisePort = p
	if cfg.Advertise != "" {
		ah, ap, err := net.SplitHostPort(cfg.Advertise)
		if err != nil {
			ah = cfg.Advertise
		} else if v, err := strconv.Atoi(ap); err == nil {
			mc.AdvertisePort = v
		}
		mc.AdvertiseAddr = ah
	}
	mc.PushPullInterval = cfg.AntiEntropyInterval
	mc.TCPTimeout = 2 * time.Second
	mc.Logger = log.New(slogWriter{n.log}, "", 0)
	c := &cluster{n: n, mismatch: map[string]bool{}, failed: map[string]failedRec{},
		members: map[string]memberRec{}, repairing: make(chan struct{}, 1)}
	mc.Delegate = c
	mc.Events = c
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	c.ml = ml
	n.cluster.Store(c)
	if p == 0 { // tests: the port memberlist picked
		c.n.log.Debug("gossip bound", "addr", ml.LocalNode().Address())
	}
	n.log.Info("cluster membership on", "gossip", ml.LocalNode().Address(), "name", mc.Name, "join", cfg.Join)
	if len(cfg.Join) > 0 {
		if _, err := ml.Join(cfg.Join); err != nil {
			n.log.Warn("join failed; retrying in the background", "err", err)
		}
	}
	n.wg.Add(1)
	go c.rejoinLoop()
	return nil
}

// GossipAddr returns the address memberlist listens on, or "" without
// cluster membership.
func (n *Node) GossipAddr() string {
	c := n.cluster.Load()
	if c == nil {
		return ""
	}
	return c.ml.LocalNode().Address()
}

func (c *cluster) stop() {
	c.ml.Leave(200 * time.Millisecond)
	c.ml.Shutdown()
}

// NodeMeta implements memberlist.Delegate.
func (c *cluster) NodeMeta(limit int) []byte {
	b := []byte{wire.ProtocolVersion}
	b, _ = c.n.f.Fingerprint().AppendBinary(b)
	return binary.BigEndian.AppendUint16(b, c.n.l.Addr.Port())
}

// NotifyMsg implements memberlist.Delegate; rmbd sends no user messages.
func (c *cluster) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (c *cluster) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate: this node's name and the
// digests of its rows.
func (c *cluster) LocalState(bool) []byte {
	b := append([]byte{byte(len(c.n.name))}, c.n.name...)
	return gossip.AppendDigests(b, c.n.f)
}

// MergeRemoteState implements memberlist.Delegate: pull the rows whose
// digests differ from the remote member, in the background. On join this
// is the bulk transfer that fills a new node.
func (c *cluster) MergeRemoteState(buf []byte, join bool) {
	if len(buf) < 1 || len(buf) < 1+int(buf[0]) {
		return
	}
	name := string(buf[1 : 1+int(buf[0])])
	digests := append([]byte(nil), buf[1+int(buf[0]):]...)
	select {
	case c.repairing <- struct{}{}:
	default:
		return // a repair is running; the next push/pull comes soon
	}
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		defer func() { <-c.repairing }()
		c.repair(name, digests, join)
	}()
}

func (c *cluster) repair(name string, digests []byte, join bool) {
	c.mu.Lock()
	m, ok := c.members[name]
	c.mu.Unlock()
	if !ok || !m.match {
		return
	}
	runs, err := gossip.Differing(c.n.f, digests)
	if err != nil {
		c.n.log.Debug("anti-entropy: digests refused", "member", name, "err", err)
		return
	}
	if len(runs) == 0 {
		return
	}
	began := time.Now()
	empty := c.n.f.LastChanged() == 0 && c.n.f.Generation() <= 1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		select {
		case <-c.n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	rows, changed, err := c.n.pull(ctx, m.data, runs)
	if join && empty && err == nil {
		// A new node filled from the cluster: the members have these rows.
		c.n.mu.Lock()
		c.n.g.AssumeMembersHave(c.n.f.Advance())
		c.n.mu.Unlock()
	}
	c.n.c.inc(AntiEntropyPulls)
	c.n.c.add(AntiEntropyRows, uint64(changed))
	lvl := slog.LevelDebug
	if join || changed > 0 {
		lvl = slog.LevelInfo
	}
	c.n.log.Log(context.Background(), lvl, "anti-entropy pull", "member", name, "join", join,
		"rows", rows, "changed", changed, "took", time.Since(began).Round(time.Millisecond), "err", err)
}

// NotifyJoin implements memberlist.EventDelegate.
func (c *cluster) NotifyJoin(m *memberlist.Node) { c.update(m) }

// NotifyUpdate implements memberlist.EventDelegate.
func (c *cluster) NotifyUpdate(m *memberlist.Node) { c.update(m) }

// NotifyLeave implements memberlist.EventDelegate: a failed or departed
// member stops being a push target and goes on the rejoin list.
func (c *cluster) NotifyLeave(m *memberlist.Node) {
	if m.Name == string(c.n.name) {
		return
	}
	c.mu.Lock()
	rec, ok := c.members[m.Name]
	c.failed[m.Name] = failedRec{addr: m.Address(), at: time.Now(), left: m.State == memberlist.StateLeft}
	c.mu.Unlock()
	if ok && rec.match {
		c.n.mu.Lock()
		c.n.g.RemoveMember(rec.data)
		c.n.mu.Unlock()
	}
	c.n.log.Info("member failed or left", "member", m.Name, "gossip", m.Address())
}

func (c *cluster) update(m *memberlist.Node) {
	if m.Name == string(c.n.name) {
		return
	}
	rec, err := parseMeta(m)
	if err != nil {
		c.n.log.Warn("member with unreadable metadata ignored", "member", m.Name, "err", err)
		return
	}
	rec.match = rec.fp == c.n.f.Fingerprint()
	c.mu.Lock()
	old, known := c.members[m.Name]
	c.members[m.Name] = rec
	delete(c.failed, m.Name)
	logMismatch := !rec.match && !c.mismatch[m.Name]
	if logMismatch {
		c.mismatch[m.Name] = true
	}
	c.mu.Unlock()
	if !rec.match {
		if logMismatch {
			c.n.c.inc(MemberMismatch)
			c.n.log.Warn("member has another filter; never syncing with it", "member", m.Name,
				"theirs", rec.fp.String(), "ours", c.n.f.Fingerprint().String())
		}
		return
	}
	c.n.mu.Lock()
	if known && old.data != rec.data {
		c.n.g.RemoveMember(old.data)
	}
	added := c.n.g.AddMember(rec.data)
	c.n.mu.Unlock()
	if added {
		c.n.log.Info("member is a push target", "member", m.Name, "data", rec.data.String(), "gossip", m.Address())
	}
}

func parseMeta(m *memberlist.Node) (memberRec, error) {
	if len(m.Meta) < metaSize {
		return memberRec{}, fmt.Errorf("%d bytes of metadata", len(m.Meta))
	}
	fp, err := filter.DecodeFingerprint(m.Meta[1:])
	if err != nil {
		return memberRec{}, err
	}
	ip, ok := netip.AddrFromSlice(m.Addr)
	if !ok {
		return memberRec{}, fmt.Errorf("address %v", m.Addr)
	}
	port := binary.BigEndian.Uint16(m.Meta[1+filter.FingerprintSize:])
	return memberRec{gossip: m.Address(), data: netip.AddrPortFrom(ip.Unmap(), port), fp: fp}, nil
}

// rejoinLoop periodically joins the seeds and recently failed members that
// are not alive in the member list: after a partition outlasts the
// failure detector, each side has declared the other dead, and only a new
// join brings them back together.
func (c *cluster) rejoinLoop() {
	defer c.n.wg.Done()
	t := time.NewTicker(c.n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-c.n.stop:
			return
		case <-t.C:
		}
		alive := map[string]bool{}
		for _, m := range c.ml.Members() {
			alive[m.Address()] = true
			alive[m.Name] = true
		}
		var targets []string
		for _, s := range c.n.cfg.Join {
			if !c.seedAlive(s, alive) {
				targets = append(targets, s)
			}
		}
		c.mu.Lock()
		for name, f := range c.failed {
			if time.Since(f.at) > forgetFailedAfter {
				delete(c.failed, name)
			} else if !alive[name] {
				targets = append(targets, f.addr)
			}
		}
		c.mu.Unlock()
		if len(targets) == 0 {
			continue
		}
		if n, err := c.ml.Join(targets); n > 0 {
			c.n.log.Info("rejoined", "contacted", n, "of", targets)
		} else {
			c.n.log.Debug("rejoin found nobody", "targets", targets, "err", err)
		}
	}
}

// seedAlive reports whether seed (HOST:PORT, HOST maybe a name) is this
// node or an alive member. A seed that does not resolve counts as absent.
func (c *cluster) seedAlive(seed string, alive map[string]bool) bool {
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return true // validated at start; never retried
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	self := c.ml.LocalNode().Address()
	for _, ip := range ips {
		a := net.JoinHostPort(ip, port)
		if alive[a] || a == self {
			return true
		}
	}
	return false
}

// membersList is what the members frame reports: every member seen, with
// its state and whether its filter matches.
func (c *cluster) membersList() []wire.Member {
	var out []wire.Member
	for _, m := range c.ml.Members() {
		wm := wire.Member{Name: []byte(m.Name), GossipAddr: []byte(m.Address()), State: wire.MemberAlive}
		if m.State == memberlist.StateSuspect {
			wm.State = wire.MemberSuspect
		}
		if m.Name == string(c.n.name) {
			wm.DataAddr, wm.FP, wm.FPMatch = []byte(c.n.l.Addr.String()), c.n.f.Fingerprint(), true
		} else if rec, err := parseMeta(m); err == nil {
			wm.DataAddr, wm.FP, wm.FPMatch = []byte(rec.data.String()), rec.fp, rec.fp == c.n.f.Fingerprint()
		}
		out = append(out, wm)
	}
	c.mu.Lock()
	for name, f := range c.failed {
		wm := wire.Member{Name: []byte(name), GossipAddr: []byte(f.addr), State: wire.MemberDead}
		if f.left {
			wm.State = wire.MemberLeft
		}
		if rec, ok := c.members[name]; ok {
			wm.DataAddr, wm.FP, wm.FPMatch = []byte(rec.data.String()), rec.fp, rec.match
		}
		out = append(out, wm)
	}
	c.mu.Unlock()
	return out[:min(len(out), wire.MaxMembers)]
}

// slogWriter sends memberlist's log lines to the node's logger at debug
// level (memberlist is chatty; warnings and errors stay visible).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	lvl := slog.LevelDebug
	switch {
	case len(msg) > 7 && msg[:7] == "[ERR] m":
		lvl = slog.LevelWarn
	case len(msg) > 8 && msg[:8] == "[WARN] m":
		lvl = slog.LevelDebug
	}
	w.l.Log(context.Background(), lvl, "memberlist: "+trimNL(msg))
	return len(p), nil
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
