package respserver_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/require"
)

// The RESP listener through Redis's own command line client, redis-cli
// (Debian's redis-tools), and redis-py (Debian's python3-redis). Without
// them the tests skip, except under CI, which installs them.

// tool finds a program, skipping the test without it (failing it on CI).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/run installs it", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

// redisCLI runs redis-cli against n's RESP listener and returns what it
// prints.
func redisCLI(t *testing.T, n *node.Node, stdin string, args ...string) string {
	t.Helper()
	all := append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(n.RESPAddr().Port())}, args...)
	cmd := exec.Command(tool(t, "redis-cli"), all...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), "redis-cli %q: %s", args, errOut.String())
	return out.String()
}

// commandCount is how many commands n's RESP listener serves, as go-redis
// reads COMMAND.
func commandCount(t *testing.T, n *node.Node) int {
	cmds, err := redisClient(t, n, 3, "").Command(context.Background()).Result()
	require.NoError(t, err)
	return len(cmds)
}

func TestRedisCLI(t *testing.T) {
	tool(t, "redis-cli")
	n := startRESP(t, node.DefaultConfig())
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG\n"},
		{[]string{"ECHO", "two words"}, "two words\n"},
		{[]string{"BF.RESERVE", "cli", "0.01", "1000"}, "OK\n"},
		{[]string{"BF.RESERVE", "cli", "0.01", "1000"}, "ERR item exists\n"},
		{[]string{"BF.RESERVE", "cli-ns", "0.001", "100", "NONSCALING"}, "OK\n"},
		{[]string{"BF.RESERVE", "cli-x", "0.01", "100", "EXPANSION", "4"}, "OK\n"},
		{[]string{"BF.INFO", "cli-x", "EXPANSION"}, "4\n"},
		{[]string{"DEL", "cli-x"}, "1\n"},
		{[]string{"BF.RESERVE", "cli-y", "0.01", "100", "EXPANSION", "4", "NONSCALING"}, "ERR Nonscaling filters cannot expand\n"},
		{[]string{"BF.ADD", "cli", "apple"}, "1\n"},
		{[]string{"BF.ADD", "cli", "apple"}, "0\n"},
		{[]string{"BF.MADD", "cli", "apple", "banana", "cherry"}, "0\n1\n1\n"},
		{[]string{"BF.EXISTS", "cli", "banana"}, "1\n"},
		{[]string{"BF.EXISTS", "nope", "banana"}, "0\n"},
		{[]string{"BF.MEXISTS", "cli", "banana", "durian"}, "1\n0\n"},
		{[]string{"BF.INSERT", "cli-ins", "CAPACITY", "500", "ERROR", "0.001", "ITEMS", "a", "b"}, "1\n1\n"},
		{[]string{"BF.INSERT", "cli-none", "NOCREATE", "ITEMS", "a"}, "ERR not found\n"},
		{[]string{"BF.INFO", "cli"}, "Capacity\n1000\nSize\n1728\nNumber of filters\n1\nNumber of items inserted\n3\nExpansion rate\n2\n"},
		{[]string{"BF.INFO", "cli", "ITEMS"}, "3\n"},
		{[]string{"BF.INFO", "nope"}, "ERR not found\n"},
		{[]string{"BF.CARD", "cli"}, "3\n"},
		{[]string{"-3", "BF.EXISTS", "cli", "apple"}, "(true)\n"},
		{[]string{"-3", "BF.INFO", "cli", "CAPACITY"}, "1000\n"},
		{[]string{"DBSIZE"}, "4\n"},
		{[]string{"KEYS", "cli*"}, "cli\ncli-ins\ncli-ns\n"},
		{[]string{"--scan", "--pattern", "cli-*"}, ""}, // checked below: order is the cursor's
		{[]string{"TYPE", "cli"}, "MBbloom--\n"},
		{[]string{"EXISTS", "cli", "nope", "cli-ns"}, "2\n"},
		{[]string{"DEL", "cli-ns", "nope"}, "1\n"},
		{[]string{"UNLINK", "cli-ns"}, "0\n"},
		{[]string{"-n", "0", "PING"}, "PONG\n"},
		{[]string{"CLIENT", "SETNAME", "cli"}, "OK\n"},
		{[]string{"CLIENT", "GETNAME"}, "\n"},
		{[]string{"INFO", "keyspace"}, "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n\n"},
		{[]string{"COMMAND", "COUNT"}, fmt.Sprint(commandCount(t, n), "\n")},
		{[]string{"GET", "k"}, "ERR unknown command 'GET', with args beginning with: 'k' \n"},
		{[]string{"BF.ADD", "cli"}, "ERR wrong number of arguments for 'bf.add' command\n"},
	} {
		got := redisCLI(t, n, "", step.args...)
		if step.args[0] == "--scan" {
			require.ElementsMatch(t, []string{"cli-ins", "cli-ns"}, strings.Fields(got))
			continue
		}
		// redis-cli prints an error with a blank line after it.
		require.Equal(t, strings.TrimRight(step.want, "\n"), strings.TrimRight(got, "\n"), "redis-cli %q", step.args)
	}

	// Commands on standard input, one connection, and RESP3.
	got := redisCLI(t, n, "CLIENT SETNAME me\nCLIENT GETNAME\nBF.ADD cli \"a b\"\nBF.EXISTS cli \"a b\"\nHELLO 3\nBF.EXISTS cli \"a b\"\n")
	require.Contains(t, got, "OK\nme\n1\n1\n")
	require.True(t, strings.HasSuffix(got, "(true)\n"), got)

	// --pipe: raw protocol as fast as it goes, 10,000 adds.
	var raw strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&raw, "*3\r\n$6\r\nBF.ADD\r\n$4\r\npipe\r\n$%d\r\nk%d\r\n", len(fmt.Sprint(i))+1, i)
	}
	got = redisCLI(t, n, raw.String(), "--pipe")
	require.Contains(t, got, "errors: 0, replies: 10000")
	require.Equal(t, "1\n", redisCLI(t, n, "", "BF.EXISTS", "pipe", "k9999"))
}

