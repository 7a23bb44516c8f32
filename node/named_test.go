package node_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/store"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// filterOp asks n a filter request from u and returns the filters it
// describes, or the node's error.
func filterOp(t *testing.T, u *station, n *node.Node, q wire.FilterRequest) ([]wire.FilterDesc, *wire.ErrorFrame) {
	t.Helper()
	q.Pad = 1400
	req, err := wire.AppendFilterRequest(nil, q)
	require.NoError(t, err)
	reply := u.ask(n.Addr(), req)
	if wire.Type(reply[0]) == wire.TypeError {
		e, err := wire.DecodeError(reply)
		require.NoError(t, err)
		return nil, &e
	}
	fs, err := wire.DecodeFilters(reply)
	require.NoError(t, err)
	var out []wire.FilterDesc
	for d := range fs.All() {
		d.Name, d.Origin = append([]byte(nil), d.Name...), append([]byte(nil), d.Origin...)
		out = append(out, d)
	}
	return out, nil
}

// filterOpRaw sends a filter request as it is, and returns the node's
// error.
func filterOpRaw(t *testing.T, u *station, n *node.Node, req []byte) *wire.ErrorFrame {
	t.Helper()
	req, _ = wire.PadFrame(req, 0, 1400)
	e, err := wire.DecodeError(u.ask(n.Addr(), req))
	require.NoError(t, err)
	return &e
}

func create(name string, capacity uint64, rate float64) wire.FilterRequest {
	return wire.FilterRequest{ReqID: 1, Op: wire.FilterOpCreate, Name: []byte(name), Layout: filter.Blocked, Capacity: capacity, FPRate: rate}
}

// namedBatch asks a batch of keys of type t to the filter name and
// returns the answers (nil for an error frame, which it returns).
func namedBatch(t *testing.T, u *station, n *node.Node, name string, typ wire.Type, keys ...string) ([]bool, *wire.ErrorFrame) {
	t.Helper()
	var raw [][]byte
	for _, k := range keys {
		raw = append(raw, []byte(k))
	}
	b, err := wire.AppendBatch(nil, typ, 7, wire.FlagAck, raw)
	if typ == wire.TypeHasBatch {
		b, err = wire.AppendBatch(nil, typ, 7, 0, raw)
	}
	require.NoError(t, err)
	frame, err := wire.AppendNamed(nil, name, b)
	require.NoError(t, err)
	reply := u.ask(n.Addr(), frame)
	if wire.Type(reply[0]) == wire.TypeError {
		e, err := wire.DecodeError(reply)
		require.NoError(t, err)
		return nil, &e
	}
	res, err := wire.DecodeResult(reply)
	require.NoError(t, err)
	out := make([]bool, res.Count)
	for i := range out {
		out[i] = res.Get(i)
	}
	return out, nil
}

