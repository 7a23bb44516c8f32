// Command client is the Go client example of the README: it adds keys to a
// node, asks for them, test-and-sets two more, and does the same in a
// filter of its own.
//
//	go run ./examples/client [HOST:PORT]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rmbd/rmbd/client"
)

func main() {
	addr := "127.0.0.1:8000"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx, addr, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, w io.Writer) error {
	c, err := client.Dial(ctx, addr) // "127.0.0.1:8000": UDP; client.WithTCP() for TCP
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Add(ctx, "alice", "bob"); err != nil {
		return err
	}
	present, err := c.Has(ctx, "alice", "carol") // [true false]
	if err != nil {
		return err
	}
	fresh, err := c.AddNew(ctx, "bob", "dave") // [false true]: a test-and-set
	if err != nil {
		return err
	}
	fmt.Fprintln(w, present, fresh)

	info, err := c.CreateFilter(ctx, "users", 10_000_000, 0.001)
	if err != nil {
		return err
	}
	users := c.Filter("users")
	if err := users.Add(ctx, "alice"); err != nil {
		return err
	}
	inUsers, err := users.Has(ctx, "alice", "bob") // [true false]: bob is in the default filter only
	if err != nil {
		return err
	}
	fmt.Fprintln(w, info.Name, inUsers)
	return nil
}
