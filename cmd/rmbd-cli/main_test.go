package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cli runs rmbd-cli with args and stdin; it returns the exit status,
// stdout and stderr.
func cli(addr, stdin string, args ...string) (int, string, string) {
	return cliEnv(map[string]string{"RMBD_ADDR": addr}, stdin, args...)
}

// cliEnv is cli with an environment.
func cliEnv(environ map[string]string, stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	env := func(k string) string { return environ[k] }
	code := run(context.Background(), args, env, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAddHasExitCodes(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, out, errOut := cli(addr, "", "add", "alice", "bob")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, out)

	code, out, _ = cli(addr, "", "has", "alice", "bob")
	assert.Equal(t, 0, code, "all present")
	assert.Equal(t, "alice\ttrue\nbob\ttrue\n", out)

	code, out, _ = cli(addr, "", "has", "alice", "carol")
	assert.Equal(t, 1, code, "one absent")
	assert.Equal(t, "alice\ttrue\ncarol\tfalse\n", out)

	code, out, _ = cli(addr, "", "--json", "has", "alice", "carol")
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	var v struct {
		Key     string `json:"key"`
		Present bool   `json:"present"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &v))
	assert.Equal(t, "carol", v.Key)
	assert.False(t, v.Present)

	code, _, _ = cli(addr, "", "--tcp", "has", "--", "-dash")
	assert.Equal(t, 1, code, "keys may start with a dash after --")
}

func TestStdinStreaming(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	var in strings.Builder
	for i := range 30_000 {
		fmt.Fprintf(&in, "line-%d\r\n", i) // CRLF is taken off
	}
	code, out, errOut := cli(addr, in.String(), "--chunk", "7000", "--json", "add", "-")
	require.Equal(t, 0, code, errOut)
	assert.JSONEq(t, `{"added":30000}`, out)

	code, out, _ = cli(addr, in.String()+"missing\n", "--chunk", "4096", "has", "-")
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 30_001)
	for i := range 30_000 {
		require.Equal(t, fmt.Sprintf("line-%d\ttrue", i), lines[i], "in order")
	}
	assert.Equal(t, "missing\tfalse", lines[30_000])

	code, _, errOut = cli(addr, "ok\n"+strings.Repeat("x", 5000)+"\n", "--tcp", "add", "-")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "stdin line 2: a key over the limit of 4096 bytes here (the 1 key before it was added)")

	// Over UDP the limit is what fits a datagram: the line is named, the
	// keys before it are added, and how many is said.
	code, _, errOut = cli(addr, "u1\nu2\nu3\n"+strings.Repeat("y", 2000)+"\nu5\n", "add", "-")
	assert.Equal(t, 2, code)
	assert.Regexp(t, `stdin line 4: a key of 2000 bytes, over the limit of \d+ bytes here \(use --tcp for keys up to 4096 bytes\) \(the 3 keys before it were added\)`, errOut)
	code, out, _ = cli(addr, "", "has", "u1", "u2", "u3", "u5")
	assert.Equal(t, 1, code)
	assert.Equal(t, "u1\ttrue\nu2\ttrue\nu3\ttrue\nu5\tfalse\n", out)
}

// Flags after the command are flags; -- ends them once.
func TestFlagsAfterTheCommand(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, out, errOut := cli(addr, "", "add", "--json", "k")
	require.Equal(t, 0, code, errOut)
	assert.JSONEq(t, `{"added":1}`, out)
	code, _, errOut = cli(addr, "", "add", "--", "-bar", "--")
	require.Equal(t, 0, code, errOut)
	code, out, _ = cli(addr, "", "has", "--", "k", "-bar", "--", "--json")
	assert.Equal(t, 1, code)
	assert.Equal(t, "k\ttrue\n-bar\ttrue\n--\ttrue\n--json\tfalse\n", out, "the second -- was a key; --json was never added")
	code, _, errOut = cli(addr, "", "add", "-bar")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "put -- before keys that start with -")
}

// A classic add gets no reply: to a node that is down it must not pass in
// silence.
func TestClassicAddIsConfirmed(t *testing.T) {
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	down := l.LocalAddr().String()
	l.Close() // nothing listens there now
	code, _, errOut := cli(down, "", "--classic", "--timeout", "300ms", "add", "k")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no rmbd node answers at "+down)

	addr := nodetest.Start(t, node.ClassicConfig()).Addr().String()
	code, _, errOut = cli(addr, "", "--classic", "add", "k1", "k2")
	assert.Equal(t, 0, code, errOut)
	code, _, errOut = cli(addr, "a\nb\n", "--classic", "add", "-")
	assert.Equal(t, 0, code, errOut)
}

// peer naming the node itself is refused by the node: the CLI says so
// and exits 2, never "pushes its rows".
func TestPeerRefusalIsReported(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, out, errOut := cli(addr, "", "peer", addr)
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Equal(t, "rmbd-cli: "+addr+" node refused (refused): "+addr+" is this node\n", errOut)
}

func TestMembersWithoutMembership(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, out, _ := cli(addr, "", "members")
	assert.Equal(t, 0, code)
	assert.Equal(t, addr+" runs without cluster membership (no --join or --gossip-listen): it has no members (rmbd-cli peers lists its static peers)\n", out)
	code, out, _ = cli(addr, "", "--json", "members")
	assert.Equal(t, 0, code)
	assert.JSONEq(t, `{"node":"`+addr+`","membership":false}`, out)
}

func TestAddressFromTheEnvironmentIsNamed(t *testing.T) {
	code, _, errOut := cli("bogus", "", "ping")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "RMBD_ADDR=bogus: ")
	code, _, errOut = cli("bogus", "", "--addr", "alsobogus", "ping")
	assert.Equal(t, 2, code)
	assert.NotContains(t, errOut, "RMBD_ADDR", "the flag won")
}

// add says on stderr when the node reports its filter past its capacity.
func TestAddWarnsOverCapacity(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Capacity = 100
	n := nodetest.Start(t, cfg)
	addr := n.Addr().String()
	code, _, errOut := cli(addr, "", "add", "first")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut, "within capacity: no warning")
	var in strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&in, "k%d\n", i)
	}
	code, _, errOut = cli(addr, in.String(), "--tcp", "add", "-")
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool { return n.Stats().Alarms.OverCapacity }, 10*time.Second, 10*time.Millisecond)
	code, _, errOut = cli(addr, "", "add", "one-more")
	assert.Equal(t, 0, code, "the add is done; the warning is a warning")
	assert.Contains(t, errOut, "warning: "+addr+"'s filter \"default\" holds more keys than it was sized for")
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line")
	code, out, _ := cli(addr, "", "ping")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "OVER CAPACITY")
}

// The warning is about the filter added to: the default past its
// capacity warns; a growing named filter holding 30 times its first
// capacity does not (it grew); a fresh one added to while the default is
// full does not warn of the default's. A filter made not to grow refuses
// adds once full, saying so.
func TestAddWarnsPerFilter(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Capacity = 100
	n := nodetest.Start(t, cfg)
	addr := n.Addr().String()
	code, _, errOut := cli(addr, "", "create", "tiny", "--capacity", "10")
	require.Equal(t, 0, code, errOut)
	code, _, errOut = cli(addr, "", "create", "fresh", "--capacity", "100000")
	require.Equal(t, 0, code, errOut)
	var in strings.Builder
	for i := range 300 {
		fmt.Fprintf(&in, "k%d\n", i)
	}
	for _, args := range [][]string{{"-f", "tiny", "add", "-"}, {"add", "-"}} {
		code, _, errOut = cli(addr, in.String(), args...)
		require.Equal(t, 0, code, errOut)
	}
	require.Eventually(t, func() bool {
		st := n.Stats()
		return st.Alarms.OverCapacity && len(st.Named) == 2 && st.Named[1].EstimatedKeys > 250
	}, 10*time.Second, 10*time.Millisecond)
	assert.False(t, n.Stats().Named[1].Alarms.OverCapacity, "tiny grew")
	code, _, errOut = cli(addr, "", "add", "one-more")
	require.Equal(t, 0, code)
	assert.Contains(t, errOut, "warning: "+addr+"'s filter \"default\" holds more keys than it was sized for")
	for _, f := range []string{"tiny", "fresh"} {
		code, _, errOut = cli(addr, "", "-f", f, "add", "one-more")
		require.Equal(t, 0, code)
		assert.Empty(t, errOut, "%s does not warn", f)
	}
	code, out, _ := cli(addr, "", "ping")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "OVER CAPACITY")

	code, _, errOut = cli(addr, "", "create", "fixed", "--capacity", "10", "--expansion", "0")
	require.Equal(t, 0, code, errOut)
	code, _, errOut = cli(addr, in.String(), "-f", "fixed", "add", "-")
	assert.NotZero(t, code)
	assert.Contains(t, errOut, "non scaling filter is full")
}

// create's refusals are the node's own words: what only the node judges
// (a sizing, a name) reaches it.
func TestCreateRefusalsAreTheNodes(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "x", "--fp-rate", "1.5"}, "fp-rate must be strictly between 0 and 1"},
		{[]string{"create", "x", "--capacity", "0"}, "capacity must be at least 1"},
		{[]string{"create", ""}, "1 to 200 bytes of UTF-8, no control characters"},
		{[]string{"create", "a\tb"}, "1 to 200 bytes of UTF-8, no control characters"},
		{[]string{"create", "default"}, "neither created nor dropped"},
	} {
		code, _, errOut := cli(addr, "", c.args...)
		assert.Equal(t, 2, code, "%q", c.args)
		assert.Contains(t, errOut, c.want, "%q", c.args)
		assert.NotContains(t, errOut, "wire:", "%q", c.args)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	}
}

func TestStatsWatch(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--watch", "20ms", "stats"}, func(k string) string { return map[string]string{"RMBD_ADDR": addr}[k] },
			strings.NewReader(""), w, &errOut)
		w.Close()
	}()
	sc := bufio.NewScanner(r)
	for i := range 3 {
		require.True(t, sc.Scan(), "line %d", i)
		assert.Regexp(t, `^\d\d:\d\d:\d\d adds/s \d+ has/s \d+ .* fill [\d.]+% keys \d+ fp [\d.]+ peers 0 conns \d+$`, sc.Text())
	}
	cancel()
	go io.Copy(io.Discard, r)
	assert.Equal(t, 0, <-done, "interrupted: a clean end")
	code, _, errOut2 := cli(addr, "", "--watch", "1s", "ping")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut2, "--watch goes with stats")
}

func TestVersion(t *testing.T) {
	code, out, _ := cli("", "", "--version")
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^rmbd-cli \S+`, out)
}

func TestOtherCommands(t *testing.T) {
	n, other := nodetest.Start(t, node.DefaultConfig()), nodetest.Start(t, node.DefaultConfig())
	addr := n.Addr().String()
	code, out, _ := cli(addr, "", "ping")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "pong from "+addr)
	assert.Contains(t, out, "UNAUTHENTICATED", "a node without a key says so")
	code, out, _ = cli(addr, "", "--json", "stats")
	assert.Equal(t, 0, code)
	var stats map[string]uint64
	require.NoError(t, json.Unmarshal([]byte(out), &stats))
	assert.Contains(t, stats, "adds")
	code, out, _ = cli(addr, "", "peer", "127.0.0.1:9")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "challenged 127.0.0.1:9: it pushes rows there once 127.0.0.1:9 answers")
	code, out, _ = cli(addr, "", "peer", "127.0.0.1:9")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "challenged 127.0.0.1:9", "still to answer")

	target := other.Addr().String()
	code, _, _ = cli(addr, "", "peer", target)
	assert.Equal(t, 0, code)
	require.Eventually(t, func() bool {
		for _, p := range n.Peers() {
			if p.Addr == other.Addr() {
				return p.Verified
			}
		}
		return false
	}, 5*time.Second, 2*time.Millisecond, "another node answers its challenge")
	code, out, _ = cli(addr, "", "peer", target)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "already pushes its rows to "+target)

	// peers lists them: one that answered its challenge, one that never did.
	code, out, errOut := cli(addr, "", "peers")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^PEER +KIND +STATE +LAST ACK\n`, out)
	assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(target)+` +static +verified `, out)
	assert.Regexp(t, `(?m)^127\.0\.0\.1:9 +static +challenged: no rows until it answers +never`, out)
	code, out, _ = cli(addr, "", "--json", "peers")
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"addr":"`+target+`"`)
	code, out, _ = cli(other.Addr().String(), "", "peers")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "pushes its rows to nobody")
}

