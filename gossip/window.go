package gossip

import "github.com/rmbd/rmbd/filter"

// window is the frames of one delta round in flight to a peer: sent and
// not yet acknowledged, in the order they were sent (raft keeps its
// inflights the same way). Frames are numbered from 0 within a round; an
// ack names the number. Since frames are sent in tick order, the late
// ones are always the oldest unacknowledged ones: a prefix.
type window struct {
	next    uint32      // number of the next frame
	frames  []sentFrame // frames[i] is number first+i; acknowledged ones wait for the front
	first   uint32
	rows    int // rows in unacknowledged frames
	pending int // unacknowledged frames
}

// sentFrame is what a frame carried, to send again if its ack is late.
type sentFrame struct {
	runs  []filter.Run
	rows  int
	tick  uint64
	acked bool
}

// add records a frame sent at tick carrying runs and returns its number.
func (w *window) add(runs []filter.Run, rows int, tick uint64) uint32 {
	if len(w.frames) == 0 {
		w.first = w.next
	}
	w.frames = append(w.frames, sentFrame{runs: runs, rows: rows, tick: tick})
	w.rows += rows
	w.pending++
	seq := w.next
	w.next++
	return seq
}

// ack marks frame seq acknowledged and reports whether it was in flight:
// false for a duplicate, late, or forged ack.
func (w *window) ack(seq uint32) bool {
	i := seq - w.first // wraps for seq < first: out of range
	if int64(i) >= int64(len(w.frames)) || w.frames[i].acked {
		return false
	}
	f := &w.frames[i]
	f.acked, f.runs = true, nil
	w.rows -= f.rows
	w.pending--
	w.trim()
	return true
}

// takeLate removes the frames sent at or before tick now-timeout and not
// acknowledged, and returns the runs they carried, to be sent again.
func (w *window) takeLate(now, timeout uint64) []filter.Run {
	var late []filter.Run
	for i := range w.frames {
		f := &w.frames[i]
		if f.acked {
			continue
		}
		if now-f.tick < timeout {
			break // sent later than every late frame
		}
		late = append(late, f.runs...)
		f.acked, f.runs = true, nil
		w.rows -= f.rows
		w.pending--
	}
	w.trim()
	return late
}

// anyLate reports whether a frame in flight has waited timeout ticks.
func (w *window) anyLate(now, timeout uint64) bool {
	for i := range w.frames {
		if f := &w.frames[i]; !f.acked {
			return now-f.tick >= timeout
		}
	}
	return false
}

// trim drops acknowledged frames from the front.
func (w *window) trim() {
	n := 0
	for n < len(w.frames) && w.frames[n].acked {
		n++
	}
	if n == len(w.frames) {
		w.frames, w.first = w.frames[:0], w.next
		return
	}
	w.frames = w.frames[n:]
	w.first += uint32(n)
}

// empty reports whether nothing is in flight.
func (w *window) empty() bool { return w.pending == 0 }
