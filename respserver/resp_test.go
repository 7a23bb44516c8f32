package respserver_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The RESP listener through a real Redis client, go-redis, in RESP2 and
// RESP3.

// startRESP runs a node with a RESP listener on a free port.
func startRESP(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	n, _ := startRESPStoppable(t, cfg)
	return n
}

// respCluster runs three members with RESP listeners, joined.
func respCluster(t *testing.T) (a, b, c *node.Node) {
	t.Helper()
	cfg := quickLeave()
	cfg.RESPListen = "127.0.0.1:0"
	a, _ = startMember(t, cfg)
	b, _ = startMember(t, cfg, a.GossipAddr())
	c, _ = startMember(t, cfg, a.GossipAddr())
	waitFor(t, "three members", func() bool { return len(a.Members()) == 3 && len(b.Members()) == 3 && len(c.Members()) == 3 })
	return a, b, c
}

// redisClient is a go-redis client of n's RESP listener speaking proto.
func redisClient(t *testing.T, n *node.Node, proto int, password string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: n.RESPAddr().String(), Protocol: proto, Password: password,
		MaxRetries: -1, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestRESPBloomCommands(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprint("RESP", proto), func(t *testing.T) {
			ctx := context.Background()
			rdb := redisClient(t, n, proto, "")
			f := fmt.Sprint("f", proto)
			require.Equal(t, "PONG", rdb.Ping(ctx).Val())

			// BF.RESERVE: created once; the second time "item exists".
			require.NoError(t, rdb.BFReserve(ctx, f, 0.01, 1000).Err())
			require.EqualError(t, rdb.BFReserve(ctx, f, 0.01, 1000).Err(), "ERR item exists")
			require.NoError(t, rdb.BFReserveNonScaling(ctx, f+"-ns", 0.001, 5000).Err())
			require.NoError(t, rdb.BFReserveExpansion(ctx, f+"-x", 0.01, 1000, 4).Err())
			require.Equal(t, int64(4), rdb.BFInfoExpansion(ctx, f+"-x").Val().ExpansionRate)
			require.Zero(t, rdb.BFInfoExpansion(ctx, f+"-ns").Val().ExpansionRate, "NONSCALING")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", 0.01, 10, "EXPANSION", 0).Err(), "ERR bad expansion")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", 0.01, 10, "EXPANSION", 2, "NONSCALING").Err(), "ERR Nonscaling filters cannot expand")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", "x", 10).Err(), "ERR bad error rate")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", 1.5, 10).Err(), "ERR (0 < error rate range < 1) ")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", "nan", 10).Err(), "ERR (0 < error rate range < 1) ")
			require.EqualError(t, rdb.Do(ctx, "BF.INSERT", f+"-y", "ERROR", "NaN", "ITEMS", "a").Err(), "Bad argument received")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", 0.01, "many").Err(), "ERR bad capacity")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", 0.01, 0).Err(), "ERR (capacity should be larger than 0)")
			require.EqualError(t, rdb.Do(ctx, "BF.RESERVE", f+"-y", 0.01).Err(), "ERR wrong number of arguments for 'bf.reserve' command")

			// BF.ADD / BF.EXISTS: true once new, then false; present after.
			added, err := rdb.BFAdd(ctx, f, "apple").Result()
			require.NoError(t, err)
			require.True(t, added)
			require.False(t, rdb.BFAdd(ctx, f, "apple").Val())
			require.True(t, rdb.BFExists(ctx, f, "apple").Val())
			require.False(t, rdb.BFExists(ctx, f, "pear").Val())
			require.False(t, rdb.BFExists(ctx, "no-such-filter", "apple").Val(), "a filter that does not exist holds nothing")

			// BF.MADD / BF.MEXISTS.
			got, err := rdb.BFMAdd(ctx, f, "apple", "banana", "cherry").Result()
			require.NoError(t, err)
			require.Equal(t, []bool{false, true, true}, got)
			got, err = rdb.BFMExists(ctx, f, "banana", "durian", "cherry").Result()
			require.NoError(t, err)
			require.Equal(t, []bool{true, false, true}, got)

			// BF.INSERT: creates with its sizing, or refuses with NOCREATE.
			got, err = rdb.BFInsert(ctx, f+"-ins", &redis.BFInsertOptions{Capacity: 2000, Error: 0.001}, "a", "b", "a").Result()
			require.NoError(t, err)
			require.Equal(t, []bool{true, true, false}, got)
			info, err := rdb.BFInfo(ctx, f+"-ins").Result()
			require.NoError(t, err)
			require.Equal(t, int64(2000), info.Capacity)
			err = rdb.BFInsert(ctx, f+"-none", &redis.BFInsertOptions{NoCreate: true}, "a").Err()
			require.EqualError(t, err, "ERR not found")
			require.Zero(t, rdb.Exists(ctx, f+"-none").Val())
			require.EqualError(t, rdb.Do(ctx, "BF.INSERT", f, "ITEMS").Err(), "ERR wrong number of arguments for 'bf.insert' command")
			require.EqualError(t, rdb.Do(ctx, "BF.INSERT", f, "BOGUS", "ITEMS", "a").Err(), "Unknown argument received")
			require.NoError(t, rdb.Do(ctx, "BF.INSERT", f+"-gx", "EXPANSION", "3", "ITEMS", "a").Err())
			require.Equal(t, int64(3), rdb.BFInfoExpansion(ctx, f+"-gx").Val().ExpansionRate)
			require.EqualError(t, rdb.Do(ctx, "BF.INSERT", f+"-gy", "NONSCALING", "EXPANSION", "3", "ITEMS", "a").Err(), "ERR Nonscaling filters cannot expand")

			// BF.INFO, whole and field by field; BF.CARD.
			info, err = rdb.BFInfo(ctx, f).Result()
			require.NoError(t, err)
			assert.Equal(t, int64(1000), info.Capacity)
			assert.Positive(t, info.Size)
			assert.Equal(t, int64(1), info.Filters)
			assert.Equal(t, int64(3), info.ItemsInserted)
			assert.Equal(t, int64(2), info.ExpansionRate, "the node's --expansion")
			require.Equal(t, int64(1000), rdb.BFInfoCapacity(ctx, f).Val().Capacity)
			require.Equal(t, info.Size, rdb.BFInfoSize(ctx, f).Val().Size)
			require.Equal(t, int64(1), rdb.BFInfoFilters(ctx, f).Val().Filters)
			require.Equal(t, int64(3), rdb.BFInfoItems(ctx, f).Val().ItemsInserted)
			require.NoError(t, rdb.BFInfoExpansion(ctx, f).Err())
			require.EqualError(t, rdb.BFInfoArg(ctx, f, "colour").Err(), "Invalid information value")
			require.EqualError(t, rdb.BFInfo(ctx, "no-such-filter").Err(), "ERR not found")
			require.Equal(t, int64(3), rdb.BFCard(ctx, f).Val())
			require.Zero(t, rdb.BFCard(ctx, "no-such-filter").Val())

			// The default filter answers by its name.
			require.True(t, rdb.BFAdd(ctx, node.DefaultFilter, f).Val())
			require.True(t, rdb.BFExists(ctx, node.DefaultFilter, f).Val())
			require.EqualError(t, rdb.BFReserve(ctx, node.DefaultFilter, 0.01, 10).Err(), "ERR item exists")
		})
	}
	// The binary protocol sees what RESP added.
	require.True(t, n.Filter().Has([]byte("f2")))
	require.True(t, n.Registry().Lookup([]byte("f3")).Has([]byte("banana")))
}