func TestNamedFilters(t *testing.T) {
	tn := newNet(t)
	n, u := tn.node(node.DefaultConfig()), tn.station()

	fs, e := filterOp(t, u, n, create("users", 10_000, 0.001))
	require.Nil(t, e)
	require.Len(t, fs, 1)
	assert.Equal(t, "users", string(fs[0].Name))
	assert.Equal(t, uint64(10_000), fs[0].Capacity)
	assert.Equal(t, uint64(1), fs[0].Gen)

	_, e = namedBatch(t, u, n, "users", wire.TypeAddBatch, "alice", "bob")
	require.Nil(t, e)
	got, _ := namedBatch(t, u, n, "users", wire.TypeHasBatch, "alice", "bob", "carol")
	assert.Equal(t, []bool{true, true, false}, got)
	assert.False(t, hasOn(t, u, n, "alice"), "the default filter holds nothing of it")

	_, e = filterOp(t, u, n, create("users", 10_000, 0.001))
	assert.Nil(t, e, "the same sizing again: nothing to do")
	_, e = filterOp(t, u, n, create("users", 50, 0.1))
	require.NotNil(t, e)
	assert.Equal(t, wire.CodeRefused, e.Code)
	assert.Contains(t, string(e.Msg), "capacity 10000")
	assert.Contains(t, string(e.Msg), "capacity 50")

	// Auto-creation, small (--auto-create-capacity at the node's FP rate);
	// has on a name with no filter answers false.
	got, _ = namedBatch(t, u, n, "nobody", wire.TypeHasBatch, "x")
	assert.Equal(t, []bool{false}, got)
	_, e = namedBatch(t, u, n, "events", wire.TypeAddBatch, "e1")
	require.Nil(t, e)
	fs, _ = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpInfo, Name: []byte("events")})
	require.Len(t, fs, 1)
	assert.Equal(t, node.DefaultConfig().AutoCreateCapacity, fs[0].Capacity)
	assert.Equal(t, node.DefaultConfig().FPRate, fs[0].FPRate)

	fs, _ = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpList})
	var names []string
	for _, f := range fs {
		names = append(names, string(f.Name))
	}
	assert.Equal(t, []string{"default", "events", "users"}, names)

	// Drop: gone, and re-created empty, as another generation.
	_, e = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte("users")})
	require.Nil(t, e)
	got, _ = namedBatch(t, u, n, "users", wire.TypeHasBatch, "alice")
	assert.Equal(t, []bool{false}, got)
	fs, e = filterOp(t, u, n, create("users", 10_000, 0.001))
	require.Nil(t, e)
	assert.Equal(t, uint64(2), fs[0].Gen)
	got, _ = namedBatch(t, u, n, "users", wire.TypeHasBatch, "alice")
	assert.Equal(t, []bool{false}, got, "the old keys do not come back")

	_, e = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte("default")})
	require.NotNil(t, e, "the flags' filter is not dropped")
	_, e = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte("never")})
	require.NotNil(t, e)
	assert.Contains(t, string(e.Msg), "no filter of that name")
}

func TestNamedFilterLimits(t *testing.T) {
	tn := newNet(t)
	cfg := node.DefaultConfig()
	cfg.AutoCreate, cfg.MaxFilters = false, 2
	cfg.MaxMemory = int64(2 << 20) // the default filter (1.2 MiB) and little more
	n, u := tn.node(cfg), tn.station()
	long := string(make([]byte, 300)) // over UDP an error answers only a request as large
	_, e := namedBatch(t, u, n, "auto", wire.TypeAddBatch, long)
	require.NotNil(t, e)
	assert.Contains(t, string(e.Msg), "--auto-create is off")

	_, e = filterOp(t, u, n, create("big", 10_000_000, 0.01))
	require.NotNil(t, e)
	assert.Contains(t, string(e.Msg), "--max-memory")
	for _, name := range []string{"a", "b"} {
		_, e = filterOp(t, u, n, create(name, 1000, 0.01))
		require.Nil(t, e)
	}
	_, e = filterOp(t, u, n, create("c", 1000, 0.01))
	require.NotNil(t, e)
	assert.Contains(t, string(e.Msg), "--max-filters")
	bad, err := wire.AppendFilterRequest(nil, create("okname", 1000, 0.01))
	require.NoError(t, err)
	bad[12] = '\t' // into the name: the node refuses it, saying why
	e = filterOpRaw(t, u, n, bad)
	require.NotNil(t, e)
	assert.Contains(t, string(e.Msg), "no control characters")
	_, e = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpCreate, Name: []byte("x"), Layout: filter.Blocked, Capacity: 10, FPRate: 1.5})
	require.NotNil(t, e)
	assert.Equal(t, "fp-rate must be strictly between 0 and 1", string(e.Msg), "the node's own words")
	_, e = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpCreate, Layout: filter.Blocked, Capacity: 10, FPRate: 0.1})
	require.NotNil(t, e)
	assert.Contains(t, string(e.Msg), "1 to 200 bytes")
}

