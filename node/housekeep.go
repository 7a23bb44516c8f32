package node

import "time"

// housekeep runs the node's periodic chores until it stops: it lifts the
// blocks of datagram sources that stopped (internal/shed); after a burst
// of connections, gives the memory their buffers held back to the system
// (at least trimAfter bytes, at most every trimEvery); tells the registry
// how far the node's clock is from the cluster's (windowed filters);
// tells it the members alive (placed filters); drops filters whose
// deadline came and slices out of their window;
// forgets tombstones past --tombstone-ttl.
func (n *Node) housekeep() {
	t := time.NewTicker(housekeepEvery)
	defer t.Stop()
	var expired time.Time
	for {
		select {
		case <-n.life.ctx.Done():
			return
		case now := <-t.C:
			for _, s := range n.shed {
				s.Review(now)
			}
			n.bufs.Trim(trimAfter, trimEvery)
			if m := n.mem.Load(); m != nil {
				n.reg.SetClockOffset(m.Clock().Offset)
			}
			n.placeMembers()
			_ = n.change(n.reg.DropDue(), nil)
			if now.Sub(expired) >= expireEvery {
				n.reg.Apply(n.reg.Expire())
				expired = now
			}
		}
	}
}

const (
	housekeepEvery = 250 * time.Millisecond
	trimAfter      = 8 << 20
	trimEvery      = 2 * time.Second
	expireEvery    = time.Minute
)
