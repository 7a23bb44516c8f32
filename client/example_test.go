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

func ExampleCluster() {
	// A member of a cluster to start from; in real use, any one of them.
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	n, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go n.Run(ctx)

	cl, err := client.NewCluster(ctx, n.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	// A filter on 2 members of the cluster: its keys go to one of them.
	if _, err := cl.Seed().CreatePlacedFilter(ctx, "sessions", 100_000, 0.01, client.DefaultExpansion, 2); err != nil {
		log.Fatal(err)
	}
	sessions := cl.Filter("sessions")
	if err := sessions.Add(ctx, "s-1", "s-2"); err != nil {
		log.Fatal(err)
	}
	present, err := sessions.Has(ctx, "s-1", "s-3")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(present)
	// Output: [true false]
}
