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
	// rows, for a member's round, lists the rows this node originated
	// since since (shared, never written); nil: every row changed since.
	rows []uint32
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
	// Start rounds: to every member this node has originated rows for
	// since it caught up, and to up to Fanout static peers with news,
	// walking the peers from a random place: nodes then spread what they
	// learn to different static peers.
	last, lastOrigin := g.src.LastChanged(), g.src.LastOriginated()
	clear(g.origins)
	started, from := 0, 0
	if len(g.order) > 0 {
		from = g.rng.IntN(len(g.order))
	}
	for i := 0; i < len(g.order) && g.budget > 0; i++ {
		p := g.peers[g.order[(from+i)%len(g.order)]]
		if p.round != nil || !p.verified {
			continue
		}
		if p.fill && last == 0 {
			p.fill = false // nothing was ever set, nor loaded: nothing to fill it with
		}
		member := p.kind == Member && !p.fill // one to fill gets every set row, as a static peer
		switch {
		case member && p.ackedGen >= lastOrigin:
			continue
		case !member && (p.ackedGen >= last || started >= g.cfg.Fanout):
			continue
		case !member:
			started++
		}
		p.round = &round{gen: gen, since: p.ackedGen, token: g.tokens.Uint64() | 1}
		if member {
			p.round.rows = g.originatedSince(p.ackedGen)
		}
		g.pushRound(p, out)
		g.maybeDone(p)
	}
}

// originatedSince returns the rows this node originated since since, or
// nil when its log does not reach back that far (the round then sends
// every row changed since: never too little). Rounds started in one tick
// share the list.
func (g *Gossip) originatedSince(since uint64) []uint32 {
	if rows, ok := g.origins[since]; ok {
		return rows
	}
	rows, ok := g.src.OriginatedSince(since, nil)
	if !ok {
		rows = nil
	} else if rows == nil {
		rows = []uint32{}
	}
	if g.origins == nil {
		g.origins = map[uint64][]uint32{}
	}
	g.origins[since] = rows
	return rows
}

// maxBackoff is how many times a member's ack timeout doubles, at most;
// graceMisses how many missed rounds in a row are sent again at the next
// timeout before it starts doubling.
const (
	maxBackoff  = 4
	graceMisses = 2
)

// resendLate sends again the frames of p's round whose acks are overdue
// and reports whether any were, counting a missed round. A member that
// keeps missing acks (alive to membership, deaf on its data port) is
// waited for twice as long after each miss past graceMisses, up to 16
// timeouts (maxBackoff): longer, and a member back from a pause or a
// partition would wait that long for what it missed (anti-entropy brings
// it sooner, and the resends then go for nothing). The grace is for a
// lossy network, where two frames lost in a row are common and rows
// should still arrive within a second (a windowed filter's keys have a
// shelf life).
func (g *Gossip) resendLate(p *peer, out *Outbox) bool {
	r := p.round
	timeout := uint64(g.cfg.AckTimeout)
	if p.kind == Member {
		timeout <<= min(max(p.missed-graceMisses, 0), maxBackoff)
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
		if r.rows != nil {
			listedRuns(r.rows, cursor, yield)
			return
		}
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
	if p.sparse {
		return g.pushSparse(p, runs, resend, out)
	}
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
		p.ackedGen, p.round, p.fill = r.gen, nil, false
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

// listedRuns yields the runs of the sorted rows from row from on.
func listedRuns(rows []uint32, from uint64, yield func(filter.Run) bool) {
	i, _ := slices.BinarySearch(rows, uint32(min(from, 1<<32-1)))
	var run filter.Run
	for _, r := range rows[i:] {
		if run.Count > 0 && run.First+run.Count == uint64(r) {
			run.Count++
			continue
		}
		if run.Count > 0 && !yield(run) {
			return
		}
		run = filter.Run{First: uint64(r), Count: 1}
	}
	if run.Count > 0 {
		yield(run)
	}
}
