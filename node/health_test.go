package node

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A filter past its capacity says so: alarms in stats and pongs, and one
// warning per doubling, not per add or per refresh.
func TestCapacityAlarms(t *testing.T) {
	tn := newNet(t)
	var logs logBook
	cfg := DefaultConfig()
	cfg.Capacity, cfg.FPRate, cfg.Logger = 1000, 0.01, logs.logger()
	n, u := tn.node(cfg), tn.station()
	add := func(from, to int) {
		for i := from; i < to; i++ {
			n.f.Add(fmt.Appendf(nil, "key-%d", i))
		}
		n.refreshFilterStats()
	}
	pongFlags := func() uint8 {
		ping, _ := wire.AppendPing(nil, wire.Ping{Type: wire.TypePing, ReqID: 1, Version: wire.ProtocolVersion})
		ping, _ = wire.PadFrame(ping, 0, 200)
		p, err := wire.DecodePing(u.ask(n.Addr(), ping))
		require.NoError(t, err)
		return p.Flags
	}
	add(0, 900)
	assert.Equal(t, Alarms{}, n.Stats().Alarms, "within capacity")
	assert.Zero(t, pongFlags()&(wire.PongOverCapacity|wire.PongFPHigh))

	add(900, 1300)
	s := n.Stats()
	assert.True(t, s.Alarms.OverCapacity)
	assert.True(t, s.Alarms.FPHigh, "past capacity the FP rate is past twice its target")
	assert.Equal(t, wire.PongOverCapacity|wire.PongFPHigh, pongFlags()&(wire.PongOverCapacity|wire.PongFPHigh))
	assert.Equal(t, 1, logs.count("more keys than it was sized for"))
	assert.Equal(t, 1, logs.count("past twice its target"))

	for range 5 {
		n.refreshFilterStats()
	}
	add(1300, 1900)
	assert.Equal(t, 1, logs.count("more keys than it was sized for"), "not past 2× capacity yet: no new warning")
	add(1900, 2300)
	assert.Equal(t, 2, logs.count("more keys than it was sized for"), "past 2× capacity: warned again")
	add(2300, 4500)
	assert.Equal(t, 3, logs.count("more keys than it was sized for"), "past 4×")
	var stat = map[string]uint64{}
	for _, st := range n.Stats().WireStats() {
		stat[st.Name] = st.Value
	}
	assert.Equal(t, uint64(1), stat["over_capacity"])
	assert.Equal(t, uint64(1000), stat["capacity"])
	assert.Equal(t, uint64(10_000), stat["target_fp_ppm"])
}

func TestDoublings(t *testing.T) {
	for _, c := range []struct {
		v, limit float64
		want     int
	}{{0, 10, 0}, {10, 10, 0}, {10.5, 10, 1}, {19.9, 10, 1}, {20, 10, 2}, {40, 10, 3}, {5, 0, 0}} {
		assert.Equal(t, c.want, doublings(c.v, c.limit), "%v over %v", c.v, c.limit)
	}
}

// A node with --join is not ready until it has joined and filled its
// filter from the cluster: when it turns ready, the cluster's keys are
// there.
func TestReadyAfterTheFirstPull(t *testing.T) {
	const keys = 20_000
	a := startMemberWith(t, DefaultConfig(), func(n *Node) {
		for i := range keys {
			n.f.Add(fmt.Appendf(nil, "k%d", i))
		}
	})
	h := a.Health()
	assert.True(t, h.Ready, "no --join: ready once serving")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	nobody := l.Addr().String()
	l.Close()
	lonely, _ := startMember(t, DefaultConfig(), nobody)
	h = lonely.Health()
	assert.True(t, h.Serving)
	assert.False(t, h.Ready)
	assert.Contains(t, h.Why, "no member of the cluster reached yet")

	b, _ := startMember(t, DefaultConfig(), a.GossipAddr())
	deadline := time.Now().Add(20 * time.Second)
	for !b.Health().Ready {
		require.True(t, time.Now().Before(deadline), "b never ready: %s", b.Health().Why)
		time.Sleep(time.Millisecond)
	}
	for i := range keys {
		require.True(t, b.f.Has(fmt.Appendf(nil, "k%d", i)), "ready, and key %d missing", i)
	}
}
