package gossip

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidation(t *testing.T) {
	src := filter.NewClassic()
	for _, mut := range []func(*Config){
		func(c *Config) { c.PruneAfter = 0 },
		func(c *Config) { c.MaxFrame = 100 },
		func(c *Config) { c.MaxInflightRows = 0 },
		func(c *Config) { c.MaxPeers = 0 },
		func(c *Config) { c.Fanout = 0 },
		func(c *Config) { c.AckTimeout = 0 },
		func(c *Config) { c.MaxTickBytes = 10 },
	} {
		c := ClassicConfig()
		mut(&c)
		_, err := New(c, src)
		assert.ErrorIs(t, err, ErrConfig)
	}
	b, _ := filter.New(filter.DefaultConfig())
	_, err := New(ClassicConfig(), b)
	assert.ErrorContains(t, err, "classic sync needs a classic filter")
}

// A full table makes room for a new peer by putting out one that never
// acknowledged anything — one that never answered its challenge first —
// and refuses it only when every entry has proved itself.
func TestPeerTable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPeers = 2
	g, err := New(cfg, filter.NewClassic())
	require.NoError(t, err)
	assert.True(t, g.AddPeer(addr(1)))
	assert.False(t, g.AddPeer(addr(1)), "no duplicates")
	assert.True(t, g.AddPeer(addr(2)))
	g.Verify(addr(1))
	assert.True(t, g.AddPeer(addr(3)), "room made")
	assert.Equal(t, []netip.AddrPort{addr(1), addr(3)}, []netip.AddrPort{g.Peers()[0].Addr, g.Peers()[1].Addr},
		"the unverified one went first")
	g.Verify(addr(3))
	assert.True(t, g.AddPeer(addr(4)), "room made again")
	assert.Equal(t, []netip.AddrPort{addr(3), addr(4)}, []netip.AddrPort{g.Peers()[0].Addr, g.Peers()[1].Addr},
		"both verified, neither acked: the oldest went")
	assert.Equal(t, uint64(2), g.Counters().Evicted)
	assert.True(t, g.RemovePeer(addr(3)))
	assert.False(t, g.RemovePeer(addr(3)))

	members, _ := New(cfg, filter.NewClassic())
	members.AddMember(addr(5))
	members.AddMember(addr(6))
	assert.False(t, members.AddPeer(addr(7)), "members are never put out")
	assert.Equal(t, uint64(1), members.Counters().Refused)
}

// Behaviour 5 of the node issue, at the gossip level: in the classic
// profile a peer that never acks gets exactly one round of rows 0..4 and
// then nothing; a peer that acks keeps getting every row every tick.
func TestClassicPruneAndKeep(t *testing.T) {
	nw := newNetwork(t, 3, ClassicConfig(), func() *filter.Filter { return filter.NewClassic() })
	a, acker, silent := nw.node(0), nw.node(1), nw.node(2)
	silent.deaf = true
	peerOf(a.g, acker.addr)
	peerOf(a.g, silent.addr)
	a.f.Add([]byte("abc"))

	for range 5 {
		nw.round()
	}
	var rows []uint16
	for _, frame := range nw.sent[silent.addr] {
		s, err := wire.DecodeClassicSync(frame)
		require.NoError(t, err)
		rows = append(rows, s.Row)
	}
	assert.Equal(t, []uint16{0, 1, 2, 3, 4}, rows, "one round, then pruned")
	assert.Len(t, nw.sent[acker.addr], 5*5, "every row every tick")
	assert.Len(t, a.g.Peers(), 1)
	assert.Equal(t, uint64(1), a.g.Counters().Pruned)
	assert.True(t, acker.f.Has([]byte("abc")))
	assert.True(t, silent.f.Has([]byte("abc")), "the silent peer merged what it got")
}

func TestClassicRingConverges(t *testing.T) {
	nw := newNetwork(t, 4, ClassicConfig(), func() *filter.Filter { return filter.NewClassic() })
	for i := range 4 {
		peerOf(nw.node(i).g, nw.node((i+1)%4).addr)
		nw.node(i).f.Add(k("ring", i))
	}
	nw.roundsUntil(4, nw.converged)
	for i := range 4 {
		for j := range 4 {
			assert.True(t, nw.node(i).f.Has(k("ring", j)))
		}
	}
}

