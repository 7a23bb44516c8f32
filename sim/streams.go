package sim

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/rmbd/rmbd/internal/memnet"
)

// Streams across a cut. The network's streams are pipes, which no cut
// breaks once dialled: a connection a member opened before it was cut
// off (a forwarder keeps its connections to the members it forwards to)
// would go on carrying requests across a partition that drops every
// datagram and refuses every new stream. A real partition stalls such a
// connection until a timeout breaks it; the simulator breaks it at once,
// as a reset would: at every step, the streams whose link is cut now are
// closed (cluster.step).

// streams are the members' streams open now.
type streams struct {
	mu   sync.Mutex
	open map[*stream]struct{}
}

func newStreams() *streams { return &streams{open: map[*stream]struct{}{}} }

// stream is one dialled stream, between from and to.
type stream struct {
	net.Conn
	from, to netip.AddrPort
	s        *streams
}

// Close closes the stream and forgets it.
func (st *stream) Close() error {
	st.s.mu.Lock()
	delete(st.s.open, st)
	st.s.mu.Unlock()
	return st.Conn.Close()
}

// cut closes the streams whose link linked says is cut, and returns how
// many.
func (s *streams) cut(linked func(a, b netip.AddrPort) bool) int {
	var gone []*stream
	s.mu.Lock()
	for st := range s.open {
		if !linked(st.from, st.to) {
			gone = append(gone, st)
		}
	}
	s.mu.Unlock()
	for _, st := range gone {
		st.Close() // the other end reads EOF
	}
	return len(gone)
}

// transport is a member's endpoint on the network, whose streams the
// cluster breaks when their link is cut.
type transport struct {
	*memnet.Endpoint
	s *streams
}

// Dial opens a stream to addr, and keeps it to break.
func (t transport) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	conn, err := t.Endpoint.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	st := &stream{Conn: conn, from: t.Addr(), to: addr, s: t.s}
	t.s.mu.Lock()
	t.s.open[st] = struct{}{}
	t.s.mu.Unlock()
	return st, nil
}
