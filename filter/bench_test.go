package filter

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/bits-and-blooms/bloom/v3"
)

// Benchmarks size a filter for capacity keys at 1% and fill it to
// capacity: 1M keys fits in cache, 64M keys (~80 MB) lives in DRAM.
// bloom/v3 gets the same number of bits and its own optimal k.

var benchSizes = []uint64{1 << 20, 64 << 20}

type benchSet struct {
	f *Filter
	b *bloom.BloomFilter
}

var benchCache = map[uint64]benchSet{}

func benchFilters(b *testing.B, n uint64) benchSet {
	if s, ok := benchCache[n]; ok {
		return s
	}
	f, err := New(Config{Layout: Blocked, Capacity: n, FPRate: 0.01})
	if err != nil {
		b.Fatal(err)
	}
	m := uint(f.SizeBytes() * 8)
	k := uint(math.Round(float64(m) / float64(n) * math.Ln2))
	bf := bloom.New(m, k)
	var kb [8]byte
	for i := range n {
		binary.LittleEndian.PutUint64(kb[:], i)
		f.Add(kb[:])
		bf.Add(kb[:])
	}
	s := benchSet{f, bf}
	benchCache[n] = s
	return s
}

func sizeName(n uint64) string { return fmt.Sprintf("keys=%dM", n>>20) }

// probe returns the i'th benchmark key: half of them were added.
func probe(kb []byte, i, n uint64) {
	binary.LittleEndian.PutUint64(kb, (i*0x9e3779b97f4a7c15)%(2*n))
}

func BenchmarkHas(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n)+"/rmbd", func(b *testing.B) {
			s := benchFilters(b, n)
			var kb [8]byte
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				probe(kb[:], i, n)
				s.f.Has(kb[:])
			}
		})
		b.Run(sizeName(n)+"/bloomv3", func(b *testing.B) {
			s := benchFilters(b, n)
			var kb [8]byte
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				probe(kb[:], i, n)
				s.b.Test(kb[:])
			}
		})
	}
}

func BenchmarkAdd(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n)+"/rmbd", func(b *testing.B) {
			s := benchFilters(b, n)
			var kb [8]byte
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				probe(kb[:], i, n)
				s.f.Add(kb[:])
			}
		})
		b.Run(sizeName(n)+"/bloomv3", func(b *testing.B) {
			s := benchFilters(b, n)
			var kb [8]byte
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				probe(kb[:], i, n)
				s.b.Add(kb[:])
			}
		})
	}
}

// BenchmarkHasParallel measures Has from every core at once.
func BenchmarkHasParallel(b *testing.B) {
	s := benchFilters(b, benchSizes[0])
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var kb [8]byte
		for i := uint64(0); pb.Next(); i++ {
			probe(kb[:], i, benchSizes[0])
			s.f.Has(kb[:])
		}
	})
}

// BenchmarkMergeRows ORs 1 MiB of rows into a filter. "same" merges rows
// the filter already holds (a resend: nothing changes), "sparse" rows
// that add one key each, "fill" a full filter into an empty one (every
// word changes: the bulk-transfer case).
func BenchmarkMergeRows(b *testing.B) {
	const rows = 1 << 14 // 16384 rows × 64 B = 1 MiB
	src, _ := NewFromFingerprint(Fingerprint{Layout: Blocked, Hash: XXH3, K: 6, RowBits: BlockedRowBits, Rows: rows}, 0)
	for i := range rows * 50 {
		src.Add(key("b", i))
	}
	full, _ := src.CopyRows(nil, 0, rows)
	sparse := make([]byte, len(full))
	for r := range rows {
		sparse[r*64+r%64] = 1 << (r % 8)
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		reset bool
	}{{"same", full, false}, {"sparse", sparse, true}, {"fill", full, true}} {
		b.Run(tc.name, func(b *testing.B) {
			dst, _ := NewFromFingerprint(src.Fingerprint(), 0)
			if !tc.reset {
				dst.MergeRows(src.Fingerprint(), 0, full, nil)
			}
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			changed := make([]uint64, 0, rows)
			for b.Loop() {
				if tc.reset {
					b.StopTimer()
					clear(dst.words)
					b.StartTimer()
				}
				changed, _ = dst.MergeRows(src.Fingerprint(), 0, tc.data, changed[:0])
			}
		})
	}
}

func BenchmarkCopyRows(b *testing.B) {
	s := benchFilters(b, benchSizes[0])
	buf := make([]byte, 0, 1<<20)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.f.CopyRows(buf[:0], 0, (1<<20)/64)
	}
}

func BenchmarkAdvanceIdle(b *testing.B) {
	s := benchFilters(b, benchSizes[1])
	s.f.Advance()
	b.ReportAllocs()
	for b.Loop() {
		g := s.f.Advance()
		for range s.f.ChangedRuns(g) {
		}
	}
}
