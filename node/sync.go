package node

import (
	"net/netip"
	"time"

	"github.com/rmbd/rmbd/gossip"
)

// syncLoop ticks the gossip state machine every SyncInterval.
func (n *Node) syncLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.tick()
		}
	}
}

// tick runs one gossip round: the state machine decides under the lock,
// the frames go out after it is let go. Only one goroutine ticks.
func (n *Node) tick() {
	defer n.timed(SyncRoundLatency, time.Now())
	var challenges []pendingSend
	n.mu.Lock()
	before := n.g.Counters().Pruned
	n.g.Tick(&n.tickOut)
	pruned := n.g.Counters().Pruned - before
	n.rechallenge(&challenges)
	peers := len(n.g.Peers())
	n.mu.Unlock()
	n.send(0, &n.tickOut, &n.tickSeal)
	n.tickNamed()
	n.sendPending(challenges)
	if pruned > 0 {
		n.log.Info("pruned peers that stopped acking or never answered", "count", pruned, "peers", peers)
	}
}

// send writes the frames of out from the listening address, sealed with
// the cluster key if there is one (in scratch), through the given datagram
// reader's socket, and empties out. Never call it with n.mu held.
func (n *Node) send(reader int, out *gossip.Outbox, scratch *[]byte) {
	for to, frame := range out.All() {
		if n.keyed() {
			*scratch = n.seal((*scratch)[:0], frame)
			frame = *scratch
		}
		n.sendTo(reader, frame, to)
	}
	out.Reset()
}

func (n *Node) sendTo(reader int, frame []byte, to netip.AddrPort) {
	if err := n.tr.WriteTo(reader, frame, to); err != nil {
		n.c.inc(SendErrors)
		n.log.Debug("send failed", "to", to.String(), "err", err)
	}
}