// A node with a cluster key takes peer requests sealed with it only; the
// CLI prints the node's refusal and exits 2.
func TestClusterKey(t *testing.T) {
	k, err := auth.Generate()
	require.NoError(t, err)
	cfg := node.DefaultConfig()
	cfg.ClusterKeys = []auth.Key{k}
	addr := nodetest.Start(t, cfg).Addr().String()

	code, out, _ := cli(addr, "", "ping")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "cluster traffic: authenticated")

	code, _, errOut := cli(addr, "", "peer", "127.0.0.1:9")
	assert.Equal(t, 2, code)
	assert.Equal(t, "rmbd-cli: "+addr+" node refused (unsealed): this node has a cluster key: peer requests must be sealed with it (rmbd-cli --cluster-key-file)\n", errOut)

	file := filepath.Join(t.TempDir(), "cluster.key")
	require.NoError(t, os.WriteFile(file, []byte(k.String()+"\n"), 0o600))
	code, out, errOut = cli(addr, "", "--cluster-key-file", file, "peer", "127.0.0.1:9")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "challenged 127.0.0.1:9")
	code, out, errOut = cliEnv(map[string]string{"RMBD_ADDR": addr, "RMBD_CLUSTER_KEY": k.String()}, "", "--tcp", "peer", "127.0.0.1:9")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "challenged 127.0.0.1:9")

	other, _ := auth.Generate()
	code, _, errOut = cliEnv(map[string]string{"RMBD_ADDR": addr, "RMBD_CLUSTER_KEY": other.String()}, "", "peer", "127.0.0.1:9")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "node refused (refused): sealed with a key this node does not have")
	code, _, errOut = cliEnv(map[string]string{"RMBD_ADDR": addr, "RMBD_CLUSTER_KEY": "short"}, "", "peer", "127.0.0.1:9")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "RMBD_CLUSTER_KEY: line 1: auth: bad cluster key")
	code, _, errOut = cli(addr, "", "--cluster-key-file", file+".missing", "ping")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no such file")
}

