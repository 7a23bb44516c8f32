// Command rmbd runs one rmbd node. See `rmbd --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/metrics"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
)

func main() {
	os.Exit(run(os.Args[1:], osEnvironment(), os.Stdout, os.Stderr))
}

// run is main with its world passed in; it returns the exit status: 0 after
// a clean shutdown; 2 when the start is refused for something the operator
// fixes — a bad flag, or a data directory that holds another filter, is
// locked by another node, is damaged or misses files (see --repair); 1
// when the node fails otherwise (a port in use, a failure while running).
func run(args []string, env environment, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keygen" {
		return keygen(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(args[1:], env, stdout, stderr)
	}
	o, fs, err := parseArgs(args, env)
	if err != nil {
		fmt.Fprintf(stderr, "rmbd: %s (see rmbd --help)\n", userMessage(err))
		return 2
	}
	if o.help {
		fmt.Fprint(stdout, usage(fs))
		return 0
	}
	if o.version {
		fmt.Fprintf(stdout, "rmbd %s\n", version.String())
		return 0
	}
	for _, k := range o.unknownEnv {
		o.cfg.Logger.Warn("ignoring an environment variable that sets nothing; misspelled? (see rmbd --help for RMBD_<FLAG>)", "variable", k)
	}
	var msrv *metrics.Server
	if o.metricsListen != "" {
		if msrv, err = metrics.Listen(o.metricsListen); err != nil {
			fmt.Fprintf(stderr, "rmbd: metrics listener: %s\n", userMessage(err))
			return 1
		}
	}
	n, err := node.New(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "rmbd: %s\n", userMessage(err))
		if msrv != nil {
			msrv.Close()
		}
		if refused(err) {
			return 2
		}
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if msrv != nil {
		done, err := serveMetrics(ctx, n, msrv, o)
		if err != nil { // a node whose figures have no metric: a build defect
			fmt.Fprintf(stderr, "rmbd: %s\n", userMessage(err))
			return 1
		}
		defer done()
	}
	if o.keyFile != "" {
		warnLaxKeyFile(o.cfg.Logger, o.keyFile)
		defer reloadOnHangup(n, o.keyFile, o.cfg.Logger)()
	}
	if err := n.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "rmbd: %s\n", userMessage(err))
		return 1
	}
	return 0
}

// serveMetrics serves /metrics, /healthz and /readyz (and with --pprof
// the profiles) until the returned func is called, after the node stops.
func serveMetrics(ctx context.Context, n *node.Node, srv *metrics.Server, o *options) (stop func(), err error) {
	h, err := metrics.Handler(n, metrics.Options{Pprof: o.pprof, Admin: n.IsAdmin, Logger: o.cfg.Logger})
	if err != nil {
		srv.Close()
		return nil, err
	}
	o.cfg.Logger.Info("metrics and health over HTTP", "addr", srv.Addr().String(), "pprof", o.pprof)
	if a, err := netip.ParseAddrPort(srv.Addr().String()); err == nil && !a.Addr().Unmap().IsLoopback() {
		o.cfg.Logger.Warn("metrics are public: anyone who can reach --metrics-listen reads the node's figures (filter names, peers, counts; never keys); "+
			"bind it to loopback or a private address if they should not", "addr", srv.Addr().String())
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx)) // up until the node has stopped
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(sctx, h); err != nil {
			o.cfg.Logger.Error("metrics listener failed", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// refused reports whether a start failed on something the operator
// fixes: a configuration, or the data directory's state.
func refused(err error) bool {
	for _, e := range []error{node.ErrConfig, store.ErrMismatch, store.ErrLocked, store.ErrDamaged, store.ErrMissing, store.ErrVersion} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// internalPrefix matches the package names Go errors carry ("node: ",
// "registry: ") where a message or a part of it begins: the user reads
// what went wrong, not where. ("another filter: x" is not a prefix.)
var internalPrefix = regexp.MustCompile(`(^|: |; )(node|filter|store|registry|membership|auth|wire|gossip|sockets|bufpool|metrics): `)

// userMessage is err as one line for a person: without newlines, tabs or
// package prefixes.
func userMessage(err error) string {
	s := internalPrefix.ReplaceAllString(err.Error(), "$1")
	s = internalPrefix.ReplaceAllString(s, "$1") // prefixes that followed the ones removed
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	return strings.ReplaceAll(s, "invalid config: ", "invalid configuration: ")
}
