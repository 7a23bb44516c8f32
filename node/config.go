package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/hostport"
	"github.com/rmbd/rmbd/internal/sysmem"
	"github.com/rmbd/rmbd/membership"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
)

// minBufferBytes is the least buffer budget: a frame of the largest size
// grows into its memory while it still holds the half it had.
const minBufferBytes = 4 << 20

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("node: invalid config")

// Profile selects a compatibility mode.
type Profile string

// Profiles.
const (
	// ProfileDefault uses a sized blocked filter and delta sync in
	// extended frames.
	ProfileDefault Profile = "default"
	// ProfileClassic is the original rmbd: a 5×400 classic filter, every
	// row to every peer every 500 ms in classic frames, prune after one
	// missed round.
	ProfileClassic Profile = "classic"
)

// Config configures a Node. Start from DefaultConfig or ClassicConfig.
type Config struct {
	// Listen is the HOST:PORT both UDP and TCP bind. Port 0 picks one.
	// Unused when Transport is set.
	Listen string
	// Transport replaces the sockets bound from Listen (tests and
	// simulators run nodes on an in-memory network).
	Transport Transport
	// GossipTransport replaces the sockets memberlist binds from
	// GossipListen (tests and simulators run memberlist on an in-memory
	// network: internal/memnet's Gossip).
	GossipTransport membership.Transport
	// ManualTicks leaves the gossip ticks to the caller, who calls
	// Node.Tick: no ticker runs (tests and simulators drive time).
	ManualTicks bool
	// Resolver looks up the host names of peers and seeds; nil means
	// net.DefaultResolver.
	Resolver Resolver
	// Profile is ProfileDefault or ProfileClassic.
	Profile Profile
	// Capacity and FPRate size the default profile's filter.
	Capacity uint64
	FPRate   float64
	// MaxFilterBytes refuses filters larger than this.
	MaxFilterBytes uint64
	// Peers are HOST:PORT push targets added at start.
	Peers []string
	// SyncInterval is the gossip tick.
	SyncInterval time.Duration
	// PruneAfter removes a peer after this many rounds without an ack.
	PruneAfter int
	// Name identifies the node in pongs and logs; default: the listen
	// address.
	Name string
	// UDPSockets is the number of SO_REUSEPORT UDP sockets, one reader
	// each; default GOMAXPROCS.
	UDPSockets int
	// MaxDatagram bounds the sync frames the node sends over UDP.
	MaxDatagram int
	// ProtectedMode: a node that listens beyond loopback (its own
	// protocol, RESP or gossip) with no cluster key and no allow rule
	// (Allow, AllowRead, AllowAdmin, AllowCreate) serves loopback alone,
	// and tells anyone else how to configure it. On by default; off is a
	// knowing choice to serve whoever can reach the node.
	ProtectedMode bool
	// AutoCreate makes an add to a named filter that does not exist
	// create it, sized by AutoCreateCapacity and FPRate, when the client
	// may create filters (admins, and AllowCreate).
	AutoCreate bool
	// AutoCreateCapacity is the capacity of a filter an add creates:
	// small, as RedisBloom's (100), so that a name a client makes up
	// costs little. Create larger filters explicitly.
	AutoCreateCapacity uint64
	// Expansion is the named filters' made without one (registry.Sizing;
	// RedisBloom's default, 2); 0: they do not grow (NONSCALING).
	Expansion uint32
	// AllowCreate lists the clients that may create filters (by asking,
	// or by adding with AutoCreate) besides admins. Each source is held
	// to CreatesPerMinute and FiltersPerSource (0: no bound), and all of
	// them together to half of MaxFilters and of MaxMemory, the rest kept
	// for admins.
	AllowCreate      []netip.Prefix
	CreatesPerMinute int
	FiltersPerSource int
	// MaxFilters bounds the named filters (besides the default).
	MaxFilters int
	// MaxMemory bounds the memory every filter together may take; 0 is no
	// bound. The default is a quarter of the machine's memory (or of its
	// cgroup's), which leaves the machine usable.
	MaxMemory int64
	// TombstoneTTL is how long a dropped filter's tombstone is kept.
	TombstoneTTL time.Duration
	// MaxPeers bounds the push targets and members the node syncs with.
	// When the table is full, a peer that never answered its challenge,
	// then one that never acknowledged rows, makes room; with neither,
	// a new peer is refused.
	MaxPeers int
	// MaxConns bounds concurrent TCP connections: past it, the connection
	// idle longest is closed to let a new one in.
	MaxConns int
	// MaxConnsPerSource bounds the TCP connections one source address may
	// hold; more are refused.
	MaxConnsPerSource int
	// IdleTimeout closes TCP connections that send nothing for this long.
	IdleTimeout time.Duration
	// FrameTimeout closes a TCP connection that has begun a frame and not
	// finished it within this long, or has not taken a reply within it.
	FrameTimeout time.Duration
	// MaxBufferBytes bounds the memory all TCP connections' frame and
	// reply buffers may hold at once, beyond each one's small own buffer;
	// a connection whose frame needs more is closed.
	MaxBufferBytes int64
	// ShutdownTimeout bounds the graceful part of shutting down.
	ShutdownTimeout time.Duration
	// LeaveTimeout bounds telling the cluster, at shutdown, that this node
	// leaves (so that members list it as left, not failed).
	LeaveTimeout time.Duration
	// Join lists gossip addresses (HOST:PORT) of cluster members to join.
	// Membership runs when Join or GossipListen is set (default profile
	// only); members found become push targets beside static peers.
	Join []string
	// GossipListen is the HOST:PORT memberlist binds; with Join set and
	// this empty, the host of Listen and port 7946.
	GossipListen string
	// Advertise is the HOST or HOST:PORT other members reach this node's
	// gossip at, when it differs from GossipListen (NAT, containers).
	Advertise string
	// AntiEntropyInterval is how often members swap row digests (through
	// memberlist's push/pull) and pull the blocks that differ.
	AntiEntropyInterval time.Duration
	// RejoinInterval is how often a node tries again to join seeds and
	// recently failed members that are not alive in its member list, so
	// that partitions heal on their own.
	RejoinInterval time.Duration
	// WriteQuorum is how many owners of a placed filter hold an
	// acknowledged add before it is acknowledged (at most its replicas);
	// the others get it by replication. ForwardTimeout bounds a request
	// forwarded to an owner. HandoffGrace is how long a placed filter this
	// node no longer owns is kept, answering, before it is freed.
	WriteQuorum    int
	ForwardTimeout time.Duration
	HandoffGrace   time.Duration
	// DataDir, when set, makes the node durable: its filter lives in this
	// directory (package store) and comes back after any stop.
	DataDir string
	// FS is the file system DataDir is in; nil is the operating system's.
	// Tests put a failing or simulated disk here.
	FS store.FS
	// Fsync says when the log of adds reaches the disk (DataDir only).
	Fsync store.FsyncPolicy
	// CheckpointInterval is the longest time between checkpoints of the
	// filter to DataDir while anything changes.
	CheckpointInterval time.Duration
	// Repair starts despite a damaged checkpoint, keeping every row that
	// verifies; anti-entropy refills the rest.
	Repair bool
	// ClusterKeys authenticate the cluster (package auth): the first
	// signs, all verify. With keys, frames between nodes travel sealed,
	// unsealed ones are refused, and memberlist encrypts gossip. None:
	// cluster traffic is unauthenticated.
	ClusterKeys []auth.Key
	// Allow, when not empty, limits which client addresses may add;
	// AllowRead which may ask has; AllowAdmin adds to loopback and members
	// as the addresses that may make admin requests (peer, stats, members,
	// pull).
	Allow, AllowRead, AllowAdmin []netip.Prefix
	// RESPListen, when set, is the HOST:PORT a RESP (Redis protocol)
	// listener binds: the BF.* commands for every Redis client. Port 0
	// picks one (Node.RESPAddr).
	RESPListen string
	// RESPPasswords, when not empty, make RESP clients AUTH with one of
	// them before any other command.
	RESPPasswords []string
	// RESPLimits bound one RESP command; zero fields take
	// resp.DefaultLimits' values.
	RESPLimits resp.Limits
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
	// Now is the wall clock the catalog stamps creations and drops with
	// and ages tombstones by; nil is time.Now. Simulations skew it.
	Now func() time.Time
}

