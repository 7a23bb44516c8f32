package client

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func dial(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func keys(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func TestAddHasPingStats(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	for name, opts := range map[string][]Option{"udp": nil, "tcp": {WithTCP()}} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, n.Addr().String(), opts...)
			ctx := context.Background()
			require.NoError(t, c.Add(ctx, "alice", "bob"))
			got, err := c.Has(ctx, "alice", "carol-"+name, "bob")
			require.NoError(t, err)
			assert.Equal(t, []bool{true, false, true}, got)

			fresh, err := c.AddNew(ctx, "alice", "dave-"+name, "dave-"+name)
			require.NoError(t, err)
			assert.Equal(t, []bool{false, true, false}, fresh, "test-and-set, in order")

			p, err := c.Ping(ctx)
			require.NoError(t, err)
			assert.Equal(t, n.Addr().String(), p.Addr)
			assert.Equal(t, n.Filter().Fingerprint(), p.Fingerprint)
			assert.Positive(t, p.RTT)

			stats, err := c.Stats(ctx)
			require.NoError(t, err)
			found := map[string]uint64{}
			for _, s := range stats {
				found[s.Name] = s.Value
			}
			assert.Contains(t, found, "adds")
			assert.Positive(t, found["has_queries"])
		})
	}
}

// Many keys in one call travel in many frames; every answer comes back in
// order.
func TestLargeCallsAreBatched(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	frames := func() uint64 { return n.Stats().Count(counter.UDPFrames) + n.Stats().Count(counter.TCPFrames) }
	for name, opts := range map[string][]Option{"udp": nil, "tcp": {WithTCP()}} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, n.Addr().String(), opts...)
			before := frames()
			in := keys("big-"+name, 20_000)
			require.NoError(t, c.Add(context.Background(), in...))
			got, err := c.Has(context.Background(), append(in, keys("absent-"+name, 100)...)...)
			require.NoError(t, err)
			for i := range in {
				require.True(t, got[i], "key %d", i)
			}
			absent := 0
			for _, v := range got[len(in):] {
				if !v {
					absent++
				}
			}
			assert.Greater(t, absent, 90, "at 1%% false positives")
			size := 0
			for _, k := range in {
				size += 2 + len(k)
			}
			limit := map[string]int{"udp": 1400, "tcp": 64 << 10}[name]
			assert.GreaterOrEqual(t, frames()-before, uint64(2*(size/limit)), "frames no larger than the transport allows")
			assert.Less(t, frames()-before, uint64(4*(size/limit+1)), "and well filled")
		})
	}
}

func TestBatchesFitTheTransport(t *testing.T) {
	c := &Client{o: defaults()}
	for _, b := range c.batches(keys("x", 5000)) {
		size := 12
		for _, k := range b {
			size += 2 + len(k)
		}
		assert.LessOrEqual(t, size, 1400)
	}
	long := strings.Repeat("k", 1300)
	assert.Len(t, c.batches([]string{long, long, long}), 3)
}

func TestClassicMode(t *testing.T) {
	n := nodetest.Start(t, node.ClassicConfig())
	for name, opts := range map[string][]Option{"udp": {WithClassic()}, "tcp": {WithClassic(), WithTCP()}} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, n.Addr().String(), opts...)
			ctx := context.Background()
			require.NoError(t, c.Add(ctx, "x-"+name, "y-"+name))
			require.Eventually(t, func() bool {
				got, err := c.Has(ctx, "x-"+name, "y-"+name, "y-"+name)
				return err == nil && got[0] && got[1] && got[2]
			}, 5*time.Second, 5*time.Millisecond)
			got, err := c.Has(ctx, "never-"+name)
			require.NoError(t, err)
			assert.Equal(t, []bool{false}, got)

			err = c.Add(ctx, strings.Repeat("k", 140))
			assert.ErrorIs(t, err, ErrKeyTooLong, "never truncated")
			before := n.Stats().Count(counter.Adds)
			_, err = c.Has(ctx, "ok", strings.Repeat("k", 140))
			assert.ErrorIs(t, err, ErrKeyTooLong)
			assert.Equal(t, before, n.Stats().Count(counter.Adds), "nothing sent")
			_, err = c.Ping(ctx)
			assert.Error(t, err)
		})
	}
}

