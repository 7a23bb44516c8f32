package node_test

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A node listening beyond loopback with no cluster key and no allow rule
// answers loopback alone, and tells everyone else how to configure it;
// its gossip takes no member from beyond loopback either.
func TestProtectedMode(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		tn.protect = true
		var logs logBook
		cfg := node.DefaultConfig()
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		n := tn.member(cfg) // 10.0.0.1, gossip on 10.0.0.1:7946
		require.True(t, n.Protected())
		assert.Equal(t, 1, logs.count("protected mode"), "said once, at start")
		u, r := tn.station(), tn.remote()

		u.send(n.Addr(), classicAdd(t, "k"))
		tn.deliver()
		assert.True(t, hasOn(t, u, n, "k"), "loopback is served")

		r.send(n.Addr(), classicAdd(t, "x"))
		r.send(n.Addr(), classicHas(t, "k"))
		tn.deliver()
		assert.Empty(t, r.take(), "classic frames from beyond loopback: no answer")
		assert.False(t, n.Filter().Has([]byte("x")))

		ping, err := wire.AppendPing(nil, wire.Ping{Type: wire.TypePing, ReqID: 9})
		require.NoError(t, err)
		e, err := wire.DecodeError(r.ask(n.Addr(), ping))
		require.NoError(t, err)
		assert.Equal(t, wire.CodeProtected, e.Code, "a small datagram: the code alone fits")
		padded, _ := wire.PadFrame(ping, 0, 1400)
		e, err = wire.DecodeError(r.ask(n.Addr(), padded))
		require.NoError(t, err)
		assert.Contains(t, string(e.Msg), "--protected-mode=no")
		assert.Contains(t, string(e.Msg), "--cluster-key-file")

		// Over TCP: the whole reason, then the end of the stream.
		c := r.dial(n.Addr())
		go c.Write(ping)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		fr := wire.NewFrameReader(c, 4096)
		e, err = wire.DecodeError(readFrame(t, fr))
		require.NoError(t, err)
		assert.Equal(t, wire.CodeProtected, e.Code)
		assert.Contains(t, string(e.Msg), "protected mode")
		_, err = fr.Next()
		assert.ErrorIs(t, err, io.EOF)
		assert.Equal(t, uint64(5), n.Stats().Count(counter.ProtectedRefused))

		// A member beyond loopback cannot join it.
		m := tn.member(cfg, n)
		<-time.After(30 * time.Second)
		tn.settle()
		assert.Len(t, n.Members(), 1, "gossip from beyond loopback is refused")
		assert.Len(t, m.Members(), 1)
	})
}

// What takes a node out of protected mode: a cluster key, any allow
// rule, --protected-mode=no, or listening on loopback alone.
func TestProtectedModeOff(t *testing.T) {
	tn := newNet(t)
	tn.protect = true
	key, err := auth.Generate()
	require.NoError(t, err)
	lan := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for name, change := range map[string]func(*node.Config){
		"cluster key":  func(c *node.Config) { c.ClusterKeys = []auth.Key{key} },
		"allow":        func(c *node.Config) { c.Allow = lan },
		"allow-read":   func(c *node.Config) { c.AllowRead = lan },
		"allow-admin":  func(c *node.Config) { c.AllowAdmin = lan },
		"auto-create":  func(c *node.Config) { c.AllowCreate = lan },
		"opted out":    func(c *node.Config) { c.ProtectedMode = false },
		"default mode": func(*node.Config) {},
	} {
		cfg := node.DefaultConfig()
		change(&cfg)
		n := tn.node(cfg)
		assert.Equal(t, name == "default mode", n.Protected(), name)
	}
	loop := tn.endpoint(netip.MustParseAddrPort("127.0.0.1:8000"))
	n := tn.nodeWith(loop, node.DefaultConfig())
	assert.False(t, n.Protected(), "loopback alone: nothing to protect")
	cfg := node.DefaultConfig()
	cfg.RESPListen = "0.0.0.0:0"
	n = tn.nodeWith(tn.endpoint(netip.MustParseAddrPort("127.0.0.2:8000")), cfg)
	assert.True(t, n.Protected(), "RESP on every interface")
}
