package store

import (
	"encoding/binary"
	"testing"
)

// BenchmarkAdd measures an acknowledged add of a batch of 64 new keys:
// the barrier, the hashes, the log record, the bits (FsyncNo: the disk's
// speed is not what is measured).
func BenchmarkAdd(b *testing.B) {
	def, mk := blockedDef(b, 10_000_000)
	o := opts()
	o.Fsync = FsyncNo
	s, _, _ := open(b, b.TempDir(), def, mk, o)
	defer s.Close()
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = make([]byte, 16)
	}
	bits := make([]byte, 8)
	var sc Scratch
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j, k := range keys {
			binary.LittleEndian.PutUint64(k, uint64(i))
			binary.LittleEndian.PutUint64(k[8:], uint64(j))
		}
		clear(bits)
		if _, _, err := s.Add(keys, bits, &sc); err != nil {
			b.Fatal(err)
		}
	}
}
