package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/client"
	"github.com/rmbd/rmbd/internal/nodetest"
	"github.com/rmbd/rmbd/metrics"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) environment { return environment(m) }

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
		{[]string{"--fp-rate", "2"}, nil, "--fp-rate 2: must be strictly between 0 and 1"},
		{nil, map[string]string{"RMBD_FP_RATE": "2"}, "RMBD_FP_RATE=2: must be strictly between 0 and 1"},
		{nil, map[string]string{"RMBD_MAX_BUFFER_BYTES": "lots"}, `RMBD_MAX_BUFFER_BYTES: "lots" is not a size`},
		{nil, map[string]string{"RMBD_LOG_LEVEL": "loud"}, `RMBD_LOG_LEVEL "loud"`},
		{[]string{"--pprof"}, nil, "--pprof needs --metrics-listen"},
		{[]string{"--profile", "fast"}, nil, `profile "fast"`},
		{[]string{"--log-level", "loud"}, nil, `--log-level "loud"`},
		{[]string{"--log-format", "xml"}, nil, `--log-format "xml"`},
		{[]string{"--peer", "nohost"}, nil, `peer "nohost"`},
		{[]string{"--listen", "a:1", "b:2"}, nil, "either as ADDR or as --listen"},
		{[]string{"a:1", "b:2"}, nil, "too many arguments"},
		{[]string{"--profile", "classic", "--capacity", "10"}, nil, "classic filter is fixed"},
		{[]string{"--bogus"}, nil, "unknown flag: --bogus"},
		{nil, map[string]string{"RMBD_SYNC_INTERVAL": "soon"}, `RMBD_SYNC_INTERVAL=soon: invalid argument "soon"`},
		{[]string{"--prune-after", "0"}, nil, "--prune-after 0: must be at least 1"},
		{[]string{"--max-buffer-bytes", "1MiB"}, nil, "invalid configuration: max buffer bytes"},
		{[]string{"--profile", "classic", "--join", "a:7946"}, nil, "needs the default profile"},
		{[]string{"--join", "nohost"}, nil, `join address "nohost"`},
		{[]string{"--resp-listen", "nohost"}, nil, `RESP listen address "nohost"`},
		{[]string{"--resp-password-file", "/nonexistent/pw"}, nil, "--resp-password-file /nonexistent/pw: open /nonexistent/pw: no such file or directory"},
		{nil, map[string]string{"RMBD_RESP_PASSWORD_FILE": "/nonexistent/pw"}, "RMBD_RESP_PASSWORD_FILE /nonexistent/pw: open"},
		{[]string{"--auto-create", "everyone"}, nil, `--auto-create: "everyone" is not a CIDR (e.g. 10.0.0.0/8) or an address; or admin, any or off`},
		{[]string{"--protected-mode", "maybe"}, nil, `--protected-mode: "maybe" is not yes or no`},
		{[]string{"--auto-create-capacity", "0"}, nil, "--auto-create-capacity 0: must be at least 1"},
		{[]string{"--creates-per-minute", "-1"}, nil, "--creates-per-minute -1: must be 0 or more"},
		{[]string{"--write-quorum", "0"}, nil, "--write-quorum 0: must be 1 to 255 owners"},
		{nil, map[string]string{"RMBD_WRITE_QUORUM": "256"}, "RMBD_WRITE_QUORUM=256: must be 1 to 255 owners"},
		{[]string{"--forward-timeout", "0s"}, nil, "--forward-timeout 0s: must be positive, e.g. 2s"},
		{[]string{"--handoff-grace", "-1m"}, nil, "--handoff-grace -1m0s: must be positive, e.g. 1m"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, env(tc.env), &stdout, &stderr)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
		assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
		assert.NotRegexp(t, `\b(node|filter|store|auth): `, stderr.String(), "no package prefixes")
	}
}

