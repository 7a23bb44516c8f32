package gossip

import (
	"net/netip"

	"github.com/rmbd/rmbd/wire"
)

// tickDelta continues or starts p's round. gen is this tick's generation.
func (g *Gossip) tickDelta(p *peer, gen uint64, emit Emit) {
	if r := p.round; r != nil && r.sent {
		// Sent in full a tick ago and still not acknowledged in full.
		p.missed++
		if g.prune(p) {
			return
		}
		p.round = nil
	}
	if p.round == nil {
		p.round = &round{gen: gen, since: p.ackedGen, outstanding: map[uint32]struct{}{}}
	}
	g.pushRound(p, emit)
	if r := p.round; r.sent && len(r.outstanding) == 0 {
		// Nothing changed since the peer's last acknowledged generation.
		p.ackedGen, p.round = r.gen, nil
	}
}

// pushRound sends the next part of p's round: the rows changed since
// round.since, from round.cursor on, packed into frames of at most MaxFrame
// bytes, at most MaxRowsPerTick rows.
func (g *Gossip) pushRound(p *peer, emit Emit) {
	r := p.round
	rb := uint64(g.src.RowBytes())
	budget := uint64(g.cfg.MaxRowsPerTick)
	var w wire.RowSyncWriter
	open, rows := false, 0
	flush := func() {
		frame, err := w.Finish()
		open = false
		if err != nil {
			return // cannot happen: the writer got whole rows
		}
		g.buf = frame
		r.outstanding[r.seq] = struct{}{}
		r.seq++
		g.send(emit, p.addr, frame, rows)
	}
	for run := range g.src.ChangedRuns(r.since) {
		if end := run.First + run.Count; end <= r.cursor {
			continue
		} else if run.First < r.cursor {
			run.First, run.Count = r.cursor, end-r.cursor
		}
		for run.Count > 0 {
			if budget == 0 {
				r.cursor = run.First
				if open {
					flush()
				}
				return
			}
			if !open {
				w.Begin(g.buf[:0], g.fp, r.gen, r.seq)
				open, rows = true, 0
			}
			free := g.cfg.MaxFrame - w.Size() - wire.RunHeaderSize
			if free < int(rb) {
				flush()
				continue
			}
			room := uint64(free) / rb
			n := min(run.Count, room, budget, 0xffff)
			w.Run(uint32(run.First), uint16(n))
			var err error
			if w.Buf, err = g.src.CopyRows(w.Buf, run.First, n); err != nil {
				open = false // cannot happen: runs lie inside the filter
				return
			}
			rows += int(n)
			run.First += n
			run.Count -= n
			budget -= n
			r.cursor = run.First
		}
	}
	if open {
		flush()
	}
	r.sent = true
}

// RowAck records a row ack from addr. A round is complete, and the peer
// holds every row as of its generation, once every frame of it is acked.
func (g *Gossip) RowAck(from netip.AddrPort, a wire.RowAck) {
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
	if _, ok := r.outstanding[a.Seq]; !ok {
		g.c.StrayAcks++ // duplicate or forged
		return
	}
	g.c.Acks++
	delete(r.outstanding, a.Seq)
	if r.sent && len(r.outstanding) == 0 {
		p.ackedGen, p.round = r.gen, nil
	}
}
