// Command rmbd-bench drives closed-loop load against an rmbd node and
// reports throughput and latency. It checks what it measures: every has of
// a key it added must answer true, or it exits 1.
//
//	rmbd-bench --addr 127.0.0.1:8000 --clients 16 --duration 10s --op has
//	rmbd-bench serve-null --listen 127.0.0.1:9000   # the ceiling: answers without a filter
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rmbd/rmbd/internal/flagusage"
	"github.com/rmbd/rmbd/internal/version"
	"github.com/rmbd/rmbd/wire"
	"github.com/spf13/pflag"
)

const usageHead = `rmbd-bench — closed-loop load for rmbd.

Usage:
  rmbd-bench [flags]                    drive load against --addr
  rmbd-bench serve-null [--listen ADDR] answer every request at once, with no
                                        filter: the ceiling to compare against

Each client keeps one request in flight over UDP (or --pipeline requests over
TCP with --tcp). For has and mixed, the keys are added first; every has must
answer true or rmbd-bench exits 1. For add, every key is checked afterwards.

Flags:
`

type config struct {
	addr      string
	clients   int
	duration  time.Duration
	op        string
	filter    string
	batch     int
	tcp       bool
	pipeline  int
	keys      int
	keyOffset int
	keySize   int
	classic   bool
	timeout   time.Duration
	jsonOut   bool
	listen    string
	udpSocket int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	null := len(args) > 0 && args[0] == "serve-null"
	if null {
		args = args[1:]
	}
	var c config
	fs := pflag.NewFlagSet("rmbd-bench", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8000", "node to load")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to measure")
	fs.StringVar(&c.op, "op", "has", "has, add or mixed (alternate add and has frames)")
	fs.StringVar(&c.filter, "filter", "", "address the named filter NAME (default: the node's own); create it first, or let --op add create it")
	fs.IntVar(&c.batch, "batch", 1, "keys per frame")
	fs.BoolVar(&c.tcp, "tcp", false, "use TCP, pipelined, instead of UDP")
	fs.IntVar(&c.pipeline, "pipeline", 32, "requests in flight per TCP client")
	fs.IntVar(&c.keys, "keys", 100_000, "distinct keys")
	fs.IntVar(&c.keyOffset, "key-offset", 0, "number of the first key: runs with other offsets use other keys")
	fs.IntVar(&c.keySize, "key-size", 16, "bytes per key (at least 13)")
	fs.BoolVar(&c.classic, "classic", false, "use classic frames (has only, one key per frame)")
	fs.DurationVar(&c.timeout, "timeout", time.Second, "UDP reply timeout; a request that times out counts as lost")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9000", "serve-null: address to answer on")
	fs.IntVar(&c.udpSocket, "udp-sockets", 0, "serve-null: UDP sockets (default GOMAXPROCS)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	help := fs.BoolP("help", "h", false, "show this help")
	_ = fs.MarkHidden("help")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "rmbd-bench: %v (see rmbd-bench --help)\n", err)
		return 2
	}
	if *help {
		fmt.Fprint(stdout, usageHead+flagusage.Usage(fs))
		return 0
	}
	if *showVersion {
		fmt.Fprintf(stdout, "rmbd-bench %s\n", version.String())
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rmbd-bench: unexpected arguments %q (see rmbd-bench --help)\n", fs.Args())
		return 2
	}
	if null {
		if err := serveNull(ctx, c.listen, c.udpSocket, stderr); err != nil {
			fmt.Fprintf(stderr, "rmbd-bench: %v\n", err)
			return 1
		}
		return 0
	}
	if err := c.validate(); err != nil {
		fmt.Fprintf(stderr, "rmbd-bench: %v (see rmbd-bench --help)\n", err)
		return 2
	}
	filterName = c.filter
	res, err := bench(ctx, c, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "rmbd-bench: %v\n", err)
		return 1
	}
	if c.jsonOut {
		json.NewEncoder(stdout).Encode(res)
	} else {
		res.print(stdout)
	}
	if res.Wrong > 0 {
		fmt.Fprintf(stderr, "rmbd-bench: %d answers were wrong\n", res.Wrong)
		return 1
	}
	return 0
}

func (c config) validate() error {
	switch {
	case c.op != "has" && c.op != "add" && c.op != "mixed":
		return fmt.Errorf("--op %q is not has, add or mixed", c.op)
	case c.clients < 1 || c.clients > 4096:
		return fmt.Errorf("--clients %d must be 1..4096", c.clients)
	case c.duration <= 0:
		return errors.New("--duration must be positive")
	case c.batch < 1 || c.batch > wire.MaxBatchKeys:
		return fmt.Errorf("--batch %d must be 1..%d", c.batch, wire.MaxBatchKeys)
	case c.keys < c.batch:
		return fmt.Errorf("--keys %d must be at least --batch", c.keys)
	case c.keyOffset < 0:
		return fmt.Errorf("--key-offset %d must not be negative", c.keyOffset)
	case c.keySize < 13 || c.keySize > wire.MaxClassicKey:
		return fmt.Errorf("--key-size %d must be 13..%d", c.keySize, wire.MaxClassicKey)
	case c.filter != "" && (c.classic || !wire.ValidFilterName(c.filter)):
		return fmt.Errorf("--filter %q: a filter name (1 to 200 bytes, no control characters), not with --classic", c.filter)
	case c.pipeline < 1 || c.pipeline > 4096:
		return fmt.Errorf("--pipeline %d must be 1..4096", c.pipeline)
	case c.timeout <= 0:
		return errors.New("--timeout must be positive")
	case c.classic && (c.op != "has" || c.batch != 1):
		return errors.New("--classic sends classic has frames: one key each, --op has (classic adds have no reply to time)")
	case !c.tcp && !c.classic && wire.BatchSize(c.batch, c.batch*c.keySize) > wire.MaxDatagram:
		return fmt.Errorf("--batch %d of %d-byte keys does not fit a %d-byte datagram; use fewer keys or --tcp",
			c.batch, c.keySize, wire.MaxDatagram)
	}
	return nil
}
