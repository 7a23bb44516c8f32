package node_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/node"
	"github.com/rmbd/rmbd/wire"
)

// BenchmarkRowSyncByWire serves 1 MiB of rows as row sync frames come
// off the wire — decoded, merged, acknowledged — with and without a
// cluster key (with one, each frame is opened first and each ack
// sealed). Frames are datagrams (20 rows, the most a sealed one holds)
// or as large as a TCP frame may be, on the in-memory network (which
// copies each datagram once); the rows either bring a new bit each
// ("new") or nothing the filter lacks ("same", a resend). Compare
// key=none with key=sealed in the same run:
//
//	go test -run '^$' -bench RowSyncByWire -count 6 ./node | benchstat -col /key -
func BenchmarkRowSyncByWire(b *testing.B) {
	const rows = 1 << 14 // × 64 B = 1 MiB
	for _, frame := range []struct {
		name string
		rows int
	}{{"datagram", 20}, {"1MiB", (wire.MaxFrame - wire.SealedOverhead - 64) / 64}} {
		for _, rowsNew := range []bool{true, false} {
			for _, withKey := range []bool{false, true} {
				name := fmt.Sprintf("frame=%s/rows=%s/key=%s", frame.name,
					map[bool]string{true: "new", false: "same"}[rowsNew], map[bool]string{true: "sealed", false: "none"}[withKey])
				b.Run(name, func(b *testing.B) { benchRowSyncs(b, rows, frame.rows, rowsNew, withKey) })
			}
		}
	}
}

func benchRowSyncs(b *testing.B, rows, perFrame int, rowsNew, withKey bool) {
	nw := memnet.New(1)
	ep, err := nw.Endpoint(netip.MustParseAddrPort("10.0.0.1:8000"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.Transport, cfg.ManualTicks = ep, true
	var sealer *auth.Sealer
	if withKey {
		k, _ := auth.Generate()
		cfg.ClusterKeys = []auth.Key{k}
		ring, _ := auth.NewKeyring(cfg.ClusterKeys)
		sealer = auth.NewSealer(ring)
	}
	n, err := node.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Ready()
	b.Cleanup(func() { cancel(); <-done })
	f := n.Filter()
	plain := rowFrames(b, f, rows, perFrame)
	member := netip.MustParseAddrPort("10.0.0.2:8000")
	nw.Handle(member, func(netip.AddrPort, []byte) {}) // the acks
	frames := func() [][]byte {                        // sealed afresh each time: a resend would be a replay
		if sealer == nil {
			return plain
		}
		out := make([][]byte, len(plain))
		for i, p := range plain {
			out[i], _ = sealer.Seal(nil, p, n.SealID(), time.Now())
		}
		return out
	}
	serve := func(fs [][]byte) {
		if perFrame > 1000 { // a frame of a megabyte: over TCP
			c, err := nw.Dial(context.Background(), member, n.Addr())
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for _, fr := range fs {
					c.Write(fr)
				}
			}()
			r := wire.NewFrameReader(c, 4096)
			for range fs { // an ack each
				if _, err := r.Next(); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
			c.Close()
			return
		}
		for _, fr := range fs {
			nw.Send(member, n.Addr(), fr)
		}
		nw.Deliver()
	}
	if !rowsNew {
		serve(frames()) // the filter has them all: what follows is a resend
	}
	zeros := make([]byte, int(f.Rows())*f.RowBytes())
	b.SetBytes(int64(rows * f.RowBytes()))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fs := frames()
		if rowsNew {
			if err := f.LoadRows(f.Fingerprint(), 0, zeros); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		serve(fs)
	}
	if n.Stats().Count(counter.SyncRowsMerged) == 0 {
		b.Fatal("nothing merged")
	}
}

// rowFrames returns rows of f's shape, with one bit each, in row sync
// frames of perFrame rows.
func rowFrames(b *testing.B, f *filter.Filter, rows, perFrame int) [][]byte {
	rb := f.RowBytes()
	data := make([]byte, rows*rb)
	for r := range rows {
		data[r*rb+r%rb] = 1 << (r % 8)
	}
	var frames [][]byte
	for first := 0; first < rows; first += perFrame {
		count := min(perFrame, rows-first)
		fr, err := wire.AppendRowSync(nil, f.Fingerprint(), 1, uint32(first), []wire.RowRun{{First: uint32(first), Rows: data[first*rb : (first+count)*rb]}})
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, fr)
	}
	return frames
}
