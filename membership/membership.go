// Package membership ties a node to a cluster through
// hashicorp/memberlist. It finds the other members and their data
// addresses, tells the node when members come and go, carries the node's
// anti-entropy state in memberlist's push/pull, re-joins seeds and failed
// members so that partitions heal on their own, swaps state at once
// with a member back from a failure or a restart, and measures how far
// the node's clock is from the cluster's (Clock).
//
// It talks to the node only through Host, a small interface a test can
// fake; the node never sees memberlist.
//
//	m, err := membership.New(cfg, host)
//	if err != nil { ... }
//	m.Start(ctx) // joins cfg.Join, re-joins until ctx ends
//	defer m.Shutdown()
package membership

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/wire"
)

// Host is the node as membership sees it. Its methods are called from
// memberlist's goroutines and must not block.
type Host interface {
	// Meta is the metadata this node advertises.
	Meta() wire.NodeMeta
	// AppendState appends this node's push/pull state, a wire.LocalState.
	AppendState(dst []byte) []byte
	// MemberUp reports a member that is alive with readable metadata: new,
	// back, or changed.
	MemberUp(m Member)
	// MemberDown reports a member that failed, or left when left is true.
	MemberDown(m Member, left bool)
	// MergeState hands over the state a member sent in a push/pull; join
	// is true for a join's (this node's, or a swap with a member back).
	// s is only valid during the call.
	MergeState(from Member, s wire.LocalState, join bool)
	// NotifyMsg hands over a message a member broadcast (Broadcast). b is
	// only valid during the call; it comes from a member of the cluster
	// (with a key, memberlist checked it), and may be anything else.
	NotifyMsg(b []byte)
}

// Member is a cluster member with readable metadata.
type Member struct {
	Name   string
	Gossip string         // memberlist HOST:PORT
	Data   netip.AddrPort // rmbd data address
	Meta   wire.NodeMeta
}

// Transport carries memberlist's packets and streams:
// memberlist.Transport. Tests and simulators give an in-memory one
// (internal/memnet's Gossip) so that nodes need not see memberlist.
type Transport = memberlist.Transport

// Resolver looks up host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures membership.
type Config struct {
	// Name is this member's unique name.
	Name string
	// Bind is the HOST:PORT memberlist listens on (port 0 picks one).
	Bind string
	// Advertise is the HOST or HOST:PORT others reach this member at, when
	// it is not Bind.
	Advertise string
	// Join lists seeds, HOST:PORT, joined at start and re-joined whenever
	// they are not alive.
	Join []string
	// PushPullInterval is how often members swap state (anti-entropy).
	PushPullInterval time.Duration
	// RejoinInterval is how often seeds and recently failed members that
	// are not alive are joined again.
	RejoinInterval time.Duration
	// Resolver resolves seed names; nil means net.DefaultResolver.
	Resolver Resolver
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
	// Transport replaces memberlist's network transport (tests and
	// simulators use an in-memory one); nil binds Bind.
	Transport Transport
	// Keys, when set, encrypt and authenticate gossip (memberlist's
	// keyring: the first encrypts, all decrypt; 32 bytes each): a node
	// without them can neither join nor read nor forge gossip.
	Keys [][]byte
	// Allowed, when not empty, lists the only addresses members may
	// have: a node in protected mode takes members on loopback alone.
	Allowed []netip.Prefix
	// SwapNew: for swapNewFor after start, state is swapped with every
	// member first seen, not only with those back from a failure or a
	// restart. For a node restarted holding rows the others may lack (the
	// whole cluster restarted): it must meet each member, and a member
	// may learn of it second-hand, never joining it. A node that starts
	// empty is filled by its join.
	SwapNew bool
	// Now is this node's wall clock, which it tells the members (Clock);
	// nil means time.Now. Simulations give skewed clocks.
	Now func() time.Time
}

// swapNewFor is how long after start a member with SwapNew swaps state
// with every member it first sees.
const swapNewFor = time.Minute

// label is the label on every memberlist packet: nodes of another
// program on the same port are refused.
const label = "rmbd"

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("membership: invalid config")

