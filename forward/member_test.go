package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/rmbd/rmbd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// member is a fake cluster member on a loopback listener: serve runs for
// each connection it accepts, with the member and the connection's index
// (0 for the first), and the connection is closed when serve returns.
type member struct {
	ln      net.Listener
	addr    netip.AddrPort
	serve   func(m *member, i int, c net.Conn)
	accepts atomic.Int32

	mu    sync.Mutex
	conns []net.Conn
	names []string // the filter names of the requests read by readRequest
	wg    sync.WaitGroup
}

func newMember(t testing.TB, serve func(m *member, i int, c net.Conn)) *member {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m := &member{ln: ln, addr: netip.MustParseAddrPort(ln.Addr().String()), serve: serve}
	m.wg.Add(1)
	go m.accept()
	t.Cleanup(m.close)
	return m
}

func (m *member) accept() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		i := int(m.accepts.Add(1)) - 1
		m.mu.Lock()
		m.conns = append(m.conns, c)
		m.mu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer c.Close()
			m.serve(m, i, c)
		}()
	}
}

func (m *member) close() {
	m.ln.Close()
	m.mu.Lock()
	for _, c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *member) seen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.names...)
}

// memberReq is a request as the member read it; the batch's keys are
// valid until the next read.
type memberReq struct {
	name  string
	batch wire.Batch
}

// readRequest reads a batch request, named or not, as a member does:
// wire.DecodeNamed, then wire.DecodeBatch.
func (m *member) readRequest(fr *wire.FrameReader) (memberReq, error) {
	frame, err := fr.Next()
	if err != nil {
		return memberReq{}, err
	}
	return m.decode(frame)
}

func (m *member) decode(frame []byte) (memberReq, error) {
	var r memberReq
	if wire.Type(frame[0]) == wire.TypeNamed {
		n, err := wire.DecodeNamed(frame)
		if err != nil {
			return r, err
		}
		r.name, frame = string(n.Name), n.Inner
	}
	b, err := wire.DecodeBatch(frame)
	if err != nil {
		return r, err
	}
	r.batch = b
	if m != nil {
		m.mu.Lock()
		m.names = append(m.names, r.name)
		m.mu.Unlock()
	}
	return r, nil
}

// answer is the member's answer to a batch: bit i says whether key i
// ends with an odd byte, so that an answer shows which request it is for.
func answer(b wire.Batch) []byte {
	t := wire.TypeHasResult
	if b.Type == wire.TypeAddBatch {
		t = wire.TypeAddResult
	}
	bits := make([]byte, wire.BitmapLen(b.Keys.Len()))
	i := 0
	for k := range b.Keys.All() {
		if len(k) > 0 && k[len(k)-1]%2 == 1 {
			bits[i/8] |= 1 << (i % 8)
		}
		i++
	}
	out, err := wire.AppendResult(nil, t, b.ReqID, b.Keys.Len(), bits)
	if err != nil {
		panic(err)
	}
	return out
}

// echo answers every request at once.
func (m *member) echo(_ int, c net.Conn) {
	fr := wire.NewFrameReader(c, 0)
	for {
		r, err := m.readRequest(fr)
		if err != nil {
			return
		}
		if _, err := c.Write(answer(r.batch)); err != nil {
			return
		}
	}
}

// drain reads until the stream ends, answering nothing.
func drain(c net.Conn) {
	fr := wire.NewFrameReader(c, 0)
	for {
		if _, err := fr.Next(); err != nil {
			return
		}
	}
}

// newEcho returns a member answering every request at once.
func newEcho(t testing.TB) *member { return newMember(t, (*member).echo) }

func newForwarder(t testing.TB, cfg Config) *Forwarder {
	f := New(cfg)
	t.Cleanup(func() { f.Close() })
	return f
}

func batch(t testing.TB, typ wire.Type, id uint32, flags uint8, keys ...string) []byte {
	bs := make([][]byte, len(keys))
	for i, k := range keys {
		bs[i] = []byte(k)
	}
	out, err := wire.AppendBatch(nil, typ, id, flags, bs)
	require.NoError(t, err)
	return out
}

func hasBatch(t testing.TB, id uint32, keys ...string) []byte {
	return batch(t, wire.TypeHasBatch, id, 0, keys...)
}

// keysFor returns n keys for request i.
func keysFor(i, n int) []string {
	keys := make([]string, n)
	for j := range keys {
		keys[j] = fmt.Sprintf("%d-%d", i, j*7)
	}
	return keys
}

// checkResult checks that out is the answer to a has batch of keys with
// request id id.
func checkResult(t testing.TB, out []byte, id uint32, keys []string) error {
	res, err := wire.DecodeResult(out)
	if err != nil {
		return err
	}
	if res.Type != wire.TypeHasResult || res.ReqID != id || res.Count != len(keys) {
		return fmt.Errorf("%v of id %d and %d keys, want id %d and %d keys", res.Type, res.ReqID, res.Count, id, len(keys))
	}
	for i, k := range keys {
		if res.Get(i) != (k[len(k)-1]%2 == 1) {
			return fmt.Errorf("key %d (%q) answered %v", i, k, res.Get(i))
		}
	}
	return nil
}

// requireForwardError checks that err is an *Error about addr wrapping
// want, and that its message names the member.
func requireForwardError(t testing.TB, err error, addr netip.AddrPort, op string, want error) *Error {
	t.Helper()
	require.ErrorIs(t, err, want)
	var e *Error
	require.True(t, errors.As(err, &e), "%T is not an *Error", err)
	require.Equal(t, addr, e.Addr)
	require.Equal(t, op, e.Op, "%v", err)
	require.Contains(t, err.Error(), addr.String())
	return e
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
