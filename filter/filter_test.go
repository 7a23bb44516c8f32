package filter

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func key(prefix string, i int) []byte { return fmt.Appendf(nil, "%s-%d", prefix, i) }

func newBlocked(t testing.TB, n uint64, p float64) *Filter {
	t.Helper()
	f, err := New(Config{Layout: Blocked, Capacity: n, FPRate: p})
	require.NoError(t, err)
	return f
}

// rowBit reports whether bit col of row r is set, via CopyRows.
func rowBit(t *testing.T, f *Filter, r, col int) bool {
	t.Helper()
	b, err := f.CopyRows(nil, uint64(r), 1)
	require.NoError(t, err)
	return b[col/8]&(1<<(col%8)) != 0
}

func TestClassicGoldenVectors(t *testing.T) {
	golden := map[string][ClassicRows]int{
		"abc": {176, 63, 390, 221, 396},
		"key": {303, 24, 393, 346, 259},
		"":    {0, 1, 2, 3, 4},
	}
	for k, cols := range golden {
		f := NewClassic()
		require.True(t, f.Add([]byte(k)))
		for r, c := range cols {
			assert.Equal(t, c, ClassicColumn([]byte(k), r), "key %q row %d", k, r)
			assert.True(t, rowBit(t, f, r, c), "key %q row %d col %d not set", k, r, c)
		}
		assert.Equal(t, uint64(ClassicRows), f.Stats().SetBits, "key %q sets one bit per row", k)
		assert.True(t, f.Has([]byte(k)))
		assert.False(t, f.Add([]byte(k)), "second add changes nothing")
	}
	assert.Equal(t, 50, NewClassic().RowBytes())
}

func TestNoFalseNegatives(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range []*Filter{NewClassic(), newBlocked(t, 1, 0.5), newBlocked(t, 1000, 0.01), newBlocked(t, 50_000, 0.001)} {
		keys := make([][]byte, 20_000)
		for i := range keys {
			keys[i] = make([]byte, rng.IntN(200))
			for j := range keys[i] {
				keys[i][j] = byte(rng.Uint32())
			}
			f.Add(keys[i])
		}
		for _, k := range keys {
			require.True(t, f.Has(k), "false negative in %v", f.Fingerprint())
		}
	}
}

func TestMeasuredFalsePositiveRate(t *testing.T) {
	const n, probes = 200_000, 1_000_000
	for _, p := range []float64{0.01, 0.001} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			f := newBlocked(t, n, p)
			for i := range n {
				f.Add(key("in", i))
			}
			fps := 0
			for i := range probes {
				if f.Has(key("out", i)) {
					fps++
				}
			}
			rate := float64(fps) / probes
			t.Logf("p=%v measured=%v (%d of %d) bits/key=%.2f k=%d", p, rate, fps, probes,
				float64(f.SizeBytes()*8)/n, f.K())
			assert.GreaterOrEqual(t, rate, 0.8*p)
			assert.LessOrEqual(t, rate, 1.25*p)
			st := f.Stats()
			assert.InEpsilon(t, n, st.EstimatedKeys, 0.03, "estimated keys")
			assert.InEpsilon(t, p, st.EstimatedFPRate, 0.2, "estimated rate")
			assert.InEpsilon(t, float64(st.SetBits)/float64(st.TotalBits), st.Fill, 1e-9)
		})
	}
}

func TestClassicEstimates(t *testing.T) {
	f := NewClassic()
	for i := range 100 {
		f.Add(key("c", i))
	}
	st := f.Stats()
	assert.InEpsilon(t, 100, st.EstimatedKeys, 0.25)
	assert.Greater(t, st.EstimatedFPRate, 0.0)
	assert.Less(t, st.EstimatedFPRate, 0.001)
}

func TestSizingErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{Layout: Blocked, Capacity: 0, FPRate: 0.01}, ErrCapacity},
		{Config{Layout: Blocked, Capacity: 10, FPRate: 0}, ErrFPRate},
		{Config{Layout: Blocked, Capacity: 10, FPRate: 1}, ErrFPRate},
		{Config{Layout: Blocked, Capacity: 10, FPRate: -0.5}, ErrFPRate},
		{Config{Layout: Blocked, Capacity: 10, FPRate: math.NaN()}, ErrFPRate},
		{Config{Layout: Blocked, Capacity: MaxCapacity + 1, FPRate: 0.01}, ErrTooLarge},
		{Config{Layout: Blocked, Capacity: 1e9, FPRate: 0.01, MaxBytes: 1 << 20}, ErrTooLarge},
		{Config{Layout: 9, Capacity: 10, FPRate: 0.01}, ErrLayout},
	} {
		_, err := New(tc.cfg)
		assert.ErrorIs(t, err, tc.want, "%+v", tc.cfg)
	}
	_, err := New(Config{Layout: Blocked, Capacity: 1e9, FPRate: 0.01, MaxBytes: 1 << 20})
	assert.EqualError(t, err, "filter: filter exceeds the maximum size: 1000000000 keys at rate 0.01 need 1236987584 bytes, over the limit of 1048576")
}

