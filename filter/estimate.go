package filter

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// Stats summarises how full a filter is.
type Stats struct {
	// SetBits and TotalBits count the filter's bits.
	SetBits, TotalBits uint64
	// Fill is SetBits / TotalBits.
	Fill float64
	// EstimatedKeys estimates the number of distinct keys added, from the
	// bits set in each row.
	EstimatedKeys float64
	// EstimatedFPRate estimates the chance that a never-added key answers
	// true now.
	EstimatedFPRate float64
}

// Stats reads every word once (atomically) and estimates the number of
// distinct keys and the current false-positive rate.
//
// A row of W bits with x set, into which each key set k bits, holds about
// ln(1-x/W) / (k·ln(1-1/W)) keys (Swamidass & Baldi). A stranger is
// answered true with probability (x/W)^k in the blocked layout, where it
// probes one random row, and with ∏ x_i/W in the classic one.
func (f *Filter) Stats() Stats {
	w := float64(f.fp.RowBits)
	perKey := float64(f.k)
	if f.fp.Layout == Classic {
		perKey = 1 // each classic row holds one bit per key
	}
	var s Stats
	s.TotalBits = f.rows * uint64(f.fp.RowBits)
	fpSum, fpProd := 0.0, 1.0
	for r := range f.rows {
		x := 0
		row := f.words[r*f.wpr : (r+1)*f.wpr]
		for i := range row {
			x += bits.OnesCount64(atomic.LoadUint64(&row[i]))
		}
		s.SetBits += uint64(x)
		frac := float64(x) / w
		fpSum += math.Pow(frac, float64(f.k))
		fpProd *= frac
		s.EstimatedKeys += rowKeys(frac, w, perKey)
	}
	s.Fill = float64(s.SetBits) / float64(s.TotalBits)
	if f.fp.Layout == Classic {
		s.EstimatedKeys /= ClassicRows // every row saw every key
		s.EstimatedFPRate = fpProd
	} else {
		s.EstimatedFPRate = fpSum / float64(f.rows)
	}
	return s
}

// rowKeys estimates the keys in a row with fraction frac of w bits set.
func rowKeys(frac, w, perKey float64) float64 {
	if frac >= 1 {
		frac = (w - 0.5) / w // a full row: as many keys as we can tell
	}
	return math.Log1p(-frac) / (perKey * math.Log1p(-1/w))
}

// BitsAt returns how many bits a blocked filter is expected to have set
// once n distinct keys are in it: a row holds Poisson(n/rows) keys, each
// setting K bits of its 512 drawn uniformly. A filter's fill is checked
// against it (SetBits ≥ BitsAt(capacity): as full as it was sized to be)
// where estimating keys row by row would read all of it. 0 for the
// classic layout, which is never full.
func (f *Filter) BitsAt(n uint64) uint64 {
	if f.fp.Layout == Classic || f.rows == 0 {
		return 0
	}
	w := float64(f.fp.RowBits)
	perKey := 1 - math.Pow(1-1/w, float64(f.k)) // the chance a key sets a given bit of its row
	lambda := float64(n) / float64(f.rows)
	return uint64(float64(f.rows) * w * (1 - math.Exp(-lambda*perKey)))
}

// KeysAt is BitsAt's inverse: the distinct keys a blocked filter with
// bits set is estimated to hold (+Inf when every bit is set); 0 for the
// classic layout.
func (f *Filter) KeysAt(bits uint64) float64 {
	if f.fp.Layout == Classic || f.rows == 0 {
		return 0
	}
	w := float64(f.fp.RowBits)
	m := float64(f.rows) * w
	perKey := 1 - math.Pow(1-1/w, float64(f.k))
	return -float64(f.rows) / perKey * math.Log1p(-float64(bits)/m)
}
