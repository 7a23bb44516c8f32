package respserver_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/require"
)

// The RESP listener is tested through real nodes on loopback: Redis's
// own clients (redis-cli, redis-py, go-redis) need real sockets.

// resolver answers "localhost" and nothing else: no test asks the
// system's DNS.
type resolver struct{}

func (resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if host == "localhost" {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// run serves n until stop is called or the test ends.
func run(t *testing.T, n *node.Node) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		require.NoError(t, err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	return stop
}

// startMember runs a clustered node with a RESP listener on loopback and
// a real memberlist until stop is called or the test ends.
func startMember(t *testing.T, cfg node.Config, join ...string) (*node.Node, func()) {
	t.Helper()
	cfg.Listen, cfg.GossipListen, cfg.RESPListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Join, cfg.Resolver = join, resolver{}
	cfg.SyncInterval, cfg.RejoinInterval, cfg.UDPSockets = 20*time.Millisecond, 200*time.Millisecond, 1
	n, err := node.New(cfg)
	require.NoError(t, err)
	return n, run(t, n)
}

// quickLeave is DefaultConfig leaving the cluster without waiting for
// the news to spread.
func quickLeave() node.Config {
	c := node.DefaultConfig()
	c.LeaveTimeout = 20 * time.Millisecond
	return c
}

// waitFor waits, polling, until cond holds over real sockets, or fails
// the test after ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, "timed out waiting for %s", what)
}

// readAllConn reads until the connection closes or its deadline.
func readAllConn(c net.Conn) (string, error) {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		m, err := c.Read(buf)
		b.Write(buf[:m])
		if err != nil {
			return b.String(), err
		}
	}
}
