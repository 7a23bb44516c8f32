// Command rmbd-cli adds keys to and asks an rmbd node. See `rmbd-cli --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/internal/flagusage"
	"github.com/rmbd/rmbd/internal/version"
	"github.com/spf13/pflag"
)

const usageHead = `rmbd-cli — talk to an rmbd node.

Usage:
  rmbd-cli [flags] add KEY...      add keys
  rmbd-cli [flags] has KEY...      print each key, a tab, true or false
  rmbd-cli [flags] add -           add keys read from stdin, one per line
  rmbd-cli [flags] has -           ask for keys read from stdin, one per line
  rmbd-cli [flags] peer HOST:PORT  make the node push its rows to HOST:PORT
  rmbd-cli [flags] peers           whom the node pushes its rows to: static peers and members
  rmbd-cli [flags] ping            round-trip time and the node's identity
  rmbd-cli [flags] stats           the node's counters (docs/STATS.md says what each counts)
  rmbd-cli [flags] stats --watch 1s  a live view: adds, has and sync per second, fill, keys, peers
  rmbd-cli [flags] members         the cluster as the node sees it: state, for how long, last sync
  rmbd-cli [flags] create NAME [--capacity N] [--fp-rate P] [--expansion X] [--layout classic]   create a named filter
  rmbd-cli [flags] create NAME --window 24h [--slices L] [--capacity N] [--fp-rate P]   one that forgets keys older than the window
  rmbd-cli [flags] create NAME --replicas R [--capacity N] [--fp-rate P] [--expansion X]   one on R members of the cluster, not on all
  rmbd-cli [flags] list [PREFIX]   the node's filters (those whose names begin with PREFIX): sizing, stages, estimated keys, fill,
                                   and where those on some members live
  rmbd-cli [flags] info NAME       one filter
  rmbd-cli [flags] drop NAME       drop a named filter and its keys
  rmbd-cli [flags] expire NAME TTL drop it everywhere TTL from now (90s, 36h, 7d);
                                   persist NAME takes the deadline off, ttl NAME tells it
  rmbd-cli [flags] dump NAME > FILE  copy a filter out (a progress bar on stderr for large ones)
  rmbd-cli [flags] load NAME < FILE  load a dump into NAME, made as the dumped filter was if it
                                   does not exist (any node, any cluster; loading twice is harmless)
  rmbd-cli -f NAME add|has ...     add to or ask the named filter NAME (environment:
                                   RMBD_FILTER); an add to a name with no filter
                                   creates it when the node allows (--auto-create)
  rmbd-cli --cluster -f NAME add|has ...
                                   the same, the keys of a filter on some members
                                   (create --replicas) sent straight to one that
                                   holds it rather than forwarded by the node
  rmbd-cli set|check NAME KEY, bulk|multi NAME KEY...
                                   bloomd's verbs: add to (set, bulk) or ask (check,
                                   multi) the filter NAME (docs/COMING_FROM.md)

peer, with a node that has a cluster key, needs the key: --cluster-key-file
(or RMBD_CLUSTER_KEY_FILE, or RMBD_CLUSTER_KEY holding the key itself). With
the key, create, drop, dump, load, expire, stats, members and peers go sealed too: the node serves them
as an admin's wherever rmbd-cli runs.

has exits 0 when every key is present, 1 when any is absent, 2 on error.
Every other command exits 0 on success and 2 on error. Keys read from stdin
are streamed in batches, so millions of lines need little memory; a line is a
key as it is, without its newline. Flags may come before or after the
command; -- ends them, so put it before keys that start with -:
  rmbd-cli add -- -key --also-a-key
A classic add gets no reply: rmbd-cli confirms it with a has of the last key,
and exits 2 if the node does not answer. add warns on stderr when the node
reports its filter past its capacity.

Flags:
`

// exit statuses
const (
	exitOK     = 0
	exitAbsent = 1
	exitError  = 2
)

