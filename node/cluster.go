package node

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/filter"
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
	n.spawn(c.rejoinLoop)
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

// rejoinLoop periodically joins the seeds and recently failed members that
// are not alive in the member list: after a partition outlasts the
// failure detector, each side has declared the other dead, and only a new
// join brings them back together.
func (c *cluster) rejoinLoop() {
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
