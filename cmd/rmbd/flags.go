package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/rmbd/rmbd/internal/flagusage"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/store"
	"github.com/spf13/pflag"
)

const usageHead = `rmbd — a replicated Bloom filter node.

Usage:
  rmbd [flags] [ADDR]
  rmbd keygen [FILE]   print a new random cluster key, or write it to FILE
                       (mode 0600) unless FILE holds one already
  rmbd healthcheck [--ready] [HOST:PORT]
                       exit 0 if the node at --metrics-listen HOST:PORT
                       (default: $RMBD_METRICS_LISTEN) serves, or with
                       --ready is ready; for a container's HEALTHCHECK

ADDR is the same as --listen. Every flag can also be set in the environment
as RMBD_<FLAG>, e.g. RMBD_LISTEN=0.0.0.0:8000 or RMBD_JOIN=a:7946,b:7946;
a flag on the command line wins over the environment. RMBD_CLUSTER_KEY may
hold the cluster key itself instead of --cluster-key-file.

Without a cluster key anyone who can reach the node's ports can write rows
into its filter and join its cluster: give every member the same
--cluster-key-file (see the README's Security section). SIGHUP re-reads it.

Flags:
`

// usage is the --help text.
func usage(fs *pflag.FlagSet) string {
	return usageHead + flagusage.Usage(fs)
}

// options is what the command line says, before it becomes a node.Config.
type options struct {
	cfg       node.Config
	keyFile   string // --cluster-key-file, re-read on SIGHUP
	logLevel  string
	logFormat string
	help      bool
	version   bool
	// metricsListen serves metrics and health over HTTP ("" off), with
	// Go's profiles if pprof.
	metricsListen string
	pprof         bool
	// unknownEnv are RMBD_* variables that set nothing (warned at start).
	unknownEnv []string
}