func TestRESPKeySpace(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	rdb := redisClient(t, n, 3, "")
	for _, name := range []string{"user:1", "user:2", "order:1", "h?llo", "x[y]"} {
		require.NoError(t, rdb.BFReserve(ctx, name, 0.01, 100).Err())
	}
	require.Equal(t, int64(6), rdb.DBSize(ctx).Val(), "five and the default")
	require.Equal(t, int64(3), rdb.Exists(ctx, "user:1", "nope", "order:1", "user:1").Val(), "each name counted as often as given")
	require.Equal(t, "MBbloom--", rdb.Type(ctx, "user:1").Val())
	require.Equal(t, "none", rdb.Type(ctx, "nope").Val())

	keys, err := rdb.Keys(ctx, "user:*").Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"user:1", "user:2"}, keys)
	for pattern, want := range map[string][]string{
		"*":         {"default", "user:1", "user:2", "order:1", "h?llo", "x[y]"},
		"?ser:[12]": {"user:1", "user:2"},
		"user:[^1]": {"user:2"},
		"h\\?llo":   {"h?llo"},
		"x\\[y\\]":  {"x[y]"},
		"*:1":       {"user:1", "order:1"},
		"[a-p]*":    {"default", "order:1", "h?llo"},
		"nothing*":  nil,
	} {
		keys, err := rdb.Keys(ctx, pattern).Result()
		require.NoError(t, err)
		require.ElementsMatch(t, want, keys, pattern)
	}

	// SCAN, two at a time: every name once.
	var seen []string
	var cursor uint64
	for i := 0; ; i++ {
		require.Less(t, i, 10)
		page, next, err := rdb.Scan(ctx, cursor, "*", 2).Result()
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		seen = append(seen, page...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	require.ElementsMatch(t, []string{"default", "user:1", "user:2", "order:1", "h?llo", "x[y]"}, seen)
	iter := rdb.ScanType(ctx, 0, "user:*", 1, "MBbloom--").Iterator()
	seen = nil
	for iter.Next(ctx) {
		seen = append(seen, iter.Val())
	}
	require.NoError(t, iter.Err())
	require.ElementsMatch(t, []string{"user:1", "user:2"}, seen)
	page, _, err := rdb.ScanType(ctx, 0, "*", 100, "string").Result()
	require.NoError(t, err)
	require.Empty(t, page)
	require.EqualError(t, rdb.Do(ctx, "SCAN", "x").Err(), "ERR invalid cursor")
	require.EqualError(t, rdb.Do(ctx, "SCAN", "0", "COUNT").Err(), "ERR syntax error")

	// DEL and UNLINK drop; the default cannot be.
	require.Equal(t, int64(2), rdb.Del(ctx, "user:1", "nope", "user:2").Val())
	require.Equal(t, int64(1), rdb.Unlink(ctx, "order:1").Val())
	require.Zero(t, rdb.Exists(ctx, "user:1", "user:2", "order:1").Val())
	require.False(t, rdb.BFExists(ctx, "user:1", "anything").Val())
	require.ErrorContains(t, rdb.Del(ctx, node.DefaultFilter).Err(), "neither created nor dropped")
	require.Equal(t, int64(3), rdb.DBSize(ctx).Val())
	require.Len(t, n.Stats().Named, 2)
}

func TestRESPConnectionCommands(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		rdb := redisClient(t, n, proto, "")
		require.Equal(t, "hi", rdb.Echo(ctx, "hi").Val())
		require.Equal(t, "PONG", rdb.Ping(ctx).Val())
		require.Equal(t, "hello", rdb.Do(ctx, "PING", "hello").Val())
		require.NoError(t, rdb.Do(ctx, "SELECT", 0).Err())
		require.EqualError(t, rdb.Do(ctx, "SELECT", 1).Err(), "ERR DB index is out of range")

		conn := rdb.Conn()
		require.NoError(t, conn.ClientSetName(ctx, "worker-7").Err())
		require.Equal(t, "worker-7", conn.ClientGetName(ctx).Val())
		require.EqualError(t, conn.ClientSetName(ctx, "two words").Err(), "ERR Client names cannot contain spaces, newlines or special characters.")
		id, err := conn.ClientID(ctx).Result()
		require.NoError(t, err)
		require.Positive(t, id)
		require.NoError(t, conn.Do(ctx, "CLIENT", "SETINFO", "LIB-NAME", "mine").Err())
		require.ErrorContains(t, conn.Do(ctx, "CLIENT", "KILL", "x").Err(), "unknown subcommand 'KILL'")
		hello, err := conn.Do(ctx, "HELLO", proto).Result()
		require.NoError(t, err)
		require.Contains(t, fmt.Sprint(hello), "rmbd")
		require.EqualError(t, conn.Do(ctx, "HELLO", 4).Err(), "NOPROTO unsupported protocol version")
		conn.Close()

		info, err := rdb.Info(ctx).Result()
		require.NoError(t, err)
		for _, s := range []string{"# Server", "# Clients", "# Stats", "# Keyspace", "# Bloom", "db0:keys=1", "filter_default:"} {
			require.Contains(t, info, s)
		}
		info, err = rdb.Info(ctx, "keyspace").Result()
		require.NoError(t, err)
		require.Equal(t, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n", info)

		require.EqualError(t, rdb.Do(ctx, "FLUSHALL").Err(), "ERR unknown command 'FLUSHALL', with args beginning with: ")
		require.EqualError(t, rdb.Set(ctx, "k", "v", 0).Err(), "ERR unknown command 'set', with args beginning with: 'k' 'v' ")
		require.EqualError(t, rdb.Do(ctx, "BF.ADD", "f").Err(), "ERR wrong number of arguments for 'bf.add' command")
		require.Equal(t, "PONG", rdb.Ping(ctx).Val(), "an error keeps the connection")

		count, err := rdb.Do(ctx, "COMMAND", "COUNT").Int()
		require.NoError(t, err)
		cmds, err := rdb.Command(ctx).Result()
		require.NoError(t, err)
		require.Equal(t, len(cmds), count)
		require.Greater(t, count, 20)
		require.Equal(t, int8(-3), cmds["bf.madd"].Arity)
		require.Equal(t, int8(1), cmds["bf.madd"].FirstKeyPos)
		require.Contains(t, cmds["bf.exists"].Flags, "readonly")
		docs, err := rdb.Do(ctx, "COMMAND", "DOCS", "BF.INSERT").Result()
		require.NoError(t, err)
		require.Contains(t, fmt.Sprint(docs), "NOCREATE")
	}
	// QUIT answers OK and closes.
	c, err := net.Dial("tcp", n.RESPAddr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("PING\r\nQUIT\r\nPING\r\n"))
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, _ := readAllConn(c)
	require.Equal(t, "+PONG\r\n+OK\r\n", all)
}

func TestRESPPipeline(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		rdb := redisClient(t, n, proto, "")
		f := fmt.Sprint("pipe", proto)
		require.NoError(t, rdb.BFReserve(ctx, f, 0.01, 10_000).Err(), "sized for the keys: an add would make a small one")
		pipe := rdb.Pipeline()
		var adds []*redis.BoolCmd
		for i := range 1000 {
			adds = append(adds, pipe.BFAdd(ctx, f, fmt.Sprint("k", i)))
		}
		has := pipe.BFExists(ctx, f, "k999")
		bad := pipe.Do(ctx, "NOPE")
		card := pipe.BFCard(ctx, f)
		_, err := pipe.Exec(ctx)
		require.Error(t, err, "the unknown command's error")
		for i, a := range adds {
			require.NoError(t, a.Err(), i)
		}
		require.True(t, has.Val())
		require.ErrorContains(t, bad.Err(), "unknown command 'NOPE'")
		require.InDelta(t, 1000, card.Val(), 30)
		fresh := 0
		for _, a := range adds {
			if a.Val() {
				fresh++
			}
		}
		require.Greater(t, fresh, 990, "nearly every key was new")
	}
}

