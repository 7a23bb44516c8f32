package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAndProfiles(t *testing.T) {
	o, _, err := parseArgs(nil, env(nil))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8000", o.cfg.Listen)
	assert.Equal(t, node.ProfileDefault, o.cfg.Profile)
	assert.Equal(t, 200*time.Millisecond, o.cfg.SyncInterval)

	o, _, err = parseArgs([]string{"--profile", "classic", "localhost:9000"}, env(nil))
	require.NoError(t, err)
	assert.Equal(t, "localhost:9000", o.cfg.Listen, "ADDR is --listen")
	assert.Equal(t, 500*time.Millisecond, o.cfg.SyncInterval, "classic interval")
	assert.Equal(t, 1, o.cfg.PruneAfter, "classic prune-after")

	o, _, err = parseArgs([]string{"--profile", "classic", "--sync-interval", "1s"}, env(nil))
	require.NoError(t, err)
	assert.Equal(t, time.Second, o.cfg.SyncInterval, "an explicit flag beats the profile")
}

func TestEnvironment(t *testing.T) {
	o, _, err := parseArgs([]string{"--capacity", "5"}, env(map[string]string{
		"RMBD_LISTEN": "0.0.0.0:7000", "RMBD_PEER": "a:1, b:2", "RMBD_CAPACITY": "99", "RMBD_FP_RATE": "0.001",
		"RMBD_JOIN": "x:7946,y:7946",
	}))
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:7000", o.cfg.Listen)
	assert.Equal(t, []string{"a:1", "b:2"}, o.cfg.Peers)
	assert.Equal(t, uint64(5), o.cfg.Capacity, "the command line wins")
	assert.Equal(t, 0.001, o.cfg.FPRate)
	assert.Equal(t, []string{"x:7946", "y:7946"}, o.cfg.Join)
}

func TestBadUsageExits2WithOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--capacity", "lots"}, nil, `invalid argument "lots" for "--capacity"`},
		{[]string{"--fp-rate", "2"}, nil, "false-positive rate must lie strictly between 0 and 1"},
		{[]string{"--profile", "fast"}, nil, `profile "fast"`},
		{[]string{"--log-level", "loud"}, nil, `--log-level "loud"`},
		{[]string{"--log-format", "xml"}, nil, `--log-format "xml"`},
		{[]string{"--peer", "nohost"}, nil, `peer "nohost"`},
		{[]string{"--listen", "a:1", "b:2"}, nil, "either as ADDR or as --listen"},
		{[]string{"a:1", "b:2"}, nil, "too many arguments"},
		{[]string{"--profile", "classic", "--capacity", "10"}, nil, "classic filter is fixed"},
		{[]string{"--bogus"}, nil, "unknown flag: --bogus"},
		{nil, map[string]string{"RMBD_SYNC_INTERVAL": "soon"}, `invalid RMBD_SYNC_INTERVAL="soon"`},
		{[]string{"--prune-after", "0"}, nil, "prune-after 0"},
		{[]string{"--profile", "classic", "--join", "a:7946"}, nil, "needs the default profile"},
		{[]string{"--join", "nohost"}, nil, `join address "nohost"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, env(tc.env), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
		assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run([]string{"--help"}, env(nil), &stdout, &stderr))
	for _, flag := range []string{"--listen", "--profile", "--capacity", "--fp-rate", "--peer", "--sync-interval", "--prune-after", "--join", "--gossip-listen", "--advertise", "--node-name", "--anti-entropy-interval", "--log-level", "--log-format", "RMBD_"} {
		assert.Contains(t, stdout.String(), flag)
	}
	assert.Contains(t, stdout.String(), `(default "127.0.0.1:8000")`)
}

func TestAddressInUseExits1(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	n, err := node.New(cfg)
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, run([]string{n.Addr().String(), "--log-level", "error"}, env(nil), &stdout, &stderr))
	assert.Contains(t, stderr.String(), "address already in use")
	runtime.KeepAlive(n) // its sockets stay open (a collected listener closes)
}
