package gossip

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/bits-and-blooms/bitset"
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
	"github.com/zeebo/xxh3"
)

// Anti-entropy repairs whatever pushes missed: two nodes swap checksums of
// blocks of rows, and each pulls the blocks whose checksums differ. Since
// merging is OR, pulling a block the other side lacks nothing of is
// harmless, and both sides end with the union.

// DigestBlockRows is the rows per checksum: 1,024 blocked rows are 64 KiB,
// so a 100 MB filter is summed in 1,600 checksums (12.5 KiB).
const DigestBlockRows = 1024

// Errors of anti-entropy.
var (
	// ErrDigest reports digests that cannot be compared with the local
	// filter.
	ErrDigest = errors.New("gossip: digest mismatch")
	// ErrPull reports a pull request whose runs are out of order.
	ErrPull = errors.New("gossip: bad pull")
)

// Digests returns one checksum per block of blockRows rows of src.
func Digests(src Source, blockRows uint64) []uint64 {
	rows := src.Rows()
	out := make([]uint64, 0, (rows+blockRows-1)/blockRows)
	var buf []byte
	for first := uint64(0); first < rows; first += blockRows {
		n := min(blockRows, rows-first)
		buf, _ = src.CopyRows(buf[:0], first, n) // in range by construction
		out = append(out, xxh3.Hash(buf))
	}
	return out
}

// AppendDigests encodes src's digests as digest frames, at most
// wire.MaxDigests checksums each.
func AppendDigests(dst []byte, src Source) []byte {
	sums := Digests(src, DigestBlockRows)
	for first := 0; first < len(sums); first += wire.MaxDigests {
		end := min(first+wire.MaxDigests, len(sums))
		dst, _ = wire.AppendDigest(dst, src.Fingerprint(), DigestBlockRows, uint32(first), sums[first:end])
	}
	return dst
}

// Differing decodes the digest frames in b (as AppendDigests writes them)
// and returns the runs of src's rows whose blocks differ from the remote
// side's: the rows to pull from it. It refuses digests of another filter.
func Differing(src Source, b []byte) ([]filter.Run, error) {
	local := Digests(src, DigestBlockRows)
	differ := bitset.New(uint(len(local)))
	for len(b) > 0 {
		n, err := wire.FrameLen(b)
		if err != nil || n > len(b) {
			return nil, fmt.Errorf("%w: bad framing: %w", ErrDigest, cmp.Or(err, wire.ErrShort))
		}
		d, err := wire.DecodeDigest(b[:n])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDigest, err)
		}
		b = b[n:]
		if d.FP != src.Fingerprint() {
			return nil, fmt.Errorf("%w: %v", filter.ErrFingerprint, d.FP)
		}
		if d.BlockRows != DigestBlockRows {
			return nil, fmt.Errorf("%w: %d rows per block", ErrDigest, d.BlockRows)
		}
		for i := range d.Count {
			block := uint64(d.FirstBlock) + uint64(i)
			if block >= uint64(len(local)) {
				return nil, fmt.Errorf("%w: block %d of %d", ErrDigest, block, len(local))
			}
			if d.Sum(i) != local[block] {
				differ.Set(uint(block))
			}
		}
	}
	return blockRuns(differ, DigestBlockRows, src.Rows()), nil
}

// blockRuns turns a set of blocks of blockRows rows into runs of rows,
// consecutive blocks making one run, the last block cut at rows.
func blockRuns(blocks *bitset.BitSet, blockRows, rows uint64) []filter.Run {
	var runs []filter.Run
	for first, ok := blocks.NextSet(0); ok; {
		end, more := blocks.NextClear(first)
		if !more {
			end = blocks.Len()
		}
		lo, hi := uint64(first)*blockRows, min(uint64(end)*blockRows, rows)
		runs = append(runs, filter.Run{First: lo, Count: hi - lo})
		first, ok = blocks.NextSet(end)
	}
	return runs
}

// ServePull answers a pull: it calls emit with row sync frames holding
// every row src has ever set within the asked runs (never-set rows are
// zero: OR-ing them in would change nothing), at most maxFrame bytes each.
// The runs must be sorted, disjoint and inside the filter; a pull that
// breaks this is refused before anything is sent. It returns the rows
// sent.
func ServePull(src Source, p wire.Pull, maxFrame int, emit func(frame []byte) error) (int, error) {
	if p.FP != src.Fingerprint() {
		return 0, fmt.Errorf("%w: %v", filter.ErrFingerprint, p.FP)
	}
	rows := src.Rows()
	want := make([]filter.Run, p.Count)
	for i := range want {
		run := p.Run(i)
		switch {
		case run.First >= rows || run.Count > rows-run.First:
			return 0, fmt.Errorf("%w: rows %d..%d of %d", ErrRows, run.First, run.First+run.Count, rows)
		case i > 0 && run.First < want[i-1].First+want[i-1].Count:
			return 0, fmt.Errorf("%w: run %d (rows %d..%d) overlaps or precedes the one before", ErrPull, i, run.First, run.First+run.Count)
		}
		want[i] = run
	}
	// Rows changed since the last tick are only dirty, not yet stamped:
	// open a generation so that they are found too (a round in progress
	// then finds them in its next one).
	src.Advance()
	return wire.FrameRows(src, 0, want, maxFrame, emit)
}
