package gossip

import (
	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// pushSparse is pushRuns for a member that takes sparse row syncs: the
// rows one by one, each as the positions of its set bits where that is
// smaller than the row (wire/sparse.go). Rows with no bit set are left
// out; a frame of nothing but such rows is not sent.
func (g *Gossip) pushSparse(p *peer, runs func(func(filter.Run) bool), resend bool, out *Outbox) (next uint64, done bool) {
	r := p.round
	var w wire.SparseSyncWriter
	var cur []filter.Run // rows of the frame being built, as runs
	curRows, start, open := 0, 0, false
	flush := func() {
		frame, err := w.Finish()
		out.buf = frame
		if err == nil { // fails only when every row was empty: nothing to send
			r.w.add(cur, curRows, g.tick) // numbered r.w.next at Begin
			if resend {
				g.c.Resent++
			}
			g.sent(out, p, start, curRows)
		}
		cur, curRows, open = nil, 0, false
	}
	for run := range runs {
		for row := run.First; row < run.First+run.Count; {
			if (curRows >= g.cfg.MaxInflightRows-r.w.rows || !g.room(p)) && (!resend || unproven(p)) {
				if open {
					flush()
				}
				return row, false
			} // a resend is owed to a peer that acks: it goes even past the limits
			if !open {
				start = len(out.buf)
				w.Begin(out.buf, g.fp, r.token, r.w.next)
				open = true
			}
			var err error
			if g.row, err = g.src.CopyRows(g.row[:0], row, 1); err != nil {
				return row, false // cannot happen: runs lie inside the filter
			}
			if !w.Row(uint32(row), g.row, g.cfg.MaxFrame) {
				if w.Rows() == 0 {
					return row, false // cannot happen: MaxFrame holds a whole row
				}
				flush() // full: the row goes in the next frame
				continue
			}
			if n := len(cur); n > 0 && cur[n-1].First+cur[n-1].Count == row {
				cur[n-1].Count++
			} else {
				cur = append(cur, filter.Run{First: row, Count: 1})
			}
			curRows++
			row++
		}
	}
	if open {
		flush()
	}
	return 0, true
}
