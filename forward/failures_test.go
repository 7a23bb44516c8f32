package forward

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rmbd/rmbd/wire"
)

func TestTimeout(t *testing.T) {
	got, late := make(chan struct{}), make(chan struct{})
	m := newMember(t, func(m *member, _ int, c net.Conn) {
		fr := wire.NewFrameReader(c, 0)
		r, err := m.readRequest(fr)
		if err != nil {
			return
		}
		a := answer(r.batch)
		close(got)
		<-late
		c.Write(a) // after the forward gave up
		m.echo(0, c)
	})
	const timeout = 50 * time.Millisecond
	f := newForwarder(t, Config{Timeout: timeout})

	start := time.Now()
	_, err := f.Do(context.Background(), m.addr, "users", hasBatch(t, 1, "k"), nil)
	took := time.Since(start)
	e := requireForwardError(t, err, m.addr, "wait", ErrTimeout)
	require.True(t, e.Timeout())
	require.GreaterOrEqual(t, took, timeout)
	require.Less(t, took, 20*timeout)
	<-got
	close(late)
	require.Eventually(t, func() bool { return f.Stats().Dropped == 1 }, 2*time.Second, time.Millisecond, "the late answer is dropped")

	keys := []string{"a", "b"}
	out, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 2, keys...), nil)
	require.NoError(t, err, "the connection still serves")
	require.NoError(t, checkResult(t, out, 2, keys))
	require.Equal(t, Stats{Done: 1, Failed: 1, Timeouts: 1, Dropped: 1, Dials: 1, Conns: 1}, f.Stats())

	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		silent := newMember(t, func(_ *member, _ int, c net.Conn) { drain(c) })
		f := newForwarder(t, Config{Timeout: time.Minute})
		start := time.Now()
		_, err := f.Do(ctx, silent.addr, "users", hasBatch(t, 1, "k"), nil)
		require.Less(t, time.Since(start), 20*timeout)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.True(t, e.Timeout(), "%v", err)
	})
	t.Run("context cancelled before", func(t *testing.T) {
		f := newForwarder(t, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.Do(ctx, m.addr, "users", hasBatch(t, 1, "k"), nil)
		requireForwardError(t, err, m.addr, "admit", context.Canceled)
		require.Zero(t, f.Stats().Dials, "nothing is sent")
	})
	t.Run("context cancelled", func(t *testing.T) {
		got := make(chan struct{})
		silent := newMember(t, func(_ *member, _ int, c net.Conn) {
			fr := wire.NewFrameReader(c, 0)
			fr.Next()
			close(got)
			drain(c)
		})
		f := newForwarder(t, Config{Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-got; cancel() }()
		_, err := f.Do(ctx, silent.addr, "users", hasBatch(t, 1, "k"), nil)
		requireForwardError(t, err, silent.addr, "wait", context.Canceled)
	})
}

// TestMemberClosesMidFlight: the member hangs up with forwards waiting;
// every one fails, naming it, and the next forward dials again.
func TestMemberClosesMidFlight(t *testing.T) {
	const n = 5
	m := newMember(t, func(m *member, i int, c net.Conn) {
		if i > 0 {
			m.echo(i, c)
			return
		}
		fr := wire.NewFrameReader(c, 0)
		for range n {
			if _, err := fr.Next(); err != nil {
				return
			}
		}
	})
	f := newForwarder(t, Config{Timeout: time.Minute})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := f.Do(context.Background(), m.addr, "users", hasBatch(t, 1, "k"), nil)
			assert.ErrorIs(t, err, ErrConnClosed)
			assert.Contains(t, err.Error(), m.addr.String())
		})
	}
	wg.Wait()

	out, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 3, "x"), nil)
	require.NoError(t, err)
	require.NoError(t, checkResult(t, out, 3, []string{"x"}))
	require.EqualValues(t, 2, m.accepts.Load())
	require.Equal(t, Stats{Done: 1, Failed: n, Dials: 2, Conns: 1}, f.Stats())
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()

	f := newForwarder(t, Config{})
	_, err = f.Do(ctxT(t), addr, "users", hasBatch(t, 1, "k"), nil)
	requireForwardError(t, err, addr, "dial", opError(t, err))
	require.Equal(t, Stats{Failed: 1, Dials: 1}, f.Stats())
	f.mu.RLock()
	defer f.mu.RUnlock()
	require.Empty(t, f.peers, "a member with nothing under way is forgotten")
}

// opError returns the *net.OpError err wraps, whatever the
// platform's refusal looks like.
func opError(t *testing.T, err error) error {
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	return op
}

