// Command rmbd runs one rmbd node. See `rmbd --help`.
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

	"github.com/rmbd/rmbd/node"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main with its world passed in; it returns the exit status: 0 after
// a clean shutdown, 1 when the node cannot start, 2 on bad usage.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keygen" {
		return keygen(args[1:], stdout, stderr)
	}
	o, fs, err := parseArgs(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "rmbd: %s (see rmbd --help)\n", oneLine(err))
		return 2
	}
	if o.help {
		fmt.Fprint(stdout, usage(fs))
		return 0
	}
	n, err := node.New(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "rmbd: %s\n", oneLine(err))
		if errors.Is(err, node.ErrConfig) {
			return 2
		}
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.keyFile != "" {
		warnLaxKeyFile(o.cfg.Logger, o.keyFile)
		defer reloadOnHangup(n, o.keyFile, o.cfg.Logger)()
	}
	if err := n.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "rmbd: %s\n", oneLine(err))
		return 1
	}
	return 0
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