// A named frame whose name no filter can have — binary bytes, a line
// break, 201 bytes — is answered with an error frame, so that the client
// hears why instead of waiting out its timeout; over TCP the stream goes
// on.
func TestNamedFrameWithABadName(t *testing.T) {
	tn := newNet(t)
	n, u := tn.node(node.DefaultConfig()), tn.station()
	long := bytes.Repeat([]byte("k"), 200) // over UDP an answer may be as large as its request
	has, err := wire.AppendBatch(nil, wire.TypeHasBatch, 42, 0, [][]byte{long})
	require.NoError(t, err)
	for _, name := range []string{"\x00\x01\xfe", "a\nb", strings.Repeat("n", 201)} {
		f := []byte{byte(wire.TypeNamed), 0, 0, 0, 0, byte(len(name))}
		f = append(append(f, name...), has...)
		binary.BigEndian.PutUint32(f[1:], uint32(len(f)-wire.HeaderSize))
		reply := u.ask(n.Addr(), f)
		e, err := wire.DecodeError(reply)
		require.NoError(t, err, "%q: an error frame", name)
		assert.Equal(t, uint32(42), e.ReqID, "answering the request inside")
		assert.Equal(t, wire.CodeRefused, e.Code)
		assert.Contains(t, string(e.Msg), "1 to 200 bytes of UTF-8, no control characters")

		c := u.dial(n.Addr())
		go c.Write(append(f, classicHas(t, "k")...))
		r := wire.NewFrameReader(c, 4096)
		e, err = wire.DecodeError(readFrame(t, r))
		require.NoError(t, err)
		assert.Equal(t, uint32(42), e.ReqID)
		_, err = r.Fixed(wire.ClassicHasReplySize)
		require.NoError(t, err, "the stream goes on")
	}
	assert.Equal(t, uint64(6), n.Stats().Count(counter.BadFrames), "each counted")
}

// With a data directory, named filters, their sizing and their keys
// survive a restart; a dropped one stays dropped.
func TestNamedFiltersPersist(t *testing.T) {
	dir := t.TempDir()
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.CheckpointInterval = dir, time.Hour
	tn := newNet(t)
	n, stop := tn.nodeAt(netAddr(1), cfg)
	u := tn.station()
	var keys []string
	for i := range 300 {
		keys = append(keys, fmt.Sprint("k", i))
	}
	for _, name := range []string{"one", "two", "gone"} {
		_, e := filterOp(t, u, n, create(name, 5000, 0.01))
		require.Nil(t, e)
		_, e = namedBatch(t, u, n, name, wire.TypeAddBatch, keys...)
		require.Nil(t, e)
	}
	_, e := filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte("gone")})
	require.Nil(t, e)
	stop()

	again, stop := tn.nodeAt(netAddr(1), cfg)
	for _, name := range []string{"one", "two"} {
		got, e := namedBatch(t, u, again, name, wire.TypeHasBatch, keys...)
		require.Nil(t, e)
		for i, ok := range got {
			require.True(t, ok, "%s lost %s", name, keys[i])
		}
		fs, _ := filterOp(t, u, again, wire.FilterRequest{Op: wire.FilterOpInfo, Name: []byte(name)})
		require.Len(t, fs, 1)
		assert.Equal(t, uint64(5000), fs[0].Capacity)
	}
	got, _ := namedBatch(t, u, again, "gone", wire.TypeHasBatch, keys[0])
	assert.Equal(t, []bool{false}, got)
	_, err := os.Stat(filepath.Join(dir, "filters", store.FolderName("gone")))
	assert.ErrorIs(t, err, os.ErrNotExist, "its folder removed")
	stop()
}

// Tombstones go after --tombstone-ttl; the dropped generation stays, so
// the name created again is a new generation.
func TestTombstonesExpire(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.TombstoneTTL = 2 * time.Minute
		n, u := tn.node(cfg), tn.station()
		_, e := filterOp(t, u, n, create("day", 1000, 0.01))
		require.Nil(t, e)
		_, e = filterOp(t, u, n, wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte("day")})
		require.Nil(t, e)
		<-time.After(time.Minute) // fake time
		tn.settle()
		assert.Len(t, n.Registry().Entry("day").Drops, 1, "within the TTL")
		<-time.After(3 * time.Minute)
		tn.settle()
		entry := n.Registry().Entry("day")
		assert.Empty(t, entry.Drops)
		assert.Equal(t, uint64(1), entry.Floor)
		fs, e := filterOp(t, u, n, create("day", 1000, 0.01))
		require.Nil(t, e)
		assert.Equal(t, uint64(2), fs[0].Gen)
	})
}
