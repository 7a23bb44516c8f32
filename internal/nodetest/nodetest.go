// Package nodetest starts rmbd nodes for the tests of packages built on
// top of node: on a free loopback port, stopped when the test ends.
package nodetest

import (
	"context"
	"net"
	"net/netip"
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

// Cluster runs size members configured by cfg, joined in a cluster on
// 127.0.0.1 (gossip on free ports too, rounds every 20 ms), until the
// test ends, and returns once each sees them all.
func Cluster(t testing.TB, size int, cfg node.Config) []*node.Node {
	t.Helper()
	cfg.GossipListen, cfg.Resolver = "127.0.0.1:0", loopback{}
	cfg.SyncInterval, cfg.RejoinInterval, cfg.UDPSockets, cfg.LeaveTimeout = 20*time.Millisecond, 200*time.Millisecond, 1, 20*time.Millisecond
	var ns []*node.Node
	for i := range size {
		if i > 0 {
			cfg.Join = []string{ns[0].GossipAddr()}
		}
		ns = append(ns, Start(t, cfg))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		all := true
		for _, n := range ns {
			all = all && len(n.Members()) == size
		}
		if all {
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodetest: %d members not joined after 10 s", size)
		}
	}
}

// loopback resolves addresses and "localhost": no test asks the
// system's DNS.
type loopback struct{}

func (loopback) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if host == "localhost" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
