package respserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/resp"
	"github.com/stretchr/testify/require"
)

// runInline runs each inline command on rc and returns the replies, in order.
func runInline(s *Server, rc *respConn, cmds ...string) string {
	before := len(rc.out)
	for _, c := range cmds {
		s.respCommand(rc, resp.Command{Args: bytes.Fields([]byte(c))})
	}
	return string(rc.out[before:])
}

func TestTransactions(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmds []string
		want string
	}{
		{"queued, then run in order",
			[]string{"MULTI", "BF.ADD f a", "BF.MEXISTS f a b", "BF.ADD f a", "EXEC", "BF.EXISTS f a"},
			"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n*2\r\n:1\r\n:0\r\n:0\r\n:1\r\n"},
		{"an error at EXEC is its command's",
			[]string{"BF.RESERVE g 0.01 100", "MULTI", "BF.RESERVE g 0.01 100", "BF.ADD g x", "EXEC"},
			"+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR item exists\r\n:1\r\n"},
		{"discarded: nothing runs",
			[]string{"MULTI", "BF.ADD f d", "DISCARD", "BF.EXISTS f d"},
			"+OK\r\n+QUEUED\r\n+OK\r\n:0\r\n"},
		{"refused while queuing: EXECABORT, nothing runs",
			[]string{"MULTI", "BF.ADD f e", "BF.ADD f", "EXEC", "BF.EXISTS f e"},
			"+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'bf.add' command\r\n" +
				"-EXECABORT Transaction discarded because of previous errors.\r\n:0\r\n"},
		{"an unknown command dooms it too",
			[]string{"MULTI", "NOPE x", "EXEC"},
			"+OK\r\n-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n" +
				"-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{"control commands run at once",
			[]string{"MULTI", "MULTI", "WATCH f", "EXEC"},
			"+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n*0\r\n"},
		{"without MULTI", []string{"EXEC", "DISCARD", "UNWATCH"},
			"-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testServer(newTestBackend(t, 0))
			rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
			require.Equal(t, tc.want, runInline(s, rc, tc.cmds...))
			require.Zero(t, s.cfg.Buffers.Stats().Lent, "the queue is given back")
		})
	}
}

func TestWatchIsRefused(t *testing.T) {
	s := testServer(newTestBackend(t, 0))
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	require.Contains(t, runInline(s, rc, "WATCH f"), "-ERR WATCH is not supported")
}

// A transaction's queue is bounded by the longest command a client may
// send, and borrowed from the buffer budget: past either, the command is
// refused and the transaction doomed.
func TestTransactionQueueBounds(t *testing.T) {
	s := testServer(newTestBackend(t, 0))
	s.cfg.Limits = resp.Limits{MaxCommand: 4 << 10}
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	runInline(s, rc, "MULTI")
	long := "BF.ADD f " + strings.Repeat("x", 1000)
	var out string
	for range 5 {
		out = runInline(s, rc, long)
	}
	require.Contains(t, out, "ERR transaction too long")
	require.Contains(t, runInline(s, rc, "EXEC"), "EXECABORT")
	require.Zero(t, s.cfg.Buffers.Stats().Lent)

	s.cfg.Limits = resp.Limits{}
	s.cfg.Buffers = bufpool.New(0, 0) // lends nothing
	runInline(s, rc, "MULTI")
	require.Contains(t, runInline(s, rc, "BF.ADD f a"), "no buffer memory left")
	require.Contains(t, runInline(s, rc, "EXEC"), "EXECABORT")
}

// A command in pieces is not queued.
func TestTransactionRefusesPieces(t *testing.T) {
	s := testServer(newTestBackend(t, 0))
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	runInline(s, rc, "MULTI")
	s.respCommand(rc, resp.Command{Args: bytes.Fields([]byte("BF.MADD f a b")), More: 10})
	require.Contains(t, string(rc.out), "cannot be queued in a transaction")
	require.Contains(t, runInline(s, rc, "EXEC"), "EXECABORT")
}