// TestDeltaSendsOnlyChanges: a new peer gets every set row once; an idle
// cluster sends nothing; one add sends exactly one row to each peer.
func TestDeltaSendsOnlyChanges(t *testing.T) {
	nw := newNetwork(t, 3, DefaultConfig(), blocked(t))
	a := nw.node(0)
	for i := range 100 {
		a.f.Add(k("pre", i))
	}
	nw.peerAll()
	nw.round()
	require.True(t, nw.converged())
	setRows := 0
	for range a.f.ChangedRuns(0) {
		setRows++ // runs, not rows; count rows below
	}
	rows := uint64(0)
	for r := range a.f.ChangedRuns(0) {
		rows += r.Count
	}
	assert.Equal(t, 2*rows, a.g.Counters().Rows, "each of 2 peers got every set row once")

	before := a.g.Counters()
	for range 10 {
		nw.round()
	}
	idle := a.g.Counters()
	assert.Equal(t, before.Frames, idle.Frames, "idle: no frames")
	for _, p := range a.g.Peers() {
		assert.Equal(t, 10, p.AckedTicksAgo, "the last ack came in the first round, 10 rounds ago")
	}
	assert.Equal(t, before.Rows, idle.Rows)

	a.f.Add([]byte("one more"))
	nw.round()
	after := a.g.Counters()
	assert.Equal(t, uint64(2), after.Rows-idle.Rows, "one changed row to each of 2 peers")
	assert.Equal(t, uint64(2), after.Frames-idle.Frames)
	assert.True(t, nw.node(1).f.Has([]byte("one more")))
	assert.True(t, nw.converged())
	for _, p := range a.g.Peers() {
		assert.False(t, p.Pending)
		assert.Zero(t, p.Missed)
	}
}

// TestDeltaOneWayPath: with only A→B→C, C learns A's keys (rows merged
// from a peer spread onward) and A learns nothing back.
func TestDeltaOneWayPath(t *testing.T) {
	nw := newNetwork(t, 3, DefaultConfig(), blocked(t))
	peerOf(nw.node(0).g, nw.node(1).addr)
	peerOf(nw.node(1).g, nw.node(2).addr)
	nw.node(0).f.Add([]byte("from-a"))
	nw.node(2).f.Add([]byte("from-c"))
	nw.roundsUntil(3, func() bool { return nw.node(2).f.Has([]byte("from-a")) })
	assert.True(t, nw.node(1).f.Has([]byte("from-a")))
	assert.False(t, nw.node(0).f.Has([]byte("from-c")))
}

// TestWindowClocksRounds: no more than MaxInflightRows rows are ever in
// flight to a peer, and acks clock the rest of a round out at once rather
// than a tick later.
func TestWindowClocksRounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxInflightRows = 50
	nw := newNetwork(t, 2, cfg, blocked(t))
	a := nw.node(0)
	for i := range 5000 {
		a.f.Add(k("bulk", i))
	}
	peerOf(a.g, nw.node(1).addr)
	nw.tick()
	rows := a.g.Counters().Rows
	assert.Positive(t, rows)
	assert.LessOrEqual(t, rows, uint64(50), "the first tick fills the window only")
	assert.LessOrEqual(t, a.g.Peers()[0].Inflight, 50)
	nw.deliver() // acks come back, each sends more
	assert.True(t, nw.converged(), "the whole round within one tick's round trips")
	set := uint64(0)
	for r := range a.f.ChangedRuns(0) {
		set += r.Count
	}
	assert.Greater(t, set, uint64(500))
	assert.Equal(t, set, a.g.Counters().Rows, "every set row once, none twice")
	for i := range 5000 {
		require.True(t, nw.node(1).f.Has(k("bulk", i)))
	}
	assert.False(t, a.g.Peers()[0].Pending, "round completes once acked")
}

func TestDeltaFramesFitMaxFrame(t *testing.T) {
	nw := newNetwork(t, 2, DefaultConfig(), blocked(t))
	a := nw.node(0)
	for i := range 3000 {
		a.f.Add(k("fit", i))
	}
	peerOf(a.g, nw.node(1).addr)
	nw.round()
	require.NotEmpty(t, nw.sent[nw.node(1).addr])
	for _, frame := range nw.sent[nw.node(1).addr] {
		assert.LessOrEqual(t, len(frame), wire.MaxDatagram)
	}
	assert.True(t, nw.converged())
}

// TestDeltaPrune: a peer that stops acking while there is data for it is
// pruned after PruneAfter rounds; an idle dead peer costs nothing and is
// kept.
func TestDeltaPrune(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PruneAfter = 3
	nw := newNetwork(t, 2, cfg, blocked(t))
	a, b := nw.node(0), nw.node(1)
	peerOf(a.g, b.addr)
	b.deaf = true
	for range 10 {
		nw.round()
	}
	assert.Len(t, a.g.Peers(), 1, "nothing to send, nothing to miss")
	assert.Zero(t, a.g.Counters().Frames)

	a.f.Add([]byte("x"))
	rounds := nw.roundsUntil(10, func() bool { return len(a.g.Peers()) == 0 })
	assert.Equal(t, 4, rounds, "sent once, then 3 missed rounds (each resending)")
	assert.Equal(t, uint64(3), a.g.Counters().Frames)
}

