package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const alarmFlags = wire.PongOverCapacity | wire.PongFPHigh

// A filter past its capacity says so: alarms in stats and pongs, and one
// warning per doubling, not per add or per refresh.
func TestCapacityAlarms(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		var logs logBook
		cfg := node.DefaultConfig()
		cfg.Capacity, cfg.FPRate, cfg.Logger = 1000, 0.01, logs.logger()
		n, u := tn.node(cfg), tn.station()
		add := func(from, to int) {
			for i := from; i < to; i++ {
				n.Filter().Add(fmt.Appendf(nil, "key-%d", i))
			}
			tn.refresh()
		}
		add(0, 900)
		assert.Equal(t, node.Alarms{}, n.Stats().Alarms, "within capacity")
		assert.Zero(t, ping(t, u, n, "").Flags&alarmFlags)

		add(900, 1300)
		s := n.Stats()
		assert.True(t, s.Alarms.OverCapacity)
		assert.True(t, s.Alarms.FPHigh, "past capacity the FP rate is past twice its target")
		assert.Equal(t, alarmFlags, ping(t, u, n, "").Flags&alarmFlags)
		assert.Equal(t, 1, logs.count("more keys than it was sized for"))
		assert.Equal(t, 1, logs.count("past twice its target"))

		for range 5 {
			tn.refresh()
		}
		add(1300, 1900)
		assert.Equal(t, 1, logs.count("more keys than it was sized for"), "not past 2× capacity yet: no new warning")
		add(1900, 2300)
		assert.Equal(t, 2, logs.count("more keys than it was sized for"), "past 2× capacity: warned again")
		add(2300, 4500)
		assert.Equal(t, 3, logs.count("more keys than it was sized for"), "past 4×")
		stat := map[string]uint64{}
		for _, st := range n.Stats().WireStats() {
			stat[st.Name] = st.Value
		}
		assert.Equal(t, uint64(1), stat["over_capacity"])
		assert.Equal(t, uint64(1000), stat["capacity"])
		assert.Equal(t, uint64(10_000), stat["target_fp_ppm"])
	})
}

// Alarms are per filter: a named filter sized for 10 holding 300 keys
// (merged from a member: adds past 10 are refused) warns, in the logs, its
// stats and a pong for it; a fresh named filter's pong does not carry the
// full default filter's alarm.
func TestCapacityAlarmsPerFilter(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		var logs logBook
		cfg := node.DefaultConfig()
		cfg.Capacity, cfg.Logger = 1000, logs.logger()
		n, u := tn.node(cfg), tn.station()
		q := create("tiny", 10, 0.01)
		q.Growth = 1 // does not grow
		_, e := filterOp(t, u, n, q)
		require.Nil(t, e)
		overfill(t, n, "tiny", makeKeyStrings("t", 300))
		tn.refresh()
		assert.Equal(t, alarmFlags, ping(t, u, n, "tiny").Flags&alarmFlags, "the filter's own alarms")
		assert.Zero(t, ping(t, u, n, "").Flags&alarmFlags, "the default is fine")
		assert.Equal(t, 1, logs.count("filter=tiny estimated_keys"), "warned once, naming it")
		named := n.Stats().Named
		require.Len(t, named, 1)
		assert.Equal(t, node.Alarms{OverCapacity: true, FPHigh: true}, named[0].Alarms)

		for i := range 5000 { // the default past its capacity
			n.Filter().Add(fmt.Appendf(nil, "d%d", i))
		}
		_, e = filterOp(t, u, n, create("fresh", 1000, 0.01))
		require.Nil(t, e)
		tn.refresh()
		assert.Equal(t, alarmFlags, ping(t, u, n, "").Flags&alarmFlags)
		assert.Zero(t, ping(t, u, n, "fresh").Flags&alarmFlags, "a fresh filter does not warn of the default's")
		pong := ping(t, u, n, "fresh")
		assert.Equal(t, n.Registry().Lookup([]byte("fresh")).Winner().Version().Def.FP, pong.FP, "the filter's fingerprint")
	})
}

// A node with --join is not ready until it has joined and filled its
// filter from the cluster: when it turns ready, the cluster's keys are
// there.
func TestReadyAfterTheFirstPull(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		const keys = 20_000
		a := tn.member(node.DefaultConfig())
		for i := range keys {
			a.Filter().Add(fmt.Appendf(nil, "k%d", i))
		}
		a.Filter().Advance() // history, not news: no round pushes it
		assert.True(t, a.Health().Ready, "no --join: ready once serving")

		cfg := node.DefaultConfig()
		cfg.Join = []string{"10.9.9.9:7946"} // nobody
		lonely, _ := tn.memberAt(netAddr(50), cfg)
		h := lonely.Health()
		assert.True(t, h.Serving)
		assert.False(t, h.Ready)
		assert.Contains(t, h.Why, "no member of the cluster reached yet")

		b := tn.member(node.DefaultConfig(), a)
		tn.until("b ready", 10*time.Second, func() bool { return b.Health().Ready })
		for i := range keys {
			require.True(t, b.Filter().Has(fmt.Appendf(nil, "k%d", i)), "ready, and key %d missing", i)
		}
	})
}

// A node that joins members holding different rows — after a whole
// cluster restarted, each may alone hold the rows it logged — is ready
// only once it compared every one's state it got while joining: a state
// that came while a pull ran must wait its turn, not be dropped.
func TestReadyAfterEveryJoinStateCompared(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		const keys = 20_000
		var seeds []*node.Node
		for s := range 3 { // three one-member clusters, each with keys of its own
			n := tn.member(node.DefaultConfig())
			for i := range keys {
				n.Filter().Add(fmt.Appendf(nil, "s%d-k%d", s, i))
			}
			n.Filter().Advance() // history, not news: no round pushes it
			seeds = append(seeds, n)
		}
		c := tn.member(node.DefaultConfig(), seeds...)
		tn.until("c ready", 10*time.Second, func() bool { return c.Health().Ready })
		for s := range seeds {
			missing := 0
			for i := range keys {
				if !c.Filter().Has(fmt.Appendf(nil, "s%d-k%d", s, i)) {
					missing++
				}
			}
			assert.Zero(t, missing, "ready, and missing keys of seed %d", s)
		}
	})
}

// overfill merges into name's first segment on n the rows of keys, as a
// member's rows would come: past what the filter may take by adds.
func overfill(t *testing.T, n *node.Node, name string, keys []string) {
	t.Helper()
	rows := n.Registry().Lookup([]byte(name)).Winner().Segments()[0].Rows()
	src, err := filter.NewFromFingerprint(rows.Fingerprint(), 0)
	require.NoError(t, err)
	for _, k := range keys {
		src.Add([]byte(k))
	}
	b, err := src.CopyRows(nil, 0, src.Rows())
	require.NoError(t, err)
	_, err = rows.MergeRows(rows.Fingerprint(), 0, b, nil)
	require.NoError(t, err)
}
