package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rmbd/rmbd/auth"
)

// Client talks to one rmbd node. It is safe for concurrent use.
type Client struct {
	addr   string
	o      options
	t      transport
	ids    *atomic.Uint32 // shared with the clients Filter makes
	close  *sync.Once
	sealer *auth.Sealer // nil without WithClusterKeys
	opener *auth.Opener
	nodeID *atomic.Uint64 // the id requests are sealed for: 0 until the node's hint says it
	// stages is what the node describes of filters, as a filter
	// request's detail, plus one: 0 not known yet (a ping says).
	stages *atomic.Int32
	filter string // "" or "default": the node's default filter
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
	c := &Client{addr: addr, o: o, ids: new(atomic.Uint32), close: new(sync.Once), nodeID: new(atomic.Uint64), stages: new(atomic.Int32)}
	if len(o.keys) > 0 {
		r, err := auth.NewKeyring(o.keys)
		if err != nil {
			return nil, &OpError{"dial", addr, err}
		}
		c.sealer = auth.NewSealer(r)
		c.opener = auth.NewOpener(r, c.sealer.Sender())
	}
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