type options struct {
	addr      string
	tcp       bool
	classic   bool
	timeout   time.Duration
	json      bool
	chunk     int
	keyFile   string
	help      bool
	version   bool
	filter    string
	layout    string
	capacity  uint64
	fpRate    float64
	expansion int
	window    string
	slices    int
	replicas  int
	cluster   bool
	watch     time.Duration
	addrEnv   bool // --addr came from RMBD_ADDR
	oneKey    bool // bloomd's check or set: the key is the argument, even "-"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n", "; "), "client: ")
		fmt.Fprintf(stderr, "rmbd-cli: %s\n", msg)
		return exitError
	}
	var o options
	fs := pflag.NewFlagSet("rmbd-cli", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	defAddr := "127.0.0.1:8000"
	if v := getenv("RMBD_ADDR"); v != "" {
		defAddr, o.addrEnv = v, true
	}
	fs.StringVar(&o.addr, "addr", defAddr, "node address HOST:PORT (environment: RMBD_ADDR)")
	fs.BoolVar(&o.tcp, "tcp", false, "use TCP instead of UDP")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "give up on a request after this long")
	fs.BoolVar(&o.json, "json", false, "print JSON (one object per line for has)")
	fs.BoolVar(&o.classic, "classic", false, "speak only classic frames, e.g. to the original Python rmbd")
	fs.IntVar(&o.chunk, "chunk", 65536, "keys per request when reading stdin")
	fs.StringVar(&o.keyFile, "cluster-key-file", getenv("RMBD_CLUSTER_KEY_FILE"), "the cluster's key file, to seal admin requests: peer, peers, create, drop, dump, load, stats, members (environment: RMBD_CLUSTER_KEY_FILE)")
	fs.StringVarP(&o.filter, "filter", "f", getenv("RMBD_FILTER"), "the named filter add and has address (environment: RMBD_FILTER; default: the node's own)")
	fs.Uint64Var(&o.capacity, "capacity", 1_000_000, "with create: keys the filter is sized for")
	fs.Float64Var(&o.fpRate, "fp-rate", 0.01, "with create: false-positive rate wanted at capacity, in (0,1)")
	fs.IntVar(&o.expansion, "expansion", client.DefaultExpansion, "with create: once full, the filter opens a stage this many times larger (its false-positive rate stays under --fp-rate); 0: it does not grow and refuses adds once full; unset: the node's --expansion (2 unless set)")
	fs.StringVar(&o.window, "window", "", "with create: the filter answers for the keys added within this long (90s, 24h, 7d) and forgets older ones; --capacity is then the keys of one window")
	fs.IntVar(&o.slices, "slices", 0, "with create --window: the slices of time the window is kept in (0: the node's default, 10); a key is forgotten between one window and one window and two slices after it was added")
	fs.StringVar(&o.layout, "layout", "blocked", "with create: blocked (sized by --capacity and --fp-rate) or classic (the original rmbd's 5×400 bits)")
	fs.IntVar(&o.replicas, "replicas", 0, "with create: place the filter on this many members of the cluster (1 to 255) rather than on every one; any member answers for it, forwarding its keys to them (0: every member)")
	fs.BoolVar(&o.cluster, "cluster", false, "with add and has: --addr is one member of a cluster, asked where the filter lives; the keys of a filter on some members (create --replicas) go straight to one that holds it, not through --addr (which forwards them otherwise). Listing the members is an admin's request: without the right, every key goes to --addr")
	fs.DurationVar(&o.watch, "watch", 0, "with stats: show the figures again every this long, until interrupted")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	_ = fs.MarkHidden("help")
	if err := fs.Parse(args); err != nil {
		hint := ""
		if strings.Contains(err.Error(), "unknown") {
			hint = "; put -- before keys that start with -"
		}
		return fail(fmt.Errorf("%w (see rmbd-cli --help%s)", err, hint))
	}
	if o.addrEnv && fs.Changed("addr") {
		o.addrEnv = false
	}
	if o.help {
		fmt.Fprint(stdout, usageHead+flagusage.Usage(fs))
		return exitOK
	}
	if o.version {
		fmt.Fprintf(stdout, "rmbd-cli %s\n", version.String())
		return exitOK
	}
	if fs.NArg() == 0 {
		return fail(errors.New("no command: add, has, peer, peers, ping, stats, members, create, list, info, drop, dump or load (see rmbd-cli --help)"))
	}
	if o.timeout <= 0 || o.chunk < 1 || o.watch < 0 {
		return fail(errors.New("--timeout, --chunk and --watch must be positive"))
	}
	if !fs.Changed("filter") && !takesFilter(fs.Arg(0)) {
		o.filter = "" // $RMBD_FILTER: for the commands that take one
	}
	cmd, rest, err := bloomdVerb(fs.Arg(0), fs.Args()[1:], &o)
	if err != nil {
		return fail(err)
	}
	if o.watch > 0 && cmd != "stats" {
		return fail(fmt.Errorf("--watch goes with stats, not %s", cmd))
	}
	need := map[string][2]int{"add": {1, -1}, "has": {1, -1}, "peer": {1, 1}, "peers": {0, 0}, "ping": {0, 0}, "stats": {0, 0}, "members": {0, 0},
		"create": {1, 1}, "list": {0, 1}, "info": {1, 1}, "drop": {1, 1}, "dump": {1, 1}, "load": {1, 1},
		"expire": {2, 2}, "persist": {1, 1}, "ttl": {1, 1}}
	n, ok := need[cmd]
	if !ok {
		return fail(fmt.Errorf("unknown command %q: add, has, peer, peers, ping, stats, members, create, list, info, drop, dump, load, expire, persist or ttl", cmd))
	}
	if len(rest) < n[0] || n[1] >= 0 && len(rest) > n[1] {
		return fail(fmt.Errorf("%s takes %s", cmd, map[string]string{
			"add": "keys, or - to read them from stdin", "has": "keys, or - to read them from stdin",
			"peer": "one HOST:PORT", "peers": "no arguments", "ping": "no arguments", "stats": "no arguments", "members": "no arguments",
			"create": "one filter NAME", "list": "at most a PREFIX", "info": "one filter NAME", "drop": "one filter NAME",
			"dump": "one filter NAME (and writes to stdout)", "load": "one filter NAME (and reads stdin)",
			"expire": "a filter NAME and a time from now (90s, 36h, 7d)", "persist": "one filter NAME", "ttl": "one filter NAME"}[cmd]))
	}
	if (fs.Changed("capacity") || fs.Changed("fp-rate") || fs.Changed("layout") || fs.Changed("expansion") || fs.Changed("window") || fs.Changed("slices") || fs.Changed("replicas")) && cmd != "create" {
		return fail(fmt.Errorf("--capacity, --fp-rate, --expansion, --window, --slices, --replicas and --layout go with create, not %s", cmd))
	}
	if o.cluster && (cmd != "add" && cmd != "has" || o.classic) {
		return fail(errors.New("--cluster goes with add and has, over rmbd's own frames (not --classic)"))
	}
	if err := checkReplicas(o); err != nil {
		return fail(err)
	}
	window, err := windowOf(o, fs.Changed("expansion"))
	if err != nil {
		return fail(err)
	}
	if o.layout != "blocked" && o.layout != "classic" {
		return fail(fmt.Errorf("--layout %q is not blocked or classic", o.layout))
	}
	if o.filter != "" && !takesFilter(cmd) {
		return fail(fmt.Errorf("-f names the filter of add, has and ping; %s takes none", cmd))
	}

	opts := []client.Option{client.WithTimeout(o.timeout)}
	if keys, err := clusterKeys(o.keyFile, getenv("RMBD_CLUSTER_KEY")); err != nil {
		return fail(err)
	} else if keys != nil {
		opts = append(opts, client.WithClusterKeys(keys...))
	}
	if o.tcp {
		opts = append(opts, client.WithTCP())
	}
	if o.classic {
		opts = append(opts, client.WithClassic())
	}
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	c, err := client.Dial(dctx, o.addr, opts...)
	cancel()
	if err != nil {
		if err = explain(err, o); o.addrEnv {
			err = fmt.Errorf("RMBD_ADDR=%s: %w", o.addr, err)
		}
		return fail(err)
	}
	defer c.Close()

	out := newPrinter(stdout, o.json)
	defer out.flush()
	var code int
	if o.filter != "" {
		c = c.Filter(o.filter)
	}
	switch cmd {
	case "create":
		var f client.FilterInfo
		switch {
		case o.layout == "classic":
			f, err = c.CreateClassicFilter(ctx, rest[0])
		case window > 0:
			f, err = c.CreateWindowedFilter(ctx, rest[0], o.capacity, o.fpRate, window, o.slices)
		case o.replicas > 0:
			f, err = c.CreatePlacedFilter(ctx, rest[0], o.capacity, o.fpRate, o.expansion, o.replicas)
		default:
			f, err = c.CreateGrowingFilter(ctx, rest[0], o.capacity, o.fpRate, o.expansion)
		}
		if err == nil {
			out.filters("created", []client.FilterInfo{f})
		}
	case "info":
		var f client.FilterInfo
		if f, err = c.DescribeFilter(ctx, rest[0]); err == nil {
			out.filters("info", []client.FilterInfo{f})
			if dl, ttl, derr := c.Filter(rest[0]).Deadline(ctx); derr == nil && !dl.IsZero() && !o.json {
				out.expiry(rest[0], dl, ttl, false) // a node that knows deadlines, and one set
			}
		}
	case "list":
		var fs []client.FilterInfo
		if fs, err = c.Filters(ctx); err == nil {
			out.filters("list", withPrefix(fs, rest))
		}
	case "drop":
		if err = c.DropFilter(ctx, rest[0]); err == nil {
			out.dropped(rest[0])
		}
	case "expire", "persist", "ttl":
		err = expireCmd(ctx, c, cmd, rest, out)
	case "dump":
		err = dumpFilter(ctx, c, rest[0], stdout, stderr)
	case "load":
		err = loadFilter(ctx, c, rest[0], stdin, stderr)
	case "add", "has":
		if cmd == "has" && o.filter != "" && !o.classic {
			if err = filterExists(ctx, c, o); err != nil {
				break
			}
		}
		var k keyer = c
		if o.cluster {
			var cl *client.Cluster
			if cl, err = client.NewCluster(ctx, o.addr, opts...); err != nil {
				break
			}
			defer cl.Close()
			k = cl.Filter(o.filter)
		}
		if len(rest) == 1 && rest[0] == "-" && !o.oneKey {
			code, err = streamKeys(ctx, k, c, cmd, stdin, out, o, stderr)
		} else {
			code, err = keys(ctx, k, cmd, rest, out)
			if err == nil && cmd == "add" && o.classic {
				err = confirmClassic(ctx, c, rest[len(rest)-1])
			}
		}
		if err == nil && cmd == "add" && !o.classic {
			warnCapacity(ctx, c, o, stderr)
		}
	case "peer":
		var r client.PeerResult
		if r, err = c.Peer(ctx, rest[0]); err == nil {
			out.peer(rest[0], o.addr, r, o.classic)
		}
	case "peers":
		var ps []client.Peer
		if ps, err = c.Peers(ctx); err == nil {
			out.peers(o.addr, ps)
		}
	case "ping":
		var p client.Pong
		if p, err = c.Ping(ctx); err == nil {
			out.pong(p)
		}
	case "members":
		var ms []client.Member
		if ms, err = c.Members(ctx); err == nil {
			var counts map[string]int
			if len(ms) > 0 {
				counts = owned(ctx, c)
			}
			out.members(o.addr, ms, counts)
		}
	case "stats":
		if o.watch > 0 {
			err = watch(ctx, c, o, stdout)
			break
		}
		var s []client.Stat
		if s, err = c.Stats(ctx); err == nil {
			out.stats(s)
		}
	}
	if err != nil {
		out.flush()
		return fail(explain(err, o))
	}
	return code
}

