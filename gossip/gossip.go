package gossip

import (
	"fmt"
	"iter"
	"net/netip"
	"slices"

	"github.com/rmbd/rmbd/filter"
)

// Source is what gossip reads from the local filter; *filter.Filter is one.
type Source interface {
	Fingerprint() filter.Fingerprint
	Rows() uint64
	RowBytes() int
	Advance() uint64
	ChangedRuns(since uint64) iter.Seq[filter.Run]
	CopyRows(dst []byte, first, count uint64) ([]byte, error)
}

// Emit receives each frame Tick decides to send. frame is only valid
// during the call.
type Emit func(to netip.AddrPort, frame []byte)

// Counters are what a Gossip has done so far.
type Counters struct {
	Ticks, Frames, Bytes, Rows uint64 // sent
	Acks, StrayAcks            uint64 // received: from peers, from strangers or for old rounds
	Added, Pruned, Refused     uint64 // peers
}

// PeerStatus describes one push target.
type PeerStatus struct {
	Addr netip.AddrPort
	// Missed counts consecutive rounds without an ack.
	Missed int
	// AckedGen is the generation the peer confirmed having (delta mode).
	AckedGen uint64
	// Pending reports a round in flight (delta mode).
	Pending bool
}

// Gossip is the push-target table and the round logic. See the package doc.
type Gossip struct {
	cfg   Config
	src   Source
	fp    filter.Fingerprint
	peers map[netip.AddrPort]*peer
	order []netip.AddrPort // insertion order: deterministic rounds
	buf   []byte           // frame scratch
	row   []byte           // row scratch
	c     Counters
}

type peer struct {
	addr   netip.AddrPort
	missed int
	// classic
	awaiting, acked bool
	// delta
	ackedGen uint64
	round    *round
}

// round is one delta round to a peer: the rows changed since since, as of
// gen, sent over one or more ticks and acknowledged frame by frame.
type round struct {
	gen, since  uint64
	cursor      uint64 // rows below cursor have been sent
	sent        bool   // every row of the round has been sent
	seq         uint32
	outstanding map[uint32]struct{}
}

// New returns a Gossip pushing src's rows.
func New(cfg Config, src Source) (*Gossip, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fp := src.Fingerprint()
	if cfg.Classic && fp.Layout != filter.Classic {
		return nil, fmt.Errorf("%w: classic sync needs a classic filter, not %v", ErrConfig, fp)
	}
	return &Gossip{cfg: cfg, src: src, fp: fp, peers: map[netip.AddrPort]*peer{}}, nil
}

// AddPeer adds a push target. It reports false when addr is already a
// peer or the table is full.
func (g *Gossip) AddPeer(addr netip.AddrPort) bool {
	if _, ok := g.peers[addr]; ok {
		return false
	}
	if len(g.peers) >= g.cfg.MaxPeers {
		g.c.Refused++
		return false
	}
	g.peers[addr] = &peer{addr: addr}
	g.order = append(g.order, addr)
	g.c.Added++
	return true
}

// RemovePeer drops a push target; it reports whether addr was one.
func (g *Gossip) RemovePeer(addr netip.AddrPort) bool {
	if _, ok := g.peers[addr]; !ok {
		return false
	}
	delete(g.peers, addr)
	g.order = slices.DeleteFunc(g.order, func(a netip.AddrPort) bool { return a == addr })
	return true
}

// Peers lists the push targets in the order they were added.
func (g *Gossip) Peers() []PeerStatus {
	out := make([]PeerStatus, 0, len(g.order))
	for _, a := range g.order {
		p := g.peers[a]
		out = append(out, PeerStatus{Addr: a, Missed: p.missed, AckedGen: p.ackedGen, Pending: p.round != nil})
	}
	return out
}

// Counters returns what the Gossip has done so far.
func (g *Gossip) Counters() Counters { return g.c }

// Tick runs one round: it prunes peers that missed too many acks and
// emits this round's frames.
func (g *Gossip) Tick(emit Emit) {
	g.c.Ticks++
	gen := g.src.Advance()
	for _, a := range slices.Clone(g.order) {
		p := g.peers[a]
		if g.cfg.Classic {
			g.tickClassic(p, emit)
		} else {
			g.tickDelta(p, gen, emit)
		}
	}
}

func (g *Gossip) send(emit Emit, to netip.AddrPort, frame []byte, rows int) {
	g.c.Frames++
	g.c.Bytes += uint64(len(frame))
	g.c.Rows += uint64(rows)
	emit(to, frame)
}

// prune removes p if it has missed PruneAfter rounds and reports whether it
// did.
func (g *Gossip) prune(p *peer) bool {
	if p.missed < g.cfg.PruneAfter {
		return false
	}
	g.RemovePeer(p.addr)
	g.c.Pruned++
	return true
}
