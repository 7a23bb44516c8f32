package respserver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// BF.RESERVE … REPLICAS 1 places a filter on one member of three; every
// member's RESP listener adds to it and asks it, those that do not hold
// it forwarding to the one that does, and describes it.
func TestRESPPlacedFilter(t *testing.T) {
	a, b, c := respCluster(t)
	ns := []*node.Node{a, b, c}
	ctx := context.Background()
	require.NoError(t, redisClient(t, a, 3, "").Do(ctx, "BF.RESERVE", "placed", 0.01, 100_000, "REPLICAS", 1).Err())
	var owners []string
	waitFor(t, "the filter placed", func() bool {
		rt, ok := a.Registry().Route([]byte("placed"))
		owners = rt.Owners()
		return ok && len(owners) == 1
	})
	var owner, other *node.Node
	for _, n := range ns {
		if n.Name() == owners[0] {
			owner = n
		} else {
			other = n
		}
	}
	t.Cleanup(func() { // before the members stop: one leaving with a placed filter waits for its hand-off
		redisClient(t, a, 2, "").Del(ctx, "placed")
		waitFor(t, "the filter dropped", func() bool { return len(owner.Registry().Lookup([]byte("placed"))) == 0 })
	})
	waitFor(t, "the filter on its owner, routed everywhere", func() bool {
		vs := owner.Registry().Lookup([]byte("placed"))
		for _, n := range ns {
			if _, ok := n.Registry().Route([]byte("placed")); !ok {
				return false
			}
		}
		return len(vs) > 0 && !vs.Winner().Filling()
	})

	forwards := other.Stats().Count(counter.Forwards)
	for i, n := range ns {
		rdb := redisClient(t, n, 2, "")
		added, err := rdb.BFMAdd(ctx, "placed", fmt.Sprint("k", i), "shared").Result()
		require.NoError(t, err, n.Name())
		assert.True(t, added[0], n.Name())
		one, err := rdb.BFAdd(ctx, "placed", fmt.Sprint("one", i)).Result()
		require.NoError(t, err)
		assert.True(t, one)
	}
	for _, n := range ns {
		rdb := redisClient(t, n, 3, "")
		got, err := rdb.BFMExists(ctx, "placed", "k0", "k1", "k2", "shared", "one1", "never").Result()
		require.NoError(t, err, n.Name())
		assert.Equal(t, []bool{true, true, true, true, true, false}, got, n.Name())
		assert.True(t, rdb.BFExists(ctx, "placed", "one2").Val())
		assert.Equal(t, int64(1), rdb.Exists(ctx, "placed").Val(), n.Name())
	}
	assert.Greater(t, other.Stats().Count(counter.Forwards), forwards, "forwarded to the owner")
	assert.Empty(t, other.Registry().Lookup([]byte("placed")), "held by its owner alone")
	assert.True(t, owner.Registry().Lookup([]byte("placed")).Has([]byte("one0")))

	info, err := redisClient(t, other, 2, "").Do(ctx, "BF.INFO", "placed").Slice()
	require.NoError(t, err)
	require.Len(t, info, 16)
	assert.Equal(t, []any{"Replicas", int64(1), "Owners", []any{owner.Name()}, "Here", "not held"}, info[10:])
	info, err = redisClient(t, owner, 2, "").Do(ctx, "BF.INFO", "placed").Slice()
	require.NoError(t, err)
	assert.Equal(t, "ready", info[15])
	bi, err := redisClient(t, other, 3, "").BFInfo(ctx, "placed").Result()
	require.NoError(t, err, "go-redis skips the fields it does not know")
	assert.Equal(t, int64(100_000), bi.Capacity)
}