// TestRedisCLICluster: redis-cli against three members: a filter made on
// one, added to through another, found on all three.
func TestRedisCLICluster(t *testing.T) {
	tool(t, "redis-cli")
	a, b, c := respCluster(t)
	require.Equal(t, "OK\n", redisCLI(t, a, "", "BF.RESERVE", "cluster", "0.001", "10000"))
	waitFor(t, "the filter on b", func() bool { return redisCLI(t, b, "", "EXISTS", "cluster") == "1\n" })
	require.Equal(t, "1\n1\n", redisCLI(t, b, "", "BF.MADD", "cluster", "x", "y"))
	require.Equal(t, "1\n", redisCLI(t, c, "", "BF.ADD", "default", "z"))
	for _, n := range []*node.Node{a, b, c} {
		waitFor(t, "every add on every member", func() bool {
			return redisCLI(t, n, "", "BF.MEXISTS", "cluster", "x", "y") == "1\n1\n" &&
				redisCLI(t, n, "", "BF.EXISTS", "default", "z") == "1\n"
		})
	}
}

func TestRedisCLIPassword(t *testing.T) {
	tool(t, "redis-cli")
	cfg := node.DefaultConfig()
	cfg.RESPPasswords = []string{"s3cret"}
	n := startRESP(t, cfg)
	require.Equal(t, "NOAUTH Authentication required.\n\n", redisCLI(t, n, "", "BF.ADD", "f", "k"))
	// A wrong password: redis-cli warns of WRONGPASS on stderr, and the
	// command is refused.
	require.Equal(t, "NOAUTH Authentication required.\n\n", redisCLI(t, n, "", "--no-auth-warning", "-a", "wrong", "PING"))
	require.Equal(t, "1\n", redisCLI(t, n, "", "--no-auth-warning", "-a", "s3cret", "BF.ADD", "f", "k"))
	require.Equal(t, "1\n", redisCLI(t, n, "", "--no-auth-warning", "--user", "default", "--pass", "s3cret", "-3", "BF.CARD", "f"))
}

func TestRedisPy(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, which python3-redis is for
	if err := exec.Command(python, "-c", "import redis").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s cannot import redis: .ci/run installs python3-redis", python)
		}
		t.Skip("no redis-py for", python)
	}
	a, b, c := respCluster(t)
	pcfg := node.DefaultConfig()
	pcfg.RESPPasswords = []string{"py-secret"}
	p := startRESP(t, pcfg)
	cmd := exec.Command(python, "testdata/resp_clients.py", fmt.Sprint(a.RESPAddr().Port()), fmt.Sprint(b.RESPAddr().Port()),
		fmt.Sprint(c.RESPAddr().Port()), fmt.Sprint(p.RESPAddr().Port()), "py-secret")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "ok\n", string(out))
}

