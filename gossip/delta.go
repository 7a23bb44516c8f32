package gossip

import (
	"net/netip"
	"slices"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// round is one delta round to a peer: the rows changed since since, as of
// gen, sent over one or more ticks and acknowledged frame by frame.
type round struct {
	gen, since  uint64
	cursor      uint64 // rows below cursor have been sent
	sent        bool   // every row of the round has been sent once
	seq         uint32
	outstanding map[uint32]*sentFrame
	inflight    int // rows in outstanding frames
}

// sentFrame is what a frame carried, to send again if its ack is late.
type sentFrame struct {
	runs []filter.Run
	rows int
	tick uint64
}

// tickDelta continues every round in progress, then starts rounds to up to
// Fanout peers whose acknowledged generation is behind the filter.
func (g *Gossip) tickDelta(gen uint64, emit Emit) {
	for _, a := range slices.Clone(g.order) {
		p := g.peers[a]
		if p.round == nil {
			continue
		}
		if g.resendLate(p, emit) && g.prune(p) {
			continue
		}
		g.pushRound(p, emit)
		g.maybeDone(p)
	}
	// Start rounds to up to Fanout peers with news, walking the peers from
	// a random place: nodes then spread what they learn to different peers.
	last := g.src.LastChanged()
	started, from := 0, 0
	if len(g.order) > 0 {
		from = g.rng.IntN(len(g.order))
	}
	for i := 0; i < len(g.order) && started < g.cfg.Fanout && g.budget > 0; i++ {
		p := g.peers[g.order[(from+i)%len(g.order)]]
		if p.round != nil || p.ackedGen >= last {
			continue
		}
		p.round = &round{gen: gen, since: p.ackedGen, outstanding: map[uint32]*sentFrame{}}
		g.pushRound(p, emit)
		g.maybeDone(p)
		started++
	}
}

// resendLate sends again the frames of p's round whose acks are overdue
// and reports whether any were, counting a missed round. A member that
// keeps missing acks (alive to membership, deaf on its data port) is
// waited for twice as long after each miss, up to 64 timeouts.
func (g *Gossip) resendLate(p *peer, emit Emit) bool {
	r := p.round
	timeout := uint64(g.cfg.AckTimeout)
	if p.kind == Member {
		timeout <<= min(p.missed, 6)
	}
	var late []filter.Run
	for seq, f := range r.outstanding {
		if g.tick-f.tick >= timeout {
			late = append(late, f.runs...)
			r.inflight -= f.rows
			delete(r.outstanding, seq)
		}
	}
	if len(late) == 0 {
		return false
	}
	p.missed++
	if p.kind == Static && p.missed >= g.cfg.PruneAfter {
		return true
	}
	slices.SortFunc(late, func(a, b filter.Run) int { return int(a.First) - int(b.First) })
	g.pushRuns(p, slices.Values(late), true, emit)
	return true
}

// pushRound sends the next part of p's round: the rows changed since
// round.since, from round.cursor on, while the peer's in-flight rows and
// the tick's byte budget allow.
func (g *Gossip) pushRound(p *peer, emit Emit) {
	r := p.round
	if r.sent {
		return
	}
	cursor := r.cursor
	runs := func(yield func(filter.Run) bool) {
		for run := range g.src.ChangedRuns(r.since) {
			if end := run.First + run.Count; end <= cursor {
				continue
			} else if run.First < cursor {
				run.First, run.Count = cursor, end-cursor
			}
			if !yield(run) {
				return
			}
		}
	}
	if next, done := g.pushRuns(p, runs, false, emit); done {
		r.sent = true
	} else {
		r.cursor = next
	}
}

// pushRuns packs runs into frames to p until they run out (done) or the
// limits stop it, in which case next is the first row not sent.
func (g *Gossip) pushRuns(p *peer, runs func(func(filter.Run) bool), resend bool, emit Emit) (next uint64, done bool) {
	r := p.round
	rb := uint64(g.src.RowBytes())
	var w wire.RowSyncWriter
	var cur *sentFrame
	flush := func() {
		frame, err := w.Finish()
		if err != nil {
			cur = nil
			return // cannot happen: the writer got whole rows
		}
		g.buf = frame
		cur.tick = g.tick
		r.outstanding[r.seq] = cur
		r.inflight += cur.rows
		r.seq++
		if resend {
			g.c.Resent++
		}
		g.send(emit, p.addr, frame, cur.rows)
		cur = nil
	}
	for run := range runs {
		for run.Count > 0 {
			room := g.cfg.MaxInflightRows - r.inflight
			if cur != nil {
				room -= cur.rows
			}
			if room <= 0 || g.budget < g.cfg.MaxFrame {
				if cur != nil {
					flush()
				}
				if !resend {
					return run.First, false
				}
				// A resend is owed: send it even past the limits.
			}
			if cur == nil {
				w.Begin(g.buf[:0], g.fp, r.gen, r.seq)
				cur = &sentFrame{}
			}
			free := g.cfg.MaxFrame - w.Size() - wire.RunHeaderSize
			if free < int(rb) {
				flush()
				continue
			}
			n := min(run.Count, uint64(free)/rb, 0xffff)
			if !resend {
				n = min(n, uint64(max(room, 1)))
			}
			w.Run(uint32(run.First), uint16(n))
			var err error
			if w.Buf, err = g.src.CopyRows(w.Buf, run.First, n); err != nil {
				return run.First, false // cannot happen: runs lie inside the filter
			}
			cur.runs = append(cur.runs, filter.Run{First: run.First, Count: n})
			cur.rows += int(n)
			run.First += n
			run.Count -= n
		}
	}
	if cur != nil {
		flush()
	}
	return 0, true
}

// maybeDone completes p's round once every frame of it is acknowledged:
// the peer then holds every row as of the round's generation.
func (g *Gossip) maybeDone(p *peer) {
	if r := p.round; r != nil && r.sent && len(r.outstanding) == 0 {
		p.ackedGen, p.round = r.gen, nil
	}
}

// RowAck records a row ack from addr. An ack frees room in the peer's
// window of in-flight rows, and the rest of its round goes out at once
// through emit (ack clocking): a round larger than the window then takes
// round trips, not ticks, while the receiver never has more than a
// window of datagrams queued.
func (g *Gossip) RowAck(from netip.AddrPort, a wire.RowAck, emit Emit) {
	p, ok := g.peers[from]
	if !ok {
		g.c.StrayAcks++
		return
	}
	p.missed = 0
	r := p.round
	if r == nil || r.gen != a.Stamp {
		g.c.StrayAcks++
		return
	}
	f, ok := r.outstanding[a.Seq]
	if !ok {
		g.c.StrayAcks++ // duplicate, late, or forged
		return
	}
	g.c.Acks++
	r.inflight -= f.rows
	delete(r.outstanding, a.Seq)
	if !r.sent && g.budget >= g.cfg.MaxFrame {
		g.pushRound(p, emit)
	}
	g.maybeDone(p)
}
