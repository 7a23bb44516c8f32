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

// ErrDigest reports digests that cannot be compared with the local filter.
var ErrDigest = errors.New("gossip: digest mismatch")

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
// It returns the rows sent.
func ServePull(src Source, p wire.Pull, maxFrame int, emit func(frame []byte) error) (int, error) {
	if p.FP != src.Fingerprint() {
		return 0, fmt.Errorf("%w: %v", filter.ErrFingerprint, p.FP)
	}
	rows := src.Rows()
	rb := uint64(src.RowBytes())
	var w wire.RowSyncWriter
	open, sent := false, 0
	var buf []byte
	var seq uint32
	flush := func() error {
		frame, err := w.Finish()
		open = false
		buf = frame
		if err != nil {
			return err
		}
		seq++
		return emit(frame)
	}
	// Find the rows first, then copy and send them: the filter's change
	// index must not stay locked while a slow reader holds up emit. Rows
	// changed since the last tick are only dirty, not yet stamped: open a
	// generation so that they are found too (a round in progress then
	// finds them in its next one).
	src.Advance()
	var todo []filter.Run
	for i := range p.Count {
		want := p.Run(i)
		if want.First >= rows || want.Count > rows-want.First {
			return 0, fmt.Errorf("%w: rows %d..%d of %d", ErrRows, want.First, want.First+want.Count, rows)
		}
		for run := range src.ChangedRuns(0) {
			if lo, hi := max(run.First, want.First), min(run.First+run.Count, want.First+want.Count); lo < hi {
				todo = append(todo, filter.Run{First: lo, Count: hi - lo})
			}
		}
	}
	for _, run := range todo {
		for lo, hi := run.First, run.First+run.Count; lo < hi; {
			if !open {
				w.Begin(buf[:0], src.Fingerprint(), 0, seq)
				open = true
			}
			free := maxFrame - w.Size() - wire.RunHeaderSize
			if free < int(rb) {
				if err := flush(); err != nil {
					return sent, err
				}
				continue
			}
			n := min(hi-lo, uint64(free)/rb, 0xffff)
			w.Run(uint32(lo), uint16(n))
			w.Buf, _ = src.CopyRows(w.Buf, lo, n)
			lo += n
			sent += int(n)
		}
	}
	if open {
		if err := flush(); err != nil {
			return sent, err
		}
	}
	return sent, nil
}
