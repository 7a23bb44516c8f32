// Package nodetest starts rmbd nodes for the tests of packages built on
// top of node: on a free loopback port, stopped when the test ends.
package nodetest

import (
	"context"
	"testing"
	"time"

	"github.com/rmbd/rmbd/node"
)

// Start runs a node configured by cfg on 127.0.0.1, on a free port, until
// the test ends.
func Start(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	for deadline := time.Now().Add(5 * time.Second); !n.Health().Serving; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // every goroutine of Run started: tests that count goroutines see them all
			t.Fatalf("nodetest: node not serving after 5 s: %s", n.Health().Why)
		}
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("nodetest: node stopped with %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("nodetest: node did not stop")
		}
	})
	return n
}
