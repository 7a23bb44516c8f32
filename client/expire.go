package client

import (
	"context"
	"errors"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// Filters that expire: a named filter may have a deadline, at which every
// member of the cluster drops it (as DropFilter does). Setting one is an
// admin's; asking a reader's.

// ErrNoExpiry reports a node that answers no expire requests: an earlier
// build.
var ErrNoExpiry = errors.New("the node does not know deadlines (an earlier build)")

// Expire makes the filter the client addresses (Filter) expire ttl from
// now by the node's clock (this machine's may differ), everywhere in the
// cluster: at that time every member drops it. A ttl of zero or less drops
// it now. It returns the deadline, by the node's clock.
func (c *Client) Expire(ctx context.Context, ttl time.Duration) (time.Time, error) {
	x, err := c.expire(ctx, "expire", wire.ExpireSetIn, max(ttl.Milliseconds(), 0))
	return deadlineOf(x), err
}

// ExpireAt makes the filter expire at t (see Expire): a time before the
// node's clock drops it now.
func (c *Client) ExpireAt(ctx context.Context, t time.Time) (time.Time, error) {
	x, err := c.expire(ctx, "expire", wire.ExpireSet, max(t.UnixMilli(), 1))
	return deadlineOf(x), err
}

// Persist takes the filter's deadline off: it is kept until dropped.
func (c *Client) Persist(ctx context.Context) error {
	_, err := c.expire(ctx, "persist", wire.ExpireSet, 0)
	return err
}

// Deadline returns when the filter expires (the zero time: never) and
// how long that is from now by the node's clock.
func (c *Client) Deadline(ctx context.Context) (deadline time.Time, ttl time.Duration, err error) {
	x, err := c.expire(ctx, "ttl", wire.ExpireAsk, 0)
	if err != nil || x.Deadline == 0 {
		return time.Time{}, 0, err
	}
	return deadlineOf(x), time.Duration(x.Deadline-x.Now) * time.Millisecond, nil
}

func (c *Client) expire(ctx context.Context, op string, kind uint8, deadline int64) (wire.Expiry, error) {
	p, err := c.Filter("").Ping(ctx)
	switch {
	case err != nil:
		return wire.Expiry{}, c.opErr(op, err)
	case !p.Expires:
		return wire.Expiry{}, c.opErr(op, ErrNoExpiry)
	}
	b, err := c.ask(ctx, op, true, func(dst []byte, id uint32) ([]byte, error) {
		return wire.AppendExpireRequest(dst, wire.ExpireRequest{ReqID: id, Op: kind, Deadline: deadline, Name: []byte(c.FilterName())})
	})
	if err != nil {
		return wire.Expiry{}, c.opErr(op, err)
	}
	x, err := wire.DecodeExpiry(b)
	if err != nil {
		return wire.Expiry{}, c.opErr(op, badReply(err))
	}
	return x, nil
}

func deadlineOf(x wire.Expiry) time.Time {
	if x.Deadline == 0 {
		return time.Time{}
	}
	return time.UnixMilli(x.Deadline)
}
