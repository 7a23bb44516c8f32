package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// Client talks to one rmbd node. It is safe for concurrent use.
type Client struct {
	addr  string
	o     options
	t     transport
	ids   atomic.Uint32
	close sync.Once
}

// request is one frame awaiting its reply.
type request struct {
	frame []byte
	match match
	reply chan reply // buffered: the reader never blocks
}

type reply struct {
	frame []byte // a copy, owned by the receiver
	err   error
}

// match identifies the reply a request waits for: by request id for
// extended frames, by key for classic has.
type match struct {
	id      uint32
	key     string
	classic bool
}

// transport carries frames to the node.
type transport interface {
	// roundTrip sends r and waits for its reply until ctx ends.
	roundTrip(ctx context.Context, r *request) ([]byte, error)
	// send sends a frame that gets no reply.
	send(ctx context.Context, frame []byte) error
	close() error
}

// Dial connects to the node at addr (HOST:PORT). Over UDP nothing is sent
// until the first call; over TCP the connection is made now.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 || o.retry <= 0 || o.window < 1 || o.maxDatagram < 64 || o.maxDatagram > 65507 {
		return nil, &OpError{"dial", addr, errors.New("client: invalid option: timeouts must be positive, window ≥ 1, datagram 64..65507")}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, &OpError{"dial", addr, fmt.Errorf("client: bad address: %w", err)}
	}
	c := &Client{addr: addr, o: o}
	var err error
	if o.tcp {
		c.t, err = dialTCP(ctx, addr)
	} else {
		c.t, err = dialUDP(ctx, addr, o)
	}
	if err != nil {
		return nil, &OpError{"dial", addr, err}
	}
	return c, nil
}

// Close releases the connection and stops the client's goroutines. Calls
// in flight fail with ErrClosed.
func (c *Client) Close() error {
	var err error
	c.close.Do(func() { err = c.t.close() })
	return err
}

// Addr returns the node's address as given to Dial.
func (c *Client) Addr() string { return c.addr }

func (c *Client) opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{op, c.addr, err}
}

// withTimeout applies the client's timeout when ctx has no deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.o.timeout)
}

// ctxErr maps a finished context to the client's errors.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ctx.Err()
}

// bytesOf views s as bytes without copying; the frame encoders only read.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// maxFrame is the largest request frame for the transport.
func (c *Client) maxFrame() int {
	if c.o.tcp {
		return 64 << 10
	}
	return c.o.maxDatagram
}

// checkKeys refuses keys that cannot travel, before anything is sent.
func (c *Client) checkKeys(keys []string) error {
	limit := wire.MaxKeyLen
	if c.o.classic {
		limit = wire.MaxClassicKey
	} else if !c.o.tcp {
		limit = min(limit, c.o.maxDatagram-wire.BatchSize(1, 0))
	}
	for _, k := range keys {
		if len(k) > limit {
			return fmt.Errorf("%w: %d bytes, the limit is %d here", ErrKeyTooLong, len(k), limit)
		}
	}
	return nil
}

// batches splits keys into runs that each fit one frame.
func (c *Client) batches(keys []string) [][]string {
	var out [][]string
	limit := c.maxFrame()
	start, size := 0, wire.BatchSize(0, 0)
	for i, k := range keys {
		grow := wire.KeyOverhead + len(k)
		if i > start && (size+grow > limit || i-start == wire.MaxBatchKeys) {
			out = append(out, keys[start:i])
			start, size = i, wire.BatchSize(0, 0)
		}
		size += grow
	}
	if start < len(keys) {
		out = append(out, keys[start:])
	}
	return out
}

// Add adds keys to the node's filter. Over UDP every batch is
// acknowledged, and resent until it is (classic mode: not acknowledged).
func (c *Client) Add(ctx context.Context, keys ...string) error {
	_, err := c.add(ctx, keys, false)
	return c.opErr("add", err)
}

