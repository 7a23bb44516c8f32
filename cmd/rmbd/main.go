// Command rmbd runs one rmbd node. See `rmbd --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/metrics"
	"github.com/rmbd/rmbd/node"
)

func main() {
	os.Exit(run(os.Args[1:], osEnvironment(), os.Stdout, os.Stderr))
}

// run is main with its world passed in; it returns the exit status: 0 after
// a clean shutdown, 1 when the node cannot start, 2 on bad usage.
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
		if errors.Is(err, node.ErrConfig) {
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
	h, err := metrics.Handler(n, metrics.Options{Pprof: o.pprof, Logger: o.cfg.Logger})
	if err != nil {
		srv.Close()
		return nil, err
	}
	o.cfg.Logger.Info("metrics and health over HTTP", "addr", srv.Addr().String(), "pprof", o.pprof)
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

// internalPrefix matches the package names Go errors carry ("node: ",
// "filter: "): the user reads what went wrong, not where.
var internalPrefix = regexp.MustCompile(`\b(node|filter|store|membership|auth|wire|gossip|sockets|bufpool|metrics): `)

// userMessage is err as one line for a person: without newlines, tabs or
// package prefixes.
func userMessage(err error) string {
	s := internalPrefix.ReplaceAllString(err.Error(), "")
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	return strings.ReplaceAll(s, "invalid config: ", "invalid configuration: ")
}
