package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rmbd/rmbd/dump"
	"github.com/rmbd/rmbd/wire"
)

// Dumps and loads: a filter copied out of a node, and into a node, a
// chunk at a time (package dump; docs/FORMAT.md gives the chunks). They
// go over TCP whatever the client's transport: a chunk is larger than a
// datagram.

// Loaded is what loading a chunk did.
type Loaded struct {
	Created bool // the chunk, a header, made the filter
	Rows    int  // rows the chunk carried
	Changed int  // rows that gained bits
}

// Progress is called after each chunk with the bytes of the filter's rows
// gone through and their total (as the dump's header gives it).
type Progress func(done, total uint64)

// ScanDump returns the chunk of the dump of the filter the client
// addresses at iterator it (0: its header) and the iterator of the next;
// after the last chunk the iterator is 0 and there is no chunk.
func (c *Client) ScanDump(ctx context.Context, it uint64) (next uint64, chunk []byte, err error) {
	s, err := c.stream(ctx)
	if err != nil {
		return 0, nil, c.opErr("dump", err)
	}
	defer s.close()
	return c.scan(ctx, s, it)
}

// LoadChunk loads a chunk ScanDump gave into the filter the client
// addresses, which the dump's header chunk makes if it does not exist.
func (c *Client) LoadChunk(ctx context.Context, chunk []byte) (Loaded, error) {
	s, err := c.stream(ctx)
	if err != nil {
		return Loaded{}, c.opErr("load", err)
	}
	defer s.close()
	return c.load(ctx, s, chunk)
}

// Dump writes the dump of the filter the client addresses to w: its
// chunks one after the other, what Load reads. progress, if not nil,
// hears how far it is.
func (c *Client) Dump(ctx context.Context, w io.Writer, progress Progress) error {
	s, err := c.stream(ctx)
	if err != nil {
		return c.opErr("dump", err)
	}
	defer s.close()
	var total, done uint64
	for it := uint64(0); ; {
		next, chunk, err := c.scan(ctx, s, it)
		if err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		if _, err := w.Write(chunk); err != nil {
			return c.opErr("dump", err)
		}
		total, done = advance(chunk, total, done)
		if progress != nil {
			progress(done, total)
		}
		it = next
	}
}

// Load loads a dump Dump wrote, read from r, into the filter the client
// addresses; the dump's header makes it if it does not exist. A chunk
// that is damaged or cut short stops it with an error, the chunks before
// it loaded (loading them again is harmless).
func (c *Client) Load(ctx context.Context, r io.Reader, progress Progress) error {
	s, err := c.stream(ctx)
	if err != nil {
		return c.opErr("load", err)
	}
	defer s.close()
	var total, done uint64
	head := make([]byte, dump.HeadSize)
	for n := 0; ; n++ {
		if _, err := io.ReadFull(r, head); err != nil {
			if errors.Is(err, io.EOF) && n > 0 {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return c.opErr("load", errors.New("an empty dump"))
			}
			return c.opErr("load", fmt.Errorf("chunk %d: %w", n, err))
		}
		size, err := dump.Length(head)
		if err != nil {
			return c.opErr("load", fmt.Errorf("chunk %d: %w", n, err))
		}
		chunk := append(make([]byte, 0, size), head...)
		chunk = chunk[:size]
		if _, err := io.ReadFull(r, chunk[dump.HeadSize:]); err != nil {
			return c.opErr("load", fmt.Errorf("chunk %d: cut short: %w", n, err))
		}
		if _, _, err := dump.Kind(chunk); err != nil {
			return c.opErr("load", fmt.Errorf("chunk %d: %w", n, err))
		}
		if _, err := c.load(ctx, s, chunk); err != nil {
			return err
		}
		total, done = advance(chunk, total, done)
		if progress != nil {
			progress(done, total)
		}
	}
}

// advance counts a chunk's rows' bytes: a header sets the total, a rows
// chunk adds the rows it went through.
func advance(chunk []byte, total, done uint64) (uint64, uint64) {
	if h, err := dump.DecodeHeader(chunk); err == nil {
		return h.Bytes, done
	}
	if r, err := dump.DecodeRows(chunk); err == nil {
		done += uint64(r.End-r.First) * uint64(r.FP.RowBits/8)
	}
	return total, min(done, total)
}

func (c *Client) scan(ctx context.Context, s *tcpTransport, it uint64) (uint64, []byte, error) {
	if err := c.checkFilter(); err != nil {
		return 0, nil, err
	}
	b, err := c.askOn(ctx, s, func(dst []byte, id uint32) ([]byte, error) {
		return wire.AppendDumpRequest(dst, wire.DumpRequest{ReqID: id, Name: []byte(c.filter), Iterator: it})
	})
	if err != nil {
		return 0, nil, c.opErr("dump", err)
	}
	d, err := wire.DecodeDumpChunk(b)
	if err != nil {
		return 0, nil, c.opErr("dump", badReply(err))
	}
	return d.Iterator, d.Chunk, nil
}

func (c *Client) load(ctx context.Context, s *tcpTransport, chunk []byte) (Loaded, error) {
	if err := c.checkFilter(); err != nil {
		return Loaded{}, err
	}
	b, err := c.askOn(ctx, s, func(dst []byte, id uint32) ([]byte, error) {
		return wire.AppendLoadRequest(dst, wire.LoadRequest{ReqID: id, Name: []byte(c.filter), Chunk: chunk})
	})
	if err != nil {
		return Loaded{}, c.opErr("load", err)
	}
	l, err := wire.DecodeLoaded(b)
	if err != nil {
		return Loaded{}, c.opErr("load", badReply(err))
	}
	return Loaded{Created: l.Flags&wire.LoadedCreated != 0, Rows: int(l.Rows), Changed: int(l.Changed)}, nil
}

// stream is a TCP connection to the node for a dump or a load: its own,
// closed when done (the client's transport may be UDP, and a dump's
// large replies would hold a shared connection up).
func (c *Client) stream(ctx context.Context) (*tcpTransport, error) {
	if c.o.classic {
		return nil, errors.New("client: classic nodes hold no dumps")
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return dialTCP(ctx, c.addr)
}

// askOn sends a request over s, sealed if the client has a cluster key,
// and returns the answer (ask, over a stream of its own).
func (c *Client) askOn(ctx context.Context, s *tcpTransport, encode func(dst []byte, id uint32) ([]byte, error)) ([]byte, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	frame, err := encode(nil, c.ids.Add(1))
	if err != nil {
		return nil, err
	}
	id, _ := wire.RequestID(frame)
	seal := c.sealer != nil
	for hinted := false; ; hinted = true {
		b, err := s.roundTrip(ctx, c.request(frame, id, false, seal))
		if err == nil {
			b, err = c.open(b, seal)
		}
		var se *ServerError
		if seal && !hinted && errors.As(err, &se) && se.Code == wire.CodeReceiver {
			continue // sealed for the node before it was known: its hint named it
		}
		return b, err
	}
}
