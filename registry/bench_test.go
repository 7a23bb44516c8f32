package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmbd/rmbd/store"
)

// BenchmarkLookup: finding a filter by the bytes of a frame, among 1,024
// — the only work a named frame adds on the hot path: one atomic load and
// a map lookup, no lock, no allocation.
func BenchmarkLookup(b *testing.B) {
	cfg := testConfig()
	cfg.MaxFilters = 2048
	r := open(b, cfg)
	for i := range 1024 {
		p, err := r.Create(fmt.Sprint("tenant-", i), blocked(100, 0.01))
		if err != nil {
			b.Fatal(err)
		}
		r.Apply(p)
	}
	key := []byte("tenant-512")
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Lookup(key)) != 1 {
			b.Fatal("not found")
		}
	}
}

// BenchmarkWindowedHas asks a windowed filter of 12 slices for keys it
// does not hold (every slice asked), beside a plain filter of one.
func BenchmarkWindowedHas(b *testing.B) {
	clk := &clock{t: time.UnixMilli(1_800_000_000_000)}
	cfg := testConfig()
	cfg.Now = clk.Now
	r := open(b, cfg)
	for _, c := range []struct {
		name string
		s    Sizing
	}{{"plain", blocked(100_000, 0.01)}, {"window-of-12-slices", windowed(100_000, 0.01, 10*time.Second, 10)}} {
		p, err := r.Create(c.name, c.s)
		if err != nil {
			b.Fatal(err)
		}
		f := r.Apply(p).Filter
		for s := range 12 {
			f.AddUnacked([][]byte{fmt.Appendf(nil, "k%d", s)}, make([]byte, 1), &store.Scratch{})
			clk.Add(time.Second)
		}
		clk.Add(-time.Second)
		key := []byte("a key never added")
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				f.Has(key)
			}
		})
	}
}