// The address given as ADDR wins over RMBD_LISTEN, as any flag on the
// command line wins over the environment; a misspelled RMBD_* is named.
func TestCommandLineWinsAndUnknownVariables(t *testing.T) {
	o, _, err := parseArgs([]string{"127.0.0.1:8041"}, env(map[string]string{
		"RMBD_LISTEN": "127.0.0.1:8040", "RMBD_CAPACTIY": "5", "RMBD_CLUSTER_KEY": "", "RMBD_FP_RATE": "0.02"}))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8041", o.cfg.Listen)
	assert.Equal(t, []string{"RMBD_CAPACTIY"}, o.unknownEnv)
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run([]string{"--version"}, env(nil), &stdout, &stderr))
	assert.Regexp(t, `^rmbd \S+`, stdout.String())
	assert.Empty(t, stderr.String())
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run([]string{"--help"}, env(nil), &stdout, &stderr))
	for _, flag := range []string{"--listen", "--profile", "--capacity", "--fp-rate", "--peer", "--sync-interval", "--prune-after", "--join", "--gossip-listen", "--advertise", "--node-name", "--anti-entropy-interval", "--log-level", "--log-format", "RMBD_"} {
		assert.Contains(t, stdout.String(), flag)
	}
	assert.Contains(t, stdout.String(), `(default "127.0.0.1:8000")`)
}

// The Redis protocol's flags: the listener from a flag or the
// environment; passwords one per line, spaces around them trimmed; a file
// with none, or one without a listener to guard, refused.
func TestRESPFlags(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("  first \n\nsecond\n"), 0o600))
	o, _, err := parseArgs([]string{"--resp-password-file", pw}, env(map[string]string{"RMBD_RESP_LISTEN": "127.0.0.1:6379"}))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:6379", o.cfg.RESPListen)
	assert.Equal(t, []string{"first", "second"}, o.cfg.RESPPasswords)

	_, _, err = parseArgs([]string{"--resp-password-file", pw}, env(nil))
	assert.EqualError(t, err, "--resp-password-file needs --resp-listen: it guards the Redis protocol listener")
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n  \n"), 0o600))
	_, _, err = parseArgs([]string{"--resp-listen", "127.0.0.1:0", "--resp-password-file", empty}, env(nil))
	assert.EqualError(t, err, "--resp-password-file "+empty+": no password in it")

	// A RESP port in use stops the start, as the node's own port does.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, run([]string{"127.0.0.1:0", "--resp-listen", l.Addr().String(), "--log-level", "error"}, env(nil), &stdout, &stderr))
	assert.Contains(t, stderr.String(), "RESP listener: listen tcp "+l.Addr().String()+": bind: address already in use")
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

func TestKeygen(t *testing.T) {
	var a, b, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"keygen"}, env(nil), &a, &stderr))
	require.Equal(t, 0, run([]string{"keygen"}, env(nil), &b, &stderr))
	k, err := auth.ParseKeys(a.Bytes())
	require.NoError(t, err, "a key file of one key")
	assert.Len(t, k, 1)
	assert.NotEqual(t, a.String(), b.String(), "random")
	assert.Equal(t, 2, run([]string{"keygen", "a", "b"}, env(nil), &a, &stderr))

	file := filepath.Join(t.TempDir(), "cluster.key")
	stderr.Reset()
	require.Equal(t, 0, run([]string{"keygen", file}, env(nil), &a, &stderr), stderr.String())
	first, err := os.ReadFile(file)
	require.NoError(t, err)
	_, err = auth.ParseKeys(first)
	require.NoError(t, err)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Equal(t, 0, run([]string{"keygen", file}, env(nil), &a, &stderr))
	again, _ := os.ReadFile(file)
	assert.Equal(t, first, again, "a key file is never replaced")
	assert.Contains(t, stderr.String(), "holds a key already")
	require.NoError(t, os.WriteFile(file, []byte("junk\n"), 0o600))
	assert.Equal(t, 1, run([]string{"keygen", file}, env(nil), &a, &stderr), "nor is a broken one")
}

