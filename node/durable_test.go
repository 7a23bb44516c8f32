package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func durable(dir string, fsync store.FsyncPolicy) node.Config {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Fsync, cfg.CheckpointInterval = dir, fsync, time.Hour
	return cfg
}

// afterSync waits until every record logged so far is on disk and every
// reply waiting for it has been handed to the network: callbacks run in
// the order they were registered.
func afterSync(t *testing.T, n *node.Node) {
	t.Helper()
	logSynced(t, logOf(n, node.DefaultFilter))
}

// logOf is the log of the filter name's first segment on n.
func logOf(n *node.Node, name string) *store.Log {
	return n.Registry().Lookup([]byte(name)).Winner().Segments()[0].Store().Log()
}

// logSynced waits until l is synced up to its end.
func logSynced(t *testing.T, l *store.Log) {
	t.Helper()
	done := make(chan struct{})
	l.AfterSynced(l.End(), func(error) { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the log never synced")
	}
}

func TestDataDirKeepsEveryAdd(t *testing.T) {
	for _, cfg := range []node.Config{node.DefaultConfig(), node.ClassicConfig()} {
		t.Run(string(cfg.Profile), func(t *testing.T) {
			dir := t.TempDir()
			cfg.DataDir, cfg.CheckpointInterval = dir, time.Hour
			tn := newNet(t)
			n, stop := tn.nodeAt(netAddr(1), cfg)
			u := tn.station()
			keys := makeKeys("kept", 500)
			addKeys(t, u, n, keys)
			u.send(n.Addr(), classicAdd(t, "classic"))
			tn.deliver()
			stop() // SIGTERM: a last checkpoint

			again, _ := tn.nodeAt(netAddr(1), cfg)
			assert.True(t, hasAll(again, keys), "every acknowledged add back")
			assert.True(t, hasOn(t, u, again, "classic"))
			assert.False(t, hasOn(t, u, again, "never added"))
		})
	}
}

// Under --fsync always an acknowledged add is answered only once its
// record is on disk; adds that come meanwhile share the fsync.
func TestFsyncAlwaysAnswersAfterTheDisk(t *testing.T) {
	tn := newNet(t)
	n := tn.node(durable(t.TempDir(), store.FsyncAlways))
	u := tn.station()
	for i := range 20 {
		f, _ := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), wire.FlagAck, makeKeys(string(rune('a'+i)), 10))
		u.send(n.Addr(), f)
	}
	tn.deliver()
	afterSync(t, n)
	tn.deliver()
	replies := u.take()
	require.Len(t, replies, 20, "every add answered, once on disk")
	for _, r := range replies {
		res, err := wire.DecodeResult(r.frame)
		require.NoError(t, err)
		assert.Equal(t, 10, res.Count)
	}
	assert.LessOrEqual(t, n.Stats().Store.Fsyncs, uint64(20))
	assert.GreaterOrEqual(t, logOf(n, node.DefaultFilter).Synced(), logOf(n, node.DefaultFilter).End())

	// An unacknowledged add gets no reply; a has is answered at once.
	f, _ := wire.AppendBatch(nil, wire.TypeAddBatch, 99, 0, makeKeys("quiet", 3))
	u.send(n.Addr(), f)
	tn.deliver()
	assert.True(t, hasOn(t, u, n, "quiet-0"))
}

// Over TCP, pipelined acknowledged adds are answered in order once the
// disk has them.
func TestFsyncAlwaysOverTCP(t *testing.T) {
	tn := newNet(t)
	n := tn.node(durable(t.TempDir(), store.FsyncAlways))
	c := tn.station().dial(n.Addr())
	var req []byte
	for i := range 50 {
		req, _ = wire.AppendBatch(req, wire.TypeAddBatch, uint32(i), wire.FlagAck, makeKeys(string(rune('A'+i)), 20))
	}
	go c.Write(req)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := wire.NewFrameReader(c, 4096)
	for i := range 50 {
		res, err := wire.DecodeResult(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, uint32(i), res.ReqID)
		assert.GreaterOrEqual(t, logOf(n, node.DefaultFilter).Synced(), uint64(1), "answered after an fsync")
	}
}

func TestDataDirOfAnotherFilterIsRefused(t *testing.T) {
	dir := t.TempDir()
	tn := newNet(t)
	_, stop := tn.nodeAt(netAddr(1), durable(dir, store.FsyncEverySec))
	stop()
	cfg := durable(dir, store.FsyncEverySec)
	cfg.Capacity = 5000
	ep, err := tn.nw.Endpoint(netAddr(2))
	require.NoError(t, err)
	cfg.Transport = ep
	_, err = node.New(cfg)
	assert.ErrorIs(t, err, node.ErrConfig, "a configuration error: exit status 2")
	assert.ErrorIs(t, err, store.ErrMismatch)
	assert.ErrorContains(t, err, "capacity 1000000")
	assert.ErrorContains(t, err, "capacity 5000")
}

