package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
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
	assert.Contains(t, errOut, "stdin line 2: key too long")
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
		{hole.LocalAddr().String(), []string{"--timeout", "50ms", "has", "x"}, "did not answer within 50ms"},
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
	for _, s := range []string{"add KEY", "has -", "peer HOST:PORT", "ping", "stats", "--addr", "RMBD_ADDR", "--tcp", "--timeout", "--json", "exits 0 when every key is present"} {
		assert.Contains(t, out, s)
	}
}
