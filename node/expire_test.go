package node_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expireOp sends an expire request and returns the expiry, or the error.
func expireOp(t *testing.T, u *station, n *node.Node, q wire.ExpireRequest) (wire.Expiry, *wire.ErrorFrame) {
	t.Helper()
	q.Pad = 1400
	req, err := wire.AppendExpireRequest(nil, q)
	require.NoError(t, err)
	reply := u.ask(n.Addr(), req)
	if wire.Type(reply[0]) == wire.TypeError {
		e, err := wire.DecodeError(reply)
		require.NoError(t, err)
		return wire.Expiry{}, &e
	}
	x, err := wire.DecodeExpiry(reply)
	require.NoError(t, err)
	return x, nil
}

// TestExpireEverywhere: EXPIRE f 5 through one member of three drops f on
// every member within a second of its deadline, and not before.
func TestExpireEverywhere(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		ns := tn.cluster3(node.DefaultConfig())
		u := tn.station()
		for _, name := range []string{"f", "g"} {
			_, e := filterOp(t, u, ns[0], create(name, 1000, 0.01))
			require.Nil(t, e)
			tn.everywhere(name, false, ns...)
		}

		x, e := expireOp(t, u, ns[0], wire.ExpireRequest{ReqID: 1, Op: wire.ExpireAsk, Name: []byte("f")})
		require.Nil(t, e)
		assert.Zero(t, x.Deadline, "none yet")
		_, e = expireOp(t, u, ns[0], wire.ExpireRequest{ReqID: 2, Op: wire.ExpireAsk, Name: []byte("nope")})
		require.NotNil(t, e)
		assert.Contains(t, string(e.Msg), "no filter")
		_, e = expireOp(t, u, ns[0], wire.ExpireRequest{ReqID: 3, Op: wire.ExpireSet, Name: []byte("default"), Deadline: 1})
		require.NotNil(t, e)

		deadline := time.Now().Add(5 * time.Second)
		x, e = expireOp(t, u, ns[1], wire.ExpireRequest{ReqID: 4, Op: wire.ExpireSet, Name: []byte("f"), Deadline: deadline.UnixMilli()})
		require.Nil(t, e)
		assert.Equal(t, deadline.UnixMilli(), x.Deadline)
		tn.until("the deadline on every member", 5*time.Second, func() bool { // it travels with the catalog
			d, _ := ns[2].Registry().Deadline("f")
			return !d.IsZero()
		}, ns...)
		x, e = expireOp(t, u, ns[2], wire.ExpireRequest{ReqID: 5, Op: wire.ExpireAsk, Name: []byte("f")})
		require.Nil(t, e)
		assert.Equal(t, deadline.UnixMilli(), x.Deadline)
		// g expires too, through another member.
		x, e = expireOp(t, u, ns[0], wire.ExpireRequest{ReqID: 6, Op: wire.ExpireSetIn, Name: []byte("g"), Deadline: time.Until(deadline).Milliseconds()})
		require.Nil(t, e)
		assert.Equal(t, deadline.UnixMilli(), x.Deadline, "in so many ms by the node's clock")

		for time.Now().Before(deadline.Add(-300 * time.Millisecond)) {
			<-time.After(200 * time.Millisecond)
			tn.round(ns...)
			for i, n := range ns {
				require.NotEmpty(t, n.Registry().Lookup([]byte("f")), "n%d dropped f before its deadline", i)
			}
		}
		tn.until("f gone everywhere", 2*time.Second, func() bool {
			for _, n := range ns {
				if len(n.Registry().Lookup([]byte("f"))) > 0 {
					return false
				}
			}
			return true
		}, ns...)
		late := time.Since(deadline)
		assert.LessOrEqual(t, late, time.Second, "f gone from every member %v after its deadline", late)
		t.Logf("f gone from every member %v after its deadline", late)
		for _, n := range ns {
			assert.Empty(t, n.Registry().Lookup([]byte("g")))
		}
	})
}

