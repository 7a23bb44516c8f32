package node_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/require"
)

// A testNet runs nodes on an in-memory network (internal/memnet):
// datagrams move only when the test delivers them and gossip rounds
// happen only when it ticks, so a test replays exactly, with no socket
// and no clock. Tests of cluster membership run inside a testing/synctest
// bubble (inBubble), where memberlist runs on the same network and every
// timer of the nodes counts fake time: waiting for the cluster (until)
// costs no wall-clock time.
type testNet struct {
	t        *testing.T
	nw       *memnet.Network
	next     int // nodes on 10.0.0.next
	stations int // stations on 127.0.1.x or 192.0.2.x
	// protect leaves nodes in protected mode when their config asks for
	// it; else it is turned off: the test's nodes listen on 10.0.0.x, and
	// its clients are everywhere.
	protect bool
}

func newNet(t *testing.T) *testNet { return &testNet{t: t, nw: memnet.New(1)} }

// inBubble runs f with a testNet inside a synctest bubble.
func inBubble(t *testing.T, f func(t *testing.T, tn *testNet)) {
	synctest.Test(t, func(t *testing.T) {
		// Cleanups run last first: this one after every node stopped.
		// memberlist's shutdown leaves probes waiting out their timers
		// (its awareness stretches a probe to 8 s); the bubble's clock
		// runs them out, or the bubble would end with them blocked.
		t.Cleanup(func() { <-time.After(20 * time.Second) })
		f(t, newNet(t))
	})
}

// netAddr is the data address of the i'th node of a testNet; gossipAddr
// its memberlist address.
func netAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 8000)
}

func gossipAddr(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr(), 7946) }

// resolver answers "localhost" and "nodeN" names on the test network and
// nothing else: no test asks the system's DNS.
type resolver struct{}

