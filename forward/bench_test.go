package forward

import (
	"bufio"
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/rmbd/rmbd/wire"
)

// serveFast answers every request as a node does: pipelined, flushing
// once it has read everything sent so far.
func serveFast(_ *member, _ int, c net.Conn) {
	fr := wire.NewFrameReader(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	var out, bits []byte
	for {
		frame, err := fr.Next()
		if err != nil {
			return
		}
		named, err := wire.DecodeNamed(frame)
		if err != nil {
			return
		}
		batch, err := wire.DecodeBatch(named.Inner)
		if err != nil {
			return
		}
		bits = append(bits[:0], make([]byte, wire.BitmapLen(batch.Keys.Len()))...)
		out, _ = wire.AppendResult(out[:0], wire.TypeHasResult, batch.ReqID, batch.Keys.Len(), bits)
		bw.Write(out)
		if fr.Buffered() == 0 && bw.Flush() != nil {
			return
		}
	}
}

// BenchmarkDo forwards has batches of 8 keys over one loopback TCP
// connection: parallel callers sharing it, and one caller alone, beside
// the same round trip made directly on a connection of its own (what a
// client of the member would see), with their 99th percentiles.
func BenchmarkDo(b *testing.B) {
	m := newMember(b, serveFast)
	req := hasBatch(b, 1, keysFor(0, 8)...)
	ctx := context.Background()

	b.Run("parallel", func(b *testing.B) {
		f := New(Config{MaxInFlight: 1 << 16})
		defer f.Close()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			dst := make([]byte, 0, 256)
			for pb.Next() {
				var err error
				if dst, err = f.Do(ctx, m.addr, "users", req, dst[:0]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("serial", func(b *testing.B) {
		f := New(Config{})
		defer f.Close()
		dst := make([]byte, 0, 256)
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			var err error
			if dst, err = f.Do(ctx, m.addr, "users", req, dst[:0]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportP99(b, lat)
	})
	b.Run("direct", func(b *testing.B) { // the baseline: no forwarder
		c, err := net.Dial("tcp", m.addr.String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		fr := wire.NewFrameReader(c, 0)
		named, _ := wire.AppendNamed(nil, "users", req)
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		for b.Loop() {
			start := time.Now()
			if _, err := c.Write(named); err != nil {
				b.Fatal(err)
			}
			if _, err := fr.Next(); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportP99(b, lat)
	})
}

func reportP99(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
