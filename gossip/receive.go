package gossip

import (
	"errors"
	"fmt"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// ErrRows reports rows that do not fit the receiving filter.
var ErrRows = errors.New("gossip: rows out of range")

// MergeRowSync ORs the rows of s into f and appends the row ack to send
// back to ackBuf. It checks the fingerprint and every run's range before
// merging anything, so a refused frame changes nothing and gets no ack.
// It returns the number of rows that gained bits. Rows from outside the
// cluster (origin: a static peer's, not a member's) are this node's to
// push to its members (filter.Originate).
func MergeRowSync(f *filter.Filter, s wire.RowSync, ackBuf []byte, origin bool) (ack []byte, changed int, err error) {
	if s.FP != f.Fingerprint() {
		return ackBuf, 0, fmt.Errorf("%w: have %v, got %v", filter.ErrFingerprint, f.Fingerprint(), s.FP)
	}
	rb := uint64(wire.RowBytes(s.FP))
	for first, rows := range s.Runs.All() {
		if uint64(first)+uint64(len(rows))/rb > f.Rows() {
			return ackBuf, 0, fmt.Errorf("%w: rows %d..%d of %d", ErrRows, first, uint64(first)+uint64(len(rows))/rb, f.Rows())
		}
	}
	var scratch [64]uint64 // on the stack: f is a concrete type
	for first, rows := range s.Runs.All() {
		ch, err := f.MergeRows(s.FP, uint64(first), rows, scratch[:0])
		if err != nil {
			return ackBuf, changed, err // cannot happen: checked above
		}
		if origin {
			f.Originate(ch)
		}
		changed += len(ch)
	}
	ack, err = wire.AppendRowAck(ackBuf, wire.RowAck{Stamp: s.Stamp, Seq: s.Seq, Rows: uint32(s.Runs.Rows())})
	return ack, changed, err
}

// MergeClassicSync ORs a classic sync row into f, which must be a classic
// filter, and appends the one-byte ack to ackBuf. Classic peers are never
// members: what they bring is this node's to push to its members.
func MergeClassicSync(f *filter.Filter, s wire.ClassicSync, ackBuf []byte) (ack []byte, changed bool, err error) {
	fp := f.Fingerprint()
	if fp.Layout != filter.Classic {
		return ackBuf, false, fmt.Errorf("%w: classic sync into %v", filter.ErrFingerprint, fp)
	}
	if uint64(s.Row) >= f.Rows() {
		return ackBuf, false, fmt.Errorf("%w: row %d of %d", ErrRows, s.Row, f.Rows())
	}
	var packed [wire.ClassicRowBits / 8]byte
	var scratch [1]uint64
	ch, err := f.MergeRows(fp, uint64(s.Row), s.Pack(packed[:0]), scratch[:0])
	if err != nil {
		return ackBuf, false, err
	}
	f.Originate(ch)
	return wire.AppendClassicAck(ackBuf), len(ch) > 0, nil
}
