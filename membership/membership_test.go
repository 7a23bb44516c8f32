package membership

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testFP = filter.Fingerprint{Layout: filter.Blocked, Hash: filter.XXH3, K: 7, RowBits: 512, Rows: 100}

// fakeHost records what membership tells it, on channels a test waits on.
type fakeHost struct {
	mu    sync.Mutex
	meta  wire.NodeMeta
	state []byte // a local state to send

	ups    chan Member
	downs  chan bool // left?
	states chan string
	msgs   chan string
}

func newHost(port uint16, name string) *fakeHost {
	st, _ := wire.AppendLocalStateHeader(nil, []byte(name))
	st, _ = wire.AppendDigest(st, testFP, 1024, 0, []uint64{1})
	return &fakeHost{
		meta:  wire.NodeMeta{Version: wire.ProtocolVersion, FP: testFP, DataPort: port},
		state: st, ups: make(chan Member, 16), downs: make(chan bool, 16), states: make(chan string, 16),
		msgs: make(chan string, 16),
	}
}

func (h *fakeHost) Meta() wire.NodeMeta {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.meta
}
func (h *fakeHost) AppendState(dst []byte) []byte  { return append(dst, h.state...) }
func (h *fakeHost) MemberUp(m Member)              { h.ups <- m }
func (h *fakeHost) MemberDown(_ Member, left bool) { h.downs <- left }
func (h *fakeHost) MergeState(from Member, s wire.LocalState, _ bool) {
	h.states <- from.Name + ":" + string(s.Name)
}
func (h *fakeHost) NotifyMsg(b []byte) { h.msgs <- string(b) }

// recv waits, with a deadline, for what memberlist's own timers deliver.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// mockNet is memberlist's in-memory network; it is not safe for
// concurrent transport creation, hence the lock.
type mockNet struct {
	mu       sync.Mutex
	n        memberlist.MockNetwork
	reserved map[string]*memberlist.MockTransport
	running  bool // a member started: no transport may be made now
}

// reserve makes the transports of names before any member runs: the mock
// network's table is not safe to grow while members send.
func (m *mockNet) reserve(names ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reserved == nil {
		m.reserved = map[string]*memberlist.MockTransport{}
	}
	for _, name := range names {
		m.reserved[name] = m.n.NewTransport(name)
	}
}

// pair starts members a and b, b joining a.
func (m *mockNet) pair(t *testing.T, ha, hb Host) (a, b *Membership) {
	m.reserve("a", "b")
	a = m.start(t, "a", ha)
	return a, m.start(t, "b", hb, a.Addr())
}

func (m *mockNet) start(t *testing.T, name string, h Host, join ...string) *Membership {
	return m.startWith(t, name, h, func(*Config) {}, join...)
}

// startWith is start with the config changed by edit.
func (m *mockNet) startWith(t *testing.T, name string, h Host, edit func(*Config), join ...string) *Membership {
	m.mu.Lock()
	tr := m.reserved[name]
	if tr == nil {
		if m.running {
			m.mu.Unlock()
			t.Fatalf("member %s: reserve every member's transport before the first starts", name)
		}
		tr = m.n.NewTransport(name)
	}
	m.running = true
	m.mu.Unlock()
	cfg := Config{Name: name, Join: join, PushPullInterval: time.Hour, RejoinInterval: time.Hour, Transport: tr}
	edit(&cfg)
	mem, err := New(cfg, h)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	mem.Start(ctx, func(f func()) bool { wg.Add(1); go func() { defer wg.Done(); f() }(); return true })
	t.Cleanup(func() { cancel(); wg.Wait(); mem.Leave(200 * time.Millisecond) })
	return mem
}

func TestMembersComeAndGo(t *testing.T) {
	var mn mockNet
	ha, hb := newHost(8001, "a"), newHost(8002, "b")
	a, b := mn.pair(t, ha, hb)

	up := recv(t, hb.ups, "b sees a")
	assert.Equal(t, "a", up.Name)
	assert.Equal(t, uint16(8001), up.Data.Port(), "data port from the metadata, host from memberlist")
	assert.Equal(t, a.Addr(), up.Gossip)
	assert.Equal(t, testFP, up.Meta.FP)
	assert.Equal(t, "b", recv(t, ha.ups, "a sees b").Name)
	assert.Equal(t, "a:a", recv(t, hb.states, "the join's push/pull reaches b"), "b merges a's state, named a")

	ms := a.Members()
	require.Len(t, ms, 2)
	assert.Equal(t, "a", string(ms[0].Name), "this member first")
	assert.True(t, ms[1].FPMatch)

	b.Leave(time.Second)
	assert.True(t, recv(t, ha.downs, "a sees b leave"), "left, not failed")
	var states []uint8
	for _, m := range a.Members() {
		states = append(states, m.State)
	}
	assert.Equal(t, []uint8{wire.MemberAlive, wire.MemberLeft}, states)
}

// A member that comes back restarted (its metadata carries a new seal id)
// is swapped state with at once, not at a push/pull that may come only
// much later: it may have lost rows the others believe it holds.
func TestRestartedMemberIsSwappedStateWith(t *testing.T) {
	var mn mockNet
	ha, hb := newHost(8001, "a"), newHost(8002, "b")
	_, b := mn.pair(t, ha, hb) // push/pull every hour: only joins and swaps swap
	recv(t, ha.ups, "a sees b")
	assert.Equal(t, "a:a", recv(t, hb.states, "the join's push/pull reaches b"))
	assert.Equal(t, "b:b", recv(t, ha.states, "and a"))

	hb.mu.Lock()
	hb.meta.SealID++ // as a restart makes it
	hb.mu.Unlock()
	require.NoError(t, b.ml.UpdateNode(time.Second))
	assert.Equal(t, "b", recv(t, ha.ups, "a sees b's new metadata").Name)
	assert.Equal(t, "b:b", recv(t, ha.states, "a swaps state with b, restarted"))
	assert.Equal(t, "a:a", recv(t, hb.states, "and b merges a's"))
}

