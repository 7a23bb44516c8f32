package node_test

import (
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

// hasAny reports whether n's default filter holds any of keys.
func hasAny(n *node.Node, keys [][]byte) bool {
	for _, k := range keys {
		if n.Filter().Has(k) {
			return true
		}
	}
	return false
}

// record runs one round of a whose datagrams to b and c are recorded and
// not delivered, and returns those to b.
func record(tn *testNet, a, b, c *node.Node) [][]byte {
	var toB [][]byte
	tn.nw.Tap(func(from, to netip.AddrPort, frame []byte) {
		if from == a.Addr() && to == b.Addr() && wire.Type(frame[0]) == wire.TypeSealed {
			toB = append(toB, frame)
		}
	})
	tn.nw.Cut(func(from, to netip.AddrPort) bool { return from == a.Addr() && (to == b.Addr() || to == c.Addr()) })
	tn.round(a)
	tn.nw.Tap(nil)
	tn.nw.Cut(nil)
	return toB
}

// replay sends frames to n as if from a.
func replay(tn *testNet, a, n *node.Node, frames [][]byte) {
	for _, f := range frames {
		tn.nw.Send(a.Addr(), n.Addr(), f)
	}
	tn.deliver()
}

// A sealed frame is for one receiver at one moment. Found by an attack: a
// row sync recorded on its way to one member was taken by every other,
// and again by any member after it restarted. Now, replayed to another
// member, late, twice, or to its receiver after a restart, it changes
// nothing; replayed once while fresh, to its receiver, it is taken (it
// is what the receiver missed).
func TestReplayBoundToReceiverAndMoment(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := keyed(small(node.DefaultConfig()), testKey(t))
		cfg.AntiEntropyInterval = time.Hour // rows move in the test's rounds alone
		a := tn.member(cfg)
		tn.next++
		bAddr := netAddr(tn.next)
		b, stopB := tn.memberAt(bAddr, cfg, a)
		c := tn.member(cfg, a)
		tn.until("members", 10*time.Second, func() bool {
			return len(a.Peers()) == 2 && len(b.Peers()) == 2 && len(c.Peers()) == 2
		})
		u := tn.station()
		first := makeKeys("first", 50)
		addKeys(t, u, a, first)
		recorded := record(tn, a, b, c)
		require.NotEmpty(t, recorded)

		replay(tn, a, c, recorded)
		assert.False(t, hasAny(c, first), "another member takes nothing of it")
		assert.Positive(t, c.Stats().Count(counter.WrongReceiver))

		<-time.After(auth.MaxAge + auth.MaxSkew + time.Second)
		replay(tn, a, b, recorded)
		assert.False(t, hasAny(b, first), "its receiver, too late")
		assert.Positive(t, b.Stats().Count(counter.Replayed))

		second := makeKeys("second", 50)
		addKeys(t, u, a, second)
		recorded = record(tn, a, b, c)
		merged := b.Stats().Count(counter.SyncFramesMerged)
		replay(tn, a, b, recorded)
		assert.Equal(t, merged+uint64(len(recorded)), b.Stats().Count(counter.SyncFramesMerged), "fresh, to its receiver: taken")
		replayed := b.Stats().Count(counter.Replayed)
		replay(tn, a, b, recorded)
		assert.Equal(t, merged+uint64(len(recorded)), b.Stats().Count(counter.SyncFramesMerged))
		assert.Equal(t, replayed+uint64(len(recorded)), b.Stats().Count(counter.Replayed), "a second time: refused")

		stopB()
		b2 := tn.nodeWith(tn.endpoint(bAddr), cfg) // restarted, empty, alone
		replay(tn, a, b2, recorded)
		assert.False(t, hasAny(b2, first) || hasAny(b2, second), "its receiver after a restart: a new id")
		assert.Zero(t, b2.Stats().Count(counter.SyncFramesMerged))
		assert.Positive(t, b2.Stats().Count(counter.WrongReceiver))
	})
}