func TestKeyLimits(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	u := dial(t, n.Addr().String())
	err := u.Add(context.Background(), strings.Repeat("k", 2000))
	assert.ErrorIs(t, err, ErrKeyTooLong, "does not fit a datagram")
	assert.ErrorContains(t, err, "add "+n.Addr().String()+": client: key too long: 2000 bytes")
	tc := dial(t, n.Addr().String(), WithTCP())
	require.NoError(t, tc.Add(context.Background(), strings.Repeat("k", 4096)))
	got, err := tc.Has(context.Background(), strings.Repeat("k", 4096))
	require.NoError(t, err)
	assert.True(t, got[0])
	assert.ErrorIs(t, tc.Add(context.Background(), strings.Repeat("k", 4097)), ErrKeyTooLong)
}

// lossy is a UDP proxy in front of a node that drops every third datagram
// in each direction.
func lossy(t *testing.T, target string) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	up, err := net.Dial("udp", target)
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close(); up.Close() })
	var mu sync.Mutex
	var client net.Addr
	go func() {
		buf := make([]byte, 65536)
		for i := 0; ; i++ {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			client = from
			mu.Unlock()
			if i%3 != 0 {
				up.Write(buf[:n])
			}
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for i := 0; ; i++ {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			to := client
			mu.Unlock()
			if i%3 != 1 {
				pc.WriteTo(buf[:n], to)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestUDPRetriesThroughLoss(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	c := dial(t, lossy(t, n.Addr().String()), WithRetryInterval(5*time.Millisecond))
	in := keys("lossy", 3000)
	require.NoError(t, c.Add(context.Background(), in...))
	got, err := c.Has(context.Background(), in...)
	require.NoError(t, err)
	for i := range got {
		require.True(t, got[i])
	}
}

func TestTimeoutAndUnreachable(t *testing.T) {
	// A socket that reads and never answers: a black hole.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hole.Close()
	c := dial(t, hole.LocalAddr().String(), WithRetryInterval(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Has(ctx, "x")
	assert.ErrorIs(t, err, ErrTimeout)
	var oe *OpError
	require.ErrorAs(t, err, &oe)
	assert.True(t, oe.Timeout())
	assert.Equal(t, "has", oe.Op)

	// WithTimeout bounds calls whose context has none.
	c2 := dial(t, hole.LocalAddr().String(), WithTimeout(50*time.Millisecond))
	assert.ErrorIs(t, c2.Add(context.Background(), "x"), ErrTimeout)

	// A closed port: the host says so, and the client says unreachable.
	addr := hole.LocalAddr().String()
	hole.Close()
	c3 := dial(t, addr)
	_, err = c3.Ping(context.Background())
	assert.ErrorIs(t, err, ErrUnreachable)
	_, err = Dial(context.Background(), addr, WithTCP())
	assert.ErrorIs(t, err, ErrUnreachable)
}

func TestBadAddressAndOptions(t *testing.T) {
	_, err := Dial(context.Background(), "nohostport")
	assert.ErrorContains(t, err, "bad address")
	_, err = Dial(context.Background(), "127.0.0.1:1", WithWindow(0))
	assert.ErrorContains(t, err, "invalid option")
	n := nodetest.Start(t, node.DefaultConfig())
	c := dial(t, n.Addr().String())
	_, err = c.Peer(context.Background(), "nope")
	assert.ErrorContains(t, err, "bad address")
	_, err = c.Peer(context.Background(), "h:0")
	assert.ErrorContains(t, err, "port 1..65535")
	_, err = Dial(context.Background(), "127.0.0.1:1", WithClusterKeys(auth.Key{}))
	assert.ErrorIs(t, err, auth.ErrKey)
}

// A peer request is answered: the address is challenged, then verified
// once it answers; asking again says it is a target already.
func TestPeer(t *testing.T) {
	a, b := nodetest.Start(t, node.DefaultConfig()), nodetest.Start(t, node.DefaultConfig())
	for i, opts := range [][]Option{nil, {WithTCP()}} { // in order: UDP first
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c := dial(t, a.Addr().String(), opts...)
			r, err := c.Peer(context.Background(), b.Addr().String())
			require.NoError(t, err)
			assert.Equal(t, PeerResult{Addr: b.Addr().String(), New: i == 0}, r, "new the first time only")
			require.Len(t, a.Peers(), 1)
			assert.Equal(t, b.Addr(), a.Peers()[0].Addr)
			require.Eventually(t, func() bool { return a.Peers()[0].Verified }, 5*time.Second, 2*time.Millisecond,
				"b answers the challenge")
		})
	}
	c := dial(t, a.Addr().String())
	_, err := c.Peer(context.Background(), a.Addr().String())
	var se *ServerError
	require.ErrorAs(t, err, &se, "a node is not its own peer")
	assert.Equal(t, wire.CodeRefused, se.Code)
}

func newKey(t *testing.T) auth.Key {
	k, err := auth.Generate()
	require.NoError(t, err)
	return k
}

// With a cluster key, a peer request must come sealed with it; the
// answer comes sealed. Without the key, or with another, the node says so.
func TestPeerWithClusterKey(t *testing.T) {
	k := newKey(t)
	cfg := node.DefaultConfig()
	cfg.ClusterKeys = []auth.Key{k}
	a, b := nodetest.Start(t, cfg), nodetest.Start(t, cfg)
	for name, opts := range map[string][]Option{"udp": nil, "tcp": {WithTCP()}} {
		t.Run(name, func(t *testing.T) {
			var se *ServerError
			_, err := dial(t, a.Addr().String(), opts...).Peer(context.Background(), b.Addr().String())
			require.ErrorAs(t, err, &se)
			assert.Equal(t, wire.CodeUnsealed, se.Code, "no key")

			_, err = dial(t, a.Addr().String(), append(opts, WithClusterKeys(newKey(t)))...).Peer(context.Background(), b.Addr().String())
			require.ErrorAs(t, err, &se)
			assert.Equal(t, wire.CodeRefused, se.Code, "another key")
			assert.Contains(t, se.Msg, "key this node does not have")

			r, err := dial(t, a.Addr().String(), append(opts, WithClusterKeys(newKey(t), k))...).Peer(context.Background(), b.Addr().String())
			require.ErrorAs(t, err, &se, "the first key signs: this one is not the node's")

			keyed := dial(t, a.Addr().String(), append(opts, WithClusterKeys(k))...)
			r, err = keyed.Peer(context.Background(), b.Addr().String())
			require.NoError(t, err)
			assert.Equal(t, b.Addr().String(), r.Addr)
			// Sealed admin requests whose answers are larger than a datagram
			// the request may be: over TCP, sealed both ways.
			st, err := dial(t, a.Addr().String(), append(opts, WithClusterKeys(k))...).Stats(context.Background())
			require.NoError(t, err, "a fresh client: its first request learns the node's id")
			assert.NotEmpty(t, st)
			_, err = keyed.CreateFilter(context.Background(), "sealed", 1000, 0.01)
			require.NoError(t, err)
			p, err := dial(t, a.Addr().String(), opts...).Ping(context.Background())
			require.NoError(t, err)
			assert.True(t, p.Authenticated)
			assert.NotEmpty(t, p.Build)
		})
	}
	// A keyless node says it has no key.
	plain := nodetest.Start(t, node.DefaultConfig())
	_, err := dial(t, plain.Addr().String(), WithClusterKeys(k)).Peer(context.Background(), b.Addr().String())
	var se *ServerError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Msg, "no cluster key")
	p, err := dial(t, plain.Addr().String()).Ping(context.Background())
	require.NoError(t, err)
	assert.False(t, p.Authenticated)
}

// Over UDP an answer larger than the request is refused ("use TCP"); the
// client asks again over TCP, and the call succeeds.
func TestLargeAnswersComeOverTCP(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	c := dial(t, n.Addr().String(), WithMaxDatagram(64))
	stats, err := c.Stats(context.Background())
	require.NoError(t, err)
	assert.Greater(t, len(stats), 10)
	assert.Equal(t, uint64(1), n.Stats().Count(counter.UDPRepliesCut), "the padded datagram was too small")
	assert.Positive(t, n.Stats().Count(counter.TCPFrames), "then TCP")

	before := n.Stats().Count(counter.UDPRepliesCut)
	_, err = dial(t, n.Addr().String()).Ping(context.Background())
	require.NoError(t, err)
	assert.Equal(t, before, n.Stats().Count(counter.UDPRepliesCut), "padded to 1,400 bytes, a pong fits")
}

func TestConcurrentUse(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	for name, opts := range map[string][]Option{"udp": nil, "tcp": {WithTCP()}} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, n.Addr().String(), opts...)
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ks := keys(fmt.Sprint(name, g), 200)
					if err := c.Add(context.Background(), ks...); err != nil {
						t.Error(err)
						return
					}
					got, err := c.Has(context.Background(), ks...)
					if err != nil {
						t.Error(err)
						return
					}
					for i, v := range got {
						if !v {
							t.Errorf("%s lost", ks[i])
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	warm := dial(t, n.Addr().String())
	_, err := warm.Ping(context.Background()) // the node's goroutines are all up
	require.NoError(t, err)
	// The node's side of a closed connection ends when it reads EOF: the
	// node's goroutine, not the client's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/rmbd/rmbd/node.(*Node).serveConn"))
	for _, opts := range [][]Option{nil, {WithTCP()}} {
		c, err := Dial(context.Background(), n.Addr().String(), opts...)
		require.NoError(t, err)
		require.NoError(t, c.Add(context.Background(), keys("leak", 500)...))
		require.NoError(t, c.Close())
		_, err = c.Has(context.Background(), "x")
		assert.ErrorIs(t, err, ErrClosed)
		assert.NoError(t, c.Close(), "Close twice is fine")
	}
}

// The node closes idle connections; the client finds out on its next call
// and sends it again on a new connection, so the call succeeds.
func TestTCPReconnects(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.IdleTimeout = 20 * time.Millisecond
	n := nodetest.Start(t, cfg)
	c := dial(t, n.Addr().String(), WithTCP())
	require.NoError(t, c.Add(context.Background(), "a"))
	for range 5 {
		require.Eventually(t, func() bool { return n.Stats().OpenConns == 0 }, 5*time.Second, 2*time.Millisecond,
			"the node closes the idle connection")
		got, err := c.Has(context.Background(), "a")
		require.NoError(t, err, "the call dials again")
		assert.True(t, got[0])
	}
	assert.GreaterOrEqual(t, n.Stats().Count(counter.TCPConns), uint64(6), "a new connection each time")
}

// Named filters through the client: created, used, described, listed,
// dropped; a Filter client shares its parent's connection.
func TestNamedFilters(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	for _, opts := range [][]Option{nil, {WithTCP()}} {
		c := dial(t, n.Addr().String(), opts...)
		ctx := context.Background()
		name := fmt.Sprint("users-", len(opts))
		info, err := c.CreateFilter(ctx, name, 20_000, 0.001)
		require.NoError(t, err)
		assert.Equal(t, name, info.Name)
		assert.Equal(t, uint64(20_000), info.Capacity)
		assert.Positive(t, info.Bytes)

		users := c.Filter(name)
		require.NoError(t, users.Add(ctx, keys("u", 2000)...))
		got, err := users.Has(ctx, keys("u", 2000)...)
		require.NoError(t, err)
		for i, ok := range got {
			require.True(t, ok, "key %d", i)
		}
		fresh, err := users.AddNew(ctx, "u-0", "brand new")
		require.NoError(t, err)
		assert.Equal(t, []bool{false, true}, fresh)
		def, err := c.Has(ctx, "u-0")
		require.NoError(t, err)
		assert.Equal(t, []bool{false}, def, "the default filter is another")

		_, err = c.CreateFilter(ctx, name, 5, 0.5)
		var se *ServerError
		require.ErrorAs(t, err, &se)
		assert.Contains(t, se.Error(), "capacity 20000")

		all, err := c.Filters(ctx)
		require.NoError(t, err)
		var names []string
		for _, f := range all {
			names = append(names, f.Name)
		}
		assert.Contains(t, names, "default")
		assert.Contains(t, names, name)

		require.NoError(t, c.DropFilter(ctx, name))
		_, err = c.DescribeFilter(ctx, name)
		assert.ErrorAs(t, err, &se)
		got, err = users.Has(ctx, "u-0")
		require.NoError(t, err)
		assert.Equal(t, []bool{false}, got)
	}
	c := dial(t, n.Addr().String(), WithClassic())
	assert.ErrorContains(t, c.Filter("x").Add(context.Background(), "k"), "classic nodes hold one filter")
}

// With a cluster key, the requests an admin makes — filters, stats,
// members — go sealed, so that a client holding the key is an admin
// wherever it connects from; without one they go plain.
func TestAdminRequestsGoSealed(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	calls := map[string]func(c *Client){
		"create":  func(c *Client) { c.CreateFilter(context.Background(), "f", 1000, 0.01) },
		"drop":    func(c *Client) { c.DropFilter(context.Background(), "f") },
		"stats":   func(c *Client) { c.Stats(context.Background()) },
		"members": func(c *Client) { c.Members(context.Background()) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			// first is the type of the first datagram the call sends.
			first := func(opts ...Option) wire.Type {
				c := dial(t, pc.LocalAddr().String(), append(opts, WithTimeout(50*time.Millisecond))...)
				go call(c)
				buf := make([]byte, 65536)
				pc.SetReadDeadline(time.Now().Add(10 * time.Second))
				for {
					n, _, err := pc.ReadFrom(buf)
					require.NoError(t, err)
					if n > 0 {
						return wire.Type(buf[0])
					}
				}
			}
			assert.Equal(t, wire.TypeSealed, first(WithClusterKeys(newKey(t))))
			assert.NotEqual(t, wire.TypeSealed, first())
		})
	}
}
