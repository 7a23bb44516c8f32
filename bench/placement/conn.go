package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// conn is one TCP connection to a member, spoken to in raw frames: one
// request written, one reply read, at a time. The client package is not
// used, so that this bench measures the wire as it is.
type conn struct {
	addr string
	c    net.Conn
	fr   *wire.FrameReader
	id   uint32
	out  []byte
	keys [][]byte
}

// dialConn connects to the member at addr.
func dialConn(ctx context.Context, addr string) (*conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, c: c, fr: wire.NewFrameReader(c, 64<<10)}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// refusal is an error frame a member answered.
type refusal struct {
	code uint16
	msg  string
}

// Error gives the refusal on one line: a member's message may hold several.
func (r *refusal) Error() string {
	return fmt.Sprintf("%s: %s", wire.CodeName(r.code), strings.ReplaceAll(r.msg, "\n", " | "))
}

// errBroken marks a connection that failed mid-request: it is to be
// dialed again.
var errBroken = errors.New("connection broken")

// do writes the request frame c.out and returns the reply frame, valid
// until the next call; an error frame comes back as a *refusal.
func (c *conn) do(ctx context.Context) ([]byte, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(10 * time.Second)
	}
	c.c.SetDeadline(dl)
	if _, err := c.c.Write(c.out); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.addr, errBroken, err)
	}
	b, err := c.fr.Next()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.addr, errBroken, err)
	}
	// Every answer this bench asks for carries the request's id first.
	if len(b) < wire.HeaderSize+4 || binary.BigEndian.Uint32(b[wire.HeaderSize:]) != c.id {
		return nil, fmt.Errorf("%s: %w: an answer of type %#x not to request %d", c.addr, errBroken, b[0], c.id)
	}
	if wire.Type(b[0]) == wire.TypeError {
		e, err := wire.DecodeError(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", c.addr, errBroken, err)
		}
		return nil, &refusal{e.Code, string(e.Msg)}
	}
	return b, nil
}

func (c *conn) next() uint32 { c.id++; return c.id }

// batch adds (acknowledged) or asks keys of the filter name and returns
// the answer for each.
func (c *conn) batch(ctx context.Context, t wire.Type, name string, keys []string) ([]bool, error) {
	c.keys = c.keys[:0]
	for _, k := range keys {
		c.keys = append(c.keys, []byte(k))
	}
	flags := uint8(0)
	if t == wire.TypeAddBatch {
		flags = wire.FlagAck
	}
	inner, err := wire.AppendBatch(nil, t, c.next(), flags, c.keys)
	if err != nil {
		return nil, err
	}
	if c.out, err = wire.AppendNamed(c.out[:0], name, inner); err != nil {
		return nil, err
	}
	b, err := c.do(ctx)
	if err != nil {
		return nil, err
	}
	want := wire.TypeHasResult
	if t == wire.TypeAddBatch {
		want = wire.TypeAddResult
	}
	if wire.Type(b[0]) != want {
		return nil, fmt.Errorf("%s: %w: answer of type %#x to a batch", c.addr, errBroken, b[0])
	}
	r, err := wire.DecodeResult(b)
	if err != nil || r.Count != len(keys) {
		return nil, fmt.Errorf("%s: %w: result of %d keys for %d: %v", c.addr, errBroken, r.Count, len(keys), err)
	}
	out := make([]bool, len(keys))
	for i := range out {
		out[i] = r.Get(i)
	}
	return out, nil
}

func (c *conn) add(ctx context.Context, name string, keys []string) error {
	_, err := c.batch(ctx, wire.TypeAddBatch, name, keys)
	return err
}

func (c *conn) has(ctx context.Context, name string, keys []string) ([]bool, error) {
	return c.batch(ctx, wire.TypeHasBatch, name, keys)
}

// desc is what a member says of a filter: the fields this bench reads.
type desc struct {
	name   string
	bytes  uint64
	owners []string
	here   uint8
}

// filters makes a filter request and decodes the filters answering it.
func (c *conn) filters(ctx context.Context, q wire.FilterRequest) ([]desc, bool, error) {
	q.ReqID = c.next()
	var err error
	if c.out, err = wire.AppendFilterRequest(c.out[:0], q); err != nil {
		return nil, false, err
	}
	b, err := c.do(ctx)
	if err != nil {
		return nil, false, err
	}
	fs, err := wire.DecodeFilters(b)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w: %w", c.addr, errBroken, err)
	}
	var out []desc
	for d := range fs.All() {
		e := desc{name: string(d.Name), bytes: d.Bytes, here: d.Here}
		for _, o := range d.Owners {
			e.owners = append(e.owners, string(o))
		}
		out = append(out, e)
	}
	return out, fs.Flags&wire.FiltersMore != 0, nil
}

// create creates the filter name, NONSCALING, on replicas members.
func (c *conn) create(ctx context.Context, name string, capacity uint64, fp float64, replicas uint8) error {
	_, _, err := c.filters(ctx, wire.FilterRequest{Op: wire.FilterOpCreate, Name: []byte(name), Layout: filter.Blocked,
		Capacity: capacity, FPRate: fp, Growth: 1, Replicas: replicas})
	return err
}

// info describes the filter name as this member holds it.
func (c *conn) info(ctx context.Context, name string) (desc, error) {
	ds, _, err := c.filters(ctx, wire.FilterRequest{Op: wire.FilterOpInfo, Name: []byte(name),
		Detail: wire.FilterDetailStages | wire.FilterDetailPlacement})
	if err == nil && len(ds) != 1 {
		err = fmt.Errorf("%s: %w: info of %s answered with %d filters", c.addr, errBroken, name, len(ds))
	}
	if err != nil {
		return desc{}, err
	}
	return ds[0], nil
}

// list describes every filter this member knows, a page at a time.
func (c *conn) list(ctx context.Context) ([]desc, error) {
	var all []desc
	after := ""
	for {
		ds, more, err := c.filters(ctx, wire.FilterRequest{Op: wire.FilterOpList, Name: []byte(after),
			Detail: wire.FilterDetailStages | wire.FilterDetailPlacement})
		if err != nil {
			return nil, err
		}
		all = append(all, ds...)
		if !more || len(ds) == 0 {
			return all, nil
		}
		after = ds[len(ds)-1].name
	}
}

// stats returns the member's counters by name.
func (c *conn) stats(ctx context.Context) (map[string]uint64, error) {
	var err error
	if c.out, err = wire.AppendStatsRequest(c.out[:0], c.next()); err != nil {
		return nil, err
	}
	b, err := c.do(ctx)
	if err != nil {
		return nil, err
	}
	s, err := wire.DecodeStats(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.addr, errBroken, err)
	}
	out := map[string]uint64{}
	for name, v := range s.All() {
		out[string(name)] = v
	}
	return out, nil
}

// alive returns the names of the members this member sees alive, itself
// included.
func (c *conn) alive(ctx context.Context) ([]string, error) {
	var err error
	if c.out, err = wire.AppendMembersRequest(c.out[:0], c.next()); err != nil {
		return nil, err
	}
	b, err := c.do(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := wire.DecodeMembers(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.addr, errBroken, err)
	}
	var out []string
	for m := range ms.All() {
		if m.State == wire.MemberAlive {
			out = append(out, string(m.Name))
		}
	}
	return out, nil
}