// go-redis's TxPipeline: MULTI, the commands, EXEC; each command's reply
// or error its own. A command refused while queuing discards them all.
func TestRESPTransaction(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		rdb := redisClient(t, n, proto, "")
		f := fmt.Sprint("tx", proto)
		pipe := rdb.TxPipeline()
		add := pipe.BFAdd(ctx, f, "a")
		madd := pipe.BFMAdd(ctx, f, "a", "b")
		has := pipe.BFMExists(ctx, f, "a", "b", "c")
		again := pipe.BFReserve(ctx, f, 0.01, 100)
		_, err := pipe.Exec(ctx)
		require.ErrorContains(t, err, "item exists")
		require.True(t, add.Val())
		require.Equal(t, []bool{false, true}, madd.Val())
		require.Equal(t, []bool{true, true, false}, has.Val())
		require.ErrorContains(t, again.Err(), "item exists")

		pipe = rdb.TxPipeline()
		pipe.BFAdd(ctx, f, "never")
		pipe.Do(ctx, "NOPE")
		_, err = pipe.Exec(ctx)
		require.ErrorContains(t, err, "EXECABORT")
		require.False(t, rdb.BFExists(ctx, f, "never").Val(), "nothing of a discarded transaction runs")
	}
}

// No other client's command runs between a transaction's: a client that
// asks for a transaction's first and last key while it runs sees both
// or neither, never the first alone.
func TestRESPTransactionIsolated(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	rdb := redisClient(t, n, 2, "")
	const keys = 5000
	require.NoError(t, rdb.BFReserve(ctx, "iso", 0.001, 4*keys).Err())
	done := make(chan error, 1)
	go func() {
		pipe := rdb.TxPipeline()
		for i := range keys {
			pipe.BFAdd(ctx, "iso", fmt.Sprint("k", i))
		}
		_, err := pipe.Exec(ctx)
		done <- err
	}()
	asker := redisClient(t, n, 2, "")
	for polls := 0; ; polls++ {
		got, err := asker.BFMExists(ctx, "iso", "k0", fmt.Sprint("k", keys-1)).Result()
		require.NoError(t, err)
		require.False(t, got[0] && !got[1], "the transaction's first add seen without its last, after %d polls", polls)
		select {
		case err := <-done:
			require.NoError(t, err)
			got, err := asker.BFMExists(ctx, "iso", "k0", fmt.Sprint("k", keys-1)).Result()
			require.NoError(t, err)
			require.Equal(t, []bool{true, true}, got)
			return
		default:
		}
	}
}