func TestSizingMonotone(t *testing.T) {
	r1, _, err := SizeBlocked(1_000_000, 0.01)
	require.NoError(t, err)
	r2, _, _ := SizeBlocked(1_000_000, 0.001)
	r3, _, _ := SizeBlocked(2_000_000, 0.01)
	assert.Less(t, r1, r2, "lower rate needs more rows")
	assert.InEpsilon(t, 2*r1, r3, 0.001, "twice the keys need twice the rows")
	rows, k, _ := SizeBlocked(1_000_000, 0.01)
	assert.LessOrEqual(t, BlockedFPRate(1_000_000, rows, k), 0.01)
	assert.Greater(t, BlockedFPRate(1_000_000, rows-1, k), 0.01, "minimal")
}

func TestFingerprintEncoding(t *testing.T) {
	fp := newBlocked(t, 1000, 0.01).Fingerprint()
	fp.Seed = 0x0102030405060708
	b, _ := fp.AppendBinary(nil)
	require.Len(t, b, FingerprintSize)
	got, err := DecodeFingerprint(b)
	require.NoError(t, err)
	assert.Equal(t, fp, got)
	_, err = DecodeFingerprint(b[:17])
	assert.ErrorIs(t, err, ErrFingerprint)
	b[3] = 1
	other, err := DecodeFingerprint(b)
	require.NoError(t, err, "another placement version decodes…")
	assert.Equal(t, uint8(1), other.Version)
	_, err = NewFromFingerprint(other, 0)
	assert.ErrorIs(t, err, ErrFingerprint, "…and no filter of this build has it")

	f, err := NewFromFingerprint(fp, 0)
	require.NoError(t, err)
	assert.Equal(t, fp, f.Fingerprint())
	for _, bad := range []Fingerprint{
		{Layout: Blocked, Hash: XXH3, K: 0, RowBits: 512, Rows: 10},
		{Layout: Blocked, Hash: FNV1a32, K: 3, RowBits: 512, Rows: 10},
		{Layout: Blocked, Hash: XXH3, K: 3, RowBits: 400, Rows: 10},
		{Layout: Blocked, Hash: XXH3, K: 3, RowBits: 512, Rows: 0},
		{Layout: Classic, Hash: FNV1a32, K: 5, RowBits: 400, Rows: 6},
		{Layout: 7},
	} {
		_, err := NewFromFingerprint(bad, 0)
		assert.ErrorIs(t, err, ErrFingerprint, "%v", bad)
	}
}

func TestAlignment(t *testing.T) {
	for n := range uint64(20) {
		w := alignedWords(n*8 + 1)
		assert.Zero(t, uintptr(unsafe.Pointer(unsafe.SliceData(w)))%64, "rows start on a cache line")
		assert.Len(t, w, int(n*8+1))
	}
}

func TestNewFromFingerprintBounded(t *testing.T) {
	fp := Fingerprint{Layout: Blocked, Hash: XXH3, K: 6, RowBits: 512, Rows: 1 << 30}
	_, err := NewFromFingerprint(fp, 1<<20)
	assert.ErrorIs(t, err, ErrTooLarge, "a fingerprint off the wire cannot make us allocate 64 GiB")
	_, err = NewFromFingerprint(fp, 0)
	assert.ErrorIs(t, err, ErrTooLarge)
}

// A fingerprint's size is its filter's, for both layouts.
func TestFingerprintSizeBytes(t *testing.T) {
	for _, f := range []*Filter{NewClassic(), mustNew(t, DefaultConfig())} {
		if f.SizeBytes() != f.Fingerprint().SizeBytes() {
			t.Errorf("%v: filter %d bytes, fingerprint says %d", f.Fingerprint(), f.SizeBytes(), f.Fingerprint().SizeBytes())
		}
	}
}

func mustNew(t *testing.T, cfg Config) *Filter {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// BitsAt predicts the bits set at n keys closely enough that a fill
// checked against it agrees with the keys estimated row by row.
func TestBitsAt(t *testing.T) {
	for _, n := range []uint64{1000, 100_000} {
		f := newBlocked(t, n, 0.01)
		for i := range int(n) {
			f.Add(key("b", i))
		}
		st := f.Stats()
		want := float64(f.BitsAt(n))
		assert.InEpsilon(t, want, float64(st.SetBits), 0.02, "n=%d", n)
		assert.InEpsilon(t, float64(n), st.EstimatedKeys, 0.03, "n=%d", n)
	}
	assert.Zero(t, NewClassic().BitsAt(10))
}