// filterExists refuses a has of a named filter the node does not hold:
// the node answers false for every key of a name it has no filter of,
// which from the command line is a typo answered as if it meant
// something. (A filter just made on another member may not have arrived
// yet: the error says so.) Only the node's "no filter" refuses: a has
// needs no admin's right, nor a key, that describing might.
func filterExists(ctx context.Context, c *client.Client, o options) error {
	_, err := c.DescribeFilter(ctx, o.filter)
	var se *client.ServerError
	if errors.As(err, &se) && strings.HasPrefix(se.Msg, "no filter") {
		return fmt.Errorf("no filter %q on %s (rmbd-cli list shows its filters; one made on another member arrives within a few gossip intervals)", o.filter, o.addr)
	}
	return nil
}

// takesFilter says whether cmd addresses a filter named by -f.
func takesFilter(cmd string) bool { return cmd == "add" || cmd == "has" || cmd == "ping" }

// explain turns client errors into one line a person can act on.
func explain(err error, o options) error {
	switch {
	case errors.Is(err, client.ErrUnreachable):
		return fmt.Errorf("no rmbd node answers at %s (is it running? see --addr)", o.addr)
	case errors.Is(err, client.ErrTimeout):
		hint := "see --timeout"
		if !o.tcp && !o.classic {
			hint += "; over UDP a node that falls behind sheds a client sending fast: --tcp for large loads"
		}
		return fmt.Errorf("%s did not answer within %v (%s)", o.addr, o.timeout, hint)
	case errors.Is(err, client.ErrKeyTooLong):
		hint := ""
		if !o.tcp && !o.classic {
			hint = " (use --tcp for keys up to 4096 bytes)"
		}
		var oe *client.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return fmt.Errorf("%w%s", err, hint)
	}
	var oe *client.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return oe.Err
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		return fmt.Errorf("%s %s", o.addr, se) // "node refused (forbidden): …"
	}
	return err
}

