package dump

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/registry"
)

// Any bytes as a chunk: decoding never panics; what decodes encodes back
// to the same bytes; loading it into a registry never panics, and a
// chunk that does not decode changes nothing.
func FuzzChunk(f *testing.F) {
	src := openRegistry(f, "n1")
	g := makeFilter(f, src, "seed", registry.Sizing{Layout: filter.Blocked, Capacity: 50, FPRate: 0.05, Expansion: 2})
	addKeys(f, g, "k", 120) // small seeds: a new input is minimized byte by byte
	for _, c := range dumpAll(f, g) {
		f.Add(c)
	}
	c := makeFilter(f, src, "classic", registry.Sizing{Layout: filter.Classic})
	addKeys(f, c, "k", 5)
	for _, c := range dumpAll(f, c) {
		f.Add(c)
	}
	f.Add([]byte("RMBC\x01\x02\x00\x00\x00\x0e\x00\x00\x00\x00"))
	// A repaired header may ask for any sizing: the filters it makes are
	// bounded as a node bounds them.
	dst, err := registry.Open(registry.Config{Node: "n2", Default: registry.Sizing{Layout: filter.Blocked, Capacity: 1000, FPRate: 0.01},
		MaxFilters: 16, TombstoneTTL: time.Hour, MaxMemory: 64 << 20, MaxFilterBytes: 16 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { dst.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, dst, b)
		check(t, dst, repaired(b)) // past the checksum, to the decoders behind it
	})
}

// repaired is b with its length and checksum made right, when it is long
// enough to hold them.
func repaired(b []byte) []byte {
	if len(b) < headSize+sumSize || len(b) > MaxChunk {
		return b
	}
	c := append([]byte(nil), b...)
	copy(c, magic[:])
	c[4] = Version
	binary.BigEndian.PutUint32(c[6:], uint32(len(c)))
	binary.BigEndian.PutUint32(c[len(c)-sumSize:], crc32.Checksum(c[:len(c)-sumSize], castagnoli))
	return c
}

// check: decoding b never panics; what decodes encodes back to the same
// bytes; loading it never panics, and a chunk that does not decode
// changes nothing.
func check(t *testing.T, dst *registry.Registry, b []byte) {
	kind, _, err := Kind(b)
	if err == nil {
		switch kind {
		case KindHeader:
			if h, err := DecodeHeader(b); err == nil && len(h.Name) < 256 {
				if again := AppendHeader(nil, h); !bytes.Equal(again, b) {
					t.Fatalf("header %+v encodes to %x, decoded from %x", h, again, b)
				}
			}
		case KindRows:
			if r, err := DecodeRows(b); err == nil {
				w := BeginRows(nil, r)
				for first, rows := range r.Runs() {
					w.Run(first, rows)
				}
				if again := w.End(r.End); !bytes.Equal(again, b) {
					t.Fatalf("rows chunk encodes to %x, decoded from %x", again, b)
				}
			}
		}
	}
	before := len(dst.Names())
	_, lerr := Load(dst, creator(dst), "target", b)
	if err != nil && (lerr == nil || len(dst.Names()) != before) {
		t.Fatalf("a chunk that does not decode (%v) loaded: %v", err, lerr)
	}
}
