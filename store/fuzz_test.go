package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// Every decoder of files on disk has a fuzz target: no input panics it,
// and what it accepts re-encodes to the same bytes.

func FuzzDefinition(f *testing.F) {
	def, _ := blockedDef(f, 1000)
	f.Add(encodeDefinition(def, holding{}))
	f.Add(encodeDefinition(def, holding{first: 3, last: 9}))
	f.Add([]byte(defMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, h, _, err := decodeDefinition(b)
		if err == nil && b[9] == defVersion && !bytes.Equal(encodeDefinition(d, h), b) {
			t.Fatalf("accepted definition re-encodes differently: %+v %+v", d, h)
		}
	})
}

func FuzzLogSegment(f *testing.F) {
	def, _, seg := realFiles(f)
	f.Add(seg)
	f.Add(seg[:logHeaderSize+20])
	keys := appendKeyRecord(appendLogHeader(nil, def.FP, 3), [][]byte{[]byte("abc"), nil})
	f.Add(keys)
	f.Fuzz(func(t *testing.T, b []byte) {
		fp, seq, off, err := decodeLogHeader(b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendLogHeader(nil, fp, seq), b[:off]) {
			t.Fatal("accepted header re-encodes differently")
		}
		for off < len(b) {
			r, n, err := nextRecord(b[off:])
			if err != nil {
				return
			}
			var again []byte
			if r.kind == recordHashes {
				var hs []uint64
				for h := range r.hashes {
					hs = append(hs, h)
				}
				again = appendHashRecord(nil, hs)
			} else {
				var ks [][]byte
				for k := range r.keys {
					ks = append(ks, k)
				}
				again = appendKeyRecord(nil, ks)
			}
			if !bytes.Equal(again, b[off:off+n]) {
				t.Fatal("accepted record re-encodes differently")
			}
			off += n
		}
	})
}

func FuzzCheckpoint(f *testing.F) {
	def, ckpt, _ := realFiles(f)
	f.Add(ckpt)
	f.Add(ckpt[:ckptHeaderSize+200])
	f.Fuzz(func(t *testing.T, b []byte) {
		rows := 0
		r, err := readCheckpoint(b, def.FP, func(s wire.RowSync) error {
			rows += s.Runs.Rows()
			return nil
		})
		if err == nil && uint64(rows) != r.rows {
			t.Fatalf("visited %d rows, reported %d", rows, r.rows)
		}
	})
}

func FuzzImage(f *testing.F) {
	def, img, _ := realImage(f)
	f.Add(img)
	f.Add(img[:imageOffset+100])
	path := filepath.Join(f.TempDir(), "image.ckpt")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fl, _ := filter.NewFromFingerprint(def.FP, 0)
		if _, err := loadImage(OSFS{}, path, fl, len(b)%2 == 0); err == nil && fl.Rows() != uint64(def.FP.Rows) {
			t.Fatal("an image changed the filter's shape")
		}
	})
}