// DefaultGossipPort is memberlist's port when GossipListen gives none.
const DefaultGossipPort = 7946

// clustered reports whether membership runs.
func (c Config) clustered() bool { return len(c.Join) > 0 || c.GossipListen != "" }

// gossipListen returns the address memberlist binds.
func (c Config) gossipListen() string {
	if c.GossipListen != "" {
		return c.GossipListen
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	return net.JoinHostPort(host, strconv.Itoa(DefaultGossipPort))
}

// DefaultConfig is the default profile on 127.0.0.1:8000: a blocked filter
// for 1,000,000 keys at 1%, sync every 200 ms, prune after 10 missed
// rounds.
func DefaultConfig() Config {
	fc := filter.DefaultConfig()
	return Config{
		Listen:         "127.0.0.1:8000",
		Profile:        ProfileDefault,
		Capacity:       fc.Capacity,
		FPRate:         fc.FPRate,
		MaxFilterBytes: fc.MaxBytes,
		SyncInterval:   200 * time.Millisecond,
		PruneAfter:     10,
		UDPSockets:     runtime.GOMAXPROCS(0),
		MaxDatagram:    wire.MaxDatagram,
		MaxPeers:       1024,
		ProtectedMode:  true,
		AutoCreate:     true,
		MaxFilters:     1024,
		MaxMemory:      sysmem.Quarter(),

		AutoCreateCapacity: 100,
		Expansion:          2,
		CreatesPerMinute:   10,
		FiltersPerSource:   16,
		TombstoneTTL:       24 * time.Hour,
		MaxConns:           1024,
		MaxConnsPerSource:  64,
		IdleTimeout:        5 * time.Minute,
		FrameTimeout:       10 * time.Second,
		MaxBufferBytes:     64 << 20,
		ShutdownTimeout:    800 * time.Millisecond,
		LeaveTimeout:       500 * time.Millisecond,

		AntiEntropyInterval: 10 * time.Second,
		RejoinInterval:      5 * time.Second,
		WriteQuorum:         1,
		ForwardTimeout:      2 * time.Second,
		HandoffGrace:        registry.DefaultHandoffGrace,
		Fsync:               store.FsyncEverySec,
		CheckpointInterval:  store.DefaultOptions().CheckpointInterval,
	}
}

// ClassicConfig is DefaultConfig with the classic profile's behaviour.
func ClassicConfig() Config {
	c := DefaultConfig()
	c.Profile = ProfileClassic
	c.SyncInterval = 500 * time.Millisecond
	c.PruneAfter = 1
	return c
}

// bad is a configuration error.
func bad(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
}

// validate checks the configuration: its addresses, its bounds, its
// sizing and keys, and with membership the cluster's settings.
func (c Config) validate() error {
	if c.Transport == nil {
		if err := hostport.CheckListen("listen", c.Listen); err != nil {
			return bad("%w", err)
		}
	}
	if err := c.validateBounds(); err != nil {
		return err
	}
	if err := c.sizing().Check(); err != nil {
		return bad("the default filter: %w", err)
	}
	if c.RESPListen != "" {
		if err := hostport.CheckListen("RESP listen", c.RESPListen); err != nil {
			return bad("%w", err)
		}
	}
	for _, p := range c.RESPPasswords {
		if p == "" || strings.ContainsAny(p, "\r\n") {
			return bad("a RESP password must be one line, not empty")
		}
	}
	if len(c.ClusterKeys) > 0 {
		if _, err := auth.NewKeyring(c.ClusterKeys); err != nil {
			return bad("cluster keys: %w", err)
		}
	}
	for _, p := range c.Peers {
		if _, _, err := hostport.Split(p); err != nil {
			return bad("peer %q: %w", p, err)
		}
	}
	if err := c.validatePlacement(); err != nil {
		return err
	}
	return c.validateCluster()
}

// validateBounds checks the profile, the intervals and every bound.
func (c Config) validateBounds() error {
	switch {
	case c.Profile != ProfileDefault && c.Profile != ProfileClassic:
		return bad("profile %q is neither %q nor %q", c.Profile, ProfileDefault, ProfileClassic)
	case c.SyncInterval <= 0:
		return bad("sync interval %v must be positive", c.SyncInterval)
	case c.PruneAfter < 1:
		return bad("prune-after %d must be at least 1", c.PruneAfter)
	case c.UDPSockets < 1 || c.UDPSockets > 64:
		return bad("UDP sockets %d must be 1..64", c.UDPSockets)
	case c.MaxDatagram < 512 || c.MaxDatagram > 65507:
		return bad("max datagram %d must be 512..65507", c.MaxDatagram)
	case c.Expansion > gossip.MaxExpansion:
		return bad("expansion %d is over %d", c.Expansion, gossip.MaxExpansion)
	case c.AutoCreateCapacity < 1 || c.CreatesPerMinute < 0 || c.FiltersPerSource < 0:
		return bad("auto-create capacity %d must be at least 1, creates per minute %d and filters per source %d not negative", c.AutoCreateCapacity, c.CreatesPerMinute, c.FiltersPerSource)
	case c.MaxFilters < 0 || c.MaxMemory < 0 || c.TombstoneTTL <= 0:
		return bad("max filters %d and max memory %d must not be negative, tombstone TTL %v must be positive", c.MaxFilters, c.MaxMemory, c.TombstoneTTL)
	case c.MaxPeers < 1:
		return bad("max peers %d must be at least 1", c.MaxPeers)
	case c.MaxConns < 1 || c.MaxConnsPerSource < 1:
		return bad("max connections %d and per source %d must be at least 1", c.MaxConns, c.MaxConnsPerSource)
	case c.FrameTimeout <= 0:
		return bad("frame timeout %v must be positive", c.FrameTimeout)
	case c.MaxBufferBytes < minBufferBytes:
		return bad("max buffer bytes %d must be at least %d: room to grow a frame of the largest size", c.MaxBufferBytes, minBufferBytes)
	case c.IdleTimeout <= 0 || c.ShutdownTimeout <= 0 || c.LeaveTimeout <= 0:
		return bad("timeouts must be positive")
	case c.DataDir != "" && c.CheckpointInterval <= 0:
		return bad("checkpoint interval %v must be positive", c.CheckpointInterval)
	case c.Fsync > store.FsyncNo:
		return bad("fsync policy %v", c.Fsync)
	}
	return nil
}

// validateCluster checks membership's settings, when it runs.
func (c Config) validateCluster() error {
	if !c.clustered() {
		return nil
	}
	if c.Profile == ProfileClassic {
		return bad("cluster membership (--join, --gossip-listen) needs the default profile; the classic profile syncs only with --peer")
	}
	for _, j := range c.Join {
		if _, _, err := hostport.Split(j); err != nil {
			return bad("join address %q: %w", j, err)
		}
	}
	if c.GossipTransport == nil {
		if err := hostport.CheckListen("gossip", c.gossipListen()); err != nil {
			return bad("%w", err)
		}
	}
	if c.AntiEntropyInterval <= 0 || c.RejoinInterval <= 0 {
		return bad("anti-entropy and rejoin intervals must be positive")
	}
	return nil
}

// validatePlacement checks the settings of placed filters.
func (c Config) validatePlacement() error {
	switch {
	case c.WriteQuorum < 1 || c.WriteQuorum > registry.MaxReplicas:
		return bad("write quorum %d: 1 to %d owners", c.WriteQuorum, registry.MaxReplicas)
	case c.ForwardTimeout <= 0 || c.HandoffGrace <= 0:
		return bad("forward timeout and handoff grace must be positive")
	}
	return nil
}

// DefaultFilter is the name of the filter the flags make.
const DefaultFilter = registry.DefaultName

// sizing is the default filter's, from the profile and flags.
func (c Config) sizing() registry.Sizing {
	if c.Profile == ProfileClassic {
		return registry.Sizing{Layout: filter.Classic}
	}
	return registry.Sizing{Layout: filter.Blocked, Capacity: c.Capacity, FPRate: c.FPRate}
}

// respLimits is cfg.RESPLimits with the defaults filled in, a command
// at most half the buffer budget.
func (c Config) respLimits() resp.Limits {
	l := c.RESPLimits.OrDefaults()
	if c.RESPLimits.MaxCommand <= 0 {
		l.MaxCommand = min(l.MaxCommand, int(c.MaxBufferBytes/2))
	}
	return l
}
