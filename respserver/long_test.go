package respserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/bufpool"
	"github.com/rmbd/rmbd/internal/conns"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/resp"
	"github.com/stretchr/testify/require"
)

// liveServer is a started server of an in-memory backend on loopback,
// with its own connection table and a buffer budget of budget bytes.
type liveServer struct {
	*Server
	conns *conns.Table
	bufs  *bufpool.Pool
}

func startLive(t *testing.T, budget int64, passwords ...string) *liveServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	ls := &liveServer{conns: conns.New(conns.Config{Max: 64, MaxPerSource: 64}), bufs: bufpool.New(budget, 0)}
	lim := resp.DefaultLimits()
	lim.MaxCommand = 64 << 20 // larger than the budget: what holds is the pieces
	ls.Server = New(Config{Listener: l, Passwords: passwords, Limits: lim,
		IdleTimeout: time.Minute, FrameTimeout: time.Minute, AutoCreate: true,
		Sizing: registry.Sizing{Layout: filter.Blocked, Capacity: 1_000_000, FPRate: 0.001},
		Policy: &access.Policy{}, Conns: ls.conns, Buffers: ls.bufs, Context: ctx,
		Spawn:  func(f func()) bool { wg.Go(f); return true },
		Logger: slog.New(slog.DiscardHandler)}, newTestBackend(t, 256<<20))
	ls.Start()
	t.Cleanup(func() {
		cancel()
		ls.Close()
		ls.conns.Drain()
		wg.Wait()
	})
	return ls
}

// dial connects to ls, from the loopback address from (empty: any).
func (ls *liveServer) dial(t *testing.T, from string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", ls.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c)
}

// appendCommand appends args as a RESP array of bulk strings.
func appendCommand(b []byte, args ...string) []byte {
	b = resp.AppendArray(b, len(args))
	for _, a := range args {
		b = resp.AppendBulkString(b, a)
	}
	return b
}

// readBools reads a reply that must be an array of n integers 0 or 1.
func readBools(r *bufio.Reader, n int) ([]bool, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if line != "*"+strconv.Itoa(n)+"\r\n" {
		return nil, fmt.Errorf("answered %q", line)
	}
	out := make([]bool, n)
	for i := range out {
		e, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		switch e {
		case ":1\r\n":
			out[i] = true
		case ":0\r\n":
		default:
			return nil, fmt.Errorf("element %d is %q", i, e)
		}
	}
	return out, nil
}

// TestLongCommandsWithinBudget: four clients at once each send a BF.MADD
// (or BF.INSERT) of 200,000 items, about 3 MB, to a server whose buffers
// may hold 1 MiB in all, then a BF.MEXISTS of the same items and as many
// others. Every
// command is served, in pieces, within the budget: each item is added and
// found, and no command is refused for memory. The connections gone,
// every buffer is back.
func TestLongCommandsWithinBudget(t *testing.T) {
	const budget, clients, items = 1 << 20, 4, 200_000
	ls := startLive(t, budget)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		name := fmt.Sprint("f", i)
		reserve := appendCommand(nil, "BF.RESERVE", name, "0.001", "1000000")
		madd := []string{"BF.MADD", name}
		if i%2 == 1 {
			reserve, madd = nil, []string{"BF.INSERT", name, "CAPACITY", "1000000", "ERROR", "0.001", "ITEMS"}
		}
		mexists := []string{"BF.MEXISTS", fmt.Sprint("f", i)}
		for j := range items {
			madd = append(madd, fmt.Sprintf("item-%d-%d", i, j))
			mexists = append(mexists, fmt.Sprintf("item-%d-%d", i, j), fmt.Sprintf("other-%d-%d", i, j))
		}
		require.Greater(t, len(appendCommand(nil, madd...)), 2*budget)
		c, r := ls.dial(t, "")
		wg.Go(func() {
			cmds := appendCommand(appendCommand(reserve, madd...), mexists...)
			go c.Write(cmds)
			if reserve != nil {
				if ok, err := r.ReadString('\n'); ok != "+OK\r\n" {
					errs <- fmt.Errorf("BF.RESERVE %d: %q %v", i, ok, err)
					return
				}
			}
			if _, err := readBools(r, items); err != nil {
				errs <- fmt.Errorf("BF.MADD %d: %w", i, err)
				return
			}
			found, err := readBools(r, 2*items)
			if err != nil {
				errs <- fmt.Errorf("BF.MEXISTS %d: %w", i, err)
				return
			}
			falsePositives := 0
			for j := range items {
				if !found[2*j] {
					errs <- fmt.Errorf("client %d: item %d added and not found", i, j)
					return
				}
				if found[2*j+1] {
					falsePositives++
				}
			}
			if falsePositives > items/100 {
				errs <- fmt.Errorf("client %d: %d false positives of %d", i, falsePositives, items)
				return
			}
			c.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st := ls.bufs.Stats()
	require.LessOrEqual(t, st.Peak, int64(budget))
	require.Zero(t, st.Refused, "no buffer refused: the pieces fit")
	c := ls.Counts()
	require.Zero(t, c.NoMemory)
	require.Equal(t, uint64(clients*items), c.Adds)
	require.Equal(t, uint64(clients*2*items), c.HasQueries)
	require.Eventually(t, func() bool { return ls.conns.Len() == 0 && ls.bufs.Stats().Lent == 0 },
		10*time.Second, time.Millisecond, "every connection and buffer back")
}

// TestLongCommandRefusals: a command other than the long ones, in more
// than one piece, is refused and its pieces skipped (the connection goes
// on); a long command whose answers the budget cannot hold is told so.
func TestLongCommandRefusals(t *testing.T) {
	ls := startLive(t, 1<<20)
	c, r := ls.dial(t, "")
	del := []string{"DEL"}
	exists := []string{"EXISTS"}
	for i := range 3000 {
		del = append(del, fmt.Sprint("k", i))
		exists = append(exists, "default")
	}
	_, err := c.Write(appendCommand(appendCommand(appendCommand(nil, del...), exists...), "PING"))
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "-ERR 'del' command too long: only BF.MADD, BF.INSERT, BF.MEXISTS and EXISTS take more than 1024 arguments or 256 KiB\r\n", line)
	for _, want := range []string{":3000\r\n", "+PONG\r\n"} {
		line, err = r.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, want, line)
	}

	// The answers to a million items take 128 KiB, which a budget of
	// 128 KiB, the connection's reply buffer lent, cannot hold.
	ls = startLive(t, 128<<10)
	c, r = ls.dial(t, "")
	madd := []byte("*1048576\r\n$7\r\nBF.MADD\r\n$1\r\nf\r\n")
	for range 2000 {
		madd = resp.AppendBulkString(madd, "item")
	}
	_, err = c.Write(madd)
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "-ERR "+errRESPNoMemory+"\r\n", line)
	_, err = io.ReadAll(r)
	require.NoError(t, err, "closed")
	require.Equal(t, uint64(1), ls.Counts().NoMemory)
}