func (c Config) validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: no name", ErrConfig)
	}
	if c.PushPullInterval <= 0 || c.RejoinInterval <= 0 {
		return fmt.Errorf("%w: intervals must be positive", ErrConfig)
	}
	if c.Transport == nil {
		if _, _, err := splitHostPort(c.Bind); err != nil {
			return fmt.Errorf("%w: bind address %q: %w", ErrConfig, c.Bind, err)
		}
	}
	for _, j := range c.Join {
		if _, _, err := splitHostPort(j); err != nil {
			return fmt.Errorf("%w: join address %q: %w", ErrConfig, j, err)
		}
	}
	return nil
}

// Counters are what membership dropped.
type Counters struct {
	// BadMeta counts member updates whose metadata did not decode (another
	// protocol version, or junk); such members are ignored.
	BadMeta uint64
	// BadState counts push/pull states refused (another version, junk, or
	// from a member not known).
	BadState uint64
	// BadClock counts ping acks whose clock did not decode (another
	// version, or junk); such clocks are ignored. An ack without a clock
	// is not counted.
	BadClock uint64
}

// Membership is this node's view of the cluster. See the package doc.
//
// What it knows of members it copies from memberlist's event callbacks,
// which run under memberlist's own lock: the nodes memberlist.Members
// returns are updated in place by memberlist, so reading them elsewhere
// would race.
type Membership struct {
	cfg     Config
	host    Host
	log     *slog.Logger
	ml      *memberlist.Memberlist
	keyring *memberlist.Keyring // nil without keys
	addr    string              // this member's gossip address

	mu      sync.Mutex
	members map[string]*record    // every member seen but this one, by name
	clocks  map[string]*clockRing // alive members' clocks, by name
	// stepBase is this node's clock, wall and monotonic, when its offsets
	// were last looked at (ownStep); mono reads the monotonic clock
	// (time.Now; tests freeze it with Config.Now).
	stepBase struct{ wall, mono time.Time }
	mono     func() time.Time

	started           time.Time // this member's own age
	broadcasts        *memberlist.TransmitLimitedQueue
	swaps             chan string // gossip addresses of members back, to swap state with now
	badMeta, badState atomic.Uint64
	badClock          atomic.Uint64
	leaving           atomic.Bool
	left              sync.Once
}

// record is a member as last reported.
type record struct {
	Member
	readable bool      // Meta decoded
	state    uint8     // wire.MemberAlive, MemberDead or MemberLeft
	since    time.Time // when it took its state
}

// forgetFailedAfter drops a failed member from the list and from rejoins.
const forgetFailedAfter = 30 * time.Minute

// New starts memberlist, not yet joined to anyone.
func New(cfg Config, host Host) (*Membership, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Membership{cfg: cfg, host: host, log: cfg.Logger, members: map[string]*record{}, clocks: map[string]*clockRing{}, mono: time.Now,
		swaps: make(chan string, maxSwapsQueued)}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	} else {
		host, port, _ := splitHostPort(cfg.Bind)
		mc.BindAddr, mc.BindPort, mc.AdvertisePort = cmp.Or(host, "0.0.0.0"), port, port
	}
	if cfg.Advertise != "" {
		if h, p, err := net.SplitHostPort(cfg.Advertise); err == nil {
			mc.AdvertiseAddr = h
			if v, err := strconv.Atoi(p); err == nil {
				mc.AdvertisePort = v
			}
		} else {
			mc.AdvertiseAddr = cfg.Advertise
		}
	}
	if len(cfg.Keys) > 0 {
		ring, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		mc.Keyring, mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = ring, true, true
		m.keyring = ring
	}
	if len(cfg.Allowed) > 0 {
		g := gate{self: cfg.Name, allowed: cfg.Allowed}
		mc.Alive, mc.Merge = g, g
	}
	mc.Label = label
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = 2 * time.Second
	mc.Logger = log.New(slogWriter{m.log}, "", 0)
	mc.Delegate = (*delegate)(m)
	mc.Events = (*events)(m)
	mc.Ping = (*pings)(m)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster membership: %w", err)
	}
	m.ml, m.addr, m.started = ml, ml.LocalNode().Address(), m.now()
	m.broadcasts = &memberlist.TransmitLimitedQueue{NumNodes: ml.NumMembers, RetransmitMult: 6}
	return m, nil
}

// Broadcast sends b to every member, piggybacked on gossip: each member
// hears it from several others within a few gossip intervals. b must fit
// a gossip packet (about a kilobyte).
func (m *Membership) Broadcast(b []byte) {
	m.broadcasts.QueueBroadcast(broadcast(b))
}

