package node

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// start runs a node on a free loopback port until the test ends.
func start(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.UDPSockets = 2
	n, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(2 * time.Second):
			t.Error("node did not stop")
		}
	})
	return n
}

func fast(cfg Config) Config {
	cfg.SyncInterval = 10 * time.Millisecond
	return cfg
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// udpClient is a test UDP socket on loopback.
type udpClient struct {
	t *testing.T
	c *net.UDPConn
}

func newUDP(t *testing.T) *udpClient {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &udpClient{t, c}
}

func (u *udpClient) addr() netip.AddrPort { return u.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (u *udpClient) send(to netip.AddrPort, frame []byte) {
	_, err := u.c.WriteToUDPAddrPort(frame, to)
	require.NoError(u.t, err)
}

// recv reads one datagram, or returns nil after wait.
func (u *udpClient) recv(wait time.Duration) ([]byte, netip.AddrPort) {
	buf := make([]byte, 65536)
	u.c.SetReadDeadline(time.Now().Add(wait))
	n, from, err := u.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, netip.AddrPort{}
	}
	return buf[:n], from
}

// ask sends frame and waits for the reply.
func (u *udpClient) ask(to netip.AddrPort, frame []byte) []byte {
	u.t.Helper()
	u.send(to, frame)
	reply, from := u.recv(2 * time.Second)
	require.NotNil(u.t, reply, "no reply")
	require.Equal(u.t, to, from, "replies leave from the listening address")
	return reply
}
