package filter

import (
	"errors"
	"fmt"
	"math"
)

// Sizing errors.
var (
	ErrCapacity = errors.New("filter: capacity must be at least 1")
	ErrFPRate   = errors.New("filter: false-positive rate must lie strictly between 0 and 1")
	ErrTooLarge = errors.New("filter: filter exceeds the maximum size")
)

const (
	// BlockedRowBits is the width of a blocked row: one 64-byte cache line.
	BlockedRowBits = 512
	// MaxK is the largest number of bits a blocked layout sets per key.
	MaxK = 32
	// MaxCapacity bounds the capacity a filter can be sized for.
	MaxCapacity = 1 << 40
	// MaxRows bounds the number of rows of any filter (rows are addressed
	// by uint32 on the wire).
	MaxRows = math.MaxUint32
)

// BlockedFPRate is the expected false-positive rate of a blocked filter of
// rows rows of BlockedRowBits bits, holding n keys with k bits per key.
//
// Keys land in rows as a Poisson process with mean n/rows; a row holding i
// keys answers a stranger with probability (1-(1-1/W)^(i·k))^k (Putze,
// Sanders, Singler: "Cache-, Hash- and Space-Efficient Bloom Filters").
func BlockedFPRate(n, rows uint64, k int) float64 {
	if rows == 0 || k <= 0 {
		return 1
	}
	lambda := float64(n) / float64(rows)
	q := math.Log1p(-1.0 / BlockedRowBits) // ln(1-1/W)
	spread := 12*math.Sqrt(lambda) + 20
	lo := math.Max(0, math.Floor(lambda-spread))
	hi := math.Ceil(lambda + spread)
	var sum float64
	for i := lo; i <= hi; i++ {
		lg, _ := math.Lgamma(i + 1)
		logPois := i*math.Log(lambda) - lambda - lg
		if lambda == 0 {
			logPois = 0
			if i > 0 {
				break
			}
		}
		inner := -math.Expm1(i * float64(k) * q) // 1-(1-1/W)^(ik)
		sum += math.Exp(logPois + float64(k)*math.Log(inner))
	}
	return math.Min(sum, 1)
}

// SizeBlocked returns the fewest rows, and the k that achieves them, for a
// blocked filter holding n keys at false-positive rate p or better.
func SizeBlocked(n uint64, p float64) (rows uint64, k int, err error) {
	if n == 0 {
		return 0, 0, ErrCapacity
	}
	if n > MaxCapacity {
		return 0, 0, fmt.Errorf("%w: capacity %d is over %d", ErrTooLarge, n, uint64(MaxCapacity))
	}
	if !(p > 0 && p < 1) {
		return 0, 0, fmt.Errorf("%w: got %v", ErrFPRate, p)
	}
	for kk := 1; kk <= MaxK; kk++ {
		r, ok := minRows(n, p, kk)
		if ok && (rows == 0 || r < rows) {
			rows, k = r, kk
		}
	}
	if rows == 0 || rows > MaxRows {
		return 0, 0, fmt.Errorf("%w: %d keys at rate %v need more than %d rows", ErrTooLarge, n, p, uint64(MaxRows))
	}
	return rows, k, nil
}

// minRows finds the fewest rows reaching rate p for k bits per key.
func minRows(n uint64, p float64, k int) (uint64, bool) {
	hi := n/64 + 1
	for BlockedFPRate(n, hi, k) > p {
		if hi > MaxRows {
			return 0, false
		}
		hi *= 2
	}
	lo := uint64(1)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if BlockedFPRate(n, mid, k) <= p {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, true
}