func TestClusterKeyAndAllowFlags(t *testing.T) {
	k1, _ := auth.Generate()
	k2, _ := auth.Generate()
	file := filepath.Join(t.TempDir(), "cluster.key")
	require.NoError(t, os.WriteFile(file, []byte("# rotated 2026-11\n"+k2.String()+"\n"+k1.String()+"\n"), 0o600))
	o, _, err := parseArgs([]string{"--cluster-key-file", file, "--allow", "10.0.0.0/8", "--allow", "192.0.2.7",
		"--allow-admin", "::1"}, env(map[string]string{"RMBD_ALLOW_READ": "10.1.0.0/16, 10.2.0.0/16"}))
	require.NoError(t, err)
	assert.Equal(t, []auth.Key{k2, k1}, o.cfg.ClusterKeys, "the first signs")
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}, o.cfg.Allow)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16")}, o.cfg.AllowRead)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("::1/128")}, o.cfg.AllowAdmin)

	o, _, err = parseArgs(nil, env(map[string]string{"RMBD_CLUSTER_KEY": k1.String()}))
	require.NoError(t, err)
	assert.Equal(t, []auth.Key{k1}, o.cfg.ClusterKeys, "the key itself in the environment")

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--cluster-key-file", file + ".nope"}, nil, "no such file"},
		{[]string{"--cluster-key-file", file}, map[string]string{"RMBD_CLUSTER_KEY": k1.String()}, "not both"},
		{nil, map[string]string{"RMBD_CLUSTER_KEY": "c2hvcnQ="}, "RMBD_CLUSTER_KEY: line 1: bad cluster key: want 32 bytes"},
		{[]string{"--allow", "10.0.0.0/33"}, nil, `--allow: "10.0.0.0/33" is not a CIDR`},
		{[]string{"--allow-admin", "everyone"}, nil, `--allow-admin: "everyone" is not a CIDR`},
	} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 2, run(tc.args, env(tc.env), &stdout, &stderr), "%v", tc.args)
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
	dup := filepath.Join(t.TempDir(), "dup.key")
	require.NoError(t, os.WriteFile(dup, []byte(k1.String()+"\n"+k1.String()+"\n"), 0o600))
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run([]string{"--cluster-key-file", dup, "127.0.0.1:0"}, env(nil), &stdout, &stderr))
	assert.Contains(t, stderr.String(), "given twice")
}