// redis-benchmark reads CONFIG GET save and appendonly first; a server
// that cannot answer gets a warning on every run.
func TestRedisBenchmarkFindsItsConfig(t *testing.T) {
	bench := tool(t, "redis-benchmark")
	n := startRESP(t, node.DefaultConfig())
	out, err := exec.Command(bench, "-h", "127.0.0.1", "-p", fmt.Sprint(n.RESPAddr().Port()), "-n", "100", "-c", "10", "-q", "-t", "ping").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "requests per second")
	require.NotContains(t, string(out), "WARNING")
}

// A filter of about 100 MB, filled through the binary protocol, copied
// into another node (another cluster) with redis-py's scandump and
// loadchunk, then with go-redis's BFScanDump and BFLoadChunk: every key
// true in both copies, and the copies' rows the original's.
func TestDumpLoadThroughRedisClients(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import redis").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s cannot import redis: .ci/run installs python3-redis", python)
		}
		t.Skip("no redis-py for", python)
	}
	const capacity, nkeys = 85_000_000, 1_000_000
	if testing.Short() {
		t.Skip("a 100 MB filter")
	}
	src, dst := startRESP(t, node.DefaultConfig()), startRESP(t, node.DefaultConfig())
	ctx := context.Background()
	rs, rd := redisClient(t, src, 2, ""), redisClient(t, dst, 3, "")
	require.NoError(t, rs.BFReserve(ctx, "big", 0.01, capacity).Err())
	size := src.Registry().Lookup([]byte("big")).Winner().Bytes()
	require.GreaterOrEqual(t, size, uint64(100_000_000), "a filter of 100 MB")
	c, err := client.Dial(ctx, src.Addr().String(), client.WithTCP(), client.WithTimeout(time.Minute))
	require.NoError(t, err)
	defer c.Close()
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
	}
	for i := 0; i < nkeys; i += 100_000 {
		require.NoError(t, c.Filter("big").Add(ctx, keys[i:i+100_000]...))
	}

	out, err := exec.Command(python, "testdata/resp_dump.py", fmt.Sprint(src.RESPAddr().Port()), fmt.Sprint(dst.RESPAddr().Port()),
		"big", "py-copy").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.True(t, strings.HasSuffix(string(out), "ok\n"), "%s", out)
	t.Logf("redis-py: %s", strings.Split(string(out), "\n")[0])
	sameFilter(t, ctx, src, dst, "big", "py-copy", keys)
	require.NoError(t, rd.Del(ctx, "py-copy").Err())

	chunks := 0
	for it := int64(0); ; chunks++ {
		d, err := rs.BFScanDump(ctx, "big", it).Result()
		require.NoError(t, err)
		if d.Iter == 0 {
			break
		}
		require.NoError(t, rd.BFLoadChunk(ctx, "go-copy", d.Iter, d.Data).Err())
		it = d.Iter
	}
	t.Logf("go-redis: %d chunks", chunks)
	sameFilter(t, ctx, src, dst, "big", "go-copy", keys)
}

// sameFilter asserts that filter name of a and filter copy of b hold the
// same rows, and that every key is true in the copy.
func sameFilter(t *testing.T, ctx context.Context, a, b *node.Node, name, copy string, keys []string) {
	t.Helper()
	fa, fb := a.Registry().Lookup([]byte(name)).Winner(), b.Registry().Lookup([]byte(copy)).Winner()
	require.NotNil(t, fb)
	ra, rb := fa.Segments()[0].Rows(), fb.Segments()[0].Rows()
	require.Equal(t, ra.Fingerprint(), rb.Fingerprint())
	for first := uint64(0); first < ra.Rows(); first += 1 << 16 {
		n := min(1<<16, ra.Rows()-first)
		x, err := ra.CopyRows(nil, first, n)
		require.NoError(t, err)
		y, err := rb.CopyRows(nil, first, n)
		require.NoError(t, err)
		require.True(t, bytes.Equal(x, y), "rows %d..%d", first, first+n)
	}
	c, err := client.Dial(ctx, b.Addr().String(), client.WithTCP(), client.WithTimeout(time.Minute))
	require.NoError(t, err)
	defer c.Close()
	for i := 0; i < len(keys); i += 100_000 {
		got, err := c.Filter(copy).Has(ctx, keys[i:min(i+100_000, len(keys))]...)
		require.NoError(t, err)
		for j, ok := range got {
			require.True(t, ok, "key %d", i+j)
		}
	}
}