// AddNew adds keys and reports, for each, whether it set a new bit — i.e.
// whether the node had certainly not seen it. It is a test-and-set: two
// clients adding the same new key concurrently get true exactly once.
// Classic nodes cannot answer it.
func (c *Client) AddNew(ctx context.Context, keys ...string) ([]bool, error) {
	if c.o.classic {
		return nil, c.opErr("add", errors.New("client: classic frames cannot report new keys"))
	}
	res, err := c.add(ctx, keys, true)
	return res, c.opErr("add", err)
}

func (c *Client) add(ctx context.Context, keys []string, wantNew bool) ([]bool, error) {
	if err := c.checkKeys(keys); err != nil {
		return nil, err
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if c.o.classic {
		for _, k := range keys {
			frame, err := wire.AppendClassicAdd(nil, bytesOf(k))
			if err != nil {
				return nil, err
			}
			if err := c.t.send(ctx, frame); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	var out []bool
	if wantNew {
		out = make([]bool, len(keys))
	}
	return out, c.each(ctx, keys, wire.TypeAddBatch, out)
}

// Has asks whether each key may have been added: false means certainly
// not. The answers are in the order of keys.
func (c *Client) Has(ctx context.Context, keys ...string) ([]bool, error) {
	if err := c.checkKeys(keys); err != nil {
		return nil, c.opErr("has", err)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	out := make([]bool, len(keys))
	var err error
	if c.o.classic {
		err = c.hasClassic(ctx, keys, out)
	} else {
		err = c.each(ctx, keys, wire.TypeHasBatch, out)
	}
	if err != nil {
		return nil, c.opErr("has", err)
	}
	return out, nil
}

// each sends keys in batch frames of type t, at most window at a time,
// and writes the answers into out (if not nil).
func (c *Client) each(ctx context.Context, keys []string, t wire.Type, out []bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, c.o.window)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) { once.Do(func() { first = err; cancel() }) }
	offset := 0
	for _, batch := range c.batches(keys) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(batch []string, offset int) {
			defer func() { <-sem; wg.Done() }()
			res, err := c.batch(ctx, t, batch)
			if err != nil {
				fail(err)
				return
			}
			if out != nil {
				for i := range batch {
					out[offset+i] = res.Get(i)
				}
			}
		}(batch, offset)
		offset += len(batch)
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	return nil
}

// batch sends one batch frame and returns the node's result.
func (c *Client) batch(ctx context.Context, t wire.Type, keys []string) (wire.Result, error) {
	id := c.ids.Add(1)
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		raw[i] = bytesOf(k)
	}
	flags := uint8(0)
	if t == wire.TypeAddBatch {
		flags = wire.FlagAck
	}
	frame, err := wire.AppendBatch(nil, t, id, flags, raw)
	if err != nil {
		return wire.Result{}, err
	}
	b, err := c.t.roundTrip(ctx, &request{frame: frame, match: match{id: id}, reply: make(chan reply, 1)})
	if err != nil {
		return wire.Result{}, err
	}
	res, err := wire.DecodeResult(b)
	if err != nil || res.Count != len(keys) {
		return wire.Result{}, badReply(err)
	}
	return res, nil
}

// hasClassic asks one classic has per key, window at a time.
func (c *Client) hasClassic(ctx context.Context, keys []string, out []bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, c.o.window)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for i, k := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			frame, _ := wire.AppendClassicHas(nil, bytesOf(k)) // length checked
			b, err := c.t.roundTrip(ctx, &request{frame: frame, match: match{key: k, classic: true}, reply: make(chan reply, 1)})
			if err == nil {
				_, out[i], err = wire.DecodeClassicHasReply(b)
			}
			if err != nil {
				select {
				case errs <- err:
					cancel()
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	return nil
}

// Peer asks the node to push its rows to hostport (a directed edge), then
// pings it so that an unreachable node is reported.
func (c *Client) Peer(ctx context.Context, hostport string) error {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return c.opErr("peer", err)
	}
	frame, err := wire.AppendClassicPeer(nil, []byte(host), port)
	if err != nil {
		return c.opErr("peer", fmt.Errorf("%w: host name of %d bytes (at most %d)", ErrKeyTooLong, len(host), wire.MaxClassicKey))
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.t.send(ctx, frame); err != nil {
		return c.opErr("peer", err)
	}
	if c.o.classic {
		return nil
	}
	_, err = c.Ping(ctx)
	return c.opErr("peer", err)
}

func splitHostPort(hostport string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("client: bad address %q: %w", hostport, err)
	}
	p, err := net.LookupPort("udp", port)
	if err != nil || p < 1 || p > 65535 || host == "" {
		return "", 0, fmt.Errorf("client: bad address %q: want HOST:PORT with a port 1..65535", hostport)
	}
	return host, uint16(p), nil
}

// Pong is a node's answer to a ping.
type Pong struct {
	RTT         time.Duration
	Name        string
	Addr        string // the node's data address
	Version     int    // protocol version
	Fingerprint filter.Fingerprint
}

// ask sends one extended request built by encode (given its request id)
// and returns the reply. Classic nodes answer none of these.
func (c *Client) ask(ctx context.Context, op string, encode func(dst []byte, id uint32) ([]byte, error)) ([]byte, error) {
	if c.o.classic {
		return nil, fmt.Errorf("client: classic nodes do not answer %s", op)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	id := c.ids.Add(1)
	frame, err := encode(nil, id)
	if err != nil {
		return nil, err
	}
	return c.t.roundTrip(ctx, &request{frame: frame, match: match{id: id}, reply: make(chan reply, 1)})
}

func badReply(err error) error { return fmt.Errorf("%w: %v", ErrProtocol, err) }

// Ping measures the round trip to the node and returns who it is.
func (c *Client) Ping(ctx context.Context) (Pong, error) {
	began := time.Now()
	b, err := c.ask(ctx, "ping", func(dst []byte, id uint32) ([]byte, error) {
		return wire.AppendPing(dst, wire.Ping{Type: wire.TypePing, ReqID: id, Version: wire.ProtocolVersion})
	})
	if err != nil {
		return Pong{}, c.opErr("ping", err)
	}
	rtt := time.Since(began)
	p, err := wire.DecodePing(b)
	if err != nil || p.Type != wire.TypePong {
		return Pong{}, c.opErr("ping", badReply(err))
	}
	return Pong{RTT: rtt, Name: string(p.Name), Addr: string(p.Addr), Version: int(p.Version), Fingerprint: p.FP}, nil
}

// Stat is one of a node's counters.
type Stat struct {
	Name  string
	Value uint64
}

// Stats returns the node's counters, in the order it sends them.
func (c *Client) Stats(ctx context.Context) ([]Stat, error) {
	b, err := c.ask(ctx, "stats", wire.AppendStatsRequest)
	if err != nil {
		return nil, c.opErr("stats", err)
	}
	s, err := wire.DecodeStats(b)
	if err != nil {
		return nil, c.opErr("stats", badReply(err))
	}
	var out []Stat
	for name, v := range s.All() {
		out = append(out, Stat{string(name), v})
	}
	return out, nil
}

// Member is a cluster member as the node sees it.
type Member struct {
	Name       string
	GossipAddr string
	DataAddr   string
	State      string // alive, suspect, dead or left
	// FingerprintMatch reports whether its filter is the node's: members
	// with another filter are never synced with.
	FingerprintMatch bool
	Fingerprint      filter.Fingerprint
}

var memberStates = [...]string{wire.MemberAlive: "alive", wire.MemberSuspect: "suspect", wire.MemberDead: "dead", wire.MemberLeft: "left"}

// Members lists the cluster as the node sees it (empty without membership).
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	b, err := c.ask(ctx, "members", wire.AppendMembersRequest)
	if err != nil {
		return nil, c.opErr("members", err)
	}
	ms, err := wire.DecodeMembers(b)
	if err != nil {
		return nil, c.opErr("members", badReply(err))
	}
	var out []Member
	for m := range ms.All() {
		out = append(out, Member{Name: string(m.Name), GossipAddr: string(m.GossipAddr), DataAddr: string(m.DataAddr),
			State: memberStates[m.State], FingerprintMatch: m.FPMatch, Fingerprint: m.FP})
	}
	return out, nil
}
