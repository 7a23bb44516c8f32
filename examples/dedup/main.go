// Command dedup copies stdin to stdout, dropping lines an rmbd node has
// already seen — from this run, an earlier one, or any other client of the
// same cluster.
//
//	dedup [--addr HOST:PORT] < input > output
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rmbd/rmbd/client"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dedup:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("dedup", flag.ContinueOnError)
	addr := fs.String("addr", envOr("RMBD_ADDR", "127.0.0.1:8000"), "rmbd node")
	batch := fs.Int("batch", 4096, "lines per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := client.Dial(ctx, *addr)
	if err != nil {
		return err
	}
	defer c.Close()

	w := bufio.NewWriter(out)
	defer w.Flush()
	sc := bufio.NewScanner(in)
	lines := make([]string, 0, *batch)
	flush := func() error {
		// AddNew is a test-and-set on the node: a line is new exactly once,
		// even with several dedup processes reading at the same time.
		fresh, err := c.AddNew(ctx, lines...)
		if err != nil {
			return err
		}
		for i, l := range lines {
			if fresh[i] {
				fmt.Fprintln(w, l)
			}
		}
		lines = lines[:0]
		return nil
	}
	for sc.Scan() {
		if lines = append(lines, sc.Text()); len(lines) == *batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