func TestErrorsAreOneLine(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hole.Close()
	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := closed.LocalAddr().String()
	closed.Close()
	for _, tc := range []struct {
		addr string
		args []string
		want string
	}{
		{closedAddr, []string{"ping"}, "no rmbd node answers at " + closedAddr},
		{hole.LocalAddr().String(), []string{"--timeout", "50ms", "has", "x"}, "did not answer within 50ms (see --timeout; over UDP a node that falls behind sheds a client sending fast: --tcp for large loads)"},
		{"nonsense", []string{"ping"}, "bad address"},
		{addr, []string{"add", strings.Repeat("k", 2000)}, "key too long: 2000 bytes, the limit is 1386 here (use --tcp"},
		{addr, []string{"--classic", "add", strings.Repeat("k", 140)}, "key too long: 140 bytes, the limit is 139"},
		{addr, []string{"frob"}, `unknown command "frob"`},
		{addr, nil, "no command"},
		{addr, []string{"peer"}, "peer takes one HOST:PORT"},
		{addr, []string{"peer", "x"}, "bad address"},
		{addr, []string{"ping", "extra"}, "ping takes no arguments"},
		{addr, []string{"--bogus", "ping"}, "unknown flag: --bogus"},
		{addr, []string{"add"}, "add takes keys"},
	} {
		code, _, errOut := cli(tc.addr, "", tc.args...)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, errOut, tc.want, "%v", tc.args)
		assert.True(t, strings.HasPrefix(errOut, "rmbd-cli: "), errOut)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := cli("", "", "--help")
	assert.Equal(t, 0, code)
	for _, s := range []string{"add KEY", "has -", "peer HOST:PORT", "ping", "stats", "--addr", "RMBD_ADDR", "--tcp", "--timeout", "--json", "exits 0 when every key is present", "--replicas R", "--cluster -f NAME"} {
		assert.Contains(t, out, s)
	}
}

