package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/membership"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/require"
)

// A testNet runs nodes on an in-memory network: datagrams move only when
// the test calls deliver, ticks happen only when it calls tick, so every
// test below replays exactly, with no sleeping and no clock.
type testNet struct {
	t        *testing.T
	nw       *memnet.Network
	next     int // nodes on 10.0.0.next
	stations int // stations on 127.0.1.x or 192.0.2.x
}

func newNet(t *testing.T) *testNet { return &testNet{t: t, nw: memnet.New(1)} }

// addr returns the i'th address of the network.
func netAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 8000)
}

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
func hostName(n *Node) string { return fmt.Sprintf("node%d", n.Addr().Addr().As4()[3]) }

func sscanf(s, format string, v *int) bool {
	_, err := fmt.Sscanf(s, format, v)
	return err == nil
}

// node runs a node on the next address until the test ends, ticking only
// when the test says.
func (tn *testNet) node(cfg Config) *Node {
	tn.next++
	n, _ := tn.nodeAt(netAddr(tn.next), cfg)
	return n
}

// nodeAt runs a node at addr until stop is called or the test ends.
func (tn *testNet) nodeAt(addr netip.AddrPort, cfg Config) (n *Node, stop func()) {
	tn.t.Helper()
	ep, err := tn.nw.Endpoint(addr)
	require.NoError(tn.t, err)
	return tn.nodeOn(ep, cfg)
}

// nodeWith runs a node on ep, which the test keeps to play the socket.
func (tn *testNet) nodeWith(ep *memnet.Endpoint, cfg Config) *Node {
	n, _ := tn.nodeOn(ep, cfg)
	return n
}

func (tn *testNet) nodeOn(ep *memnet.Endpoint, cfg Config) (n *Node, stop func()) {
	t := tn.t
	t.Helper()
	cfg.Transport, cfg.Resolver = ep, resolver{}
	n, err := New(cfg)
	require.NoError(t, err)
	n.manualTicks = true
	n.after = func(time.Duration) <-chan time.Time { // no waiting: the test network has no clock
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	return n, run(t, n)
}

// run serves n until stop is called or the test ends.
func run(t *testing.T, n *Node) (stop func()) {
	stop, err := tryRun(t, n)
	require.NoError(t, err)
	return stop
}

// tryRun is run returning the error Run fails with at start.
func tryRun(t *testing.T, n *Node) (stop func(), err error) {
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
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("node did not stop")
		}
	}
	t.Cleanup(stop)
	return stop, nil
}

// deliver moves datagrams until the network is quiet.
func (tn *testNet) deliver() { tn.nw.Deliver() }

// round ticks every node given, then delivers.
func (tn *testNet) round(ns ...*Node) {
	for _, n := range ns {
		n.tick()
	}
	tn.deliver()
}

// roundsUntil runs rounds until cond holds, at most max; it returns the
// rounds run.
func (tn *testNet) roundsUntil(max int, cond func() bool, ns ...*Node) int {
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
func hasOn(t *testing.T, h *station, n *Node, key string) bool {
	t.Helper()
	k, present, err := wire.DecodeClassicHasReply(h.ask(n.Addr(), classicHas(t, key)))
	require.NoError(t, err)
	require.Equal(t, key, string(k))
	return present
}

// join makes every node a member of every other's cluster, as membership
// would report them, with no memberlist involved.
func join(ns ...*Node) {
	for _, a := range ns {
		for _, b := range ns {
			if a != b {
				host{a}.MemberUp(memberOf(b))
			}
		}
	}
}

func memberOf(n *Node) membership.Member {
	return membership.Member{Name: n.Name(), Gossip: n.Addr().Addr().String() + ":7946", Data: n.Addr(), Meta: host{n}.Meta()}
}