func TestStrayAndDuplicateAcks(t *testing.T) {
	nw := newNetwork(t, 2, DefaultConfig(), blocked(t))
	a, b := nw.node(0), nw.node(1)
	peerOf(a.g, b.addr)
	for i := range 200 {
		a.f.Add(k("s", i))
	}
	b.deaf = true
	nw.round() // round in flight, nothing acked
	require.True(t, a.g.Peers()[0].Pending)
	frames := a.g.Counters().Frames
	require.Greater(t, frames, uint64(1))
	first, err := wire.DecodeRowSync(nw.sent[b.addr][0])
	require.NoError(t, err)
	gen := first.Stamp // the round's token, which acks echo
	assert.NotEqual(t, a.f.Generation(), gen, "the token is not the generation: nobody can guess it")

	// An ack for frame 0 only, twice: the round stays pending.
	var out Outbox
	a.g.RowAck(b.addr, wire.RowAck{Stamp: gen, Seq: 0}, &out)
	a.g.RowAck(b.addr, wire.RowAck{Stamp: gen, Seq: 0}, &out)
	a.g.RowAck(b.addr, wire.RowAck{Stamp: gen + 5, Seq: 1}, &out)
	a.g.RowAck(addr(99), wire.RowAck{Stamp: gen, Seq: 1}, &out)
	assert.True(t, a.g.Peers()[0].Pending, "duplicate and forged acks do not complete a round")
	assert.Equal(t, uint64(3), a.g.Counters().StrayAcks)
	for s := uint32(1); s < uint32(frames); s++ {
		a.g.RowAck(b.addr, wire.RowAck{Stamp: gen, Seq: s}, &out)
	}
	assert.False(t, a.g.Peers()[0].Pending)
	assert.Equal(t, a.f.Generation(), a.g.Peers()[0].AckedGen)
}

func TestMergeRefusals(t *testing.T) {
	f := blocked(t)()
	other, _ := filter.New(filter.Config{Layout: filter.Blocked, Capacity: 50_000, FPRate: 0.01, Seed: 1})
	frame, _ := wire.AppendRowSync(nil, other.Fingerprint(), 1, 0, []wire.RowRun{{First: 0, Rows: make([]byte, 64)}})
	s, _ := wire.DecodeRowSync(frame)
	_, _, err := MergeRowSync(f, s, nil, false)
	assert.ErrorIs(t, err, filter.ErrFingerprint)

	row := make([]byte, 64)
	row[0] = 1
	frame, _ = wire.AppendRowSync(nil, f.Fingerprint(), 1, 0, []wire.RowRun{{First: 0, Rows: row}, {First: uint32(f.Rows()), Rows: row}})
	s, _ = wire.DecodeRowSync(frame)
	ack, _, err := MergeRowSync(f, s, nil, false)
	assert.ErrorIs(t, err, ErrRows)
	assert.Empty(t, ack)
	assert.Zero(t, f.Stats().SetBits, "a refused frame merges nothing, not even its valid runs")

	c := filter.NewClassic()
	cs, _ := wire.AppendClassicSync(nil, 5, make([]byte, 50))
	dec, _ := wire.DecodeClassicSync(cs)
	_, _, err = MergeClassicSync(c, dec, nil)
	assert.ErrorIs(t, err, ErrRows, "row 5 of a 5-row filter")
	_, _, err = MergeClassicSync(f, dec, nil)
	assert.ErrorIs(t, err, filter.ErrFingerprint, "classic sync into a blocked filter")
}

// A peer gets nothing but the node's challenge (sent by the node, not
// here) until it answers; one that never does is pruned like a peer that
// misses acks.
func TestUnverifiedPeersGetNothing(t *testing.T) {
	for _, cfg := range []Config{DefaultConfig(), ClassicConfig()} {
		mk := blocked(t)
		if cfg.Classic {
			mk = func() *filter.Filter { return filter.NewClassic() }
		}
		nw := newNetwork(t, 3, cfg, mk)
		a, victim, real := nw.node(0), nw.node(1), nw.node(2)
		a.f.Add([]byte("x"))
		a.g.AddPeer(victim.addr)
		a.g.AddPeer(real.addr)
		assert.False(t, a.g.Peers()[0].Verified)
		a.g.Verify(real.addr) // it answered the challenge the node sent
		nw.roundsUntil(cfg.PruneAfter+1, func() bool { return len(a.g.Peers()) == 1 })
		assert.Empty(t, nw.sent[victim.addr], "never a row")
		assert.Equal(t, real.addr, a.g.Peers()[0].Addr, "the unverified one pruned")
		assert.True(t, real.f.Has([]byte("x")))
	}
}

