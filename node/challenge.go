package node

import (
	"bytes"
	"crypto/rand"
	"net/netip"

	"github.com/rmbd/rmbd/wire"
)

// Before a node pushes rows to an address named by a peer frame, the
// address must answer a challenge: a classic has for a random key of
// challengeKey bytes, which the original rmbd and every rmbd node answer,
// echoing the key. Until then the address gets the challenge and nothing
// else, so that a peer frame cannot make the node flood a third party:
// the challenge (141 bytes) is smaller than the peer frame (145). One
// peer frame, one challenge; only peers the operator named (--peer) and
// peers verified before (classic peers answer again now and then) are
// challenged again each tick.

// challengeKey is the length of a challenge's key: its has reply starts
// with this byte, which no frame type is.
const challengeKey = 100

// challenge is what a peer must echo.
type challenge struct {
	reply []byte // the has reply it must send, but for its last byte
	retry bool   // challenge again each tick until it answers
}

// challengePeer sends addr a new challenge and remembers it; retry makes
// the tick send new ones until it answers. Callers hold n.mu; the
// datagram goes out after they let go (out).
func (n *Node) challengePeer(addr netip.AddrPort, retry bool, out *[]pendingSend) {
	var key [challengeKey]byte
	rand.Read(key[:]) // never fails on the platforms Go supports
	frame, _ := wire.AppendClassicHas(nil, key[:])
	reply, _ := wire.AppendClassicHasReply(nil, key[:], false)
	c := n.challenges[addr]
	n.challenges[addr] = &challenge{reply: reply[:len(reply)-1], retry: retry || c != nil && c.retry}
	*out = append(*out, pendingSend{to: addr, frame: frame})
	n.c.inc(ChallengesSent)
}

// pendingSend is a datagram decided under n.mu and sent after it.
type pendingSend struct {
	to    netip.AddrPort
	frame []byte
}

func (n *Node) sendPending(ps []pendingSend) {
	for _, p := range ps {
		n.sendTo(0, p.frame, p.to)
	}
}

// answer reports whether frame from from is the answer to a challenge,
// and if so makes from a verified peer. A has reply has no type byte: it
// is told apart by its length and first byte.
func (n *Node) answer(frame []byte, from netip.AddrPort) bool {
	if len(frame) != wire.ClassicHasReplySize || frame[0] != challengeKey {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.challenges[from]
	if !ok || !bytes.Equal(frame[:len(c.reply)], c.reply) || frame[len(c.reply)] > 1 {
		n.c.inc(StrayAnswers)
		return true
	}
	delete(n.challenges, from)
	if n.g.Verify(from) {
		n.c.inc(PeersVerified)
		n.log.Info("peer answered its challenge: it gets rows from now on", "peer", from.String())
	}
	return true
}

// rechallenge, each tick, sends new challenges to the peers that may have
// them again (named by the operator, or verified before and due to
// answer again) and forgets challenges to addresses no longer peers.
// Callers hold n.mu.
func (n *Node) rechallenge(out *[]pendingSend) {
	peers := map[netip.AddrPort]bool{}
	for _, p := range n.g.Peers() {
		peers[p.Addr] = true
		if p.Verified {
			continue
		}
		c := n.challenges[p.Addr]
		if c != nil && c.retry || p.Reverify {
			n.challengePeer(p.Addr, true, out)
		}
	}
	for a := range n.challenges {
		if !peers[a] {
			delete(n.challenges, a)
		}
	}
}
