package respserver

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// placedServer is a server of a member "test" of three, and the name of
// a filter placed on one of the others: test knows it from the catalog
// alone, and its keys go through the backend's Batch.
func placedServer(t *testing.T) (*Server, *testBackend, string) {
	t.Helper()
	b := newTestBackend(t, 0)
	members := []string{"test", "o1", "o2"}
	require.NoError(t, b.reg.Apply(b.reg.SetMembers(members)).Err)
	for i := 0; ; i++ { // the first name placed on another member
		name := fmt.Sprint("p", i)
		_, err := b.Create(name, registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01, Replicas: 1}, loopback.Addr())
		require.NoError(t, err)
		if rt, ok := b.reg.Route([]byte(name)); ok && !rt.Owns("test") {
			require.Empty(t, b.reg.Lookup([]byte(name)), "not held here")
			return testServer(b), b, name
		}
		require.NoError(t, b.Drop(name))
	}
}

// The keys of a filter on other members go to the node as batches, and
// the answers come back as RedisBloom's: every add and ask command, in
// one piece or in many.
func TestPlacedKeysGoThroughTheNode(t *testing.T) {
	s, b, p := placedServer(t)
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	assert.Equal(t, ":1\r\n*3\r\n:0\r\n:1\r\n:1\r\n:1\r\n*2\r\n:1\r\n:0\r\n*2\r\n:0\r\n:1\r\n",
		runInline(s, rc, "BF.ADD "+p+" a", "BF.MADD "+p+" a b c", "BF.EXISTS "+p+" c", "BF.MEXISTS "+p+" b z",
			"BF.INSERT "+p+" NOCREATE ITEMS c d"))
	assert.Equal(t, 5, b.batches)
	assert.Len(t, b.remote[p], 4)
	assert.Empty(t, b.reg.Lookup([]byte(p)), "nothing opened here")

	// In pieces: every piece's keys are sent as it comes.
	lim := resp.Limits{MaxArgs: 64, MaxBulk: 512, MaxInline: 1024, MaxCommand: 8192, PieceArgs: 4, PieceBytes: 256}
	var in []byte
	in = appendCommand(in, "BF.MADD", p, "e", "f", "g", "h", "i", "a")
	in = appendCommand(in, "BF.MEXISTS", p, "e", "z", "i", "y", "a")
	in = appendCommand(in, "BF.INSERT", p, "ITEMS", "j", "k", "l", "m", "a")
	rc = &respConn{cn: &conns.Conn{From: loopback}, id: 2, proto: 3, authed: true, rd: resp.NewReader(bytes.NewReader(in), 64, lim)}
	for range 3 {
		cmd, err := rc.rd.Next()
		require.NoError(t, err)
		s.respCommand(rc, cmd)
		require.NoError(t, rc.err)
	}
	assert.Equal(t, "*6\r\n#t\r\n#t\r\n#t\r\n#t\r\n#t\r\n#f\r\n*5\r\n#t\r\n#f\r\n#t\r\n#f\r\n#t\r\n*5\r\n#t\r\n#t\r\n#t\r\n#t\r\n#f\r\n", string(rc.out))
	assert.Zero(t, s.cfg.Buffers.Stats().Lent)

	// Many keys go in batches of at most wire.MaxBatchKeys; an item too
	// long for a batch is refused.
	before := b.batches
	args := [][]byte{[]byte("BF.MADD"), []byte(p)}
	for i := range 5000 {
		args = append(args, fmt.Appendf(nil, "many-%d", i))
	}
	rc = &respConn{cn: &conns.Conn{From: loopback}, id: 3, proto: 2, authed: true}
	s.respCommand(rc, resp.Command{Args: args})
	assert.Equal(t, 2, b.batches-before)
	assert.Equal(t, 5000, strings.Count(string(rc.out), ":1\r\n"))
	rc.out = rc.out[:0]
	s.respCommand(rc, resp.Command{Args: [][]byte{[]byte("BF.ADD"), []byte(p), bytes.Repeat([]byte("x"), wire.MaxKeyLen+1)}})
	assert.Equal(t, "-ERR an item of 4097 bytes: a filter on some members takes items of at most 4096 bytes\r\n", string(rc.out))
}