func TestNamedFilterCommands(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, out, errOut := cli(addr, "", "create", "users", "--capacity", "5000", "--fp-rate", "0.001")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `^created users: capacity 5000 at fp-rate 0.001, \d+ bytes\n$`, out)
	code, _, errOut = cli(addr, "", "-f", "users", "add", "alice", "bob")
	require.Equal(t, 0, code, errOut)
	code, out, _ = cli(addr, "", "-f", "users", "has", "alice", "carol")
	assert.Equal(t, 1, code)
	assert.Equal(t, "alice\ttrue\ncarol\tfalse\n", out)
	code, out, _ = cliEnv(map[string]string{"RMBD_ADDR": addr, "RMBD_FILTER": "users"}, "bob\n", "has", "-")
	assert.Equal(t, 0, code)
	assert.Equal(t, "bob\ttrue\n", out)
	code, _, _ = cli(addr, "", "has", "alice")
	assert.Equal(t, 1, code, "the default filter is another")

	code, out, _ = cli(addr, "", "list")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^NAME +CAPACITY +FP RATE +STAGES +EST\. KEYS +FILL +BYTES\n`, out)
	assert.Regexp(t, `(?m)^default +1000000 +0\.01 +1 `, out)
	assert.Regexp(t, `(?m)^users +5000 +0\.001 +1 `, out)
	code, out, _ = cli(addr, "", "info", "users")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "capacity        5000\n")
	assert.Contains(t, out, "growth          expansion 2: a full filter opens a stage 2 times larger\nstages          1, for 5000 keys together\n")

	// A filter grown past its first stage: info and list say how far.
	code, _, errOut = cli(addr, "", "create", "grows", "--capacity", "100", "--expansion", "2")
	require.Equal(t, 0, code, errOut)
	var keys strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&keys, "g%d\n", i)
	}
	code, _, errOut = cli(addr, keys.String(), "-f", "grows", "add", "-")
	require.Equal(t, 0, code, errOut)
	code, out, _ = cli(addr, "", "info", "grows")
	require.Equal(t, 0, code)
	assert.Regexp(t, `stages          [4-9], for \d+ keys together\n`, out)
	code, out, _ = cli(addr, "", "--json", "list")
	require.Equal(t, 0, code)
	assert.Regexp(t, `"name":"grows".*"stages":[4-9]`, out)

	code, _, errOut = cli(addr, "", "create", "users", "--capacity", "9")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "capacity 5000")
	code, _, errOut = cli(addr, "", "list", "--capacity", "9")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "go with create")
	code, out, errOut = cli(addr, "", "create", "old", "--layout", "classic")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "created old: capacity 0")
	code, _, errOut = cli(addr, "", "-f", "old", "add", "k")
	require.Equal(t, 0, code, errOut)
	code, _, _ = cli(addr, "", "-f", "old", "has", "k")
	assert.Equal(t, 0, code)
	code, _, errOut = cli(addr, "", "-f", "users", "list")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "-f names the filter of add, has and ping")

	code, out, _ = cli(addr, "", "drop", "users")
	require.Equal(t, 0, code)
	assert.Equal(t, "dropped users\n", out)
	code, _, errOut = cli(addr, "", "info", "users")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no filter users")
}

// dump NAME > FILE, then load OTHER < FILE on another node: every key
// there; a damaged file is refused with the reason, exit 2.
func TestDumpLoad(t *testing.T) {
	src := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	dst := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, _, errOut := cli(src, "", "create", "users", "--capacity", "1000", "--expansion", "2")
	require.Equal(t, 0, code, errOut)
	keys := make([]string, 5000)
	for i := range keys {
		keys[i] = fmt.Sprint("user-", i)
	}
	code, _, errOut = cli(src, strings.Join(keys, "\n")+"\n", "-f", "users", "add", "-")
	require.Equal(t, 0, code, errOut)
	code, file, errOut := cli(src, "", "dump", "users")
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(file, "RMBC"), "a dump's first chunk")

	code, _, errOut = cli(dst, file, "load", "copy")
	require.Equal(t, 0, code, errOut)
	code, out, errOut := cli(dst, strings.Join(keys, "\n")+"\n", "-f", "copy", "has", "-")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "false")

	damaged := []byte(file)
	damaged[len(damaged)-3] ^= 1
	code, _, errOut = cli(dst, string(damaged), "load", "again")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "checksum mismatch")
	code, _, errOut = cli(dst, "", "dump", "nothing")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no filter nothing")
	code, _, errOut = cli(dst, "", "load")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "load takes one filter NAME")
}

// has on a named filter the node does not hold is an error naming it,
// exit 2, not "false" for every key; the default filter's info says the
// node's flags made it, not that it was made in 1970.
func TestCLISnags(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, out, errOut := cli(addr, "", "-f", "typo", "has", "x")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, `no filter "typo" on `+addr+` (rmbd-cli list shows its filters;`)

	// $RMBD_FILTER is for the commands that take a filter; a key that
	// does not open the node's seals stops no has (it needs none).
	code, _, errOut = cliEnv(map[string]string{"RMBD_ADDR": addr, "RMBD_FILTER": "users"}, "", "list")
	assert.Equal(t, 0, code, errOut)
	code, _, errOut = cli(addr, "", "create", "users", "--capacity", "100")
	require.Equal(t, 0, code, errOut)
	code, _, errOut = cliEnv(map[string]string{"RMBD_ADDR": addr, "RMBD_FILTER": "users"}, "", "check", "users", "nope")
	assert.Equal(t, 1, code, errOut)
	keyFile := filepath.Join(t.TempDir(), "k")
	k, err := auth.Generate()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, []byte(k.String()+"\n"), 0o600))
	code, _, errOut = cli(addr, "", "--cluster-key-file", keyFile, "-f", "users", "has", "nope")
	assert.Equal(t, 1, code, "answered: %s", errOut)
	code, out, _ = cli(addr, "", "check", "users", "-")
	assert.Equal(t, 1, code, "the key -, not stdin")
	assert.Equal(t, "-\tfalse\n", out)
	code, _, errOut = cli(addr, "x\n", "-f", "typo", "has", "-")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `no filter "typo"`)

	code, out, errOut = cli(addr, "", "info", "default")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "1970")
	assert.Regexp(t, `created         by \S+'s flags \(the node's own filter\)\n`, out)
	code, out, _ = cli(addr, "", "--json", "info", "default")
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"created":null`)
}

