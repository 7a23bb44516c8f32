package gossip

import (
	"bytes"
	"net/netip"

	"github.com/rmbd/rmbd/wire"
)

// Challenges. Before a node pushes rows to an address named by a peer
// request, the address must answer a challenge: a classic has of a random
// key of challengeKey bytes, which the original rmbd and every rmbd node
// answer, echoing the key. Until then the address gets the challenge and
// nothing else, so that a peer request cannot make the node flood a third
// party: the challenge (141 bytes) is smaller than the peer frame (145).
// One request, one challenge; only peers the operator named (retry) and
// peers verified before (classic peers answer again now and then) are
// challenged again each tick. Challenges go in an Outbox's plain frames:
// sent as they are, never sealed, since the Python rmbd knows no key.

// challengeKey is the length of a challenge's key: its has reply starts
// with this byte, which no frame type is.
const challengeKey = 100

// challenge is what a peer must echo.
type challenge struct {
	reply []byte // the has reply it must send, but for its last byte
	retry bool   // challenge again each tick until it answers
}

// PeerState says what became of a request to push rows to an address.
type PeerState uint8

// Peer states.
const (
	// PeerRefused: the peer table is full of peers that work.
	PeerRefused PeerState = iota
	// PeerChallenged: the address was sent a challenge, and gets rows
	// once it answers.
	PeerChallenged
	// PeerKnown: the address is a verified push target already.
	PeerKnown
)

// RequestPeer makes addr a static push target, unverified until it
// answers the challenge appended to out (a plain frame); retry makes each
// tick challenge it again until it does (peers the operator named). An
// address verified already is left as it is; one still to answer is
// challenged again.
func (g *Gossip) RequestPeer(addr netip.AddrPort, retry bool, out *Outbox) PeerState {
	if g.IsVerified(addr) {
		return PeerKnown
	}
	if !g.AddPeer(addr) && !g.IsPeer(addr) {
		return PeerRefused
	}
	g.challenge(addr, retry, out)
	return PeerChallenged
}

// challenge sends addr a new challenge and remembers it.
func (g *Gossip) challenge(addr netip.AddrPort, retry bool, out *Outbox) {
	var key [challengeKey]byte
	for i := 0; i < len(key); i += 8 {
		v := g.tokens.Uint64()
		for j := 0; j < 8 && i+j < len(key); j++ {
			key[i+j] = byte(v >> (8 * j))
		}
	}
	frame, _ := wire.AppendClassicHas(nil, key[:])
	reply, _ := wire.AppendClassicHasReply(nil, key[:], false)
	old := g.challenges[addr]
	g.challenges[addr] = &challenge{reply: reply[:len(reply)-1], retry: retry || old != nil && old.retry}
	out.AddPlain(addr, frame)
	g.c.Challenges++
}

// IsAnswer reports whether frame has the shape of an answer to a
// challenge: a classic has reply (no type byte) whose key starts with
// challengeKey, which no frame does.
func IsAnswer(frame []byte) bool {
	return len(frame) == wire.ClassicHasReplySize && frame[0] == challengeKey
}

// Answer takes the answer to a challenge (IsAnswer) from `from`, and
// reports whether it verified a peer: the right key, from the address
// challenged. Anything else is counted as a stray answer.
func (g *Gossip) Answer(frame []byte, from netip.AddrPort) bool {
	c, ok := g.challenges[from]
	if !ok || !IsAnswer(frame) || !bytes.Equal(frame[:len(c.reply)], c.reply) || frame[len(c.reply)] > 1 {
		g.c.StrayAnswers++
		return false
	}
	delete(g.challenges, from)
	if !g.Verify(from) {
		return false
	}
	g.c.Verified++
	return true
}

// rechallenge, each tick, sends new challenges to the peers that may have
// them again (named by the operator, or verified before and due to answer
// again) and forgets challenges to addresses no longer peers.
func (g *Gossip) rechallenge(out *Outbox) {
	for _, a := range g.order {
		p := g.peers[a]
		if p.verified {
			continue
		}
		c := g.challenges[a]
		if c != nil && c.retry || !p.verified && p.once && p.kind == Static {
			g.challenge(a, true, out)
		}
	}
	for a := range g.challenges {
		if _, ok := g.peers[a]; !ok {
			delete(g.challenges, a)
		}
	}
}
