package gossip

import (
	"net/netip"

	"github.com/rmbd/rmbd/wire"
)

// tickClassic sends every row to p, after pruning it if the previous
// round went unacknowledged PruneAfter times in a row.
func (g *Gossip) tickClassic(p *peer, out *Outbox) {
	if p == nil || !p.verified {
		return
	}
	if g.cfg.ReverifyAfter > 0 && p.kind == Static && g.tick-p.verifiedAt >= uint64(g.cfg.ReverifyAfter) {
		// A one-byte ack names nothing: anyone could send it from the
		// peer's address. So the peer answers a challenge again now and
		// then, or stops getting rows.
		p.verified, p.missed, p.awaiting = false, 0, false
		return
	}
	if p.awaiting {
		if p.acked {
			p.missed = 0
		} else {
			p.missed++
		}
	}
	if g.prune(p) {
		return
	}
	for r := range g.src.Rows() {
		var err error
		if g.row, err = g.src.CopyRows(g.row[:0], r, 1); err != nil {
			continue // cannot happen: r < Rows()
		}
		start := len(out.buf)
		if out.buf, err = wire.AppendClassicSync(out.buf, uint16(r), g.row); err != nil {
			continue
		}
		g.sent(out, p, start, 1)
	}
	p.awaiting, p.acked = true, false
}

// ClassicAck records the one-byte ack of a classic sync from addr.
func (g *Gossip) ClassicAck(from netip.AddrPort) {
	p, ok := g.peers[from]
	if !ok || !p.verified || !p.awaiting {
		g.c.StrayAcks++
		return
	}
	g.c.Acks++
	p.acked, p.live, p.lastAck = true, true, g.tick+1
}