// bloomd's verbs, where they mean what rmbd-cli's do: set and bulk add,
// check and multi ask, list takes a prefix.
func TestBloomdVerbs(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	for _, name := range []string{"events", "events-eu", "users"} {
		code, _, errOut := cli(addr, "", "create", name, "--capacity", "1000")
		require.Equal(t, 0, code, errOut)
	}
	code, out, errOut := cli(addr, "", "set", "events", "e1")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, out)
	code, _, errOut = cli(addr, "", "bulk", "events", "e2", "e3")
	require.Equal(t, 0, code, errOut)
	code, out, _ = cli(addr, "", "check", "events", "e1")
	assert.Equal(t, 0, code)
	assert.Equal(t, "e1\ttrue\n", out)
	code, out, _ = cli(addr, "", "multi", "events", "e2", "e3", "nope")
	assert.Equal(t, 1, code)
	assert.Equal(t, "e2\ttrue\ne3\ttrue\nnope\tfalse\n", out)
	code, out, errOut = cli(addr, "", "list", "events")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "events ")
	assert.Contains(t, out, "events-eu ")
	assert.NotContains(t, out, "users")
	assert.NotContains(t, out, "default")

	code, _, errOut = cli(addr, "", "check", "events", "a", "b")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "check takes a filter NAME and one KEY")
	code, _, errOut = cli(addr, "", "-f", "users", "check", "events", "a")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "check names its filter first")
	code, _, errOut = cli(addr, "", "check", "typo", "a")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `no filter "typo"`)
}

