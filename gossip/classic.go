package gossip

import (
	"net/netip"

	"github.com/rmbd/rmbd/wire"
)

// tickClassic sends every row to p, after pruning it if the previous
// round went unacknowledged PruneAfter times in a row.
func (g *Gossip) tickClassic(p *peer, emit Emit) {
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
		if g.buf, err = wire.AppendClassicSync(g.buf[:0], uint16(r), g.row); err != nil {
			continue
		}
		g.send(emit, p.addr, g.buf, 1)
	}
	p.awaiting, p.acked = true, false
}

// ClassicAck records the one-byte ack of a classic sync from addr.
func (g *Gossip) ClassicAck(from netip.AddrPort) {
	p, ok := g.peers[from]
	if !ok {
		g.c.StrayAcks++
		return
	}
	g.c.Acks++
	p.acked = true
}
