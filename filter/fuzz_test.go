package filter

import (
	"bytes"
	"testing"
)

// FuzzDecodeFingerprint: never panics; an accepted fingerprint re-encodes
// to the same 18 bytes.
func FuzzDecodeFingerprint(f *testing.F) {
	b, _ := NewClassic().Fingerprint().AppendBinary(nil)
	f.Add(b)
	f.Add(make([]byte, FingerprintSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		fp, err := DecodeFingerprint(b)
		if err != nil {
			return
		}
		out, _ := fp.AppendBinary(nil)
		if !bytes.Equal(out, b[:FingerprintSize]) {
			t.Fatalf("re-encoded %x, got %x", out, b[:FingerprintSize])
		}
		if g, err := NewFromFingerprint(fp, 1<<20); err == nil {
			if g.Fingerprint() != fp {
				t.Fatal("filter does not carry its fingerprint")
			}
		}
	})
}

// FuzzMergeRows feeds arbitrary row data and positions to MergeRows: it
// never panics, a refused merge changes nothing, an accepted one keeps
// every bit that was set and reports exactly the rows that changed.
func FuzzMergeRows(f *testing.F) {
	f.Add(uint64(0), make([]byte, 64))
	f.Add(uint64(3), bytes.Repeat([]byte{0xff}, 128))
	f.Add(uint64(1<<40), []byte{1})
	f.Fuzz(func(t *testing.T, first uint64, data []byte) {
		fl, _ := NewFromFingerprint(Fingerprint{Layout: Blocked, Hash: XXH3, K: 4, RowBits: 512, Rows: 8}, 0)
		fl.Add([]byte("present"))
		before, _ := fl.CopyRows(nil, 0, fl.Rows())
		changed, err := fl.MergeRows(fl.Fingerprint(), first, data, nil)
		after, _ := fl.CopyRows(nil, 0, fl.Rows())
		if err != nil {
			if !bytes.Equal(before, after) || len(changed) != 0 {
				t.Fatal("a refused merge changed the filter")
			}
			return
		}
		if !fl.Has([]byte("present")) {
			t.Fatal("merge lost a key")
		}
		for r := range fl.Rows() {
			rowChanged := !bytes.Equal(before[r*64:(r+1)*64], after[r*64:(r+1)*64])
			reported := false
			for _, c := range changed {
				reported = reported || c == r
			}
			if rowChanged != reported {
				t.Fatalf("row %d changed=%v reported=%v", r, rowChanged, reported)
			}
		}
	})
}