// clusterKeys reads the keys from the key file, or from RMBD_CLUSTER_KEY.
func clusterKeys(file, env string) ([]auth.Key, error) {
	text, what := []byte(env), "RMBD_CLUSTER_KEY"
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--cluster-key-file: %w", err)
		}
		text, what = b, "--cluster-key-file "+file
	case env == "":
		return nil, nil
	}
	keys, err := auth.ParseKeys(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return keys, nil
}

// keys adds or asks for keys given on the command line.
func keys(ctx context.Context, c keyer, cmd string, ks []string, out *printer) (int, error) {
	if cmd == "add" {
		if err := c.Add(ctx, ks...); err != nil {
			return exitError, err
		}
		out.added(len(ks))
		return exitOK, nil
	}
	got, err := c.Has(ctx, ks...)
	if err != nil {
		return exitError, err
	}
	return out.has(ks, got), nil
}

// confirmClassic asks a classic node for the last key added: classic adds
// get no reply, and an add to a node that is down must not pass in
// silence.
func confirmClassic(ctx context.Context, c *client.Client, last string) error {
	got, err := c.Has(ctx, last)
	switch {
	case err != nil:
		return fmt.Errorf("the add is not confirmed (classic adds get no reply, and a has of the last key got none): %w", err)
	case !got[0]:
		return fmt.Errorf("the add is not confirmed: a has of the last key, %q, answers false", last)
	}
	return nil
}

// warnCapacity prints one line on stderr if the node reports the filter
// added to (its own, or the one -f names) past its capacity or its
// false-positive target. A failed ping says nothing: the adds are done.
func warnCapacity(ctx context.Context, c *client.Client, o options, stderr io.Writer) {
	p, err := c.Ping(ctx)
	if err != nil {
		return
	}
	switch {
	case p.OverCapacity:
		fmt.Fprintf(stderr, "rmbd-cli: warning: %s's filter %q holds more keys than it was sized for: has answers true for more absent keys than it should (see the README, Sizing)\n", o.addr, c.FilterName())
	case p.FPHigh:
		fmt.Fprintf(stderr, "rmbd-cli: warning: %s's filter %q answers true for absent keys over twice as often as it was sized for (see the README, Sizing)\n", o.addr, c.FilterName())
	}
}