// SIGHUP re-reads the key file: requests sealed with the new signing key
// are taken from then on, the old key still verifying; a broken file
// leaves the keys as they were.
func TestHangupReloadsKeys(t *testing.T) {
	k1, _ := auth.Generate()
	k2, _ := auth.Generate()
	file := filepath.Join(t.TempDir(), "cluster.key")
	require.NoError(t, os.WriteFile(file, []byte(k1.String()+"\n"), 0o600))
	cfg := node.DefaultConfig()
	cfg.ClusterKeys = []auth.Key{k1}
	n := nodetest.Start(t, cfg)
	var logs lockedBuffer
	stop := reloadOnHangup(n, file, slog.New(slog.NewTextHandler(&logs, nil)))
	defer stop()
	peerWith := func(keys ...auth.Key) error {
		c, err := client.Dial(context.Background(), n.Addr().String(), client.WithClusterKeys(keys...), client.WithTimeout(2*time.Second))
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Peer(context.Background(), "127.0.0.1:9")
		return err
	}
	require.NoError(t, peerWith(k1))
	require.Error(t, peerWith(k2))

	require.NoError(t, os.WriteFile(file, []byte(k2.String()+"\n"+k1.String()+"\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return peerWith(k2) == nil }, 5*time.Second, 10*time.Millisecond, "the new key signs")
	require.NoError(t, peerWith(k1, k2), "the old one still verifies")

	require.NoError(t, os.WriteFile(file, []byte("garbage\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "cluster keys not replaced") }, 5*time.Second, 5*time.Millisecond)
	assert.NoError(t, peerWith(k2, k1), "a broken file changed nothing")
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLimitFlags(t *testing.T) {
	o, _, err := parseArgs([]string{"--max-buffer-bytes", "128MiB", "--max-conns", "10", "--max-conns-per-source", "2",
		"--frame-timeout", "3s", "--idle-timeout", "1m", "--max-peers", "5", "--auto-create=false", "--max-filters", "7",
		"--max-memory", "2GiB", "--tombstone-ttl", "1h"}, env(nil))
	require.NoError(t, err)
	assert.Equal(t, int64(128<<20), o.cfg.MaxBufferBytes)
	assert.Equal(t, 10, o.cfg.MaxConns)
	assert.Equal(t, 2, o.cfg.MaxConnsPerSource)
	assert.Equal(t, 5, o.cfg.MaxPeers)
	assert.False(t, o.cfg.AutoCreate)
	assert.Equal(t, 7, o.cfg.MaxFilters)
	assert.Equal(t, int64(2<<30), o.cfg.MaxMemory)
	assert.Equal(t, time.Hour, o.cfg.TombstoneTTL)
	assert.Equal(t, 3*time.Second, o.cfg.FrameTimeout)
	assert.Equal(t, time.Minute, o.cfg.IdleTimeout)
	for in, want := range map[string]int64{"64MiB": 64 << 20, "1G": 1 << 30, "4096": 4096, "8 MB": 8 << 20, "16KiB": 16 << 10} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "lots", "-1", "1.5G", "9999999999G"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run([]string{"--max-buffer-bytes", "1MiB", "127.0.0.1:0"}, env(nil), &stdout, &stderr))
	assert.Contains(t, stderr.String(), "max buffer bytes")
	assert.Equal(t, "64MiB", formatSize(64<<20))
}

func TestHealthcheck(t *testing.T) {
	n := nodetest.Start(t, node.DefaultConfig())
	h, err := metrics.Handler(n, metrics.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	require.Eventually(t, func() bool { return n.Health().Ready }, 5*time.Second, time.Millisecond)
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run([]string{"healthcheck", addr}, env(nil), &stdout, &stderr), stderr.String())
	assert.Equal(t, "ok\n", stdout.String())
	stdout.Reset()
	assert.Equal(t, 0, run([]string{"healthcheck", "--ready"}, env(map[string]string{"RMBD_METRICS_LISTEN": addr}), &stdout, &stderr))
	assert.Equal(t, "ready\n", stdout.String())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	l.Close()
	assert.Equal(t, 1, run([]string{"healthcheck", closed}, env(nil), &stdout, &stderr), "nothing listens")
	assert.Equal(t, 2, run([]string{"healthcheck"}, env(nil), &stdout, &stderr), "no address")
}

// make help lists every target of the Makefile.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	targets := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t.$=?") || strings.HasPrefix(rest, "=") {
			continue
		}
		targets++
		assert.Contains(t, rest, "## ", "target %s has no help text: make help omits it", name)
	}
	assert.Greater(t, targets, 10)
}

// A data directory the node cannot start on as the flags say is the
// operator's to fix: exit status 2 and one line saying what is wrong and
// where — another node's lock, another filter, a checkpoint gone.
func TestDataDirRefusalsExit2(t *testing.T) {
	dir := t.TempDir()
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	n, err := node.New(cfg)
	require.NoError(t, err)
	for i := range 50_000 {
		n.Filter().Add(fmt.Appendf(nil, "k%d", i))
	}
	require.NoError(t, n.Registry().Close()) // a last checkpoint, as a stop writes
	start := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"127.0.0.1:0", "--data-dir", dir, "--log-level", "error"}, args...), env(nil), &stdout, &stderr)
		assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
		return code, stderr.String()
	}

	d, err := store.OpenDir(dir) // another node holds it
	require.NoError(t, err)
	code, msg := start()
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, "data directory in use")
	require.NoError(t, d.Close())

	code, msg = start("--capacity", "5000")
	assert.Equal(t, 2, code)
	assert.Contains(t, msg, `the data directory was made with other flags: `+filepath.Join(dir, "filters", "default")+` holds "default", capacity 1000000 at fp-rate 0.01; the flags ask for "default", capacity 5000 at fp-rate 0.01`)

	ckpts, err := filepath.Glob(filepath.Join(dir, "filters", "default", "ckpt-*.ckpt"))
	require.NoError(t, err)
	require.NotEmpty(t, ckpts)
	for _, c := range ckpts {
		require.NoError(t, os.Remove(c))
	}
	code, msg = start()
	assert.Equal(t, 2, code, "not a silent start with 0 of 50,000 keys")
	assert.Contains(t, msg, "missing from the data directory: "+ckpts[0])
	assert.Contains(t, msg, "--repair")
}