// broadcast is a message as memberlist queues it.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// Start joins the seeds (a failure is logged and retried) and re-joins
// seeds and failed members every RejoinInterval until ctx ends. spawn
// runs the rejoin loop on a goroutine its caller waits for.
func (m *Membership) Start(ctx context.Context, spawn func(func()) bool) {
	m.log.Info("cluster membership on", "gossip", m.Addr(), "name", m.cfg.Name, "join", m.cfg.Join)
	if len(m.cfg.Join) > 0 {
		if _, err := m.ml.Join(m.cfg.Join); err != nil {
			m.log.Warn("join failed; retrying in the background", "err", oneLine(err))
		}
	}
	spawn(func() { m.rejoinLoop(ctx) })
}

// Addr returns the gossip address this member is reached at.
func (m *Membership) Addr() string { return m.addr }

// Counters returns what membership has dropped so far.
func (m *Membership) Counters() Counters {
	return Counters{BadMeta: m.badMeta.Load(), BadState: m.badState.Load(), BadClock: m.badClock.Load()}
}

// SetKeys replaces the gossip keys while memberlist runs: the first
// encrypts from now on, all decrypt. Used to rotate a cluster's key.
func (m *Membership) SetKeys(keys [][]byte) error {
	if m.keyring == nil || len(keys) == 0 {
		return errors.New("membership: keys are set at start, and never all removed")
	}
	for _, k := range keys {
		if err := m.keyring.AddKey(k); err != nil {
			return err
		}
	}
	if err := m.keyring.UseKey(keys[0]); err != nil {
		return err
	}
	for _, old := range m.keyring.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, old) }) {
			if err := m.keyring.RemoveKey(old); err != nil {
				return err
			}
		}
	}
	return nil
}

// Leave tells the cluster this member is leaving, so that the others list
// it as left rather than failed, waiting at most timeout (a millisecond at
// least: memberlist would wait forever for a zero), and stops memberlist.
func (m *Membership) Leave(timeout time.Duration) {
	wait := max(timeout/2, time.Millisecond)
	m.left.Do(func() { // memberlist panics on a leave after shutdown
		m.leaving.Store(true)
		if err := m.ml.UpdateNode(wait); err != nil { // metadata flagged: leaving
			m.log.Debug("leave: metadata update", "err", err)
		}
		if err := m.ml.Leave(wait); err != nil {
			m.log.Debug("leave", "err", err)
		}
		m.ml.Shutdown()
	})
}

// meta is the host's metadata, flagged when leaving.
func (m *Membership) meta() wire.NodeMeta {
	meta := m.host.Meta()
	if m.leaving.Load() {
		meta.Flags |= wire.MetaLeaving
	}
	return meta
}

// Members lists every member seen, this one first and the others by
// name, with its state and whether its filter is this node's. Members
// that failed or left stay listed for forgetFailedAfter.
func (m *Membership) Members() []wire.Member {
	own := m.host.Meta()
	now := m.now()
	self := wire.Member{Name: []byte(m.cfg.Name), GossipAddr: []byte(m.addr), State: wire.MemberAlive, FP: own.FP, FPMatch: true,
		Age: seconds(now.Sub(m.started)), LastSync: wire.NeverSynced}
	if host, _, err := net.SplitHostPort(m.addr); err == nil {
		self.DataAddr = []byte(net.JoinHostPort(host, strconv.Itoa(int(own.DataPort))))
	}
	out := []wire.Member{self}
	m.mu.Lock()
	names := slices.Sorted(maps.Keys(m.members))
	for _, name := range names {
		r := m.members[name]
		wm := wire.Member{Name: []byte(name), GossipAddr: []byte(r.Gossip), State: r.state,
			Age: seconds(now.Sub(r.since)), LastSync: wire.NeverSynced}
		if r.readable {
			wm.DataAddr, wm.FP, wm.FPMatch = []byte(r.Data.String()), r.Meta.FP, r.Meta.FP == own.FP
		}
		out = append(out, wm)
	}
	m.mu.Unlock()
	return out[:min(len(out), wire.MaxMembers)]
}

// seconds is d in whole seconds, as a members frame carries it.
func seconds(d time.Duration) uint32 {
	return uint32(min(max(d, 0)/time.Second, 1<<32-1))
}

// splitHostPort splits HOST:PORT with a port 0..65535.
func splitHostPort(hostport string) (string, int, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return host, int(p), nil
}
