package gossip

import (
	crand "crypto/rand"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/rmbd/rmbd/filter"
	"github.com/rmbd/rmbd/wire"
)

// Source is what gossip reads from the local filter; *filter.Filter is one.
type Source interface {
	Fingerprint() filter.Fingerprint
	Rows() uint64
	RowBytes() int
	Advance() uint64
	LastChanged() uint64
	ChangedRuns(since uint64) iter.Seq[filter.Run]
	ChangedRunsFrom(since, from uint64) iter.Seq[filter.Run]
	CopyRows(dst []byte, first, count uint64) ([]byte, error)
	// LastOriginated and OriginatedSince tell the rows this node
	// originated (filter/origin.go): what it pushes to members.
	LastOriginated() uint64
	OriginatedSince(since uint64, dst []uint32) ([]uint32, bool)
}

// Counters are what a Gossip has done so far.
type Counters struct {
	Ticks, Frames, Bytes, Rows uint64 // sent
	Resent                     uint64 // frames sent again after an ack timeout
	Acks, StrayAcks            uint64 // received: from peers, from strangers or for old rounds
	Added, Pruned, Refused     uint64 // peers
	Evicted                    uint64 // peers that never acked, put out to make room for new ones
	Challenges, Verified       uint64 // challenges sent; peers that answered theirs
	StrayAnswers               uint64 // challenge answers nobody was sent, or wrong
}

// Kind says how a push target was learnt.
type Kind uint8

// Kinds of push targets.
const (
	// Static peers come from peer frames or --peer: directed edges that
	// are pruned when they stop acking.
	Static Kind = iota
	// Members come from cluster membership, which alone adds and removes
	// them.
	Member
)

// PeerStatus describes one push target.
type PeerStatus struct {
	Addr netip.AddrPort
	Kind Kind
	// Missed counts consecutive rounds without an ack.
	Missed int
	// AckedGen is the generation the peer confirmed having (delta mode).
	AckedGen uint64
	// Pending reports a round in flight (delta mode).
	Pending bool
	// Inflight is the rows sent and not yet acked (delta mode).
	Inflight int
	// Verified reports that the address answered a challenge (static
	// peers) or is a member; unverified peers get no rows.
	Verified bool
	// Reverify reports a static peer verified once that must answer a
	// challenge again (classic mode, see Config.ReverifyAfter).
	Reverify bool
	// AckedTicksAgo is the ticks since the peer last acknowledged a
	// frame (0: during this tick), or -1 if it never did.
	AckedTicksAgo int
}

// Info is s as a peers frame lists it.
func (s PeerStatus) Info() wire.PeerInfo {
	info := wire.PeerInfo{Addr: []byte(s.Addr.String()), Missed: uint16(min(s.Missed, math.MaxUint16)), AckedTicksAgo: wire.NeverAcked}
	if s.Kind == Member {
		info.Flags |= wire.PeerMember
	}
	if s.Verified {
		info.Flags |= wire.PeerVerified
	}
	if s.AckedTicksAgo >= 0 {
		info.AckedTicksAgo = uint32(min(s.AckedTicksAgo, math.MaxUint32-1))
	}
	return info
}

// Gossip is the push-target table and the round logic. See the package doc.
type Gossip struct {
	cfg      Config
	src      Source
	fp       filter.Fingerprint
	peers    map[netip.AddrPort]*peer
	order    []netip.AddrPort            // insertion order: deterministic rounds
	departed map[netip.AddrPort]struct{} // members that failed or left
	rng      *rand.Rand                  // peer choice: seeded, so that tests replay
	tokens   *rand.Rand                  // round tokens: unpredictable (ChaCha8, seeded by crypto/rand)
	tick     uint64                      // ticks so far
	budget   int                         // bytes left this tick
	unacked  int                         // bytes left this tick for static peers that never acked
	row      []byte                      // row scratch
	origins  map[uint64][]uint32         // this tick's origin lists, by the since they answer
	c        Counters
	// challenges sent to static peers not yet verified (challenge.go)
	challenges map[netip.AddrPort]*challenge
}

type peer struct {
	addr   netip.AddrPort
	kind   Kind
	missed int
	// verified: the address answered a challenge (static peers) or
	// membership vouches for it (members). Nothing but challenges goes to
	// an address before: a peer frame naming a third address must not
	// make the node flood it.
	verified   bool
	verifiedAt uint64 // tick
	once       bool   // verified at least once
	live       bool   // acknowledged a frame at least once
	lastAck    uint64 // tick of the last ack, plus one (0: never)
	// classic
	awaiting, acked bool
	// delta
	ackedGen uint64
	round    *round
	fill     bool // a new member that gets every set row once (FillMembers)
	sparse   bool // a member that takes sparse row syncs
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
	return &Gossip{cfg: cfg, src: src, fp: fp, peers: map[netip.AddrPort]*peer{}, departed: map[netip.AddrPort]struct{}{},
		challenges: map[netip.AddrPort]*challenge{},
		rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), tokens: newTokens()}, nil
}

