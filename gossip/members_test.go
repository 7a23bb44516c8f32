package gossip

import (
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFanoutBoundsNewRoundsPerTick(t *testing.T) {
	nw := newNetwork(t, 11, DefaultConfig(), blocked(t))
	nw.joinAll()
	a := nw.node(0)
	a.f.Add([]byte("news"))
	direct := 0
	for tick := 1; tick <= 4; tick++ {
		before := a.g.Counters().Frames
		nw.round()
		sent := a.g.Counters().Frames - before
		assert.LessOrEqual(t, sent, uint64(3), "tick %d: at most fanout rounds start", tick)
		direct += int(sent)
	}
	assert.Equal(t, 10, direct, "the origin reaches all 10 peers itself in ceil(10/3) ticks")
	assert.True(t, nw.converged())
}

// A new member gets changes from now on; one that returns resumes from
// what it had acknowledged.
func TestMembersJoinAndReturn(t *testing.T) {
	nw := newNetwork(t, 2, DefaultConfig(), blocked(t))
	a, b := nw.node(0), nw.node(1)
	a.f.Add([]byte("before"))
	nw.round()
	a.g.AddMember(b.addr)
	nw.round()
	assert.False(t, b.f.Has([]byte("before")), "the past is for bulk transfer and anti-entropy")
	a.f.Add([]byte("after"))
	nw.round()
	assert.True(t, b.f.Has([]byte("after")))

	acked := a.g.Peers()[0].AckedGen
	require.True(t, a.g.RemoveMember(b.addr))
	a.f.Add([]byte("while away"))
	nw.round()
	assert.True(t, a.g.AddMember(b.addr))
	assert.Equal(t, acked, a.g.Peers()[0].AckedGen, "resumes")
	nw.round()
	assert.True(t, b.f.Has([]byte("while away")))

	nw.antiEntropy()
	assert.True(t, b.f.Has([]byte("before")), "anti-entropy repairs the past")
	assert.True(t, nw.converged())
}

func TestMembersAreNeverPruned(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PruneAfter = 2
	nw := newNetwork(t, 2, cfg, blocked(t))
	a, b := nw.node(0), nw.node(1)
	a.g.AddMember(b.addr)
	b.deaf = true
	a.f.Add([]byte("x"))
	for range 70 {
		nw.round()
	}
	require.Len(t, a.g.Peers(), 1, "membership, not acks, removes members")
	// Resent after 1, 2, 4, 8, 16 and 32 ticks: 63 ticks, 6 resends.
	assert.Equal(t, 6, a.g.Peers()[0].Missed)
	assert.Equal(t, uint64(6), a.g.Counters().Resent, "a deaf member is waited for longer each time")
	b.deaf = false
	nw.roundsUntil(70, func() bool { return b.f.Has([]byte("x")) && !a.g.Peers()[0].Pending })
	assert.Zero(t, a.g.Peers()[0].Missed, "an ack resets the wait")
}

// Only the frames whose acks are late are sent again, not the round.
func TestOnlyLateFramesAreResent(t *testing.T) {
	nw := newNetwork(t, 2, DefaultConfig(), blocked(t))
	a, b := nw.node(0), nw.node(1)
	peerOf(a.g, b.addr)
	for i := range 2000 {
		a.f.Add(k("r", i))
	}
	nw.tick()
	require.Greater(t, nw.net.Pending(), 10)
	lost := false
	nw.net.Cut(func(from, to netip.AddrPort) bool { // lose the first frame
		if !lost && from == a.addr {
			lost = true
			return true
		}
		return false
	})
	nw.deliver()
	nw.net.Cut(nil)
	rowsBefore := a.g.Counters().Rows
	nw.round()
	assert.Equal(t, uint64(1), a.g.Counters().Resent)
	assert.LessOrEqual(t, a.g.Counters().Rows-rowsBefore, uint64(21), "one datagram's rows")
	assert.True(t, nw.converged())
}

func TestTickBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxTickBytes = 10 * cfg.MaxFrame
	nw := newNetwork(t, 3, cfg, blocked(t))
	nw.joinAll()
	a := nw.node(0)
	for i := range 5000 {
		a.f.Add(k("b", i))
	}
	for range 3 {
		before := a.g.Counters().Bytes
		nw.round()
		assert.LessOrEqual(t, a.g.Counters().Bytes-before, uint64(cfg.MaxTickBytes))
	}
	nw.roundsUntil(200, nw.converged)
}

// TestClusters: 3, 10 and 100 members, with loss, duplication and
// reordering, then a partition that heals: every key on every node, all
// filters identical.
func TestClusters(t *testing.T) {
	for _, n := range []int{3, 10, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			nw := newNetwork(t, n, DefaultConfig(), blocked(t))
			nw.joinAll()
			var keys [][]byte
			add := func(r int) {
				for i := range 3 {
					key := k(fmt.Sprint("c", n, "-", r), i)
					keys = append(keys, key)
					nw.node(nw.rng.IntN(n)).f.Add(key)
				}
			}
			nw.faults(0.1, 0.1, true)
			for r := range 10 {
				add(r)
				nw.round()
			}
			// Partition: odd and even nodes cannot reach each other.
			nw.faults(0, 0, false)
			nw.net.Cut(func(from, to netip.AddrPort) bool { return from.Port()%2 != to.Port()%2 })
			for r := 10; r < 20; r++ {
				add(r)
				nw.round()
			}
			assert.False(t, nw.converged())
			nw.net.Cut(nil)
			nw.roundsUntil(40, nw.converged)
			for _, a := range nw.order {
				for _, key := range keys {
					require.True(t, nw.nodes[a].f.Has(key), "node %v lost %s", a, key)
				}
			}
		})
	}
}

// TestEpidemicRounds is figure 2 of the cluster issue: in 100 members, a
// key added on one node reaches 99.99% of them (all 100) in few rounds.
func TestEpidemicRounds(t *testing.T) {
	nw := newNetwork(t, 100, DefaultConfig(), blocked(t))
	nw.joinAll()
	var worst int
	for trial := range 5 {
		key := k("epidemic", trial)
		nw.node(trial * 17 % 100).f.Add(key)
		rounds := nw.roundsUntil(50, func() bool { return nw.fraction(key) >= 0.9999 })
		t.Logf("trial %d: key on every node after %d rounds", trial, rounds)
		worst = max(worst, rounds)
		nw.roundsUntil(50, nw.converged)
	}
	t.Logf("100 nodes, fanout 3: worst %d rounds (log_4(100) = %.1f)", worst, math.Log(100)/math.Log(4))
	assert.LessOrEqual(t, worst, 15)
}
