package forward

import (
	"bytes"
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

// TestReplies: what a member sends back, good and bad. A frame that
// breaks the stream fails the forward and the connection (the next
// forward dials again); one that is framed but wrong fails its forward
// alone.
func TestReplies(t *testing.T) {
	keys := []string{"a", "b", "c"}
	okAnswer := func(r memberReq) []byte { return answer(r.batch) }
	cases := []struct {
		name    string
		reply   func(r memberReq) []byte
		want    error // nil: the forward gets its answer
		broken  bool  // the connection is closed
		dropped uint64
	}{
		{name: "answer", reply: okAnswer},
		{name: "named answer", reply: func(r memberReq) []byte {
			out, _ := wire.AppendNamed(nil, r.name, answer(r.batch))
			return out
		}},
		{name: "unknown id first", dropped: 1, reply: func(r memberReq) []byte {
			b := r.batch
			b.ReqID += 1000
			return append(answer(b), answer(r.batch)...)
		}},
		{name: "not an answer first", dropped: 2, reply: func(r memberReq) []byte {
			ack, _ := wire.AppendRowAck(nil, wire.RowAck{})
			classic := make([]byte, wire.ClassicAckSize)
			classic[0] = byte(wire.TypeAck)
			return append(append(ack, classic...), answer(r.batch)...)
		}},
		{name: "unknown type", broken: true, want: ErrBadReply, reply: func(memberReq) []byte {
			return bytes.Repeat([]byte{0xff}, 64)
		}},
		{name: "too short", broken: true, want: ErrBadReply, reply: func(memberReq) []byte {
			return []byte{byte(wire.TypeHasResult), 0, 0, 0, 2, 0, 0}
		}},
		{name: "length over limit", broken: true, want: ErrBadReply, reply: func(memberReq) []byte {
			return []byte{byte(wire.TypeHasResult), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}
		}},
		{name: "cut short", broken: true, want: ErrConnClosed, reply: func(r memberReq) []byte {
			a := answer(r.batch)
			return a[:len(a)-1] // and the member hangs up
		}},
		{name: "sealed, no key", broken: true, want: ErrBadReply, reply: func(r memberReq) []byte {
			return toySeal(nil, answer(r.batch), netip.AddrPort{})
		}},
		{name: "named, wrapping nothing", broken: true, want: ErrBadReply, reply: func(memberReq) []byte {
			return []byte{byte(wire.TypeNamed), 0, 0, 0, 3, 1, 'x', 0xff}
		}},
		{name: "wrong answer type", want: ErrBadReply, reply: func(r memberReq) []byte {
			b := r.batch
			b.Type = wire.TypeAddBatch
			return answer(b)
		}},
		{name: "wrong key count", want: ErrBadReply, reply: func(r memberReq) []byte {
			out, _ := wire.AppendResult(nil, wire.TypeHasResult, r.batch.ReqID, 1, []byte{1})
			return out
		}},
		{name: "result that does not decode", want: ErrBadReply, reply: func(r memberReq) []byte {
			a := answer(r.batch)
			a[len(a)-1] |= 0x80 // a bit past the count
			return a
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMember(t, func(m *member, i int, conn net.Conn) {
				fr := wire.NewFrameReader(conn, 0)
				for n := 0; ; n++ {
					r, err := m.readRequest(fr)
					if err != nil {
						return
					}
					first := i == 0 && n == 0 // the ids are the connection's: 1 on each
					reply := okAnswer
					if first {
						reply = c.reply
					}
					if _, err := conn.Write(reply(r)); err != nil || first && c.name == "cut short" {
						return
					}
				}
			})
			f := newForwarder(t, Config{Timeout: time.Minute})
			out, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 1, keys...), nil)
			if c.want == nil {
				require.NoError(t, err)
				require.NoError(t, checkResult(t, out, 1, keys))
			} else {
				op := "reply"
				if c.broken {
					op = "read"
				}
				requireForwardError(t, err, m.addr, op, c.want)
				require.Empty(t, out)
			}
			// The next forward is served, on a new connection if the
			// first broke.
			out, err = f.Do(ctxT(t), m.addr, "users", hasBatch(t, 2, keys...), nil)
			require.NoError(t, err)
			require.NoError(t, checkResult(t, out, 2, keys))
			wantConns := int32(1)
			if c.broken {
				wantConns = 2
			}
			require.Equal(t, wantConns, m.accepts.Load())
			require.Equal(t, c.dropped, f.Stats().Dropped)
		})
	}
}

// toySeal seals as a cluster key would, without one: the frame is
// wrapped in a sealed frame whose first byte names the port it is for.
func toySeal(dst, frame []byte, to netip.AddrPort) []byte {
	n := 1 + len(frame)
	dst = append(dst, byte(wire.TypeSealed), byte(n>>24), byte(n>>16), byte(n>>8), byte(n), byte(to.Port()))
	return append(dst, frame...)
}

var errNotSealed = errors.New("not sealed for this node")

// toyOpen opens what toySeal sealed for the port self.
func toyOpen(frame []byte, self uint16) ([]byte, error) {
	if len(frame) < wire.HeaderSize+1 || wire.Type(frame[0]) != wire.TypeSealed || frame[wire.HeaderSize] != byte(self) {
		return nil, errNotSealed
	}
	return frame[wire.HeaderSize+1:], nil
}

func TestSealOpen(t *testing.T) {
	const self = 42 // the forwarding node, as the toy seal names it
	serve := func(sealAnswers bool) func(*member, int, net.Conn) {
		return func(m *member, _ int, c net.Conn) {
			fr := wire.NewFrameReader(c, 0)
			for {
				frame, err := fr.Next()
				if err != nil {
					return
				}
				inner, err := toyOpen(frame, m.addr.Port())
				if !assert.NoError(t, err, "the request is sealed for this member") {
					return
				}
				r, err := m.decode(inner)
				if !assert.NoError(t, err) {
					return
				}
				a := answer(r.batch)
				if sealAnswers {
					a = toySeal(nil, a, netip.AddrPortFrom(netip.IPv4Unspecified(), self))
				}
				c.Write(a)
			}
		}
	}
	var mu sync.Mutex
	var sealedFor, openedFrom []netip.AddrPort
	cfg := Config{
		Seal: func(dst, frame []byte, to netip.AddrPort) []byte {
			mu.Lock()
			sealedFor = append(sealedFor, to)
			mu.Unlock()
			return toySeal(dst, frame, to)
		},
		Open: func(frame []byte, from netip.AddrPort) ([]byte, error) {
			mu.Lock()
			openedFrom = append(openedFrom, from)
			mu.Unlock()
			return toyOpen(frame, self)
		},
	}
	m := newMember(t, serve(true))
	f := newForwarder(t, cfg)
	keys := []string{"a", "b"}
	out, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 5, keys...), nil)
	require.NoError(t, err)
	require.NoError(t, checkResult(t, out, 5, keys), "the answer is relayed opened")
	require.Equal(t, []netip.AddrPort{m.addr}, sealedFor)
	require.Equal(t, []netip.AddrPort{m.addr}, openedFrom)
	require.Equal(t, []string{"users"}, m.seen())

	t.Run("refused", func(t *testing.T) {
		m := newMember(t, serve(false)) // answers in the clear
		f := newForwarder(t, cfg)
		_, err := f.Do(ctxT(t), m.addr, "users", hasBatch(t, 5, keys...), nil)
		requireForwardError(t, err, m.addr, "read", errNotSealed)
		require.ErrorIs(t, err, ErrBadReply)
		require.Contains(t, err.Error(), "did not open")
	})
}