func TestRESPPassword(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.RESPPasswords = []string{"old-secret", "s3cret"}
	n := startRESP(t, cfg)
	ctx := context.Background()

	anon := redisClient(t, n, 2, "")
	require.EqualError(t, anon.Ping(ctx).Err(), "NOAUTH Authentication required.")
	require.EqualError(t, anon.BFAdd(ctx, "f", "k").Err(), "NOAUTH Authentication required.")
	require.EqualError(t, anon.Do(ctx, "AUTH", "wrong").Err(), "WRONGPASS invalid username-password pair or user is disabled.")
	require.EqualError(t, anon.Do(ctx, "AUTH", "admin", "s3cret").Err(), "WRONGPASS invalid username-password pair or user is disabled.")

	for _, proto := range []int{2, 3} {
		rdb := redisClient(t, n, proto, "s3cret") // go-redis authenticates through HELLO AUTH, or AUTH
		require.NoError(t, rdb.BFAdd(ctx, "f", "k").Err())
		require.True(t, rdb.BFExists(ctx, "f", "k").Val())
	}
	bad := redisClient(t, n, 3, "guess")
	require.ErrorContains(t, bad.Ping(ctx).Err(), "WRONGPASS")
	require.Positive(t, n.Stats().Counts[counter.RESPAuthFailures])
	assert.Zero(t, n.Stats().Counts[counter.AuthFailed], "the cluster's sealed frames' count, not passwords")

	// Before AUTH a command is held to a few short arguments.
	c, err := net.Dial("tcp", n.RESPAddr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "*2\r\n$4\r\nECHO\r\n$100000\r\n")
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, _ := readAllConn(c)
	require.Equal(t, "-ERR Protocol error: invalid bulk length (100000 bytes; at most 16384)\r\n", all)

	// Without a password, AUTH says so; the default user, as Redis's,
	// takes any password.
	open := startRESP(t, node.DefaultConfig())
	rdb := redisClient(t, open, 2, "")
	require.ErrorContains(t, rdb.Do(ctx, "AUTH", "x").Err(), "without any password configured")
	require.NoError(t, rdb.Do(ctx, "AUTH", "default", "x").Err())
	require.ErrorContains(t, rdb.Do(ctx, "AUTH", "admin", "x").Err(), "WRONGPASS")
	require.NoError(t, rdb.Do(ctx, "HELLO", 3, "AUTH", "default", "x").Err())
}

