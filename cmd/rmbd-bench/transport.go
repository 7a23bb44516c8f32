package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// errLost is a UDP request whose reply did not come in time.
var errLost = errors.New("lost")

// filterName, if set (--filter), addresses every batch to that named
// filter.
var filterName string

// encode appends the request for keys: a classic has for one key in
// classic mode, else an add or has batch, wrapped for filterName if set.
func encode(dst []byte, classic bool, o op, id uint32, keys [][]byte) ([]byte, error) {
	if classic && o == opHas && len(keys) == 1 {
		return wire.AppendClassicHas(dst, keys[0])
	}
	start := len(dst)
	if filterName != "" { // a named frame's head; its length is set below
		dst = append(dst, byte(wire.TypeNamed), 0, 0, 0, 0, byte(len(filterName)))
		dst = append(dst, filterName...)
	}
	var err error
	if o == opAdd {
		dst, err = wire.AppendBatch(dst, wire.TypeAddBatch, id, wire.FlagAck, keys)
	} else {
		dst, err = wire.AppendBatch(dst, wire.TypeHasBatch, id, 0, keys)
	}
	if err == nil && filterName != "" {
		binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-wire.HeaderSize))
	}
	return dst, err
}

// check decodes a reply and counts wrong answers: a has that said false.
// It reports ok=false for a reply to another request (a late one).
func check(reply []byte, classic bool, o op, id uint32, keys [][]byte) (wrong int, ok bool, err error) {
	if classic && o == opHas && len(keys) == 1 {
		k, present, err := wire.DecodeClassicHasReply(reply)
		if err != nil {
			return 0, false, err
		}
		if string(k) != string(keys[0]) {
			return 0, false, nil
		}
		if !present {
			return 1, true, nil
		}
		return 0, true, nil
	}
	if len(reply) > 0 && wire.Type(reply[0]) == wire.TypeError {
		e, err := wire.DecodeError(reply)
		if err == nil {
			return 0, false, fmt.Errorf("node answered error %d: %s", e.Code, e.Msg)
		}
	}
	r, err := wire.DecodeResult(reply)
	if err != nil {
		return 0, false, fmt.Errorf("bad reply: %w", err)
	}
	if r.ReqID != id {
		return 0, false, nil
	}
	if r.Count != len(keys) {
		return 0, false, fmt.Errorf("reply answers %d keys, asked %d", r.Count, len(keys))
	}
	if o == opHas {
		for i := range r.Count {
			if !r.Get(i) {
				wrong++
			}
		}
	}
	return wrong, true, nil
}

// udpWorker is a connected UDP socket with one request in flight.
type udpWorker struct {
	c       *net.UDPConn
	classic bool
	timeout time.Duration
	id      uint32
	out     []byte
	in      []byte
}

func dialUDP(c config, id int) (*udpWorker, error) {
	conn, err := net.Dial("udp", c.addr)
	if err != nil {
		return nil, err
	}
	return &udpWorker{c: conn.(*net.UDPConn), classic: c.classic, timeout: c.timeout,
		id: uint32(id) << 24, out: make([]byte, 0, 65536), in: make([]byte, 65536)}, nil
}

func (w *udpWorker) do(o op, keys [][]byte) (int, error) {
	w.id++
	var err error
	if w.out, err = encode(w.out[:0], w.classic, o, w.id, keys); err != nil {
		return 0, err
	}
	if _, err := w.c.Write(w.out); err != nil {
		return 0, err
	}
	w.c.SetReadDeadline(time.Now().Add(w.timeout))
	for {
		n, err := w.c.Read(w.in)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, errLost
			}
			return 0, fmt.Errorf("reading reply: %w (is a node listening on %v?)", err, w.c.RemoteAddr())
		}
		wrong, ok, err := check(w.in[:n], w.classic, o, w.id, keys)
		if err != nil {
			return 0, err
		}
		if ok {
			return wrong, nil
		}
		// a late reply to an earlier, timed-out request: keep waiting
	}
}

func (w *udpWorker) close() { w.c.Close() }

// tcpWorker is a TCP connection; run pipelines, do sends one at a time.
type tcpWorker struct {
	c        net.Conn
	fr       *wire.FrameReader
	bw       *bufio.Writer
	classic  bool
	pipeline int
	id       uint32
	out      []byte
}

func dialTCP(c config, id int) (*tcpWorker, error) {
	conn, err := net.Dial("tcp", c.addr)
	if err != nil {
		return nil, err
	}
	return &tcpWorker{c: conn, fr: wire.NewFrameReader(conn, 1<<16), bw: bufio.NewWriterSize(conn, 1<<16),
		classic: c.classic, pipeline: c.pipeline, id: uint32(id) << 24}, nil
}

// readReply reads one reply for request kind o; it is valid until the
// next read.
func (w *tcpWorker) readReply(o op, keys int) ([]byte, error) {
	if w.classic && o == opHas && keys == 1 {
		return w.fr.Fixed(wire.ClassicHasReplySize)
	}
	return w.fr.Next()
}

func (w *tcpWorker) do(o op, keys [][]byte) (int, error) {
	w.id++
	var err error
	if w.out, err = encode(w.out[:0], w.classic, o, w.id, keys); err != nil {
		return 0, err
	}
	if _, err := w.bw.Write(w.out); err != nil {
		return 0, err
	}
	if err := w.bw.Flush(); err != nil {
		return 0, err
	}
	w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := w.readReply(o, len(keys))
	if err != nil {
		return 0, err
	}
	wrong, ok, err := check(reply, w.classic, o, w.id, keys)
	if err == nil && !ok {
		err = errors.New("reply out of order")
	}
	return wrong, err
}

type sent struct {
	t    time.Time
	o    op
	id   uint32
	keys [][]byte
}

// run keeps w.pipeline requests in flight until ctx ends, then drains.
func (w *tcpWorker) run(ctx context.Context, pick func(int) (op, [][]byte), s *stats) error {
	inflight := make(chan sent, w.pipeline)
	werr := make(chan error, 1)
	go func() {
		defer close(inflight)
		for i := 0; ctx.Err() == nil; i++ {
			o, keys := pick(i)
			w.id++
			var err error
			if w.out, err = encode(w.out[:0], w.classic, o, w.id, keys); err != nil {
				werr <- err
				return
			}
			rec := sent{time.Now(), o, w.id, keys}
			select {
			case inflight <- rec:
			default:
				if err := w.bw.Flush(); err != nil { // pipeline full: push what we have
					werr <- err
					return
				}
				inflight <- rec
			}
			if _, err := w.bw.Write(w.out); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.bw.Flush()
	}()
	for rec := range inflight {
		w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, err := w.readReply(rec.o, len(rec.keys))
		if err != nil {
			return fmt.Errorf("reading reply: %w", err)
		}
		wrong, ok, err := check(reply, w.classic, rec.o, rec.id, rec.keys)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("reply out of order")
		}
		s.hist.RecordValue(time.Since(rec.t).Microseconds())
		s.requests++
		s.keys += int64(len(rec.keys))
		s.wrong += int64(wrong)
	}
	return <-werr
}

func (w *tcpWorker) close() { w.c.Close() }