func TestUnknownVersionIsRefusedAndCounted(t *testing.T) {
	var mn mockNet
	ha, hb := newHost(8001, "a"), newHost(8002, "b")
	mn.reserve("a", "b")
	hb.meta.Version = wire.ProtocolVersion + 1
	hb.state[0] = wire.ProtocolVersion + 1
	a := mn.start(t, "a", ha)
	mn.start(t, "b", hb, a.Addr())
	recv(t, hb.ups, "b sees a")
	// memberlist merges on its own goroutines: wait, with a deadline.
	require.Eventually(t, func() bool { c := a.Counters(); return c.BadMeta > 0 && c.BadState > 0 },
		10*time.Second, time.Millisecond, "metadata and state of another version counted")
	assert.Empty(t, ha.ups, "a member of another version is never reported up")
	assert.Empty(t, ha.states)
	ms := a.Members()
	require.Len(t, ms, 2, "listed, so that an operator sees it")
	assert.Empty(t, ms[1].DataAddr, "but nothing read from its metadata")
}

func TestConfigErrors(t *testing.T) {
	h := newHost(1, "x")
	for _, c := range []Config{
		{PushPullInterval: time.Second, RejoinInterval: time.Second, Bind: "127.0.0.1:0"},
		{Name: "x", RejoinInterval: time.Second, Bind: "127.0.0.1:0"},
		{Name: "x", PushPullInterval: time.Second, RejoinInterval: time.Second, Bind: "nope"},
		{Name: "x", PushPullInterval: time.Second, RejoinInterval: time.Second, Bind: "127.0.0.1:0", Join: []string{"a:99999"}},
	} {
		_, err := New(c, h)
		assert.ErrorIs(t, err, ErrConfig, "%+v", c)
	}
}

// A broadcast from one member reaches the others' hosts.
func TestBroadcast(t *testing.T) {
	var mn mockNet
	ha, hb, hc := newHost(8001, "a"), newHost(8002, "b"), newHost(8003, "c")
	mn.reserve("a", "b", "c")
	a := mn.start(t, "a", ha)
	mn.start(t, "b", hb, a.Addr())
	mn.start(t, "c", hc, a.Addr())
	for range 2 {
		recv(t, ha.ups, "a sees the others")
	}
	a.Broadcast([]byte("hello"))
	assert.Equal(t, "hello", recv(t, hb.msgs, "b hears it"))
	assert.Equal(t, "hello", recv(t, hc.msgs, "c hears it"))
}

// A member this node holds dead that pushes its state is back: the state
// is taken, not dropped while the news that it is alive is on its way
// (after the whole cluster restarted it may alone hold some rows).
func TestStateOfAMemberHeldDeadIsTaken(t *testing.T) {
	var mn mockNet
	ha, hb := newHost(8001, "a"), newHost(8002, "b")
	a, b := mn.pair(t, ha, hb) // push/pull every hour: only joins and swaps swap
	recv(t, ha.ups, "a sees b")
	recv(t, ha.states, "the join's push/pull reaches a")
	recv(t, hb.states, "and b")
	for _, n := range a.ml.Members() {
		if n.Name == "b" {
			(*events)(a).NotifyLeave(n) // the failure detector's verdict, before b refutes it
		}
	}
	assert.False(t, recv(t, ha.downs, "a holds b dead"))
	_, err := b.ml.Join([]string{a.Addr()})
	require.NoError(t, err)
	assert.Equal(t, "b:b", recv(t, ha.states, "a takes b's state"))
	assert.Zero(t, a.Counters().BadState)
}

// A member restarted holding rows (SwapNew) swaps state with every member
// it first sees, also one it learns of second-hand and never joins: after
// the whole cluster restarted, each may alone hold some rows. One that
// starts empty does not (its join fills it).
func TestSwapNew(t *testing.T) {
	for _, swapNew := range []bool{true, false} {
		t.Run(fmt.Sprint(swapNew), func(t *testing.T) {
			var mn mockNet
			mn.reserve("a", "b", "c") // a starts while b and c send
			ha, hb, hc := newHost(8001, "a"), newHost(8002, "b"), newHost(8003, "c")
			b := mn.start(t, "b", hb)
			c := mn.start(t, "c", hc, b.Addr())
			recv(t, hb.states, "c's join reaches b")
			recv(t, hc.states, "and c")
			mn.startWith(t, "a", ha, func(cfg *Config) { cfg.SwapNew = swapNew }, c.Addr()) // a learns of b from c
			assert.Equal(t, "c:c", recv(t, ha.states, "a's join: c's state"))
			assert.Equal(t, "a:a", recv(t, hc.states, "a's join: a's state at c"))
			if !swapNew {
				select {
				case s := <-hb.states:
					t.Fatalf("b got a state (%s) from a member that starts empty", s)
				case <-time.After(300 * time.Millisecond):
				}
				return
			}
			assert.Equal(t, "a:a", recv(t, hb.states, "a swaps state with b, first seen"))
		})
	}
}