// expire NAME TTL, ttl NAME, persist NAME: the filter's deadline, set,
// told and taken off; a deadline come drops it.
func TestExpire(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, _, errOut := cli(addr, "", "create", "sessions", "--capacity", "1000")
	require.Equal(t, 0, code, errOut)

	code, out, errOut := cli(addr, "", "ttl", "sessions")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "sessions never expires\n", out)
	code, out, errOut = cli(addr, "", "expire", "sessions", "7d")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `^sessions expires at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 16[78]h\d+m\d+s\)\n$`, out)
	code, out, _ = cli(addr, "", "info", "sessions")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^sessions expires at .*\(in 16[78]h`, out, "info tells it")
	code, out, _ = cli(addr, "", "--json", "ttl", "sessions")
	require.Equal(t, 0, code)
	assert.Regexp(t, `^\{"expires":"\d{4}-.*Z","name":"sessions"\}\n$`, out)
	code, out, _ = cli(addr, "", "persist", "sessions")
	require.Equal(t, 0, code)
	assert.Equal(t, "sessions never expires\n", out)

	for _, bad := range [][]string{{"expire", "sessions", "soon"}, {"expire", "sessions", "-5s"}, {"expire", "sessions"},
		{"expire", "nope", "1h"}, {"ttl", "nope"}, {"expire", "default", "1h"}} {
		code, _, errOut = cli(addr, "", bad...)
		assert.Equal(t, 2, code, "%v", bad)
		assert.NotEmpty(t, errOut, "%v", bad)
	}
	code, _, errOut = cli(addr, "", "ttl", "nope")
	assert.Contains(t, errOut, "no filter nope")

	code, _, errOut = cli(addr, "", "expire", "sessions", "1ms")
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool {
		code, _, _ := cli(addr, "", "info", "sessions")
		return code == 2
	}, 10*time.Second, 50*time.Millisecond, "dropped at its deadline")
}

// create --window makes a filter that forgets; info tells its window and
// the slices it holds; --window with what a window does not go with is
// refused before anything is sent.
func TestCreateWindowed(t *testing.T) {
	addr := nodetest.Start(t, node.DefaultConfig()).Addr().String()
	code, out, errOut := cli(addr, "", "create", "recent", "--window", "10s", "--capacity", "1000")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "created recent: capacity 1000 per window of 10s at fp-rate 0.01\n", out)
	code, _, errOut = cli(addr, "", "-f", "recent", "add", "k")
	require.Equal(t, 0, code, errOut)
	code, out, _ = cli(addr, "", "info", "recent")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "window          10s in 10 slices of 1s: keys are forgotten 10s to 12s after they were added\nslices          1 held now\n")
	code, out, _ = cli(addr, "", "--json", "info", "recent")
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"slices":10,"slices_held":1,`)
	assert.Contains(t, out, `"window_ms":10000`)
	code, _, errOut = cli(addr, "", "create", "week", "--window", "7d", "--slices", "7")
	require.Equal(t, 0, code, errOut)

	for _, bad := range []struct {
		args []string
		err  string
	}{
		{[]string{"create", "w", "--window", "soon"}, `--window takes a length of time, e.g. 90s, 24h or 7d, in whole milliseconds, not "soon"`},
		{[]string{"create", "w", "--slices", "5"}, "--slices goes with --window"},
		{[]string{"create", "w", "--window", "1h", "--expansion", "2"}, "--window and --expansion do not go together"},
		{[]string{"create", "w", "--window", "1h", "--layout", "classic"}, "--window goes with the blocked layout"},
		{[]string{"create", "w", "--window", "1s", "--slices", "20"}, "a window's slices last 100ms at least"},
		{[]string{"info", "recent", "--window", "1h"}, "go with create, not info"},
	} {
		code, _, errOut := cli(addr, "", bad.args...)
		assert.Equal(t, 2, code, "%v", bad.args)
		assert.Contains(t, errOut, bad.err, "%v", bad.args)
	}
}

