package node_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storm sends count acknowledged named adds, one new name each, over one
// TCP stream, a second of fake time apart every ten, and returns how
// many were served and how many refused.
func storm(t *testing.T, c net.Conn, prefix string, count int) (served, refused int) {
	t.Helper()
	r := wire.NewFrameReader(c, 4096)
	for i := range count {
		add, err := wire.AppendBatch(nil, wire.TypeAddBatch, uint32(i), wire.FlagAck, [][]byte{[]byte("k")})
		require.NoError(t, err)
		frame, err := wire.AppendNamed(nil, fmt.Sprintf("%s-%05d", prefix, i), add)
		require.NoError(t, err)
		_, err = c.Write(frame)
		require.NoError(t, err)
		if wire.Type(readFrame(t, r)[0]) == wire.TypeError {
			refused++
		} else {
			served++
		}
		if i%10 == 9 {
			<-time.After(time.Second)
		}
	}
	return served, refused
}

// memory returns the bytes n's filters take.
func memory(n *node.Node) uint64 {
	used, _ := n.Registry().Memory()
	return used
}

// The storm found by an attack: 1,100 named adds, each to a new name,
// from one client to one member, auto-created 1,024 filters the size of
// the default on every member. Now a client that is not an admin creates
// at most its quota, small ones; the other members' filters take no more
// than that quota; admins still create.
func TestCreateStorm(t *testing.T) {
	inBubble(t, func(t *testing.T, tn *testNet) {
		cfg := node.DefaultConfig()
		cfg.AllowCreate = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		a := tn.member(cfg)
		b, c := tn.member(cfg, a), tn.member(cfg, a)
		tn.until("three members", 10*time.Second, func() bool { return len(a.Members()) == 3 && len(c.Members()) == 3 })
		before := memory(b)

		r := tn.remote()
		served, refused := storm(t, r.dial(a.Addr()), "storm", 1100) // 110 s of fake time
		assert.Equal(t, cfg.FiltersPerSource, served, "the quota: filters held per source")
		assert.Equal(t, 1100-cfg.FiltersPerSource, refused)
		assert.Len(t, a.Registry().Names(), cfg.FiltersPerSource)
		assert.Equal(t, uint64(refused), a.Stats().Count(counter.CreatesOverQuota))
		tn.until("the catalog everywhere", 30*time.Second, func() bool {
			return len(b.Registry().Names()) == cfg.FiltersPerSource && len(c.Registry().Names()) == cfg.FiltersPerSource
		})
		grown := memory(b) - before
		assert.LessOrEqual(t, grown, uint64(cfg.FiltersPerSource)*1024, "small filters: %d bytes for %d", grown, cfg.FiltersPerSource)

		// Its rate: a second source of the same range, 10 creates at once,
		// then one a few seconds.
		other := tn.remote()
		served, _ = storm(t, other.dial(b.Addr()), "burst", 12)
		assert.GreaterOrEqual(t, served, cfg.CreatesPerMinute, "its own quota")
		assert.Less(t, served, 12, "no more than --creates-per-minute at once")

		// An admin still creates, large.
		u := tn.station()
		_, e := filterOp(t, u, c, create("legit", 1_000_000, 0.01))
		assert.Nil(t, e, "an admin's create")
		_, e = filterOp(t, u, a, wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte("storm-00000")})
		require.Nil(t, e)
		served, _ = storm(t, r.dial(a.Addr()), "again", 1)
		assert.Equal(t, 1, served, "a drop gives the source its place back")
	})
}

// By default only admins create: a client's adds to names with no
// filter create nothing, and it may not ask for one either.
func TestCreateIsForAdmins(t *testing.T) {
	tn := newNet(t)
	n := tn.node(node.DefaultConfig())
	r, u := tn.remote(), tn.station()
	_, e := namedBatch(t, r, n, "mine", wire.TypeAddBatch, "k")
	require.NotNil(t, e)
	assert.Equal(t, wire.CodeRefused, e.Code)
	_, e = filterOp(t, r, n, create("mine", 1000, 0.01))
	require.NotNil(t, e)
	assert.Equal(t, wire.CodeForbidden, e.Code)
	assert.Contains(t, string(e.Msg), "--auto-create")
	assert.Empty(t, n.Registry().Names())

	_, e = namedBatch(t, u, n, "mine", wire.TypeAddBatch, "k")
	assert.Nil(t, e, "loopback is an admin: it creates by adding")
	fs, e := filterOp(t, r, n, wire.FilterRequest{Op: wire.FilterOpInfo, Name: []byte("mine")})
	require.Nil(t, e, "describing is reading")
	assert.Equal(t, uint64(100), fs[0].Capacity, "small: --auto-create-capacity")
	_, e = filterOp(t, r, n, wire.FilterRequest{Op: wire.FilterOpDrop, Name: []byte("mine")})
	require.NotNil(t, e)
	assert.Equal(t, wire.CodeForbidden, e.Code, "dropping is an admin's")
}

// With a cluster key, a client that holds it is an admin wherever it
// connects from: its sealed create, stats and drop are served, answered
// sealed; the same requests plain from there are refused, and plain stats
// still work (they are for anyone who may read).
func TestKeyHolderIsAnAdmin(t *testing.T) {
	tn := newNet(t)
	k := testKey(t)
	n := tn.node(keyed(node.DefaultConfig(), k))
	sealer := auth.NewSealer(mustRing(t, k))
	opener := auth.NewOpener(mustRing(t, k), sealer.Sender())
	r := tn.remote()
	ask := func(frame []byte, seal bool) []byte {
		t.Helper()
		frame, _ = wire.PadFrame(frame, 0, 16000) // room for the stats
		if seal {
			var err error
			frame, err = sealer.Seal(nil, frame, n.SealID(), time.Now())
			require.NoError(t, err)
		}
		reply := r.ask(n.Addr(), frame)
		if seal {
			s, err := opener.Open(reply, time.Now())
			require.NoError(t, err, "answered sealed")
			reply = s.Inner
		}
		return reply
	}
	req, _ := wire.AppendFilterRequest(nil, create("mine", 1_000_000, 0.01))
	assert.Equal(t, wire.TypeError, wire.Type(ask(req, false)[0]), "plain, from afar: not an admin")
	assert.Equal(t, wire.TypeFilters, wire.Type(ask(req, true)[0]), "sealed: an admin's create, large")
	assert.Equal(t, []string{"mine"}, n.Registry().Names())

	stats, _ := wire.AppendStatsRequest(nil, 3)
	assert.Equal(t, wire.TypeStats, wire.Type(ask(stats, true)[0]))
	drop, _ := wire.AppendFilterRequest(nil, wire.FilterRequest{ReqID: 4, Op: wire.FilterOpDrop, Name: []byte("mine")})
	assert.Equal(t, wire.TypeError, wire.Type(ask(drop, false)[0]))
	assert.Equal(t, wire.TypeFilters, wire.Type(ask(drop, true)[0]))
	assert.Empty(t, n.Registry().Names())
}