// A node with data is ready, serving its whole filter, before it
// contacts anyone.
func TestReadyBeforeJoining(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		dir := t.TempDir()
		n, stop := tn.nodeAt(netAddr(1), durable(dir, store.FsyncEverySec))
		u := tn.station()
		addKeys(t, u, n, makeKeys("r", 100))
		stop()

		cfg := durable(dir, store.FsyncEverySec)
		cfg.Join = []string{"10.9.9.9:7946"} // nobody there
		again, _ := tn.memberAt(netAddr(1), cfg)
		assert.True(t, hasAll(again, makeKeys("r", 100)), "loaded at start, before anyone was reached")
		assert.True(t, again.Health().Serving)
		assert.False(t, again.Health().Ready, "but not ready for a load balancer: not joined")
	})
}

// Each filter has its own log: an acknowledged add to a named filter
// waits for that filter's log, over UDP and over TCP, pipelined with adds
// to other filters — not for the default filter's, which it never
// reaches (a wait that hung) or has passed already (an answer before the
// disk had the add).
func TestFsyncAlwaysNamedFilters(t *testing.T) {
	tn := newNet(t)
	n := tn.node(durable(t.TempDir(), store.FsyncAlways))
	u := tn.station()
	for _, name := range []string{"one", "two"} {
		_, e := filterOp(t, u, n, create(name, 5000, 0.01))
		require.Nil(t, e)
	}
	for i := range 30 { // one's log far ahead of the default's
		b, _ := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), 0, makeKeys(fmt.Sprint("d", i), 50))
		f, _ := wire.AppendNamed(nil, "one", b)
		u.send(n.Addr(), f)
	}
	tn.deliver()
	logSynced(t, logOf(n, "one"))
	require.Greater(t, logOf(n, "one").End(), logOf(n, node.DefaultFilter).End())
	b, _ := wire.AppendBatch(nil, wire.TypeAddBatch, 77, wire.FlagAck, makeKeys("u", 2))
	f, _ := wire.AppendNamed(nil, "one", b)
	u.send(n.Addr(), f)
	tn.deliver()
	logSynced(t, logOf(n, "one"))
	tn.deliver()
	replies := u.take()
	require.Len(t, replies, 1, "answered once its own log is on disk")
	res, err := wire.DecodeResult(replies[0].frame)
	require.NoError(t, err)
	require.Equal(t, uint32(77), res.ReqID)

	c := tn.station().dial(n.Addr())
	var req []byte
	for i := range 30 {
		b, _ := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), wire.FlagAck, makeKeys(fmt.Sprint("t", i), 5))
		switch i % 3 {
		case 0:
			req = append(req, b...)
		case 1:
			req, _ = wire.AppendNamed(req, "one", b)
		case 2:
			req, _ = wire.AppendNamed(req, "two", b)
		}
	}
	go c.Write(req)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := wire.NewFrameReader(c, 4096)
	for i := range 30 {
		res, err := wire.DecodeResult(readFrame(t, r))
		require.NoError(t, err)
		require.Equal(t, uint32(i), res.ReqID)
	}
	for _, l := range []*store.Log{logOf(n, node.DefaultFilter), logOf(n, "one"), logOf(n, "two")} {
		require.GreaterOrEqual(t, l.Synced(), l.End(), "every log on disk before the last answer")
	}
}

// A data directory whose checkpoints were deleted (its FILTER kept) holds
// less than it says: the start refuses, naming the missing file, unless
// --repair, which says what it recovered, and the cluster refills the
// rest.
func TestMissingCheckpointsNeedRepair(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		dir := t.TempDir()
		n1 := tn.member(node.DefaultConfig())
		n2, stop := tn.memberAt(netAddr(2), durable(dir, store.FsyncEverySec), n1)
		u := tn.station()
		keys := makeKeys("kept", 50_000)
		addKeys(t, u, n2, keys)
		tn.until("n1 has them", 60*time.Second, func() bool { return hasAll(n1, keys) }, n1, n2)
		stop() // a last checkpoint holds every key
		ckpts, err := filepath.Glob(filepath.Join(dir, "filters", "default", "ckpt-*.ckpt"))
		require.NoError(t, err)
		for _, c := range ckpts {
			require.NoError(t, os.Remove(c))
		}

		cfg := durable(dir, store.FsyncEverySec)
		cfg.Transport = tn.endpoint(netAddr(2))
		_, err = node.New(cfg)
		require.ErrorIs(t, err, store.ErrMissing, "not a start with 0 of 50,000 keys")
		assert.ErrorContains(t, err, ckpts[0])
		require.NoError(t, cfg.Transport.Close())

		var logs logBook
		cfg = durable(dir, store.FsyncEverySec)
		cfg.Repair, cfg.Logger = true, logs.logger()
		again, _ := tn.memberAt(netAddr(2), cfg, n1)
		assert.Equal(t, 1, logs.count("needed repair"), "it says so")
		assert.Equal(t, 1, logs.count("rows_recovered=0"), "and what it recovered")
		tn.until("refilled from the cluster", 10*time.Second, func() bool { return hasAll(again, keys) })
	})
}