// Classic acks are one byte anyone can send from a peer's address: a
// classic peer must answer a challenge again now and then, and forged
// acks do not keep it.
func TestClassicPeersAnswerAgain(t *testing.T) {
	cfg := ClassicConfig()
	cfg.ReverifyAfter = 5
	nw := newNetwork(t, 2, cfg, func() *filter.Filter { return filter.NewClassic() })
	a, b := nw.node(0), nw.node(1)
	peerOf(a.g, b.addr)
	for range 4 {
		nw.round()
	}
	assert.Len(t, nw.sent[b.addr], 4*5, "rows every tick while verified")
	nw.round()
	st := a.g.Peers()[0]
	assert.False(t, st.Verified)
	assert.True(t, st.Reverify, "verified once: the node challenges it again")
	before := len(nw.sent[b.addr])
	a.g.ClassicAck(b.addr) // forged: b is not awaited
	nw.round()
	assert.Len(t, nw.sent[b.addr], before, "no rows until it answers again")
	assert.Empty(t, a.g.Peers(), "and pruned, forged acks or not")
	assert.Equal(t, uint64(1), a.g.Counters().StrayAcks)
}

// Delta acks must echo the round's random token: acks made up from the
// victim's address, with every generation as the stamp, never complete a
// round nor keep a peer that stopped answering.
func TestForgedAcksNeverKeepAPeer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PruneAfter = 3
	nw := newNetwork(t, 2, cfg, blocked(t))
	a, b := nw.node(0), nw.node(1)
	peerOf(a.g, b.addr)
	b.deaf = true
	for i := range 200 {
		a.f.Add(k("forged", i))
	}
	var out Outbox
	for tick := 0; tick < 10 && len(a.g.Peers()) > 0; tick++ {
		nw.round()
		for gen := uint64(0); gen <= a.f.Generation()+1; gen++ {
			for seq := uint32(0); seq < 4; seq++ {
				a.g.RowAck(b.addr, wire.RowAck{Stamp: gen, Seq: seq}, &out)
			}
		}
	}
	assert.Empty(t, a.g.Peers(), "pruned despite the acks")
	assert.Zero(t, a.g.Counters().Acks, "not one counted")
}

// Peers that answered their challenge and never ack share a small budget
// a tick: twenty of them cannot take from the peer that works.
func TestNeverAckedPeersShareASmallBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PruneAfter = 1000 // kept all along: the budget, not pruning, is tested
	limit := cfg.MaxUnackedTickBytes
	nw := newNetwork(t, 22, cfg, blocked(t))
	a, good := nw.node(0), nw.node(1)
	peerOf(a.g, good.addr)
	for i := 2; i < 22; i++ {
		nw.node(i).deaf = true
		peerOf(a.g, nw.node(i).addr)
	}
	for i := range 200_000 {
		a.f.Add(fmt.Appendf(nil, "k%d", i))
	}
	for range 5 {
		before := map[netip.AddrPort]int{}
		for i := 2; i < 22; i++ {
			before[nw.node(i).addr] = len(nw.sent[nw.node(i).addr])
		}
		nw.round()
		deafBytes := 0
		for i := 2; i < 22; i++ {
			for _, f := range nw.sent[nw.node(i).addr][before[nw.node(i).addr]:] {
				deafBytes += len(f)
			}
		}
		assert.LessOrEqual(t, deafBytes, limit, "a tick's bytes to peers that never acked")
	}
	assert.Equal(t, a.f.Fingerprint(), good.f.Fingerprint())
	got, want := good.f.Stats().SetBits, a.f.Stats().SetBits
	assert.Equal(t, want, got, "the working peer has every row")
}

// With FillMembers a new member gets every set row, as a static peer
// does; without, it is assumed to have them (anti-entropy fills it).
func TestFillMembers(t *testing.T) {
	for _, fill := range []bool{false, true} {
		f, err := filter.New(filter.DefaultConfig())
		require.NoError(t, err)
		for i := range 100 {
			f.Add(k("pre", i))
		}
		f.Advance()
		cfg := DefaultConfig()
		cfg.FillMembers = fill
		g, err := New(cfg, f)
		require.NoError(t, err)
		require.True(t, g.AddMember(addr(9)))
		var out Outbox
		g.Tick(&out)
		if fill {
			assert.Positive(t, out.Len(), "every set row goes to the new member")
		} else {
			assert.Zero(t, out.Len(), "assumed to have them")
		}
	}
}