func (resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var i int
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	switch {
	case host == "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case sscanf(host, "node%d", &i):
		return []netip.Addr{netAddr(i).Addr()}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// hostName is the name the test resolver gives n's address.
func hostName(n *node.Node) string { return fmt.Sprintf("node%d", n.Addr().Addr().As4()[3]) }

func sscanf(s, format string, v *int) bool {
	_, err := fmt.Sscanf(s, format, v)
	return err == nil
}

// node runs a node on the next address until the test ends.
func (tn *testNet) node(cfg node.Config) *node.Node {
	tn.next++
	n, _ := tn.nodeAt(netAddr(tn.next), cfg)
	return n
}

// member runs a node on the next address with cluster membership,
// joining seeds (none: it starts the cluster). Inside a bubble only.
func (tn *testNet) member(cfg node.Config, seeds ...*node.Node) *node.Node {
	tn.next++
	n, _ := tn.memberAt(netAddr(tn.next), cfg, seeds...)
	return n
}

// memberAt runs a member at addr until stop is called or the test ends.
func (tn *testNet) memberAt(addr netip.AddrPort, cfg node.Config, seeds ...*node.Node) (*node.Node, func()) {
	tn.t.Helper()
	g, err := tn.nw.Gossip(gossipAddr(addr))
	require.NoError(tn.t, err)
	cfg.GossipListen, cfg.GossipTransport = gossipAddr(addr).String(), g
	if len(seeds) > 0 {
		cfg.Join = nil
	}
	for _, s := range seeds {
		cfg.Join = append(cfg.Join, s.GossipAddr())
	}
	return tn.nodeAt(addr, cfg)
}

// nodeAt runs a node at addr until stop is called or the test ends,
// ticking only when the test says.
func (tn *testNet) nodeAt(addr netip.AddrPort, cfg node.Config) (*node.Node, func()) {
	tn.t.Helper()
	ep, err := tn.nw.Endpoint(addr)
	require.NoError(tn.t, err)
	return tn.nodeOn(ep, cfg)
}

// endpoint opens addr on the network, for a node the test makes itself.
func (tn *testNet) endpoint(addr netip.AddrPort) *memnet.Endpoint {
	ep, err := tn.nw.Endpoint(addr)
	require.NoError(tn.t, err)
	return ep
}

// nodeWith runs a node on ep, which the test keeps to play the socket.
func (tn *testNet) nodeWith(ep *memnet.Endpoint, cfg node.Config) *node.Node {
	n, _ := tn.nodeOn(ep, cfg)
	return n
}

func (tn *testNet) nodeOn(ep *memnet.Endpoint, cfg node.Config) (*node.Node, func()) {
	t := tn.t
	t.Helper()
	cfg.Transport, cfg.Resolver, cfg.ManualTicks = ep, resolver{}, true
	cfg.ProtectedMode = cfg.ProtectedMode && tn.protect
	n, err := node.New(cfg)
	require.NoError(t, err)
	return n, run(t, n)
}

// run serves n until stop is called or the test ends.
func run(t *testing.T, n *node.Node) (stop func()) {
	t.Helper()
	stop, err := tryRun(t, n)
	require.NoError(t, err)
	return stop
}

// tryRun is run returning the error Run fails with at start.
func tryRun(t *testing.T, n *node.Node) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		return nil, err
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
	return stop, nil
}

// deliver moves datagrams until the network is quiet.
func (tn *testNet) deliver() { tn.nw.Deliver() }

// round ticks every node given, then delivers.
func (tn *testNet) round(ns ...*node.Node) {
	for _, n := range ns {
		n.Tick()
	}
	tn.deliver()
}

// roundsUntil runs rounds until cond holds, at most max; it returns the
// rounds run.
func (tn *testNet) roundsUntil(max int, cond func() bool, ns ...*node.Node) int {
	tn.t.Helper()
	for i := 1; i <= max; i++ {
		tn.round(ns...)
		if cond() {
			return i
		}
	}
	tn.t.Fatalf("condition not met after %d rounds", max)
	return 0
}

// settle lets the background work of a bubble (memberlist, pulls, the
// catalog loop) run until everything waits, delivering the datagrams it
// sends, until the network is quiet. Inside a bubble only.
func (tn *testNet) settle() {
	for {
		synctest.Wait()
		if tn.nw.Deliver() == 0 {
			return
		}
	}
}

// until passes fake time in steps of a gossip interval, ticking ns and
// settling after each, until cond holds; past limit the test fails.
// Inside a bubble only: the time is the bubble's, not the wall clock's.
func (tn *testNet) until(what string, limit time.Duration, cond func() bool, ns ...*node.Node) {
	tn.t.Helper()
	const step = 200 * time.Millisecond
	for waited := time.Duration(0); ; waited += step {
		tn.settle()
		if cond() {
			return
		}
		if waited > limit {
			tn.t.Fatalf("%s: not after %v", what, limit)
		}
		<-time.After(step) // fake time: the bubble's clock moves once all else waits
		tn.round(ns...)
	}
}

// station is a plain address on the test network, e.g. a client or a
// peer that is not an rmbd node: what it receives waits in its inbox.
type station struct {
	tn    *testNet
	addr  netip.AddrPort
	inbox []datagram
	// answer, if set, is called for each datagram instead of queueing it.
	answer func(from netip.AddrPort, frame []byte)
	// answerChallenges answers classic has frames as a peer answers a
	// challenge, instead of queueing them.
	answerChallenges bool
	// settled, if set, lets the bubble settle before ask takes the reply
	// (one sent from a goroutine of its own).
	settled func()
}

type datagram struct {
	from  netip.AddrPort
	frame []byte
}

// station returns a station on loopback (127.0.1.x): an operator's tool
// on the node's host, which may make admin requests.
func (tn *testNet) station() *station {
	tn.stations++
	return tn.stationAt(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(tn.stations)}), 9000))
}

// remote returns a station elsewhere (192.0.2.x): a client, or an
// attacker, that may not.
func (tn *testNet) remote() *station {
	tn.stations++
	return tn.stationAt(netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(tn.stations)}), 9000))
}

func (tn *testNet) stationAt(addr netip.AddrPort) *station {
	h := &station{tn: tn, addr: addr}
	tn.nw.Handle(h.addr, func(from netip.AddrPort, frame []byte) {
		if h.answer != nil {
			h.answer(from, frame)
			return
		}
		if h.answerChallenges && len(frame) == wire.ClassicKeyFrameSize && wire.Type(frame[0]) == wire.TypeHas {
			key, _ := wire.DecodeClassicKey(frame, wire.TypeHas)
			reply, _ := wire.AppendClassicHasReply(nil, key, false)
			h.tn.nw.Send(h.addr, from, reply) // as the original rmbd answers a has
			return
		}
		h.inbox = append(h.inbox, datagram{from, append([]byte(nil), frame...)})
	})
	return h
}