func TestRESPAllowRules(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("10.9.9.9/32")}     // loopback may not add
	cfg.AllowRead = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} // but may ask
	n := startRESP(t, cfg)
	ctx := context.Background()
	rdb := redisClient(t, n, 3, "")
	require.EqualError(t, rdb.BFAdd(ctx, "f", "k").Err(), "NOPERM this address may not run 'bf.add' (--allow)")
	require.EqualError(t, rdb.BFInsert(ctx, "f", nil, "k").Err(), "NOPERM this address may not run 'bf.insert' (--allow)")
	require.False(t, rdb.BFExists(ctx, "f", "k").Val())
	require.NoError(t, rdb.BFReserve(ctx, "g", 0.01, 10).Err(), "loopback is an admin")
	require.Positive(t, n.Stats().Counts[counter.Forbidden])
}

// TestRESPDurable: an add answered under --fsync always is in the log:
// the node restarted on the same directory has it.
func TestRESPDurable(t *testing.T) {
	dir := t.TempDir()
	cfg := node.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Fsync = store.FsyncAlways
	n, stop := startRESPStoppable(t, cfg)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: n.RESPAddr().String(), Protocol: 3})
	require.NoError(t, rdb.BFReserve(ctx, "durable", 0.01, 1000).Err())
	require.NoError(t, rdb.BFMAdd(ctx, "durable", "a", "b").Err())
	require.NoError(t, rdb.BFAdd(ctx, node.DefaultFilter, "c").Err())
	rdb.Close()
	stop()

	again := startRESP(t, cfg)
	rdb = redisClient(t, again, 3, "")
	require.Equal(t, []bool{true, true, false}, rdb.BFMExists(ctx, "durable", "a", "b", "zz").Val())
	require.True(t, rdb.BFExists(ctx, node.DefaultFilter, "c").Val())
	_, err := os.Stat(cfg.DataDir)
	require.NoError(t, err)
}

