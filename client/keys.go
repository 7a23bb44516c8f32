package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/wire"
	"golang.org/x/sync/errgroup"
)

// maxFrame is the largest request frame for the transport.
func (c *Client) maxFrame() int {
	if c.o.tcp {
		return 64<<10 - c.namedOverhead()
	}
	return c.o.maxDatagram - c.namedOverhead()
}

// MaxKeyLen is the longest key the client sends with its options:
// 4,096 bytes over TCP, what fits a datagram over UDP, 255 classic.
func (c *Client) MaxKeyLen() int {
	limit := wire.MaxKeyLen
	if c.o.classic {
		limit = wire.MaxClassicKey
	} else if !c.o.tcp {
		limit = min(limit, c.maxFrame()-wire.BatchSize(1, 0))
	}
	return limit
}

// checkKeys refuses keys that cannot travel, before anything is sent.
func (c *Client) checkKeys(keys []string) error {
	if err := c.checkFilter(); err != nil {
		return err
	}
	limit := c.MaxKeyLen()
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

// inWindow runs do(ctx, i) for i in [0, n), at most window at a time. The
// first error cancels the rest and is returned.
func inWindow(ctx context.Context, n, window int, do func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(window)
	for i := 0; i < n && gctx.Err() == nil; i++ {
		g.Go(func() error { return do(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return ctxErr(ctx)
		}
		return err
	}
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	return nil
}

// each sends keys in batch frames of type t, window at a time, and writes
// the answers into out (if not nil).
func (c *Client) each(ctx context.Context, keys []string, t wire.Type, out []bool) error {
	batches := c.batches(keys)
	offsets := make([]int, len(batches))
	for i := 1; i < len(batches); i++ {
		offsets[i] = offsets[i-1] + len(batches[i-1])
	}
	return inWindow(ctx, len(batches), c.o.window, func(ctx context.Context, i int) error {
		res, err := c.batch(ctx, t, batches[i])
		if err != nil {
			return err
		}
		if out != nil {
			for j := range batches[i] {
				out[offsets[i]+j] = res.Get(j)
			}
		}
		return nil
	})
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
	if err == nil {
		frame, err = c.named(frame)
	}
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
	return inWindow(ctx, len(keys), c.o.window, func(ctx context.Context, i int) error {
		frame, _ := wire.AppendClassicHas(nil, bytesOf(keys[i])) // length checked
		b, err := c.t.roundTrip(ctx, &request{frame: frame, match: match{key: keys[i], classic: true}, reply: make(chan reply, 1)})
		if err == nil {
			_, out[i], err = wire.DecodeClassicHasReply(b)
		}
		return err
	})
}
