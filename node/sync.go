package node

import (
	"net/netip"
	"time"
)

// syncLoop ticks the gossip state machine every SyncInterval.
func (n *Node) syncLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.tick()
		}
	}
}

func (n *Node) tick() {
	n.mu.Lock()
	defer n.mu.Unlock()
	before := n.g.Counters().Pruned
	n.g.Tick(n.emit)
	if pruned := n.g.Counters().Pruned - before; pruned > 0 {
		n.log.Info("pruned peers that stopped acking", "count", pruned, "peers", len(n.g.Peers()))
	}
}

// emit sends a gossip frame from the listening UDP address.
func (n *Node) emit(to netip.AddrPort, frame []byte) {
	if _, err := n.l.UDP[0].WriteToUDPAddrPort(frame, to); err != nil {
		n.c.inc(SendErrors)
		n.log.Debug("sync send failed", "peer", to.String(), "err", err)
	}
}