// The node's refusals become the errors RESP clients know.
func TestPlacedRefusals(t *testing.T) {
	s, b, p := placedServer(t)
	for _, tc := range []struct {
		refusal wire.ErrorFrame
		want    string
	}{
		{wire.ErrorFrame{Code: wire.CodeUnwritable, Msg: []byte("filter x: not kept: no space left on device")}, "-MISCONF filter x: not kept: no space left on device\r\n"},
		{wire.ErrorFrame{Code: wire.CodeForbidden, Msg: []byte("this address may not add (--allow)")}, "-NOPERM this address may not add (--allow)\r\n"},
		{wire.ErrorFrame{Code: wire.CodeRefused, Msg: []byte("filter p: filter is full (non scaling filter is full): it was made not to grow")}, "-ERR non scaling filter is full\r\n"},
		{wire.ErrorFrame{Code: wire.CodeUnavailable, Msg: []byte("filter p: no owner answered (1 more needed)")}, "-ERR filter p: no owner answered (1 more needed)\r\n"},
		{wire.ErrorFrame{Code: wire.CodeBusy}, "-ERR busy\r\n"},
	} {
		b.refuse = &tc.refusal
		rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
		assert.Equal(t, tc.want+tc.want, runInline(s, rc, "BF.MADD "+p+" a b", "BF.EXISTS "+p+" a"))
	}
}

// A filter on other members is a key like any other: it exists, has a
// type, is listed, described (its replicas, owners, and that it is not
// held here) and dropped; BF.RESERVE of its name finds it. REPLICAS
// makes one; what it does not go with is refused.
func TestPlacedKeySpace(t *testing.T) {
	s, b, p := placedServer(t)
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	assert.Equal(t, ":1\r\n+MBbloom--\r\n*2\r\n$7\r\ndefault\r\n$2\r\n"+p+"\r\n:2\r\n-ERR item exists\r\n",
		runInline(s, rc, "EXISTS "+p, "TYPE "+p, "KEYS *", "DBSIZE", "BF.RESERVE "+p+" 0.01 1000"))
	rt, _ := b.reg.Route([]byte(p))
	owner := rt.Owners()[0]
	d, _ := b.reg.DescribeName(p)
	assert.Equal(t, "*16\r\n+Capacity\r\n:1000\r\n+Size\r\n:"+fmt.Sprint(d.FP.SizeBytes())+"\r\n+Number of filters\r\n:1\r\n+Number of items inserted\r\n:0\r\n"+
		"+Expansion rate\r\n:0\r\n+Replicas\r\n:1\r\n+Owners\r\n*1\r\n$2\r\n"+owner+"\r\n+Here\r\n+not held\r\n",
		runInline(s, rc, "BF.INFO "+p))
	assert.Equal(t, ":1000\r\n", strings.TrimPrefix(runInline(s, rc, "BF.INFO "+p+" CAPACITY"), "*1\r\n"))

	rc.out = rc.out[:0]
	for _, bad := range []struct{ cmd, err string }{
		{"BF.RESERVE q 0.01 1000 REPLICAS 0", "-ERR bad replicas (1 to 255 members)"},
		{"BF.RESERVE q 0.01 1000 REPLICAS 256", "-ERR bad replicas (1 to 255 members)"},
		{"BF.RESERVE q 0.01 1000 REPLICAS", "-ERR wrong number of arguments for 'bf.reserve' command"},
		{"BF.RESERVE q 0.01 1000 WINDOW 60 REPLICAS 2", "-ERR a filter with a WINDOW lives on every member: REPLICAS goes without it"},
	} {
		assert.Equal(t, bad.err+"\r\n", runInline(s, rc, bad.cmd), bad.cmd)
	}
	assert.Equal(t, "+OK\r\n", runInline(s, rc, "BF.RESERVE q 0.01 1000 EXPANSION 4 REPLICAS 2"))
	qrt, ok := b.reg.Route([]byte("q"))
	require.True(t, ok)
	assert.Equal(t, 2, qrt.Replicas)

	assert.Equal(t, ":1\r\n:100\r\n", runInline(s, rc, "EXPIRE "+p+" 100", "TTL "+p))
	assert.Equal(t, ":1\r\n:0\r\n", runInline(s, rc, "DEL "+p, "EXISTS "+p))
	_, ok = b.reg.Route([]byte(p))
	assert.False(t, ok, "dropped")
}