func startRESPStoppable(t *testing.T, cfg node.Config) (*node.Node, func()) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.RESPListen = "127.0.0.1:0"
	cfg.UDPSockets = 1
	n, err := node.New(cfg)
	require.NoError(t, err)
	return n, run(t, n)
}

// TestRESPCluster: BF.ADD on one member is BF.EXISTS true on the others,
// for a filter BF.RESERVEd on a third, and a DEL drops it everywhere.
func TestRESPCluster(t *testing.T) {
	a, b, c := respCluster(t)
	ctx := context.Background()
	ra, rb, rc := redisClient(t, a, 3, ""), redisClient(t, b, 2, ""), redisClient(t, c, 3, "")

	require.NoError(t, rc.BFReserve(ctx, "users", 0.001, 10000).Err())
	waitFor(t, "the filter on every member", func() bool {
		return ra.Exists(ctx, "users").Val() == 1 && rb.Exists(ctx, "users").Val() == 1
	})
	require.True(t, ra.BFAdd(ctx, "users", "alice").Val())
	require.NoError(t, rb.BFMAdd(ctx, "users", "bob", "carol").Err())
	require.True(t, ra.BFAdd(ctx, node.DefaultFilter, "dave").Val())
	for _, r := range []*redis.Client{ra, rb, rc} {
		waitFor(t, "every add on every member", func() bool {
			v, err := r.BFMExists(ctx, "users", "alice", "bob", "carol").Result()
			return err == nil && v[0] && v[1] && v[2] && r.BFExists(ctx, node.DefaultFilter, "dave").Val()
		})
	}
	info, err := rb.BFInfo(ctx, "users").Result()
	require.NoError(t, err)
	require.Equal(t, int64(10000), info.Capacity, "the sizing BF.RESERVE gave on another member")

	require.Equal(t, int64(1), ra.Del(ctx, "users").Val())
	for _, r := range []*redis.Client{rb, rc} {
		waitFor(t, "the drop everywhere", func() bool { return r.Exists(ctx, "users").Val() == 0 })
	}
}

// A filter reserved for 100 keys grows as RedisBloom's do (expansion 2
// unless told): every key stays, BF.INFO counts its stages and their
// capacity; a NONSCALING one refuses adds once full, in RedisBloom's
// words.
func TestRESPGrowingFilter(t *testing.T) {
	n := startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	rdb := redisClient(t, n, 3, "")
	require.NoError(t, rdb.BFReserve(ctx, "g", 0.01, 100).Err())
	var keys []any
	for i := range 3000 {
		keys = append(keys, fmt.Sprint("k", i))
	}
	for i := 0; i < len(keys); i += 500 {
		require.NoError(t, rdb.BFMAdd(ctx, "g", keys[i:i+500]...).Err())
	}
	info, err := rdb.BFInfo(ctx, "g").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(5), info.Filters, "100+200+400+800 < 3,000 ≤ 100+…+1,600")
	assert.Equal(t, int64(3100), info.Capacity)
	assert.Equal(t, int64(2), info.ExpansionRate)
	assert.InEpsilon(t, 3000, info.ItemsInserted, 0.05)
	has, err := rdb.BFMExists(ctx, "g", keys...).Result()
	require.NoError(t, err)
	require.NotContains(t, has, false)

	require.NoError(t, rdb.BFReserveNonScaling(ctx, "ns", 0.01, 100).Err())
	err = nil
	for i := 0; err == nil && i < 10; i++ {
		err = rdb.BFMAdd(ctx, "ns", keys[i*100:(i+1)*100]...).Err()
	}
	require.EqualError(t, err, "ERR non scaling filter is full")
}