// TestExpireIsAnAdmins: a reader may ask for a deadline; setting one, at a
// time or in so many ms, is an admin's; a source that may not read may
// not ask.
func TestExpireIsAnAdmins(t *testing.T) {
	tn := newNet(t)
	cfg := node.DefaultConfig()
	cfg.AllowRead = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	n := tn.node(cfg)
	u, reader, stranger := tn.station(), tn.remote(), tn.stationAt(netip.MustParseAddrPort("198.51.100.1:9000"))
	_, e := filterOp(t, u, n, create("f", 1000, 0.01))
	require.Nil(t, e)

	_, e = expireOp(t, reader, n, wire.ExpireRequest{ReqID: 1, Op: wire.ExpireAsk, Name: []byte("f")})
	assert.Nil(t, e, "a reader may ask")
	for _, op := range []uint8{wire.ExpireSet, wire.ExpireSetIn} {
		_, e = expireOp(t, reader, n, wire.ExpireRequest{ReqID: 2, Op: op, Name: []byte("f"), Deadline: 1})
		require.NotNil(t, e, "op %d", op)
		assert.Equal(t, wire.CodeForbidden, e.Code, "op %d", op)
	}
	_, e = expireOp(t, stranger, n, wire.ExpireRequest{ReqID: 3, Op: wire.ExpireAsk, Name: []byte("f")})
	require.NotNil(t, e)
	assert.Equal(t, wire.CodeForbidden, e.Code)
	assert.NotEmpty(t, n.Registry().Lookup([]byte("f")), "nobody but an admin dropped it")
	x, e := expireOp(t, u, n, wire.ExpireRequest{ReqID: 4, Op: wire.ExpireSetIn, Name: []byte("f"), Deadline: 0})
	require.Nil(t, e, "loopback is an admin")
	assert.Zero(t, x.Deadline, "due at once")
	assert.Empty(t, n.Registry().Lookup([]byte("f")))
}

// TestExpireAcrossARestart: EXPIRE f 5 through one of three members; a
// member with a data directory stops a second later and starts again
// before the deadline: its catalog kept the deadline, and f goes from it
// too within a second of the deadline. A member down at the deadline
// drops f as it starts.
func TestExpireAcrossARestart(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		dirB, dirC := t.TempDir(), t.TempDir()
		a := tn.member(node.DefaultConfig())
		b, stopB := tn.memberAt(netAddr(2), durable(dirB, store.FsyncAlways), a)
		c, stopC := tn.memberAt(netAddr(3), durable(dirC, store.FsyncAlways), a)
		tn.joined(a, b, c)
		u := tn.station()
		_, e := filterOp(t, u, a, create("f", 1000, 0.01))
		require.Nil(t, e)
		tn.everywhere("f", false, a, b, c)
		deadline := time.Now().Add(5 * time.Second)
		_, e = expireOp(t, u, a, wire.ExpireRequest{ReqID: 1, Op: wire.ExpireSet, Name: []byte("f"), Deadline: deadline.UnixMilli()})
		require.Nil(t, e)
		tn.until("the deadline on every member", 2*time.Second, func() bool {
			for _, n := range []*node.Node{b, c} {
				if d, _ := n.Registry().Deadline("f"); d.IsZero() {
					return false
				}
			}
			return true
		}, a, b, c)
		stopB()
		stopC()
		<-time.After(time.Second)
		b, _ = tn.memberAt(netAddr(2), durable(dirB, store.FsyncAlways), a) // back before the deadline
		require.NotEmpty(t, b.Registry().Lookup([]byte("f")), "f lives until its deadline")
		d, _ := b.Registry().Deadline("f")
		assert.Equal(t, deadline.UnixMilli(), d.UnixMilli(), "the deadline kept in its CATALOG")

		tn.until("f gone from a and the restarted b", 5*time.Second, func() bool {
			return len(a.Registry().Lookup([]byte("f"))) == 0 && len(b.Registry().Lookup([]byte("f"))) == 0
		}, a, b)
		late := time.Since(deadline)
		assert.LessOrEqual(t, late, time.Second, "gone %v after its deadline", late)
		t.Logf("f gone from a and the restarted b %v after its deadline", late)

		<-time.After(2 * time.Second) // c down at the deadline
		c, _ = tn.memberAt(netAddr(3), durable(dirC, store.FsyncAlways), a)
		assert.Empty(t, c.Registry().Lookup([]byte("f")), "dropped as it starts")
	})
}
