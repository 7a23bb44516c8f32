package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/node"
)

func Example() {
	// A node to talk to; in real use it is already running somewhere.
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	n, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go n.Run(ctx)

	c, err := client.Dial(ctx, n.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Add(ctx, "alice", "bob"); err != nil {
		log.Fatal(err)
	}
	present, err := c.Has(ctx, "alice", "bob", "carol")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(present)

	// AddNew is a test-and-set: true for keys the node had not seen.
	fresh, _ := c.AddNew(ctx, "bob", "dave")
	fmt.Println(fresh)
	// Output:
	// [true true false]
	// [false true]
}