// FuzzTransactions runs any sequence of transaction commands and adds
// against a model: a command is queued (+QUEUED) inside MULTI and run at
// EXEC, in order, unless one was refused; DISCARD and EXECABORT run
// nothing; an added key is present for good, a key only ever queued in a
// discarded transaction is absent (up to a false positive, never seen
// with these few keys and this sizing).
func FuzzTransactions(f *testing.F) {
	f.Add([]byte{0, 3, 4, 1, 4})
	f.Add([]byte{0, 3, 0, 5, 3, 1, 4, 2, 7})
	f.Add([]byte{0, 3, 2, 4, 0, 6, 1, 1, 2})
	s := testServer(newTestBackend(f, 0))
	runs := 0
	f.Fuzz(func(t *testing.T, ops []byte) {
		rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
		if runs%100 == 0 { // a fresh filter now and then: it never fills
			require.Equal(t, "+OK\r\n", runInline(s, rc, "DEL f", "BF.RESERVE f 0.0001 10000")[4:])
		}
		runs++
		var inTx, doomed bool
		var queued []string
		added := map[string]bool{}
		for i, op := range ops {
			k := fmt.Sprint("k", runs, "-", i/8) // keys of this run alone
			var cmd, want string
			switch op % 8 {
			case 0:
				cmd, want = "MULTI", "+OK\r\n"
				if inTx {
					want = "-ERR MULTI calls can not be nested\r\n"
				}
				inTx = true
			case 1:
				cmd = "EXEC"
				switch {
				case !inTx:
					want = "-ERR EXEC without MULTI\r\n"
				case doomed:
					want = "-EXECABORT Transaction discarded because of previous errors.\r\n"
				default:
					want = fmt.Sprintf("*%d\r\n", len(queued))
					for _, q := range queued {
						want += fmt.Sprintf(":%d\r\n", b2i(!added[q]))
						added[q] = true
					}
				}
				inTx, doomed, queued = false, false, nil
			case 2:
				cmd, want = "DISCARD", "-ERR DISCARD without MULTI\r\n"
				if inTx {
					want = "+OK\r\n"
				}
				inTx, doomed, queued = false, false, nil
			case 3, 6:
				cmd = "BF.ADD f " + k
				switch {
				case inTx:
					want = "+QUEUED\r\n"
					queued = append(queued, k)
				default:
					want = fmt.Sprintf(":%d\r\n", b2i(!added[k]))
					added[k] = true
				}
			case 4:
				cmd = "BF.EXISTS f " + k
				if inTx { // queued asks are not modelled: ask outside only
					continue
				}
				want = fmt.Sprintf(":%d\r\n", b2i(added[k]))
			case 5, 7:
				cmd, want = "BF.ADD f", "-ERR wrong number of arguments for 'bf.add' command\r\n"
				doomed = doomed || inTx
			}
			require.Equal(t, want, runInline(s, rc, cmd), "op %d: %s", i, cmd)
		}
		runInline(s, rc, "DISCARD")
		require.Zero(t, s.cfg.Buffers.Stats().Lent, "every queue is given back")
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// What Redis users' tools ask: CONFIG GET of the common keys, CONFIG SET
// refused, INFO's redis_version and memory, CLIENT HELP, and the expiry
// commands refused with the reason.
func TestRedisHabits(t *testing.T) {
	s := testServer(newTestBackend(t, 64<<20))
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	require.Equal(t, "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n", runInline(s, rc, "CONFIG GET save appendonly"))
	require.Equal(t, "*2\r\n$9\r\nmaxmemory\r\n$8\r\n67108864\r\n", runInline(s, rc, "CONFIG GET MAXMEMORY"))
	require.Equal(t, "*4\r\n$9\r\nmaxmemory\r\n$8\r\n67108864\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n", runInline(s, rc, "CONFIG GET maxmem*"))
	require.Equal(t, "*0\r\n", runInline(s, rc, "CONFIG GET nope"))
	require.Contains(t, runInline(s, rc, "CONFIG SET maxmemory 1"), "-ERR CONFIG SET is not supported: rmbd's settings are its flags")
	require.Contains(t, runInline(s, rc, "CONFIG HELP"), "GET <pattern>")
	require.Contains(t, runInline(s, rc, "CLIENT HELP"), "SETNAME <name>")
	require.NotContains(t, runInline(s, rc, "CLIENT HELP"), "LIST", "no subcommand the server does not have")

	info := runInline(s, rc, "INFO")
	require.Contains(t, info, "redis_version:"+RedisVersion+"\r\n")
	require.Contains(t, info, "rmbd_version:")
	require.Contains(t, info, "# Memory\r\nused_memory:")
	require.Contains(t, info, "maxmemory:67108864\r\n")
	require.Regexp(t, `used_memory_filters:[1-9][0-9]*\r\n`, info, "the default filter's bytes")
	mem := runInline(s, rc, "INFO memory")
	require.Contains(t, mem, "# Memory\r\nused_memory:")
	require.NotContains(t, mem, "# Stats")
}

// No connection holds the gate while it waits — on a password throttle,
// on a filter's folder being made — so that a pending EXEC, and every
// client behind it, never waits on one.
func TestNoWaitHoldsTheGate(t *testing.T) {
	s := testServer(newTestBackend(t, 0))
	s.cfg.Passwords = []string{"right"}
	var free []bool
	s.auth.sleep = func(context.Context, time.Duration) bool {
		ok := s.gate.TryLock() // what EXEC takes: free unless someone holds it
		if ok {
			s.gate.Unlock()
		}
		free = append(free, ok)
		return true
	}
	for range 6 { // past the free attempts: throttled
		rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2}
		s.enter(rc)
		runInline(s, rc, "AUTH wrong")
		require.True(t, rc.gated, "the gate taken again after the wait")
		s.ungate(rc)
	}
	require.NotEmpty(t, free, "a wait happened")
	require.NotContains(t, free, false, "no wait held the gate")
}

// Inside a transaction, commands whose replies are not bounded by their
// arguments, or that may wait on a throttle, are refused and doom it, as
// a wrong-arity EXEC does; QUIT runs at once.
func TestTransactionRefusals(t *testing.T) {
	for _, cmd := range []string{"KEYS *", "SCAN 0", "COMMAND", "INFO", "CONFIG GET *", "AUTH x", "HELLO 3", "EXEC x"} {
		s := testServer(newTestBackend(t, 0))
		rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
		out := runInline(s, rc, "MULTI", "BF.ADD f a", cmd, "EXEC", "BF.EXISTS f a")
		require.Contains(t, out, "-EXECABORT", cmd)
		require.True(t, strings.HasSuffix(out, ":0\r\n"), "%s: nothing ran: %q", cmd, out)
	}
	s := testServer(newTestBackend(t, 0))
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	require.Equal(t, "+OK\r\n+QUEUED\r\n+OK\r\n", runInline(s, rc, "MULTI", "BF.ADD f a", "QUIT"))
	require.True(t, rc.quit)
}

// Every queued command counts for at least queuedCost, so that EXEC's
// reply, held whole, stays within about the queue's bound.
func TestTransactionReplyIsBounded(t *testing.T) {
	s := testServer(newTestBackend(t, 0))
	s.cfg.Limits = resp.Limits{MaxCommand: 64 << 10}
	rc := &respConn{cn: &conns.Conn{From: loopback}, id: 1, proto: 2, authed: true}
	runInline(s, rc, "BF.RESERVE f 0.01 100", "MULTI")
	queued := 0
	for runInline(s, rc, "BF.INFO f") == "+QUEUED\r\n" {
		queued++
	}
	require.Less(t, queued, (64<<10)/queuedCost+1)
	rc.out = rc.out[:0]
	runInline(s, rc, "DISCARD", "MULTI")
	for range queued {
		runInline(s, rc, "BF.INFO f")
	}
	rc.out = rc.out[:0]
	out := runInline(s, rc, "EXEC")
	require.Less(t, len(out), 64<<10, "the reply within the queue's bound")
}