// create --replicas places a filter on some members: create, info and
// list say which, and how the node asked holds it; members counts what
// each owns; add and has --cluster send the keys to the owner, the node
// given forwarding none. What --replicas does not go with is refused
// before anything is sent.
func TestPlacedFilters(t *testing.T) {
	ns := nodetest.Cluster(t, 3, node.DefaultConfig())
	first := ns[0].Addr().String()
	code, out, errOut := cli(first, "", "create", "placed", "--replicas", "1", "--capacity", "100000", "--expansion", "0")
	require.Equal(t, 0, code, errOut)
	var owners []string
	require.Eventually(t, func() bool {
		rt, ok := ns[0].Registry().Route([]byte("placed"))
		owners = rt.Owners()
		return ok && len(owners) == 1
	}, 10*time.Second, 5*time.Millisecond)
	var owner, other *node.Node
	for _, n := range ns {
		if n.Name() == owners[0] {
			owner = n
		} else {
			other = n
		}
	}
	assert.Equal(t, "created placed: capacity 100000 at fp-rate 0.01, on 1 of the members (now "+owner.Name()+")\n", out)
	t.Cleanup(func() { // before the members stop: one leaving with a placed filter waits for its hand-off
		cli(first, "", "drop", "placed")
		require.Eventually(t, func() bool { return len(owner.Registry().Lookup([]byte("placed"))) == 0 }, 10*time.Second, 5*time.Millisecond)
	})
	require.Eventually(t, func() bool {
		vs := owner.Registry().Lookup([]byte("placed"))
		_, routed := other.Registry().Route([]byte("placed"))
		return len(vs) > 0 && !vs.Winner().Filling() && routed
	}, 10*time.Second, 5*time.Millisecond)

	addr := other.Addr().String()
	code, out, errOut = cli(addr, "", "info", "placed")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "replicas        1 (now "+owner.Name()+")\nheld here       no: its keys are forwarded to the owners, who count them\n")
	assert.NotContains(t, out, "estimated keys", "not this node's to count")
	code, out, _ = cli(owner.Addr().String(), "", "info", "placed")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "held here       ready\n")
	assert.Contains(t, out, "estimated keys  0\n")
	code, out, _ = cli(addr, "", "list")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^NAME +CAPACITY +FP RATE +STAGES +EST\. KEYS +FILL +BYTES +ON +HERE\n`, out)
	assert.Regexp(t, `(?m)^placed +100000 +0\.01 +- +- +- +- +`+regexp.QuoteMeta(owner.Name())+` +not held\n`, out)
	assert.Regexp(t, `(?m)^default +1000000 +0\.01 +1 +.* all +ready\n`, out)
	code, out, _ = cli(addr, "", "--json", "info", "placed")
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"here":"not held"`)
	assert.Contains(t, out, `"owners":["`+owner.Name()+`"]`)
	assert.Contains(t, out, `"replicas":1`)
	code, out, _ = cli(addr, "", "members")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^NAME .* FILTER +PLACED\n`, out)
	assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(owner.Name())+` .* 1\n`, out)
	assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(other.Name())+` .* 0\n`, out)

	forwards := other.Stats().Count(counter.Forwards)
	var in strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&in, "k%d\n", i)
	}
	code, _, errOut = cli(addr, in.String(), "--cluster", "-f", "placed", "add", "-")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = cli(addr, "", "--cluster", "--tcp", "-f", "placed", "has", "k1", "k1999", "never")
	assert.Equal(t, 1, code, errOut)
	assert.Equal(t, "k1\ttrue\nk1999\ttrue\nnever\tfalse\n", out)
	assert.Equal(t, forwards, other.Stats().Count(counter.Forwards), "straight to the owner")
	code, out, errOut = cli(addr, "", "-f", "placed", "has", "k7")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "k7\ttrue\n", out)
	assert.Greater(t, other.Stats().Count(counter.Forwards), forwards, "forwarded without --cluster")

	for _, bad := range []struct {
		args []string
		err  string
	}{
		{[]string{"create", "w", "--replicas", "2", "--window", "1h"}, "--replicas and --window do not go together: a windowed filter lives on every member"},
		{[]string{"create", "w", "--replicas", "2", "--layout", "classic"}, "--replicas goes with the blocked layout, not classic"},
		{[]string{"create", "w", "--replicas", "256"}, "--replicas 256: a filter lives on 1 to 255 members"},
		{[]string{"list", "--replicas", "2"}, "go with create, not list"},
		{[]string{"--cluster", "ping"}, "--cluster goes with add and has"},
		{[]string{"--cluster", "--classic", "add", "k"}, "--cluster goes with add and has, over rmbd's own frames (not --classic)"},
	} {
		code, _, errOut := cli(addr, "", bad.args...)
		assert.Equal(t, 2, code, "%v", bad.args)
		assert.Contains(t, errOut, bad.err, "%v", bad.args)
	}
}
