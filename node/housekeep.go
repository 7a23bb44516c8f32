package node

import "time"

// housekeep runs the node's periodic chores until it stops: datagram
// blocks whose sources stopped are lifted (internal/shed), after a burst
// of connections holding buffers the memory they held goes back to the
// operating system — if at least trimAfter bytes of buffers were dropped
// since it last did, and at most every trimEvery —, filters whose
// deadline came are dropped, and tombstones past --tombstone-ttl are
// forgotten.
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