// TestDialShared: forwards that find a dial under way wait for it, and
// all share the one connection it opens.
func TestDialShared(t *testing.T) {
	m := newEcho(t)
	gate, entered := make(chan struct{}), make(chan struct{}, 100)
	var calls int
	var mu sync.Mutex
	f := newForwarder(t, Config{Dial: func(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		entered <- struct{}{}
		<-gate
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr.String())
	}})
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			keys := keysFor(i, 3)
			out, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, uint32(i), keys...), nil)
			if assert.NoError(t, err) {
				assert.NoError(t, checkResult(t, out, uint32(i), keys))
			}
		})
	}
	<-entered
	require.Eventually(t, func() bool { return f.Stats().InFlight == n }, 2*time.Second, time.Millisecond)
	close(gate)
	wg.Wait()
	require.Equal(t, 1, calls)
	require.EqualValues(t, 1, m.accepts.Load())

	t.Run("failure", func(t *testing.T) {
		errNoRoute := errors.New("no route to member")
		addr := netip.MustParseAddrPort("192.0.2.1:7000")
		f := newForwarder(t, Config{Dial: func(context.Context, netip.AddrPort) (net.Conn, error) { return nil, errNoRoute }})
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := f.Do(context.Background(), addr, "users", hasBatch(t, 1, "k"), nil)
				assert.ErrorIs(t, err, errNoRoute)
				assert.Contains(t, err.Error(), "forward to 192.0.2.1:7000: dial: no route to member")
			})
		}
		wg.Wait()
		require.LessOrEqual(t, f.Stats().Dials, uint64(n))
	})
}

// TestBusyAndClose: past MaxInFlight forwards are refused at once, and
// Close fails the forwards in flight — and one still dialing — at once.
func TestBusyAndClose(t *testing.T) {
	silent := newMember(t, func(_ *member, _ int, c net.Conn) { drain(c) })
	stuck := netip.MustParseAddrPort("192.0.2.1:7000")
	dialer := func(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
		if addr == stuck {
			<-ctx.Done() // a dial that never connects: Close must end it
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr.String())
	}
	const max = 4
	f := New(Config{MaxInFlight: max, Timeout: time.Minute, Dial: dialer})
	defer f.Close()

	var wg sync.WaitGroup
	errs := make(chan error, max+1)
	for range max {
		wg.Go(func() {
			_, err := f.Do(context.Background(), silent.addr, "users", hasBatch(t, 1, "k"), nil)
			errs <- err
		})
	}
	wg.Go(func() {
		_, err := f.Do(context.Background(), stuck, "users", hasBatch(t, 1, "k"), nil)
		errs <- err
	})
	require.Eventually(t, func() bool { return f.Stats().InFlight == max+1 }, 2*time.Second, time.Millisecond)

	_, err := f.Do(context.Background(), silent.addr, "users", hasBatch(t, 1, "k"), nil)
	requireForwardError(t, err, silent.addr, "admit", ErrBusy)
	require.EqualValues(t, 1, f.Stats().Busy)

	start := time.Now()
	require.NoError(t, f.Close())
	wg.Wait()
	require.Less(t, time.Since(start), time.Second, "Close does not wait for timeouts")
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, ErrClosed)
	}
	_, err = f.Do(context.Background(), silent.addr, "users", hasBatch(t, 1, "k"), nil)
	requireForwardError(t, err, silent.addr, "admit", ErrClosed)
	s := f.Stats()
	require.Equal(t, 0, s.Conns)
	require.Equal(t, 0, s.InFlight)
	require.NoError(t, f.Close(), "twice")
}

// failingWrites is a connection whose writes fail.
type failingWrites struct{ net.Conn }

var errBrokenPipe = errors.New("broken pipe")

func (failingWrites) Write([]byte) (int, error) { return 0, errBrokenPipe }

// TestWriteFailure: a write that fails breaks the connection, fails the
// forward (one-way ones too) naming the member, and the next dials again.
func TestWriteFailure(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.1:7000")
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	f := newForwarder(t, Config{Dial: func(context.Context, netip.AddrPort) (net.Conn, error) {
		c, m := net.Pipe()
		wg.Go(func() { drain(m); m.Close() })
		return failingWrites{c}, nil
	}})
	for i, req := range [][]byte{hasBatch(t, 1, "k"), batch(t, wire.TypeAddBatch, 1, 0, "k")} {
		_, err := f.Do(ctxT(t), addr, "users", req, nil)
		requireForwardError(t, err, addr, "write", errBrokenPipe)
		require.Equal(t, Stats{Failed: uint64(i + 1), Dials: uint64(i + 1)}, f.Stats())
	}
}

func TestDialTimeout(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.1:7000")
	f := newForwarder(t, Config{Timeout: 20 * time.Millisecond, Dial: func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
		<-ctx.Done() // the dial ends at the deadline of the forward that started it
		return nil, ctx.Err()
	}})
	_, err := f.Do(context.Background(), addr, "users", hasBatch(t, 1, "k"), nil)
	e := requireForwardError(t, err, addr, "dial", ErrTimeout)
	require.True(t, e.Timeout())
	require.Equal(t, uint64(1), f.Stats().Timeouts)
}
