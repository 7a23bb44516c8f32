package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"

	"github.com/rmbd/rmbd/internal/sockets"
	"github.com/rmbd/rmbd/wire"
)

// serveNull answers requests like a node whose filter holds every key, but
// without a filter: the ceiling a node is measured against. It uses the
// same sockets as a node (SO_REUSEPORT, one reader per socket).
func serveNull(ctx context.Context, addr string, n int, log io.Writer) error {
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	set, err := sockets.Listen(ctx, addr, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "null responder on %v (%d UDP sockets and TCP)\n", set.Addr(), len(set.UDP))
	var wg sync.WaitGroup
	for _, u := range set.UDP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65536)
			out := make([]byte, 0, 65536)
			for {
				m, from, err := u.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if out = nullReply(buf[:m], out[:0]); len(out) > 0 {
					u.WriteToUDPAddrPort(out, from)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := set.TCP.Accept()
			if err != nil {
				return
			}
			go nullConn(c)
		}
	}()
	<-ctx.Done()
	set.Close()
	wg.Wait()
	return nil
}

// nullReply answers a has (classic or batch) with "present" and an add
// batch asking for an ack with "new", without looking anything up.
func nullReply(frame, out []byte) []byte {
	if len(frame) == 0 {
		return out
	}
	switch wire.Type(frame[0]) {
	case wire.TypeHas:
		if key, err := wire.DecodeClassicKey(frame, wire.TypeHas); err == nil {
			out, _ = wire.AppendClassicHasReply(out, key, true)
		}
	case wire.TypeHasBatch, wire.TypeAddBatch:
		b, err := wire.DecodeBatch(frame)
		if err != nil || b.Type == wire.TypeAddBatch && b.Flags&wire.FlagAck == 0 {
			return out
		}
		var bits [wire.MaxBatchKeys / 8]byte
		n := b.Keys.Len()
		for i := range n {
			bits[i/8] |= 1 << (i % 8)
		}
		t := wire.TypeHasResult
		if b.Type == wire.TypeAddBatch {
			t = wire.TypeAddResult
		}
		out, _ = wire.AppendResult(out, t, b.ReqID, n, bits[:wire.BitmapLen(n)])
	}
	return out
}

func nullConn(c net.Conn) {
	defer c.Close()
	fr := wire.NewFrameReader(c, 1<<16)
	bw := bufio.NewWriterSize(c, 1<<16)
	out := make([]byte, 0, 4096)
	for {
		if fr.Buffered() == 0 && bw.Flush() != nil {
			return
		}
		frame, err := fr.Next()
		if err != nil {
			return
		}
		out = nullReply(frame, out[:0])
		bw.Write(out)
	}
}
