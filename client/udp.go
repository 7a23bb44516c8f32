package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// maxRetryPause caps the pause between resends of a UDP request.
const maxRetryPause = 250 * time.Millisecond

// udpTransport is a connected UDP socket and one reader goroutine that
// hands each reply to the request waiting for it.
type udpTransport struct {
	conn    *net.UDPConn
	o       options
	mu      sync.Mutex
	pending map[match][]*request
	closed  chan struct{}
	done    chan struct{} // the reader has returned
}

func dialUDP(ctx context.Context, addr string, o options) (*udpTransport, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	t := &udpTransport{conn: conn.(*net.UDPConn), o: o, pending: map[match][]*request{},
		closed: make(chan struct{}), done: make(chan struct{})}
	go t.read()
	return t, nil
}

func (t *udpTransport) read() {
	defer close(t.done)
	buf := make([]byte, 65536)
	for {
		n, err := t.conn.Read(buf)
		if err != nil {
			select {
			case <-t.closed:
				t.failAll(ErrClosed)
				return
			default:
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				t.failAll(ErrUnreachable) // the node's host said nobody listens
			}
			continue
		}
		m, rerr, ok := identify(buf[:n], t.o.classic)
		if !ok {
			continue // junk or a reply nobody waits for
		}
		t.mu.Lock()
		reqs := t.pending[m]
		delete(t.pending, m)
		t.mu.Unlock()
		for _, r := range reqs {
			r.reply <- reply{frame: append([]byte(nil), buf[:n]...), err: rerr}
		}
	}
}

func (t *udpTransport) failAll(err error) {
	t.mu.Lock()
	all := t.pending
	t.pending = map[match][]*request{}
	t.mu.Unlock()
	for _, reqs := range all {
		for _, r := range reqs {
			r.reply <- reply{err: err}
		}
	}
}

func (t *udpTransport) forget(r *request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	reqs := t.pending[r.match]
	for i, x := range reqs {
		if x == r {
			reqs = append(reqs[:i], reqs[i+1:]...)
			break
		}
	}
	if len(reqs) == 0 {
		delete(t.pending, r.match)
	} else {
		t.pending[r.match] = reqs
	}
}

func (t *udpTransport) write(frame []byte) error {
	if _, err := t.conn.Write(frame); err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return ErrUnreachable
		}
		select {
		case <-t.closed:
			return ErrClosed
		default:
		}
		return err
	}
	return nil
}

// roundTrip sends r and sends it again, with doubling pauses, until its
// reply comes or ctx ends. Resending is safe: every request is idempotent.
func (t *udpTransport) roundTrip(ctx context.Context, r *request) ([]byte, error) {
	select {
	case <-t.closed:
		return nil, ErrClosed
	default:
	}
	t.mu.Lock()
	t.pending[r.match] = append(t.pending[r.match], r)
	t.mu.Unlock()
	defer t.forget(r)
	if err := t.write(r.frame); err != nil {
		return nil, err
	}
	pause := t.o.retry
	timer := time.NewTimer(jitter(pause))
	defer timer.Stop()
	for {
		select {
		case rep := <-r.reply:
			return rep.frame, rep.err
		case <-timer.C:
			if err := t.write(r.frame); err != nil {
				return nil, err
			}
			pause = min(2*pause, maxRetryPause)
			timer.Reset(jitter(pause))
		case <-ctx.Done():
			return nil, ctxErr(ctx)
		case <-t.closed:
			return nil, ErrClosed
		}
	}
}

// jitter spreads resends over [d/2, 3d/2) so that requests lost together
// are not resent in lockstep.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

func (t *udpTransport) send(ctx context.Context, frame []byte) error {
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	return t.write(frame)
}

func (t *udpTransport) close() error {
	close(t.closed)
	err := t.conn.Close()
	<-t.done
	return err
}

// identify tells which request a reply answers. Error frames answer with
// a *ServerError.
func identify(b []byte, classic bool) (match, error, bool) {
	if classic {
		key, _, err := wire.DecodeClassicHasReply(b)
		return match{key: string(key), classic: true}, nil, err == nil
	}
	if len(b) == 0 {
		return match{}, nil, false
	}
	switch wire.Type(b[0]) {
	case wire.TypeHasResult, wire.TypeAddResult:
		r, err := wire.DecodeResult(b)
		return match{id: r.ReqID}, nil, err == nil
	case wire.TypePong:
		p, err := wire.DecodePing(b)
		return match{id: p.ReqID}, nil, err == nil
	case wire.TypeStats:
		s, err := wire.DecodeStats(b)
		return match{id: s.ReqID}, nil, err == nil
	case wire.TypeMembers:
		m, err := wire.DecodeMembers(b)
		return match{id: m.ReqID}, nil, err == nil
	case wire.TypeError:
		e, err := wire.DecodeError(b)
		return match{id: e.ReqID}, &ServerError{Code: e.Code, Msg: string(e.Msg)}, err == nil
	case wire.TypePeerResult:
		p, err := wire.DecodePeerResult(b)
		return match{id: p.ReqID}, nil, err == nil
	case wire.TypeFilters:
		f, err := wire.DecodeFilters(b)
		return match{id: f.ReqID}, nil, err == nil
	case wire.TypeDumpChunk:
		d, err := wire.DecodeDumpChunk(b)
		return match{id: d.ReqID}, nil, err == nil
	case wire.TypeLoaded:
		l, err := wire.DecodeLoaded(b)
		return match{id: l.ReqID}, nil, err == nil
	case wire.TypePeers:
		p, err := wire.DecodePeers(b)
		return match{id: p.ReqID}, nil, err == nil
	case wire.TypeExpiry:
		x, err := wire.DecodeExpiry(b)
		return match{id: x.ReqID}, nil, err == nil
	case wire.TypeSealed:
		// Matched by the inner frame's request id; the caller checks the
		// tag (Client.open).
		s, err := wire.DecodeSealed(b)
		if err != nil {
			return match{}, nil, false
		}
		m, _, ok := identify(s.Inner, classic)
		return m, nil, ok
	}
	return match{}, fmt.Errorf("%w: frame type %v", ErrProtocol, wire.Type(b[0])), false
}