// newTokens returns the source of round tokens. An attacker who knows a
// node's seed (its name and address) must still not guess the token an ack
// has to echo, so tokens come from a cryptographic generator.
func newTokens() *rand.Rand {
	var seed [32]byte
	crand.Read(seed[:]) // never fails on the platforms Go supports
	return rand.New(rand.NewChaCha8(seed))
}

// AddPeer adds a static push target, unverified: it gets no rows until
// Verify says it answered a challenge, and is pruned like a peer that
// misses acks if it never does. Once verified it first gets every row
// ever set. AddPeer reports false when addr is already a target or the
// table is full.
func (g *Gossip) AddPeer(addr netip.AddrPort) bool { return g.add(addr, Static, 0) }

// Verify records that the static peer at addr answered a challenge: it
// gets rows from the next tick on. It reports whether addr is a peer.
func (g *Gossip) Verify(addr netip.AddrPort) bool {
	p, ok := g.peers[addr]
	if !ok {
		return false
	}
	if !p.verified {
		p.missed = 0
	}
	p.verified, p.verifiedAt, p.once = true, g.tick, true
	return true
}

// AddMember adds a cluster member as a push target. It gets changes from
// now on, the past reaching it by bulk transfer and anti-entropy — a
// member back from a failure too: membership swaps state with it as it
// returns, and each side pulls what differs, which moves each missing row
// once where pushing what it missed would move most of them again. (With
// FillMembers a member never seen before gets every set row instead.)
func (g *Gossip) AddMember(addr netip.AddrPort) bool {
	_, seen := g.departed[addr]
	fill := !seen && g.cfg.FillMembers
	acked := uint64(0)
	if !fill {
		acked = g.src.LastChanged()
	}
	delete(g.departed, addr)
	added := g.add(addr, Member, acked)
	if added && fill {
		g.peers[addr].fill = true
	}
	return added
}

// AddKnownMember adds a member that was one before this node began to
// replicate the filter: it gets the rows this node originated, all of
// them, but not, as a new member with FillMembers would, every set row —
// rows this node got from the cluster (pushed, pulled) it has already,
// and anti-entropy repairs the rest.
func (g *Gossip) AddKnownMember(addr netip.AddrPort) bool {
	delete(g.departed, addr)
	return g.add(addr, Member, 0)
}

// AddMemberAsOf adds a member that holds this node's rows up to
// generation gen (a placed filter's new owner, filled by a pull from an
// owner that acknowledged that much): it gets the rows this node
// originated after gen, and every change from now on.
func (g *Gossip) AddMemberAsOf(addr netip.AddrPort, gen uint64) bool {
	delete(g.departed, addr)
	return g.add(addr, Member, gen)
}

// Acked returns how far the member or peer at addr acknowledged this
// node's rows; ok is false if it is no push target.
func (g *Gossip) Acked(addr netip.AddrPort) (gen uint64, ok bool) {
	p, ok := g.peers[addr]
	if !ok {
		return 0, false
	}
	return p.ackedGen, true
}

// Members are verified by membership: memberlist probes them (and, with a
// cluster key, authenticates them).

func (g *Gossip) add(addr netip.AddrPort, kind Kind, acked uint64) bool {
	if p, ok := g.peers[addr]; ok {
		if kind == Member {
			p.kind, p.verified = Member, true // membership outranks a peer frame
			p.missed = 0                      // alive, maybe restarted: late frames go again at once
		}
		return false
	}
	if len(g.peers) >= g.cfg.MaxPeers && !g.evictDead() {
		g.c.Refused++
		return false
	}
	g.peers[addr] = &peer{addr: addr, kind: kind, ackedGen: acked, verified: kind == Member, verifiedAt: g.tick}
	g.order = append(g.order, addr)
	g.c.Added++
	return true
}

// evictDead makes room in a full table: it removes the oldest static peer
// that never acknowledged anything — one that has not answered its
// challenge first — and reports whether there was one.
func (g *Gossip) evictDead() bool {
	var victim *peer
	for _, a := range g.order {
		p := g.peers[a]
		if p.kind != Static || p.live {
			continue
		}
		if !p.verified {
			victim = p
			break
		}
		if victim == nil {
			victim = p
		}
	}
	if victim == nil {
		return false
	}
	g.RemovePeer(victim.addr)
	g.c.Evicted++
	return true
}

// AssumeMembersHave records that every member already holds the rows as
// of generation gen: a node that was empty and has just been filled by a
// bulk pull from the cluster would otherwise push the whole filter back to
// every member. Rounds to members in progress are dropped. Anything the
// assumption gets wrong, anti-entropy repairs.
func (g *Gossip) AssumeMembersHave(gen uint64) {
	for _, p := range g.peers {
		if p.kind == Member && p.ackedGen < gen {
			p.ackedGen, p.round = gen, nil
		}
	}
}