func (h *station) send(to netip.AddrPort, frame []byte) { h.tn.nw.Send(h.addr, to, frame) }

// take empties the inbox.
func (h *station) take() []datagram {
	in := h.inbox
	h.inbox = nil
	return in
}

// ask sends frame, delivers, and returns the one reply, which must come
// from the node's address.
func (h *station) ask(to netip.AddrPort, frame []byte) []byte {
	t := h.tn.t
	t.Helper()
	h.send(to, frame)
	h.tn.deliver()
	if h.settled != nil {
		h.settled()
	}
	in := h.take()
	require.Len(t, in, 1, "one reply")
	require.Equal(t, to, in[0].from, "replies leave from the listening address")
	return in[0].frame
}

// dial opens a stream from h to addr.
func (h *station) dial(to netip.AddrPort) net.Conn {
	c, err := h.tn.nw.Dial(context.Background(), h.addr, to)
	require.NoError(h.tn.t, err)
	h.tn.t.Cleanup(func() { c.Close() })
	return c
}

func classicAdd(t *testing.T, key string) []byte {
	b, err := wire.AppendClassicAdd(nil, []byte(key))
	require.NoError(t, err)
	return b
}

func classicHas(t *testing.T, key string) []byte {
	b, err := wire.AppendClassicHas(nil, []byte(key))
	require.NoError(t, err)
	return b
}

func peerFrame(t *testing.T, to netip.AddrPort) []byte {
	b, err := wire.AppendClassicPeer(nil, []byte(to.Addr().String()), to.Port())
	require.NoError(t, err)
	return b
}

// hasOn asks node n whether key is present.
func hasOn(t *testing.T, h *station, n *node.Node, key string) bool {
	t.Helper()
	k, present, err := wire.DecodeClassicHasReply(h.ask(n.Addr(), classicHas(t, key)))
	require.NoError(t, err)
	require.Equal(t, key, string(k))
	return present
}

// addKeys adds keys to n in acknowledged batches.
func addKeys(t *testing.T, u *station, n *node.Node, keys [][]byte) {
	for i := 0; i < len(keys); i += 100 {
		f, err := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), wire.FlagAck, keys[i:min(i+100, len(keys))])
		require.NoError(t, err)
		u.ask(n.Addr(), f)
	}
}

func makeKeys(prefix string, count int) [][]byte {
	keys := make([][]byte, count)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return keys
}

func makeKeyStrings(prefix string, count int) []string {
	keys := make([]string, count)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return keys
}

// namedHasAll reports whether every key is in some live version of name
// on n.
func namedHasAll(n *node.Node, name string, keys []string) bool {
	vs := n.Registry().Lookup([]byte(name))
	if len(vs) == 0 {
		return false
	}
	for _, k := range keys {
		if !vs.Has([]byte(k)) {
			return false
		}
	}
	return true
}

// hasAll reports whether n's default filter holds every key.
func hasAll(n *node.Node, keys [][]byte) bool {
	for _, k := range keys {
		if !n.Filter().Has(k) {
			return false
		}
	}
	return true
}

// refresh lets the nodes' background loops refresh their filters'
// statistics and alarms: a second of fake time. Inside a bubble only.
func (tn *testNet) refresh() {
	<-time.After(1100 * time.Millisecond)
	tn.settle()
}

// logBook keeps a node's logs for a test to read.
type logBook struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBook) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns the lines holding s.
func (l *logBook) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBook) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// ping asks n (the filter name, unless empty) for a pong.
func ping(t *testing.T, u *station, n *node.Node, name string) wire.Ping {
	t.Helper()
	b, _ := wire.AppendPing(nil, wire.Ping{Type: wire.TypePing, ReqID: 1, Version: wire.ProtocolVersion})
	b, _ = wire.PadFrame(b, 0, 400) // a pong may be as large as its ping
	if name != "" {
		var err error
		b, err = wire.AppendNamed(nil, name, b)
		require.NoError(t, err)
	}
	p, err := wire.DecodePing(u.ask(n.Addr(), b))
	require.NoError(t, err)
	return p
}
