package forward

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rmbd/rmbd/wire"
)

func TestForwardRestoresID(t *testing.T) {
	m := newEcho(t)
	f := newForwarder(t, Config{})
	keys := []string{"a", "bb", "ccc"}
	req := hasBatch(t, 0xdeadbeef, keys...)
	sent := bytes.Clone(req)

	out, err := f.Do(ctxT(t), m.addr, "users", req, []byte("prefix"))
	require.NoError(t, err)
	require.Equal(t, "prefix", string(out[:6]), "the answer is appended to dst")
	require.NoError(t, checkResult(t, out[6:], 0xdeadbeef, keys))
	require.Equal(t, sent, req, "the caller's request is not touched")

	out, err = f.Do(ctxT(t), m.addr, "", req, nil) // unnamed: sent as it is
	require.NoError(t, err)
	require.NoError(t, checkResult(t, out, 0xdeadbeef, keys))

	require.Equal(t, []string{"users", ""}, m.seen())
	s := f.Stats()
	require.Equal(t, Stats{Done: 2, Dials: 1, Conns: 1}, s)
	require.EqualValues(t, 1, m.accepts.Load())
}

// TestConcurrentShuffled sends 200 forwards at once, all with the same
// request id as clients' ids collide; the member answers them in a
// random order, and each answer reaches its own forward.
func TestConcurrentShuffled(t *testing.T) {
	const n = 200
	m := newMember(t, func(m *member, _ int, c net.Conn) {
		fr := wire.NewFrameReader(c, 0)
		var answers [][]byte
		for len(answers) < n {
			r, err := m.readRequest(fr)
			if !assert.NoError(t, err) {
				return
			}
			answers = append(answers, answer(r.batch))
		}
		rand.Shuffle(len(answers), func(i, j int) { answers[i], answers[j] = answers[j], answers[i] })
		if _, err := c.Write(bytes.Join(answers, nil)); !assert.NoError(t, err) {
			return
		}
		drain(c)
	})
	f := newForwarder(t, Config{})

	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			keys := keysFor(i, i+1) // the key count tells the answers apart
			out, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 7, keys...), nil)
			if assert.NoError(t, err) {
				assert.NoError(t, checkResult(t, out, 7, keys), "forward %d", i)
			}
		})
	}
	wg.Wait()
	s := f.Stats()
	require.Equal(t, Stats{Done: n, Dials: 1, Conns: 1}, s, "one connection, dialed once")
	require.EqualValues(t, 1, m.accepts.Load())
}

func TestErrorFrameRelayed(t *testing.T) {
	m := newMember(t, func(m *member, _ int, c net.Conn) {
		fr := wire.NewFrameReader(c, 0)
		for {
			r, err := m.readRequest(fr)
			if err != nil {
				return
			}
			e, _ := wire.AppendError(nil, wire.ErrorFrame{ReqID: r.batch.ReqID, Code: wire.CodeBusy, Msg: []byte("slow down")})
			c.Write(e)
		}
	})
	f := newForwarder(t, Config{})
	out, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 99, "k"), nil)
	require.NoError(t, err, "an error frame is an answer")
	e, err := wire.DecodeError(out)
	require.NoError(t, err)
	require.Equal(t, wire.ErrorFrame{ReqID: 99, Code: wire.CodeBusy, Msg: []byte("slow down")}, e)
	require.EqualValues(t, 1, f.Stats().Done)
}

func TestIdle(t *testing.T) {
	m := newEcho(t)
	f := newForwarder(t, Config{IdleTimeout: 20 * time.Millisecond})
	for range 2 {
		_, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 1, "k"), nil)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return f.Stats().Conns == 0 }, 2*time.Second, time.Millisecond)
	}
	require.EqualValues(t, 2, m.accepts.Load(), "dialed again after idling out")
	require.Eventually(t, func() bool {
		f.mu.RLock()
		defer f.mu.RUnlock()
		return len(f.peers) == 0
	}, 2*time.Second, time.Millisecond, "and forgotten")
}

func TestRequestRefused(t *testing.T) {
	addr := netip.MustParseAddrPort("192.0.2.1:7000")
	pull := []byte{byte(wire.TypePull), 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0} // laid out by hand: only its type matters
	stats, err := wire.AppendStatsRequest(nil, 1)
	require.NoError(t, err)
	has := hasBatch(t, 1, "k")
	classic := make([]byte, wire.ClassicKeyFrameSize)
	cases := []struct {
		name, filter string
		req          []byte
	}{
		{"empty", "users", nil},
		{"classic", "users", classic},
		{"cut short", "users", has[:len(has)-1]},
		{"trailing bytes", "users", append(bytes.Clone(has), 0)},
		{"pull", "users", pull},
		{"answer", "users", answer(wire.Batch{Type: wire.TypeHasBatch})},
		{"bad name", "a\x01b", has},
		{"name too long", string(bytes.Repeat([]byte{'n'}, wire.MaxFilterName+1)), has},
		{"not nameable", "users", stats},
	}
	f := newForwarder(t, Config{Dial: func(context.Context, netip.AddrPort) (net.Conn, error) {
		t.Error("dialed for a request refused")
		return nil, errors.New("no")
	}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := f.Do(context.Background(), addr, c.filter, c.req, []byte("x"))
			requireForwardError(t, err, addr, "request", ErrRequest)
			require.Equal(t, "x", string(out))
		})
	}
	require.Equal(t, Stats{Failed: uint64(len(cases))}, f.Stats())
}

// TestOneWay: an add batch without FlagAck is written and not waited
// for, with request id 0 whatever forward used the waiter before; an
// error frame refusing it is dropped.
func TestOneWay(t *testing.T) {
	ids := make(chan uint32, 1)
	m := newMember(t, func(m *member, _ int, c net.Conn) {
		fr := wire.NewFrameReader(c, 0)
		r, err := m.readRequest(fr) // a has, answered
		if err != nil {
			return
		}
		c.Write(answer(r.batch))
		if r, err = m.readRequest(fr); err != nil { // the add
			return
		}
		ids <- r.batch.ReqID
		e, _ := wire.AppendError(nil, wire.ErrorFrame{ReqID: r.batch.ReqID, Code: wire.CodeForbidden})
		c.Write(e)
		drain(c)
	})
	f := newForwarder(t, Config{})
	_, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 1, "k"), nil)
	require.NoError(t, err)
	out, err := f.Do(ctxT(t), m.addr, "users", batch(t, wire.TypeAddBatch, 77, 0, "k"), []byte("x"))
	require.NoError(t, err)
	require.Equal(t, "x", string(out), "no answer to wait for")
	require.Zero(t, <-ids, "sent with id 0, which no forward waits on")
	require.Eventually(t, func() bool { return f.Stats().Dropped == 1 }, 2*time.Second, time.Millisecond)
	require.Equal(t, uint64(2), f.Stats().Done)
}

func TestErrorMessage(t *testing.T) {
	addr := netip.MustParseAddrPort("10.0.0.2:7000")
	require.Equal(t, "forward to 10.0.0.2:7000: admit: too many forwards in flight", (&Error{Addr: addr, Op: "admit", Err: ErrBusy}).Error())
	require.Equal(t, "forward to 10.0.0.2:7000: dial: connection refused", (&Error{Addr: addr, Op: "dial", Err: errors.New("connection refused")}).Error())
}
