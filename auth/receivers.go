package auth

import (
	"net/netip"
	"sync"
)

// Receivers is what a sender knows of the ids the nodes it seals for
// open with (Opener's self, new at every start), by their data address:
// learned from metadata, from frames they send, and from the hints they
// answer a frame sealed for an old id with. It holds at most a bounded
// number; past it one is forgotten, and learned again from its next hint.
// It is safe for concurrent use.
type Receivers struct {
	mu  sync.Mutex
	ids map[netip.AddrPort]uint64
	max int
}

// NewReceivers returns an empty table of at most max ids.
func NewReceivers(max int) *Receivers {
	return &Receivers{ids: map[netip.AddrPort]uint64{}, max: max}
}

// ID returns the id of the node at a, 0 if unknown.
func (r *Receivers) ID(a netip.AddrPort) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[a]
}

// Learn records id as the node at a's; an id of 0 is no news.
func (r *Receivers) Learn(a netip.AddrPort, id uint64) {
	if id == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids[a] == id {
		return
	}
	if _, ok := r.ids[a]; !ok && len(r.ids) >= r.max {
		for old := range r.ids { // any: a forgotten id is learned again
			delete(r.ids, old)
			break
		}
	}
	r.ids[a] = id
}