// RemoveMember drops a member that failed or left, remembering that it
// was one (it is not filled again when it returns).
func (g *Gossip) RemoveMember(addr netip.AddrPort) bool {
	if _, ok := g.peers[addr]; !ok {
		return false
	}
	if len(g.departed) < g.cfg.MaxPeers {
		g.departed[addr] = struct{}{}
	}
	return g.RemovePeer(addr)
}

// RemovePeer drops a push target; it reports whether addr was one.
func (g *Gossip) RemovePeer(addr netip.AddrPort) bool {
	if _, ok := g.peers[addr]; !ok {
		return false
	}
	delete(g.peers, addr)
	delete(g.challenges, addr)
	g.order = slices.DeleteFunc(g.order, func(a netip.AddrPort) bool { return a == addr })
	return true
}

// Peers lists the push targets in the order they were added.
func (g *Gossip) Peers() []PeerStatus {
	out := make([]PeerStatus, 0, len(g.order))
	for _, a := range g.order {
		p := g.peers[a]
		st := PeerStatus{Addr: a, Kind: p.kind, Missed: p.missed, AckedGen: p.ackedGen, Pending: p.round != nil,
			Verified: p.verified, Reverify: !p.verified && p.once && p.kind == Static, AckedTicksAgo: -1}
		if p.lastAck > 0 {
			st.AckedTicksAgo = int(g.tick + 1 - p.lastAck)
		}
		if p.round != nil {
			st.Inflight = p.round.w.rows
		}
		out = append(out, st)
	}
	return out
}

// Counters returns what the Gossip has done so far.
func (g *Gossip) Counters() Counters { return g.c }

// Tick runs one round: it prunes static peers that missed too many acks,
// sends again what was not acknowledged in time, starts rounds to up to
// Fanout peers with news, and challenges again the static peers due to
// answer one. The frames to send are appended to out (challenges as
// plain frames).
func (g *Gossip) Tick(out *Outbox) {
	g.c.Ticks++
	g.tick++
	g.budget, g.unacked = g.cfg.MaxTickBytes, g.cfg.MaxUnackedTickBytes
	gen := g.src.Advance()
	for _, a := range slices.Clone(g.order) {
		if p := g.peers[a]; !p.verified {
			p.missed++ // a tick without an answer to the challenge
			g.prune(p)
		}
	}
	if g.cfg.Classic {
		for _, a := range slices.Clone(g.order) {
			g.tickClassic(g.peers[a], out)
		}
	} else {
		g.tickDelta(gen, out)
	}
	g.rechallenge(out)
}

// sent records the frame appended to out.buf since start, to p.
func (g *Gossip) sent(out *Outbox, p *peer, start, rows int) {
	size := len(out.buf) - start
	g.c.Frames++
	g.c.Bytes += uint64(size)
	g.c.Rows += uint64(rows)
	g.budget -= size
	if unproven(p) {
		g.unacked -= size
	}
	out.commit(p.addr, start)
}

// unproven reports whether p is a static peer that never acked: what it
// gets comes out of the tick's small budget for such peers.
func unproven(p *peer) bool { return p.kind == Static && !p.live }

// room reports whether the tick's budgets leave room for another frame
// to p.
func (g *Gossip) room(p *peer) bool {
	return g.budget >= g.cfg.MaxFrame && (!unproven(p) || g.unacked >= g.cfg.MaxFrame)
}

// prune removes p if it is a static peer that has missed PruneAfter rounds
// and reports whether it did.
func (g *Gossip) prune(p *peer) bool {
	if p.kind != Static || p.missed < g.cfg.PruneAfter {
		return false
	}
	g.RemovePeer(p.addr)
	g.c.Pruned++
	return true
}

// IsPeer reports whether addr is a push target, verified or not.
func (g *Gossip) IsPeer(addr netip.AddrPort) bool {
	_, ok := g.peers[addr]
	return ok
}

// SetSparse says whether the member at addr takes sparse row syncs: its
// rows then go as the positions of their set bits, which for a filter
// well under its capacity is a fraction of the bytes.
func (g *Gossip) SetSparse(addr netip.AddrPort, on bool) {
	if p, ok := g.peers[addr]; ok && p.kind == Member {
		p.sparse = on
	}
}

// IsMember reports whether addr is a push target as a cluster member.
func (g *Gossip) IsMember(addr netip.AddrPort) bool {
	p, ok := g.peers[addr]
	return ok && p.kind == Member
}

// IsVerified reports whether addr is a push target that answered a
// challenge or is a member.
func (g *Gossip) IsVerified(addr netip.AddrPort) bool {
	p, ok := g.peers[addr]
	return ok && p.verified
}
