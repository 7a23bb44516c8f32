package node

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/replicate"
	"github.com/rmbd/rmbd/wire"
)

// Replication (package replicate): every segment of every filter to the
// members, the default filter to static peers too. The node sends what
// it decides: wrapped for its filter and segment, sealed with the cluster
// key, from the listening address.

func newReplicator(n *Node) (*replicate.Replicator, error) {
	g := gossip.DefaultConfig()
	if n.cfg.Profile == ProfileClassic {
		g = gossip.ClassicConfig()
	}
	g.PruneAfter, g.MaxPeers = n.cfg.PruneAfter, n.cfg.MaxPeers
	return replicate.New(replicate.Config{Registry: n.reg, Gossip: g, MaxDatagram: n.cfg.MaxDatagram,
		Sealed: len(n.cfg.ClusterKeys) > 0, Seed: n.cfg.Listen + n.cfg.Name, Send: n.sendOut, Node: string(n.name), Logger: n.log})
}

// sendBufs are the buffers a send reuses: a frame wrapped for its
// filter, then sealed.
type sendBufs struct{ wrap, seal []byte }

var sendPool = sync.Pool{New: func() any { return new(sendBufs) }}

// sendOut writes out's frames from the listening address through the
// given datagram reader's socket: addressed to the filter name's segment
// seg (unless name is "", the default's first), then sealed with the
// cluster key if there is one; plain frames as they are. It empties out.
func (n *Node) sendOut(reader int, out *gossip.Outbox, name string, seg uint64) {
	b := sendPool.Get().(*sendBufs)
	defer sendPool.Put(b)
	for to, frame := range out.All() {
		if name != "" {
			wrapped, err := wire.AppendNamedSegment(b.wrap[:0], name, seg, frame)
			if err != nil {
				continue
			}
			b.wrap, frame = wrapped, wrapped
		}
		if n.keys != nil {
			b.seal = n.sealFor(b.seal[:0], frame, to)
			frame = b.seal
		}
		n.sendTo(reader, frame, to)
	}
	for to, frame := range out.Plain() {
		n.sendTo(reader, frame, to)
	}
	out.Reset()
}

// sendTo sends one datagram, counting a failure.
func (n *Node) sendTo(reader int, frame []byte, to netip.AddrPort) {
	if err := n.tr.WriteTo(reader, frame, to); err != nil {
		n.meters.c.Inc(counter.SendErrors)
		n.log.Debug("send failed", "to", to.String(), "err", err)
	}
}

// Tick runs one gossip round now. With ManualTicks it is the only way
// rounds happen (tests and simulators drive time); otherwise a ticker
// calls it every SyncInterval.
func (n *Node) Tick() {
	defer n.meters.timed(SyncRoundLatency, time.Now())
	n.reg.Tick(n.repl.Members() + 1) // growing filters: what the members add
	n.repl.Tick()
}

// syncLoop ticks every SyncInterval until the node stops.
func (n *Node) syncLoop() {
	t := time.NewTicker(n.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-n.life.ctx.Done():
			return
		case <-t.C:
			n.Tick()
		}
	}
}

// Peers lists the push targets of the default filter: static peers and
// members.
func (n *Node) Peers() []gossip.PeerStatus { return n.repl.Peers() }
