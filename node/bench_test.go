package node

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rmbd/rmbd/auth"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/internal/memnet"
	"github.com/rmbd/rmbd/wire"
)

// BenchmarkRowSyncByWire serves 1 MiB of rows as row sync frames come
// off the wire — decoded, merged, acked — with and without a cluster key
// (with one, each frame is opened first and each ack sealed). Frames are
// either datagrams (20 rows, the most a sealed one holds) or as large as
// a TCP frame may be; the rows either bring a new bit each ("new") or
// nothing the filter lacks ("same", a resend). Compare key=none with
// key=sealed in the same run:
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
				b.Run(name, func(b *testing.B) {
					benchRowSyncs(b, rows, frame.rows, rowsNew, withKey)
				})
			}
		}
	}
}

func benchRowSyncs(b *testing.B, rows, perFrame int, rowsNew, withKey bool) {
	n, ring := benchNode(b, DefaultConfig().Capacity, rows, withKey)
	f := n.Filter()
	// Rows with one bit each, in frames as a peer sends them.
	data := make([]byte, rows*f.RowBytes())
	for r := range rows {
		data[r*f.RowBytes()+r%f.RowBytes()] = 1 << (r % 8)
	}
	var frames [][]byte
	var sealer *auth.Sealer
	if withKey {
		sealer = auth.NewSealer(ring)
	}
	for first := 0; first < rows; first += perFrame {
		count := min(perFrame, rows-first)
		fr, err := wire.AppendRowSync(nil, f.Fingerprint(), 1, uint32(first), []wire.RowRun{{First: uint32(first),
			Rows: data[first*f.RowBytes() : (first+count)*f.RowBytes()]}})
		if err != nil {
			b.Fatal(err)
		}
		if withKey {
			if fr, err = sealer.Seal(nil, fr); err != nil {
				b.Fatal(err)
			}
		}
		frames = append(frames, fr)
	}
	w := &worker{c: new(counters), reply: make([]byte, 0, 65535)}
	from := netip.MustParseAddrPort("10.0.0.2:8000")
	serve := func() {
		for _, fr := range frames {
			w.reply = n.handle(w, fr, from)[:0]
		}
	}
	if !rowsNew {
		serve() // the filter has them all: what follows is a resend
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if withKey {
			n.opener = auth.NewOpener(ring) // the same sequences are fresh again
		}
		if rowsNew {
			clearFilter(b, f)
		}
		b.StartTimer()
		serve()
	}
	if got := w.c.v[SyncRowsMerged].Load(); got == 0 {
		b.Fatal("nothing merged")
	}
}

// benchNode returns a node (not running) for capacity keys, with at
// least rows rows, and its keyring when withKey.
func benchNode(b *testing.B, capacity uint64, rows int, withKey bool) (*Node, *auth.Keyring) {
	cfg := DefaultConfig()
	cfg.Capacity = capacity
	ep, err := memnet.New(1).Endpoint(netip.MustParseAddrPort("10.0.0.1:8000"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Transport = ep
	var ring *auth.Keyring
	if withKey {
		k, _ := auth.Generate()
		cfg.ClusterKeys = []auth.Key{k}
		ring, _ = auth.NewKeyring(cfg.ClusterKeys)
	}
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if n.Filter().Rows() < uint64(rows) {
		b.Fatalf("the filter has %d rows, fewer than %d", n.Filter().Rows(), rows)
	}
	return n, ring
}

// clearFilter empties f by loading zero rows over it.
func clearFilter(b *testing.B, f *filter.Filter) {
	zeros := make([]byte, int(f.Rows())*f.RowBytes())
	if err := f.LoadRows(f.Fingerprint(), 0, zeros); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPullReceive receives the answer to a pull — 8 MiB of rows in
// row sync frames of 1 MiB, then pull done — from a stream, as a node
// filling itself from a member does: read, checked with a key, merged.
// With a key, checking a frame's tag overlaps merging the frame before.
//
//	go test -run '^$' -bench PullReceive -count 6 ./node | benchstat -col /key -
func BenchmarkPullReceive(b *testing.B) {
	for _, rowsNew := range []bool{true, false} {
		for _, withKey := range []bool{false, true} {
			name := fmt.Sprintf("rows=%s/key=%s", map[bool]string{true: "new", false: "same"}[rowsNew],
				map[bool]string{true: "sealed", false: "none"}[withKey])
			b.Run(name, func(b *testing.B) { benchPullReceive(b, rowsNew, withKey) })
		}
	}
}

func benchPullReceive(b *testing.B, rowsNew, withKey bool) {
	const rows = 8 << 14 // × 64 B = 8 MiB
	n, ring := benchNode(b, 8_000_000, rows, withKey)
	f := n.Filter()
	data := make([]byte, rows*f.RowBytes())
	for r := range rows {
		data[r*f.RowBytes()+r%f.RowBytes()] = 1 << (r % 8)
	}
	perFrame := (wire.MaxFrame - wire.SealedOverhead - 64) / f.RowBytes()
	var stream []byte
	seal := func(fr []byte) {
		if withKey {
			var err error
			if stream, err = auth.NewSealer(ring).Seal(stream, fr); err != nil {
				b.Fatal(err)
			}
			return
		}
		stream = append(stream, fr...)
	}
	for first := 0; first < rows; first += perFrame {
		count := min(perFrame, rows-first)
		fr, err := wire.AppendRowSync(nil, f.Fingerprint(), 0, 0, []wire.RowRun{{First: uint32(first),
			Rows: data[first*f.RowBytes() : (first+count)*f.RowBytes()]}})
		if err != nil {
			b.Fatal(err)
		}
		seal(fr)
	}
	done, _ := wire.AppendPullDone(nil, wire.PullDone{Rows: rows})
	seal(done)
	receive := func() {
		got, _, err := n.receivePull(n.f, wire.NewFrameReader(bytes.NewReader(stream), 64<<10), 1, func() {})
		if err != nil || got != rows {
			b.Fatalf("received %d rows: %v", got, err)
		}
	}
	if !rowsNew {
		receive()
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if withKey {
			n.opener = auth.NewOpener(ring) // the same sequences are fresh again
		}
		if rowsNew {
			clearFilter(b, f)
		}
		b.StartTimer()
		receive()
	}
}

// BenchmarkNamedLookup: finding a named filter by the bytes of a frame,
// among 1,024 — the only work a named frame adds on the hot path.
func BenchmarkNamedLookup(b *testing.B) {
	nm := newNamed(time.Hour)
	for i := range 1024 {
		name := fmt.Sprint("tenant-", i)
		nm.byName[name] = []*namedFilter{{name: name}}
	}
	key := []byte("tenant-512")
	b.ReportAllocs()
	for b.Loop() {
		if len(nm.lookup(key)) != 1 {
			b.Fatal("not found")
		}
	}
}
