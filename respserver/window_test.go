package respserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/require"
)

// BF.RESERVE … WINDOW seconds [SLICES n] makes a filter that forgets:
// plain RedisBloom commands work on it, and a key is gone once its
// window passed. Options no window can have are refused, saying why.
func TestRESPWindow(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	rdb := redisClient(t, n, 3, "")
	require.NoError(t, rdb.Do(ctx, "BF.RESERVE", "recent", 0.01, 1000, "WINDOW", 1, "SLICES", 5).Err())
	require.EqualError(t, rdb.BFReserve(ctx, "recent", 0.01, 1000).Err(), "ERR item exists")
	for _, bad := range []struct {
		args []any
		err  string
	}{
		{[]any{"WINDOW", 0}, "ERR bad window (seconds, at least 0.001 and at most 3.456e+07)"},
		{[]any{"WINDOW", "soon"}, "ERR bad window (seconds, at least 0.001 and at most 3.456e+07)"},
		{[]any{"WINDOW", 0.0001}, "ERR bad window (seconds, at least 0.001 and at most 3.456e+07)"},
		{[]any{"WINDOW", "inf"}, "ERR bad window (seconds, at least 0.001 and at most 3.456e+07)"},
		{[]any{"WINDOW", 0.0001, "SLICES", 2}, "ERR bad window (seconds, at least 0.001 and at most 3.456e+07)"},
		{[]any{"SLICES", 4}, "ERR SLICES needs a WINDOW"},
		{[]any{"WINDOW", 60, "SLICES", 0}, "ERR bad slices (1 to 1000)"},
		{[]any{"WINDOW", 60, "EXPANSION", 2}, "ERR a filter with a WINDOW does not expand (its capacity is per window)"},
		{[]any{"WINDOW", 0.5, "SLICES", 10}, "ERR bad window: a window's slices last 100ms at least: 500ms in 10 slices is 50ms each"},
		{[]any{"WINDOW"}, "ERR wrong number of arguments for 'bf.reserve' command"},
	} {
		args := append([]any{"BF.RESERVE", "w", 0.01, 1000}, bad.args...)
		require.EqualError(t, rdb.Do(ctx, args...).Err(), bad.err, "%v", bad.args)
	}

	added, err := rdb.BFAdd(ctx, "recent", "apple").Result()
	require.NoError(t, err)
	require.True(t, added)
	require.True(t, rdb.BFExists(ctx, "recent", "apple").Val())
	require.Equal(t, []bool{true, false}, rdb.BFMExists(ctx, "recent", "apple", "pear").Val())
	require.Equal(t, []bool{true, true}, rdb.BFInsert(ctx, "recent", &redis.BFInsertOptions{NoCreate: true}, "plum", "fig").Val())
	require.ErrorContains(t, rdb.Do(ctx, "BF.SCANDUMP", "recent", 0).Err(), "a windowed filter is not dumped")
	info, err := rdb.BFInfo(ctx, "recent").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1000), info.Capacity, "per window")
	require.Zero(t, info.ExpansionRate)

	addedAt := time.Now()
	waitFor(t, "apple forgotten", func() bool { return !rdb.BFExists(ctx, "recent", "apple").Val() })
	require.Greater(t, time.Since(addedAt), time.Second, "not before its window passed")
}
