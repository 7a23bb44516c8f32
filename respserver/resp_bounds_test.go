package respserver_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/node"
	"github.com/stretchr/testify/require"
)

// What a hostile RESP client can make the node hold: the same as over its
// own protocol.

func dialRESP(t *testing.T, n *node.Node) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", n.RESPAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// closedAfter reads until c closes and returns what came.
func closedAfter(t *testing.T, c net.Conn) string {
	t.Helper()
	all, err := readAllConn(c)
	require.ErrorIs(t, err, io.EOF, "closed by the node, not by the test's deadline")
	return all
}

func TestRESPTimeouts(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.IdleTimeout, cfg.FrameTimeout = 300*time.Millisecond, 200*time.Millisecond
	n := startRESP(t, cfg)

	half := dialRESP(t, n) // a command begun and never finished
	_, err := half.Write([]byte("*2\r\n$4\r\nECHO\r\n$10\r\nabc"))
	require.NoError(t, err)
	idle := dialRESP(t, n) // a command, then nothing
	_, err = idle.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	start := time.Now()
	require.Equal(t, "", closedAfter(t, half))
	require.Equal(t, "+PONG\r\n", closedAfter(t, idle))
	require.Less(t, time.Since(start), 5*time.Second)
	waitFor(t, "both counted", func() bool {
		c := n.Stats().Counts
		return c[counter.TCPFrameTimeouts] == 1 && c[counter.TCPIdleTimeouts] == 1
	})
}

func TestRESPProtocolErrors(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.RESPLimits.MaxArgs, cfg.RESPLimits.MaxBulk, cfg.RESPLimits.MaxInline = 100, 1000, 500
	n := startRESP(t, cfg)
	for in, want := range map[string]string{
		"*1\r\n:12\r\n":                         "-ERR Protocol error: expected '$', got ':'\r\n",
		"*101\r\n":                              "-ERR Protocol error: invalid multibulk length (101 arguments; at most 100)\r\n",
		"*1\r\n$1001\r\n":                       "-ERR Protocol error: invalid bulk length (1001 bytes; at most 1000)\r\n",
		"*1\r\n$4\r\nPINGxx":                    "-ERR Protocol error: invalid bulk length (the bulk does not end where it says)\r\n",
		"PING\r\nECHO \"unbalanced\r\n":         "+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n",
		strings.Repeat("x", 600):                "-ERR Protocol error: too big inline request\r\n",
		"*1\r\n$99999999999999999999999999\r\n": "-ERR Protocol error: too big bulk count string\r\n",
	} {
		c := dialRESP(t, n)
		_, err := c.Write([]byte(in))
		require.NoError(t, err)
		require.Equal(t, want, closedAfter(t, c), "%q", in)
	}
	require.Equal(t, uint64(7), n.Stats().Counts[counter.RESPProtocolErrors])
	require.Equal(t, "PONG", redisClient(t, n, 2, "").Ping(t.Context()).Val(), "others unharmed")
}

// TestRESPBufferBudget: a hundred clients each begin a command of 300 KB
// on a node whose buffers may take 4 MiB. The budget holds; those it
// cannot take are told so and closed (a few, or all of them when each
// holds half a command), the rest answered; every byte comes back; then a
// command of that size alone is served.
func TestRESPBufferBudget(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.MaxBufferBytes = 4 << 20 // the least a node takes
	cfg.MaxConnsPerSource = 200
	n := startRESP(t, cfg)
	const clients, size = 100, 300_000
	body := strings.Repeat("v", size)
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = dialRESP(t, n)
		fmt.Fprintf(conns[i], "*2\r\n$4\r\nECHO\r\n$%d\r\n%s", size, body[:size/2]) // half of it, held
	}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Write([]byte(body[size/2:] + "\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			mu.Lock()
			answers[strings.TrimSuffix(line, "\r\n")]++
			mu.Unlock()
			c.Close()
		}()
	}
	wg.Wait()
	st := n.Stats()
	require.LessOrEqual(t, st.Buffers.Peak, cfg.MaxBufferBytes)
	refused := answers["-ERR "+"no buffer memory left for this command (--max-buffer-bytes): try again, or send smaller commands"]
	require.Positive(t, refused, "%v", answers)
	require.Equal(t, clients, answers[fmt.Sprint("$", size)]+refused, "each answered or told: %v", answers)
	waitFor(t, "every buffer back", func() bool { return n.Stats().Buffers.Lent == 0 })
	require.Equal(t, "PONG", redisClient(t, n, 3, "").Ping(t.Context()).Val())
	echo, err := redisClient(t, n, 3, "").Echo(t.Context(), body).Result()
	require.NoError(t, err, "alone, a command of that size is served")
	require.Len(t, echo, size)
}

func TestRESPConnectionLimits(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.MaxConnsPerSource = 3
	n := startRESP(t, cfg)
	var held []net.Conn
	for range 3 {
		c := dialRESP(t, n)
		_, err := c.Write([]byte("PING\r\n"))
		require.NoError(t, err)
		buf := make([]byte, 7)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		held = append(held, c)
	}
	extra := dialRESP(t, n)
	require.Equal(t, "", closedAfter(t, extra), "a fourth from the same address is refused")
	require.Equal(t, uint64(1), n.Stats().Counts[counter.TCPRefusedPerSource])
	held[0].Close()
	waitFor(t, "room again", func() bool {
		c, err := net.Dial("tcp", n.RESPAddr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		c.Write([]byte("PING\r\n"))
		buf := make([]byte, 7)
		_, err = io.ReadFull(c, buf)
		return err == nil && string(buf) == "+PONG\r\n"
	})
}

// TestRESPShutdown: a node stops promptly with clients connected, one in
// the middle of a command, answering what it has read.
func TestRESPShutdown(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Listen, cfg.RESPListen, cfg.UDPSockets = "127.0.0.1:0", "127.0.0.1:0", 1
	n, err := node.New(cfg)
	require.NoError(t, err)
	stop := run(t, n)
	mid := dialRESP(t, n)
	mid.Write([]byte("PING\r\n*2\r\n$4\r\nECHO\r\n$5\r\nab"))
	buf := make([]byte, 7)
	_, err = io.ReadFull(mid, buf)
	require.NoError(t, err)
	idle := dialRESP(t, n)
	start := time.Now()
	stop()
	require.Less(t, time.Since(start), 3*time.Second)
	require.Equal(t, "", closedAfter(t, mid))
	require.Equal(t, "", closedAfter(t, idle))
	require.Zero(t, n.Stats().Counts[counter.ForcedShutdowns])
}