// Who may create, and protected mode, from flags and the environment.
func TestCreateAndProtectionFlags(t *testing.T) {
	o, _, err := parseArgs(nil, env(nil))
	require.NoError(t, err)
	assert.True(t, o.cfg.ProtectedMode)
	assert.True(t, o.cfg.AutoCreate)
	assert.Empty(t, o.cfg.AllowCreate, "admins alone")
	assert.Equal(t, uint64(100), o.cfg.AutoCreateCapacity)

	o, _, err = parseArgs([]string{"--auto-create", "10.0.0.0/8,192.0.2.7", "--protected-mode=no", "--auto-create-capacity", "1000",
		"--creates-per-minute", "0", "--filters-per-source", "3"}, env(nil))
	require.NoError(t, err)
	assert.True(t, o.cfg.AutoCreate)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}, o.cfg.AllowCreate)
	assert.False(t, o.cfg.ProtectedMode)
	assert.Equal(t, uint64(1000), o.cfg.AutoCreateCapacity)
	assert.Equal(t, 0, o.cfg.CreatesPerMinute)
	assert.Equal(t, 3, o.cfg.FiltersPerSource)

	o, _, err = parseArgs([]string{"--auto-create", "admin"}, env(map[string]string{"RMBD_PROTECTED_MODE": "no"}))
	require.NoError(t, err)
	assert.True(t, o.cfg.AutoCreate)
	assert.Empty(t, o.cfg.AllowCreate)
	assert.False(t, o.cfg.ProtectedMode)
	o, _, err = parseArgs(nil, env(map[string]string{"RMBD_AUTO_CREATE": "any"}))
	require.NoError(t, err)
	assert.Len(t, o.cfg.AllowCreate, 2)
	o, _, err = parseArgs([]string{"--auto-create=off"}, env(nil))
	require.NoError(t, err)
	assert.False(t, o.cfg.AutoCreate)
}

// The settings of placed filters: defaults as the node's, from flags or
// the environment; --help tells what each does.
func TestPlacementFlags(t *testing.T) {
	o, _, err := parseArgs(nil, env(nil))
	require.NoError(t, err)
	def := node.DefaultConfig()
	assert.Equal(t, 1, o.cfg.WriteQuorum)
	assert.Equal(t, def.ForwardTimeout, o.cfg.ForwardTimeout)
	assert.Equal(t, def.HandoffGrace, o.cfg.HandoffGrace)

	o, _, err = parseArgs([]string{"--write-quorum", "2", "--forward-timeout", "500ms"}, env(map[string]string{"RMBD_HANDOFF_GRACE": "5m"}))
	require.NoError(t, err)
	assert.Equal(t, 2, o.cfg.WriteQuorum)
	assert.Equal(t, 500*time.Millisecond, o.cfg.ForwardTimeout)
	assert.Equal(t, 5*time.Minute, o.cfg.HandoffGrace)

	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"--help"}, env(nil), &stdout, &stderr))
	assert.Regexp(t, `--write-quorum int +owners of a placed filter that hold an acknowledged add before it is acknowledged; with --fsync always, 2 makes an acknowledged add survive the loss of any one owner \(default 1\)`, stdout.String())
	assert.Regexp(t, `--forward-timeout duration .*\(default 2s\)`, stdout.String())
	assert.Regexp(t, `--handoff-grace duration .*\(default 1m0s\)`, stdout.String())
}
