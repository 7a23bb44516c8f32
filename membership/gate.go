package membership

import (
	"fmt"
	"net/netip"

	"github.com/hashicorp/memberlist"
)

// gate refuses members whose address is beyond the allowed prefixes (the
// node itself aside, whatever address it advertises): memberlist asks it
// of every alive message and of every state merged from a join.
type gate struct {
	self    string
	allowed []netip.Prefix
}

func (g gate) check(n *memberlist.Node) error {
	if n.Name == g.self {
		return nil
	}
	a, ok := netip.AddrFromSlice(n.Addr)
	if ok {
		for _, p := range g.allowed {
			if p.Contains(a.Unmap()) {
				return nil
			}
		}
	}
	return fmt.Errorf("member %s at %s refused: this node takes members on loopback alone (protected mode)", n.Name, n.Address())
}

// NotifyAlive refuses an alive message from beyond the allowed prefixes.
func (g gate) NotifyAlive(n *memberlist.Node) error { return g.check(n) }

// NotifyMerge refuses a join's state that names a member beyond them.
func (g gate) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if err := g.check(n); err != nil {
			return err
		}
	}
	return nil
}
