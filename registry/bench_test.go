package registry

import (
	"fmt"
	"testing"
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
