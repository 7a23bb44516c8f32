package gossip

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// round is one delta round to a peer: the rows changed since since, as of
// gen, sent over one or more ticks and acknowledged frame by frame.
type round struct {
	gen, since uint64
	// token is the stamp the round's frames carry and their acks must
	// echo: random, so that an ack nobody was sent cannot be made up.
	token  uint64
	cursor uint64 // rows below cursor have been sent
	sent   bool   // every row of the round has been sent once
	w      window // frames in flight
}

// tickDelta continues every round in progress, then starts rounds to up to
// Fanout peers whose acknowledged generation is behind the filter.
func (g *Gossip) tickDelta(gen uint64, out *Outbox) {
	for _, a := range slices.Clone(g.order) {
		p := g.peers[a]
		if p.round == nil {
			continue
		}
		if g.resendLate(p, out) && g.prune(p) {
			continue
		}
		g.pushRound(p, out)
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
		if p.round != nil || p.ackedGen >= last || !p.verified {
			continue
		}
		p.round = &round{gen: gen, since: p.ackedGen, token: g.tokens.Uint64() | 1}
		g.pushRound(p, out)
		g.maybeDone(p)
		started++
	}
}

// resendLate sends again the frames of p's round whose acks are overdue
// and reports whether any were, counting a missed round. A member that
// keeps missing acks (alive to membership, deaf on its data port) is
// waited for twice as long after each miss, up to 64 timeouts.
func (g *Gossip) resendLate(p *peer, out *Outbox) bool {
	r := p.round
	timeout := uint64(g.cfg.AckTimeout)
	if p.kind == Member {
		timeout <<= min(p.missed, 6)
	}
	if !r.w.anyLate(g.tick, timeout) {
		return false
	}
	p.missed++
	if p.kind == Static && p.missed >= g.cfg.PruneAfter {
		return true
	}
	if unproven(p) && !g.room(p) {
		return true // the late frames wait their turn in the window
	}
	late := r.w.takeLate(g.tick, timeout)
	slices.SortFunc(late, func(a, b filter.Run) int { return cmp.Compare(a.First, b.First) })
	g.pushRuns(p, slices.Values(late), true, out)
	return true
}

// pushRound sends the next part of p's round: the rows changed since
// round.since, from round.cursor on, while the peer's in-flight rows and
// the tick's byte budget allow.
func (g *Gossip) pushRound(p *peer, out *Outbox) {
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
	if next, done := g.pushRuns(p, runs, false, out); done {
		r.sent = true
	} else {
		r.cursor = next
	}
}

// pushRuns packs runs into frames to p until they run out (done) or the
// limits stop it, in which case next is the first row not sent.
func (g *Gossip) pushRuns(p *peer, runs func(func(filter.Run) bool), resend bool, out *Outbox) (next uint64, done bool) {
	r := p.round
	rb := uint64(g.src.RowBytes())
	var w wire.RowSyncWriter
	var cur []filter.Run // runs of the frame being built
	curRows, start := 0, 0
	flush := func() {
		frame, err := w.Finish()
		out.buf = frame
		if err == nil { // cannot fail: the writer got whole rows
			r.w.add(cur, curRows, g.tick) // numbered r.w.next at Begin
			if resend {
				g.c.Resent++
			}
			g.sent(out, p, start, curRows)
		}
		cur, curRows = nil, 0
	}
	for run := range runs {
		for run.Count > 0 {
			room := g.cfg.MaxInflightRows - r.w.rows - curRows
			if room <= 0 || !g.room(p) {
				if cur != nil {
					flush()
				}
				if !resend || unproven(p) {
					return run.First, false
				}
				// A resend is owed to a peer that acks: send it even past the limits.
			}
			if cur == nil {
				start = len(out.buf)
				w.Begin(out.buf, g.fp, r.token, r.w.next)
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
			cur = append(cur, filter.Run{First: run.First, Count: n})
			curRows += int(n)
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
	if r := p.round; r != nil && r.sent && r.w.empty() {
		p.ackedGen, p.round = r.gen, nil
	}
}

// RowAck records a row ack from addr. An ack frees room in the peer's
// window of in-flight rows, and the rest of its round goes out at once
// into out (ack clocking): a round larger than the window then takes
// round trips, not ticks, while the receiver never has more than a
// window of datagrams queued.
func (g *Gossip) RowAck(from netip.AddrPort, a wire.RowAck, out *Outbox) {
	p, ok := g.peers[from]
	if !ok {
		g.c.StrayAcks++
		return
	}
	r := p.round
	if r == nil || r.token != a.Stamp || !r.w.ack(a.Seq) {
		g.c.StrayAcks++ // duplicate, late, or forged
		return
	}
	p.missed, p.live, p.lastAck = 0, true, g.tick+1
	g.c.Acks++
	if !r.sent && g.room(p) {
		g.pushRound(p, out)
	}
	g.maybeDone(p)
}
