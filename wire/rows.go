package wire

import (
	"iter"

	"github.com/rmbd/rmbd/filter"
)

// RowSource is what FrameRows reads: a filter's rows and its index of
// the rows changed in each generation. *filter.Filter is one.
type RowSource interface {
	Fingerprint() filter.Fingerprint
	RowBytes() int
	ChangedRunsFrom(since, from uint64) iter.Seq[filter.Run]
	CopyRows(dst []byte, first, count uint64) ([]byte, error)
}

// chunkRuns is how many changed runs FrameRows finds per visit to the
// filter's change index: never more than one frame carries.
const chunkRuns = MaxSyncRuns

// FrameRows calls emit with row sync frames holding every row of src,
// within the runs of want (sorted and disjoint), that changed after
// generation since (0: every row ever set). Frames hold at most maxFrame
// bytes and MaxSyncRuns runs, so that a receiver takes them whatever the
// shape of the rows: the sparsest filter (one row set in every other)
// packs one row per run. Rows are found a frame's worth at a time: the
// filter's change index is locked only while they are found, never while
// rows are copied or emit runs, and nothing is built in memory beyond
// one frame (which emit must not keep: its memory takes the next one). It
// returns the rows sent; emit's error stops it.
//
// It is how gossip answers a pull and how the store writes checkpoints,
// whose blocks are row sync frames.
func FrameRows(src RowSource, since uint64, want []filter.Run, maxFrame int, emit func(frame []byte) error) (int, error) {
	fp, rb := src.Fingerprint(), uint64(src.RowBytes())
	var w RowSyncWriter
	var buf []byte
	var seq uint32
	open, sent := false, 0
	flush := func() error {
		frame, err := w.Finish()
		open, buf = false, frame[:0]
		if err != nil {
			return err // cannot happen: the writer got whole rows
		}
		seq++
		return emit(frame)
	}
	runs := make([]filter.Run, 0, chunkRuns)
	for _, span := range want {
		end := span.First + span.Count
		for from := span.First; from < end; {
			runs, from = changedChunk(src, since, from, end, runs[:0])
			for _, run := range runs {
				for lo, hi := run.First, run.First+run.Count; lo < hi; {
					if !open {
						w.Begin(buf, fp, 0, seq)
						open = true
					}
					free := maxFrame - w.Size() - RunHeaderSize
					if free < int(rb) || w.Runs() == MaxSyncRuns {
						if err := flush(); err != nil {
							return sent, err
						}
						continue
					}
					n := min(hi-lo, uint64(free)/rb, 0xffff)
					w.Run(uint32(lo), uint16(n))
					w.Buf, _ = src.CopyRows(w.Buf, lo, n) // in range: the runs came from src
					lo += n
					sent += int(n)
				}
			}
		}
	}
	if open {
		if err := flush(); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// changedChunk appends to runs up to chunkRuns runs of rows in [from, end)
// changed after since, and returns them with the row to go on from.
func changedChunk(src RowSource, since, from, end uint64, runs []filter.Run) ([]filter.Run, uint64) {
	for run := range src.ChangedRunsFrom(since, from) {
		if run.First >= end {
			break
		}
		run.Count = min(run.First+run.Count, end) - run.First
		runs = append(runs, run)
		if len(runs) == chunkRuns {
			return runs, run.First + run.Count
		}
	}
	return runs, end
}