// parseArgs turns args and the environment into options. The error is one
// line fit to print.
func parseArgs(args []string, env environment) (*options, *pflag.FlagSet, error) {
	def := node.DefaultConfig()
	classic := node.ClassicConfig()
	o := &options{}
	fs := pflag.NewFlagSet("rmbd", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	listen := fs.String("listen", def.Listen, "HOST:PORT to serve UDP and TCP on")
	profile := fs.String("profile", string(def.Profile), "default (sized blocked filter, delta sync) or classic (the original rmbd)")
	capacity := fs.Uint64("capacity", def.Capacity, "keys the filter is sized for (default profile)")
	fpRate := fs.Float64("fp-rate", def.FPRate, "false-positive rate wanted at capacity, in (0,1) (default profile)")
	peers := fs.StringArray("peer", nil, "HOST:PORT to push rows to; repeatable")
	interval := fs.Duration("sync-interval", def.SyncInterval, "how often rows are pushed to peers (classic profile: "+classic.SyncInterval.String()+")")
	prune := fs.Int("prune-after", def.PruneAfter, fmt.Sprintf("remove a peer after N rounds without an ack (classic profile: %d)", classic.PruneAfter))
	join := fs.StringArray("join", nil, "gossip HOST:PORT of a cluster member to join; repeatable (turns membership on)")
	gossipListen := fs.String("gossip-listen", "", "HOST:PORT for cluster gossip (default with --join: the host of --listen, port 7946)")
	advertise := fs.String("advertise", "", "HOST[:PORT] other members reach this node's gossip at, if not --gossip-listen")
	antiEntropy := fs.Duration("anti-entropy-interval", def.AntiEntropyInterval, "how often members compare row digests and repair differences")
	writeQuorum := fs.Int("write-quorum", def.WriteQuorum, "owners of a placed filter that hold an acknowledged add before it is acknowledged; with --fsync always, 2 makes an acknowledged add survive the loss of any one owner")
	forwardTimeout := fs.Duration("forward-timeout", def.ForwardTimeout, "how long a request for a placed filter this node does not hold (or an add that waits for --write-quorum owners) waits for the owners' answers")
	handoffGrace := fs.Duration("handoff-grace", def.HandoffGrace, "how long a placed filter this node no longer owns (members came or went) is kept, answering, before it is freed")
	name := fs.String("node-name", "", "name this node reports and joins as (default: HOST:PORT of --listen, the host name for 0.0.0.0)")
	udpSockets := fs.Int("udp-sockets", def.UDPSockets, "UDP sockets sharing the port (SO_REUSEPORT), one reader each")
	dataDir := fs.String("data-dir", "", "directory that keeps the filter across restarts (default: in memory only)")
	fsync := fs.String("fsync", def.Fsync.String(), "when adds reach the disk: always (before each acknowledged add is answered), everysec or no")
	checkpoint := fs.Duration("checkpoint-interval", def.CheckpointInterval, "longest time between checkpoints of the filter to --data-dir")
	repair := fs.Bool("repair", false, "start despite damaged files: keep every row that verifies, rewrite a damaged FILTER file from the flags or the catalog, set a damaged CATALOG aside (members have it)")
	fs.StringVar(&o.keyFile, "cluster-key-file", "", "file of cluster keys, one per line, the first signing (rmbd keygen makes one): authenticates every frame between nodes and encrypts gossip")
	autoCreate := fs.String("auto-create", "admin", "who may create filters besides admins, by adding to a name that has none or by asking: admin (admins alone: loopback, members, --allow-admin), CIDRs or addresses (comma-separated; held to the quotas below), any, or off (no create by adding)")
	autoCapacity := fs.Uint64("auto-create-capacity", def.AutoCreateCapacity, "capacity of a filter an add creates (at --fp-rate): small, so that a made-up name costs little; it grows by --expansion")
	expansion := fs.Uint32("expansion", def.Expansion, "expansion of named filters made without one (BF.RESERVE, BF.INSERT, rmbd-cli create, and filters an add creates): a full filter opens a stage this many times larger; 0: they do not grow (NONSCALING) and refuse adds once full")
	createsPerMinute := fs.Int("creates-per-minute", def.CreatesPerMinute, "creates one source that is not an admin may make a minute (0: no bound)")
	filtersPerSource := fs.Int("filters-per-source", def.FiltersPerSource, "filters one source that is not an admin may hold (0: no bound); all such sources together hold at most half of --max-filters and --max-memory")
	maxFilters := fs.Int("max-filters", def.MaxFilters, "named filters the node may hold")
	maxMemory := fs.String("max-memory", formatSize(def.MaxMemory), "memory every filter together may take (default: a quarter of the machine's or the cgroup's; 0: no bound); creating past it is refused")
	maxFilter := fs.String("max-filter-bytes", formatSize(int64(def.MaxFilterBytes)), "memory one filter may take, all its stages together: a filter sized past it is refused, a growing one stops growing there (and refuses adds once full)")
	protected := fs.String("protected-mode", "yes", "yes: listening beyond loopback with no cluster key and no allow rule, answer loopback alone; no: serve whoever can reach the node")
	tombstoneTTL := fs.Duration("tombstone-ttl", def.TombstoneTTL, "how long a dropped filter's tombstone is kept")
	maxPeers := fs.Int("max-peers", def.MaxPeers, "push targets and members to sync with; when full, one that never answered or never acknowledged makes room, else a new peer is refused")
	maxConns := fs.Int("max-conns", def.MaxConns, "TCP connections at once; past it the one idle longest is closed to let a new one in")
	maxPerSource := fs.Int("max-conns-per-source", def.MaxConnsPerSource, "TCP connections one source address may hold; more are refused")
	idleTimeout := fs.Duration("idle-timeout", def.IdleTimeout, "close a TCP connection that sends nothing for this long")
	frameTimeout := fs.Duration("frame-timeout", def.FrameTimeout, "close a TCP connection that takes longer to send a frame it began, or to take a reply")
	maxBuffer := fs.String("max-buffer-bytes", formatSize(def.MaxBufferBytes), "memory all TCP connections' frame and reply buffers may hold at once (e.g. 64MiB); a connection whose frame needs more is closed")
	allow := fs.StringArray("allow", nil, "CIDR or address of clients that may add; repeatable (default: anyone)")
	allowRead := fs.StringArray("allow-read", nil, "CIDR or address of clients that may ask has; repeatable (default: anyone)")
	allowAdmin := fs.StringArray("allow-admin", nil, "CIDR or address that may ask peer, stats, members and pulls besides loopback and members; repeatable")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	respListen := fs.String("resp-listen", "", "HOST:PORT to serve the Redis protocol on (BF.* commands for any Redis client; default: off)")
	respPasswordFile := fs.String("resp-password-file", "", "file of passwords, one per line, one of which Redis clients must AUTH with (default: none asked)")
	metricsListen := fs.String("metrics-listen", "", "HOST:PORT to serve Prometheus /metrics, /healthz and /readyz on over HTTP (default: off)")
	fs.BoolVar(&o.pprof, "pprof", false, "also serve Go's profiles under /debug/pprof/ on --metrics-listen")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	_ = fs.MarkHidden("help") // listed by usage() without pflag's [=true|false]

	if err := fs.Parse(args); err != nil {
		return nil, fs, err
	}
	if o.help || o.version {
		return o, fs, nil
	}
	positional := fs.NArg() == 1
	if positional && fs.Changed("listen") {
		return nil, fs, errors.New("give the address either as ADDR or as --listen, not both")
	}
	src := sources{}
	var envErr error
	fs.VisitAll(func(f *pflag.Flag) {
		name := envName(f.Name)
		v := env.get(name)
		if f.Changed || v == "" || f.Name == "help" || f.Name == "version" || f.Name == "listen" && positional {
			return // the command line wins
		}
		src[f.Name] = name + "=" + v
		parts := []string{v}
		if f.Value.Type() == "stringArray" {
			parts = strings.Split(v, ",")
		}
		for _, part := range parts {
			if err := fs.Set(f.Name, strings.TrimSpace(part)); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%s: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, fs, envErr
	}
	switch fs.NArg() {
	case 0:
	case 1:
		*listen = fs.Arg(0)
	default:
		return nil, fs, fmt.Errorf("too many arguments: %q (only one ADDR)", fs.Args())
	}

	o.cfg = def
	if node.Profile(*profile) == node.ProfileClassic {
		o.cfg = classic
		if !fs.Changed("sync-interval") {
			*interval = classic.SyncInterval
		}
		if !fs.Changed("prune-after") {
			*prune = classic.PruneAfter
		}
	}
	o.cfg.Listen, o.cfg.Profile = *listen, node.Profile(*profile)
	o.cfg.Capacity, o.cfg.FPRate = *capacity, *fpRate
	o.cfg.Peers, o.cfg.SyncInterval, o.cfg.PruneAfter, o.cfg.Name = *peers, *interval, *prune, *name
	o.cfg.Join, o.cfg.GossipListen, o.cfg.Advertise, o.cfg.AntiEntropyInterval = *join, *gossipListen, *advertise, *antiEntropy
	o.cfg.WriteQuorum, o.cfg.ForwardTimeout, o.cfg.HandoffGrace = *writeQuorum, *forwardTimeout, *handoffGrace
	o.cfg.UDPSockets = *udpSockets
	o.cfg.MaxConns, o.cfg.MaxConnsPerSource, o.cfg.MaxPeers = *maxConns, *maxPerSource, *maxPeers
	o.cfg.IdleTimeout, o.cfg.FrameTimeout = *idleTimeout, *frameTimeout
	o.cfg.MaxFilters, o.cfg.TombstoneTTL = *maxFilters, *tombstoneTTL
	o.cfg.AutoCreateCapacity, o.cfg.CreatesPerMinute, o.cfg.FiltersPerSource = *autoCapacity, *createsPerMinute, *filtersPerSource
	o.cfg.Expansion = *expansion
	var err error
	if o.cfg.AutoCreate, o.cfg.AllowCreate, err = parseAutoCreate(*autoCreate); err != nil {
		return nil, fs, fmt.Errorf("%s: %w", src.name("auto-create"), err)
	}
	if o.cfg.ProtectedMode, err = parseYesNo(*protected); err != nil {
		return nil, fs, fmt.Errorf("%s: %w", src.name("protected-mode"), err)
	}
	if o.cfg.MaxMemory, err = parseSize(*maxMemory); err != nil {
		return nil, fs, fmt.Errorf("%s: %w", src.name("max-memory"), err)
	}
	mf, err := parseSize(*maxFilter)
	if err != nil || mf == 0 {
		return nil, fs, fmt.Errorf("%s: %q is not a size of at least 1 byte (e.g. 4GiB)", src.name("max-filter-bytes"), *maxFilter)
	}
	o.cfg.MaxFilterBytes = uint64(mf)
	if o.cfg.MaxBufferBytes, err = parseSize(*maxBuffer); err != nil {
		return nil, fs, fmt.Errorf("%s: %w", src.name("max-buffer-bytes"), err)
	}
	o.cfg.DataDir, o.cfg.CheckpointInterval, o.cfg.Repair = *dataDir, *checkpoint, *repair
	policy, err := store.ParseFsync(*fsync)
	if err != nil {
		return nil, fs, fmt.Errorf("%s: %w", src.name("fsync"), err)
	}
	o.cfg.Fsync = policy
	if o.cfg.DataDir == "" && (fs.Changed("fsync") || fs.Changed("repair") || fs.Changed("checkpoint-interval")) {
		return nil, fs, errors.New("--fsync, --checkpoint-interval and --repair need --data-dir")
	}
	if o.cfg.Profile == node.ProfileClassic && (fs.Changed("capacity") || fs.Changed("fp-rate")) {
		return nil, fs, errors.New("--capacity and --fp-rate size the default profile's filter; the classic filter is fixed at 5×400 bits")
	}
	for _, a := range []struct {
		flag string
		in   []string
		out  *[]netip.Prefix
	}{{"allow", *allow, &o.cfg.Allow}, {"allow-read", *allowRead, &o.cfg.AllowRead}, {"allow-admin", *allowAdmin, &o.cfg.AllowAdmin}} {
		if *a.out, err = parsePrefixes(a.in); err != nil {
			return nil, fs, fmt.Errorf("%s: %w", src.name(a.flag), err)
		}
	}
	if err := checkValues(o, fs, src); err != nil {
		return nil, fs, err
	}
	o.metricsListen = *metricsListen
	o.cfg.RESPListen = *respListen
	if *respPasswordFile != "" {
		if o.cfg.RESPPasswords, err = readPasswords(*respPasswordFile); err != nil {
			return nil, fs, fmt.Errorf("%s %s: %w", src.name("resp-password-file"), *respPasswordFile, err)
		}
		if o.cfg.RESPListen == "" {
			return nil, fs, fmt.Errorf("%s needs --resp-listen: it guards the Redis protocol listener", src.name("resp-password-file"))
		}
	}
	if o.pprof && o.metricsListen == "" {
		return nil, fs, fmt.Errorf("%s needs --metrics-listen: the profiles are served there", src.name("pprof"))
	}
	if o.cfg.ClusterKeys, err = clusterKeys(o.keyFile, env.get("RMBD_CLUSTER_KEY")); err != nil {
		return nil, fs, err
	}
	var logger *slog.Logger
	logger, err = newLogger(o.logLevel, o.logFormat, src)
	if err != nil {
		return nil, fs, err
	}
	o.cfg.Logger = logger
	o.unknownEnv = unknownEnv(env, fs)
	return o, fs, nil
}

// checkValues refuses values out of range, naming the flag or variable
// that set them as the user wrote it.
func checkValues(o *options, fs *pflag.FlagSet, src sources) error {
	c := o.cfg
	for _, v := range []struct {
		flag string
		bad  bool
		want string
	}{
		{"capacity", c.Capacity < 1, "at least 1"},
		{"fp-rate", !(c.FPRate > 0 && c.FPRate < 1), "strictly between 0 and 1, e.g. 0.01"},
		{"sync-interval", c.SyncInterval <= 0, "positive, e.g. 200ms"},
		{"prune-after", c.PruneAfter < 1, "at least 1"},
		{"anti-entropy-interval", c.AntiEntropyInterval <= 0, "positive, e.g. 10s"},
		{"write-quorum", c.WriteQuorum < 1 || c.WriteQuorum > registry.MaxReplicas, fmt.Sprintf("1 to %d owners", registry.MaxReplicas)},
		{"forward-timeout", c.ForwardTimeout <= 0, "positive, e.g. 2s"},
		{"handoff-grace", c.HandoffGrace <= 0, "positive, e.g. 1m"},
		{"udp-sockets", c.UDPSockets < 1 || c.UDPSockets > 64, "1 to 64"},
		{"checkpoint-interval", c.CheckpointInterval <= 0, "positive, e.g. 1m"},
		{"max-peers", c.MaxPeers < 1, "at least 1"},
		{"max-conns", c.MaxConns < 1, "at least 1"},
		{"max-conns-per-source", c.MaxConnsPerSource < 1, "at least 1"},
		{"idle-timeout", c.IdleTimeout <= 0, "positive, e.g. 5m"},
		{"frame-timeout", c.FrameTimeout <= 0, "positive, e.g. 10s"},
		{"max-filters", c.MaxFilters < 0, "0 or more"},
		{"auto-create-capacity", c.AutoCreateCapacity < 1, "at least 1"},
		{"creates-per-minute", c.CreatesPerMinute < 0, "0 or more"},
		{"filters-per-source", c.FiltersPerSource < 0, "0 or more"},
		{"tombstone-ttl", c.TombstoneTTL <= 0, "positive, e.g. 24h"},
	} {
		if v.bad {
			return fmt.Errorf("%s: must be %s", src.of(fs, v.flag), v.want)
		}
	}
	return nil
}

// parseSize reads a size in bytes: a number with an optional unit, KiB,
// MiB or GiB (K, M, G and KB, MB, GB mean the same: powers of 1,024).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 64MiB)", s)
	}
	return v * mult, nil
}

// formatSize writes a size as parseSize reads it.
func formatSize(v int64) string {
	switch {
	case v%(1<<30) == 0 && v > 0:
		return fmt.Sprintf("%dGiB", v>>30)
	case v%(1<<20) == 0 && v > 0:
		return fmt.Sprintf("%dMiB", v>>20)
	}
	return strconv.FormatInt(v, 10)
}

// parsePrefixes reads CIDRs; a plain address is a prefix of one.
func parsePrefixes(in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8) or an address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// parseAutoCreate reads --auto-create: admin (or yes, true), off (or no,
// false), any, or CIDRs and addresses, comma-separated. It returns
// whether adds create filters and who may create them besides admins.
func parseAutoCreate(v string) (bool, []netip.Prefix, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "admin", "admins", "yes", "true", "on", "":
		return true, nil, nil
	case "off", "no", "false":
		return false, nil, nil
	case "any", "anyone":
		return true, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}, nil
	}
	var parts []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	ps, err := parsePrefixes(parts)
	if err != nil {
		return false, nil, fmt.Errorf("%w; or admin, any or off", err)
	}
	return true, ps, nil
}

// parseYesNo reads yes or no (or true, false).
func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no", v)
}

func newLogger(level, format string, src sources) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%s %q is not debug, info, warn or error", src.name("log-level"), level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("%s %q is not text or json", src.name("log-format"), format)
}
