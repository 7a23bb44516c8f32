package route

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/rmbd/rmbd/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fake answers forwards by member: a result, CodeNotHere, a refusal, or
// a transport error; it records who was asked.
type fake struct {
	answers map[netip.AddrPort]string // "ok", "nothere", "full", "down"
	mu      sync.Mutex
	asked   []netip.AddrPort
}

func (f *fake) Do(_ context.Context, addr netip.AddrPort, _ string, req, dst []byte) ([]byte, error) {
	f.mu.Lock()
	f.asked = append(f.asked, addr)
	f.mu.Unlock()
	switch f.answers[addr] {
	case "ok":
		b, _ := wire.AppendResult(dst, wire.TypeHasResult, 7, 1, []byte{byte(addr.Port() % 2)})
		return b, nil
	case "nothere":
		return wire.AppendError(dst, wire.ErrorFrame{ReqID: 7, Code: wire.CodeNotHere})
	case "full":
		return wire.AppendError(dst, wire.ErrorFrame{ReqID: 7, Code: wire.CodeRefused, Msg: []byte("full")})
	}
	return dst, errors.New("connection refused")
}

func member(name string, port uint16, self bool) Member {
	return Member{Name: name, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Self: self}
}

var (
	a, b, c, d = member("a", 1, false), member("b", 2, false), member("c", 3, false), member("d", 4, false)
	me         = member("me", 9, true)
)

func plan(owners, quorum int, ms ...Member) Plan {
	return Plan{Filter: "f", Members: ms, Owners: owners, Quorum: quorum, Tries: owners + 2}
}

func localOK(dst []byte) ([]byte, bool) { return append(dst, "local"...), true }
func localNo(dst []byte) ([]byte, bool) { return dst, false }

// A has is served here when this node owns the filter ready, else by the
// first member in rank that holds it: one not holding it, one filling it
// and one unreachable are passed over, and only the unreachable one is
// reported.
func TestHas(t *testing.T) {
	f := &fake{answers: map[netip.AddrPort]string{a.Addr: "nothere", b.Addr: "down", c.Addr: "ok"}}
	out, err := Has(context.Background(), plan(2, 1, a, me), localOK, f, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "local", string(out))
	assert.Empty(t, f.asked, "owned here: nobody asked")

	var unreached []string
	p := plan(2, 1, a, b, c, me)
	p.Unreached = func(m Member) { unreached = append(unreached, m.Name) }
	out, err = Has(context.Background(), p, localNo, f, nil, []byte("x"))
	require.NoError(t, err)
	assert.Equal(t, wire.TypeHasResult, wire.Type(out[1]), "appended to dst")
	assert.Equal(t, []netip.AddrPort{a.Addr, b.Addr, c.Addr}, f.asked)
	assert.Equal(t, []string{"b"}, unreached)

	f = &fake{answers: map[netip.AddrPort]string{a.Addr: "down", b.Addr: "nothere"}}
	_, err = Has(context.Background(), plan(2, 1, a, b), localNo, f, nil, nil)
	require.ErrorIs(t, err, ErrUnanswered)
	assert.ErrorContains(t, err, "a (127.0.0.1:1): connection refused")
	assert.ErrorIs(t, err, ErrNotHere)
}

// An add waits for the quorum: here first when this node owns it, then
// the other owners, an unreachable one replaced by the next in rank; short
// of the quorum it fails naming each; a refusal is kept to relay.
func TestAdd(t *testing.T) {
	f := &fake{answers: map[netip.AddrPort]string{a.Addr: "ok", b.Addr: "ok"}}
	out, err := Add(context.Background(), plan(2, 2, a, me, b), localOK, f, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "local", string(out), "this node's answer")
	assert.Equal(t, []netip.AddrPort{a.Addr}, f.asked, "one more owner")

	f = &fake{answers: map[netip.AddrPort]string{a.Addr: "down", b.Addr: "ok", c.Addr: "ok"}}
	out, err = Add(context.Background(), plan(2, 2, a, b, c, d), localNo, f, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, wire.TypeHasResult, wire.Type(out[0]))
	assert.ElementsMatch(t, []netip.AddrPort{a.Addr, b.Addr, c.Addr}, f.asked, "c replaces a, b asked at once")

	f = &fake{answers: map[netip.AddrPort]string{a.Addr: "down", b.Addr: "ok"}}
	p := plan(2, 2, a, b)
	_, err = Add(context.Background(), p, localNo, f, nil, nil)
	require.ErrorIs(t, err, ErrUnanswered)
	assert.ErrorContains(t, err, "(1 more needed)")

	f = &fake{answers: map[netip.AddrPort]string{a.Addr: "full", b.Addr: "full"}}
	_, err = Add(context.Background(), plan(2, 1, a, b), localNo, f, nil, nil)
	var no *Refusal
	require.ErrorAs(t, err, &no)
	assert.Equal(t, "full", no.Msg)

	f = &fake{answers: map[netip.AddrPort]string{a.Addr: "ok"}}
	out, err = Add(context.Background(), plan(2, 1, a, me), localOK, f, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "local", string(out))
	assert.Empty(t, f.asked, "a quorum of one: this owner alone")
}
