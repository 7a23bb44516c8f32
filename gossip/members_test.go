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
	nw.peerAll()
	a := nw.node(0)
	a.f.Add([]byte("news"))
	direct := 0
	for tick := 1; tick <= 4; tick++ {
		before := a.g.Counters().Frames
		nw.round()
		sent := a.g.Counters().Frames - before
		assert.LessOrEqual(t, sent, uint64(3), "tick %d: at most fanout rounds start to static peers", tick)
		direct += int(sent)
	}
	assert.Equal(t, 10, direct, "the origin reaches all 10 peers itself in ceil(10/3) ticks")
	assert.True(t, nw.converged())
}

// Members push each other what they originate, to every member in one
// tick, and never what they merged from a member: each row reaches each
// member once.
func TestMembersPushWhatTheyOriginate(t *testing.T) {
	for _, fill := range []bool{false, true} {
		t.Run(fmt.Sprint("fill=", fill), func(t *testing.T) { membersPushWhatTheyOriginate(t, fill) })
	}
}

// membersPushWhatTheyOriginate: with fill, members joined before anything
// was set have nothing to be filled with, and are members at once.
func membersPushWhatTheyOriginate(t *testing.T, fill bool) {
	cfg := DefaultConfig()
	cfg.FillMembers = fill
	nw := newNetwork(t, 11, cfg, blocked(t))
	nw.joinAll()
	nw.round()
	a := nw.node(0)
	a.f.Add([]byte("news"))
	nw.round()
	assert.True(t, nw.converged(), "every member in one tick")
	assert.Equal(t, uint64(10), a.g.Counters().Frames)
	var others uint64
	for i := 1; i < 11; i++ {
		others += nw.node(i).g.Counters().Frames
	}
	for range 5 {
		nw.round()
	}
	for i := 1; i < 11; i++ {
		others -= nw.node(i).g.Counters().Frames
	}
	assert.Zero(t, others, "nobody pushes on what it merged from a member")
	assert.Equal(t, uint64(10), a.g.Counters().Frames, "and the origin is done")
}

// Rows a member learns from a static peer (outside the cluster) are its
// to push to the other members.
func TestRowsFromOutsideReachMembers(t *testing.T) {
	nw := newNetwork(t, 4, DefaultConfig(), blocked(t))
	out, a, b, c := nw.node(0), nw.node(1), nw.node(2), nw.node(3)
	for _, x := range []*tnode{a, b, c} {
		for _, y := range []*tnode{a, b, c} {
			if x != y {
				x.g.AddMember(y.addr)
			}
		}
	}
	peerOf(out.g, a.addr) // out pushes to a, a static edge
	out.f.Add([]byte("from outside"))
	nw.roundsUntil(5, func() bool { return b.f.Has([]byte("from outside")) && c.f.Has([]byte("from outside")) })
}

// A new member gets changes from now on, and so does one that returns:
// what it missed, anti-entropy brings it (membership swaps state with a
// member as it returns).
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

	require.True(t, a.g.RemoveMember(b.addr))
	a.f.Add([]byte("while away"))
	nw.round()
	assert.True(t, a.g.AddMember(b.addr))
	assert.Equal(t, a.f.LastChanged(), a.g.Peers()[0].AckedGen, "from now on")
	nw.round()
	assert.False(t, b.f.Has([]byte("while away")), "not pushed again")
	a.f.Add([]byte("back"))
	nw.round()
	assert.True(t, b.f.Has([]byte("back")))

	nw.antiEntropy()
	assert.True(t, b.f.Has([]byte("before")), "anti-entropy repairs the past")
	assert.True(t, b.f.Has([]byte("while away")))
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
	// Resent after 1 tick three times (the grace for a lossy network),
	// then after 2, 4, 8 and 16 ticks (33), then every 16: at 49 and 65.
	assert.Equal(t, 9, a.g.Peers()[0].Missed)
	assert.Equal(t, uint64(9), a.g.Counters().Resent, "a deaf member is waited for longer each time past the grace, up to 16 ticks")
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
// key added on one node reaches 99.99% of them (all 100) in few rounds —
// one, since members push what they originate to every member.
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
	t.Logf("100 nodes: worst %d rounds (log2(100) + 3 = %.1f)", worst, math.Log2(100)+3)
	assert.LessOrEqual(t, float64(worst), math.Log2(100)+3)
}

// TestReplicationBytes is the replication issue's figure in the gossip
// alone: N members (30 and 100) with 5 % of frames lost; a filter 5 %
// full, its keys added at once in 5 slices on 5 members. Every member
// holds every key within log2(N) + 3 rounds, and the row bytes every
// member sent together are at most 1.5 × the ideal: each member
// receiving each non-empty row once, 64 bytes a row.
func TestReplicationBytes(t *testing.T) {
	for _, n := range []int{30, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			nw := newNetwork(t, n, DefaultConfig(), blocked(t))
			nw.joinAllSparse()
			nw.faults(0.05, 0, false)
			const keys, slices = 2500, 5 // 5 % of the filter's 50,000
			for i := range keys {
				nw.node(i % slices * (n / slices)).f.Add(k("bytes", i))
			}
			rounds := nw.roundsUntil(int(math.Log2(float64(n)))+3, func() bool {
				for i := range keys {
					if nw.fraction(k("bytes", i)) < 1 {
						return false
					}
				}
				return true
			})
			for range 20 { // resends and acks settle
				nw.round()
			}
			f := nw.node(0).f
			nonEmpty := 0
			for run := range f.ChangedRuns(0) {
				nonEmpty += int(run.Count)
			}
			ideal := float64(n * nonEmpty * 64)
			var sent uint64
			for _, a := range nw.order {
				sent += nw.nodes[a].g.Counters().Bytes
			}
			t.Logf("%d members: every key everywhere after %d rounds; %d bytes sent = %.2f × ideal (%d non-empty rows)",
				n, rounds, sent, float64(sent)/ideal, nonEmpty)
			assert.LessOrEqual(t, float64(sent), 1.5*ideal)
			assert.True(t, nw.converged())
		})
	}
}

// A member to fill gets every row of a filter loaded from disk, though no
// generation stamped them.
func TestFillMemberGetsLoadedRows(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FillMembers = true
	nw := newNetwork(t, 2, cfg, blocked(t))
	a, b := nw.node(0), nw.node(1)
	src := blocked(t)()
	src.Add([]byte("from disk"))
	rows, err := src.CopyRows(nil, 0, src.Rows())
	require.NoError(t, err)
	require.NoError(t, a.f.LoadRows(src.Fingerprint(), 0, rows))
	nw.joinAll()
	nw.roundsUntil(3, func() bool { return b.f.Has([]byte("from disk")) })
}
