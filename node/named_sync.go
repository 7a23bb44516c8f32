package node

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/wire"
)

// How named filters replicate. The catalog goes to every member twice
// over: each change as a memberlist broadcast (a member hears of a new
// filter within a few gossip intervals), and the whole catalog in every
// push/pull state (what a broadcast missed, and everything, to a member
// that joins). Rows go as the default's do — delta rounds to the members,
// acknowledged, sent again until they are — in named frames, sealed with
// a cluster key.

// broadcastEntry tells the members of a change to one name's entry. An
// entry too large for a broadcast waits for the next push/pull.
func (n *Node) broadcastEntry(e gossip.Entry) {
	m := n.mem.Load()
	if m == nil {
		return
	}
	b, err := gossip.AppendCatalog(nil, []gossip.Entry{e})
	if err != nil {
		return
	}
	if b, err = wire.AppendCatalogFrame(nil, b); err != nil || len(b) > maxBroadcast {
		return
	}
	m.Broadcast(b)
}

// maxBroadcast bounds what is broadcast: memberlist piggybacks messages
// on gossip packets of about 1,400 bytes.
const maxBroadcast = 1000

// mergeCatalog folds catalog entries a member sent into this node's and
// makes its filters follow. Entries that do not decode are counted.
func (n *Node) mergeCatalog(b []byte) {
	entries, err := gossip.DecodeCatalog(b)
	if err != nil {
		n.c.inc(MemberBadState)
		n.log.Debug("catalog from a member refused", "err", err)
		return
	}
	nm := n.named
	var added []*namedFilter
	now := time.Now()
	nm.mu.Lock()
	for _, e := range entries {
		before := nm.cat.Entry(e.Name)
		nm.cat.Merge(e, now)
		if sameEntry(before, nm.cat.Entry(e.Name)) {
			continue
		}
		a, err := n.reconcile(e.Name)
		if err != nil {
			n.log.Warn("a filter from the cluster could not be made here", "filter", e.Name, "err", err)
		}
		added = append(added, a...)
	}
	nm.mu.Unlock()
	for _, nf := range added {
		n.addMembersTo(nf)
	}
}

func sameEntry(a, b gossip.Entry) bool {
	if a.Floor != b.Floor || len(a.Versions) != len(b.Versions) || len(a.Drops) != len(b.Drops) {
		return false
	}
	for i := range a.Versions {
		if a.Versions[i].ID() != b.Versions[i].ID() {
			return false
		}
	}
	for i := range a.Drops {
		if a.Drops[i] != b.Drops[i] {
			return false
		}
	}
	return true
}

// appendCatalogFrame appends the whole catalog as a catalog frame, if
// there is anything in it.
func (n *Node) appendCatalogFrame(dst []byte) []byte {
	n.named.mu.RLock()
	entries := n.named.cat.Entries()
	n.named.mu.RUnlock()
	if len(entries) == 0 {
		return dst
	}
	b, err := gossip.AppendCatalog(nil, entries)
	if err != nil {
		return dst
	}
	out, err := wire.AppendCatalogFrame(dst, b)
	if err != nil {
		return dst
	}
	return out
}

// addMembersTo makes every member with the node's filter a push target
// of nf. Never call it with nm.mu held.
func (n *Node) addMembersTo(nf *namedFilter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.members {
		if r.match {
			nf.g.AddMember(r.data)
		}
	}
}

// namedMembers adds (or removes) a member as a push target of every named
// filter. Callers hold n.mu, and took vs (named.all) before it.
func namedMembers(vs []*namedFilter, data netip.AddrPort, add bool) {
	for _, nf := range vs {
		if add {
			nf.g.AddMember(data)
		} else {
			nf.g.RemoveMember(data)
		}
	}
}

// namedTickBytes bounds what the named filters send in one tick, all
// together: a thousand filters each sending its window at once would
// overrun the receivers' socket buffers, and rounds lost that way are
// only sent again, as large. Past it the rest wait for the next tick,
// starting where this one stopped.
const namedTickBytes = 256 << 10

// tickNamed runs gossip rounds for the named filters, in turn, up to
// namedTickBytes, sending each one's frames in named frames.
func (n *Node) tickNamed() {
	all := n.named.all()
	if len(all) == 0 {
		return
	}
	slices.SortFunc(all, func(a, b *namedFilter) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.v.Created, b.v.Created), cmp.Compare(a.v.Origin, b.v.Origin))
	})
	start := int(n.namedTurn % uint64(len(all)))
	sent := 0
	for i := range all {
		nf := all[(start+i)%len(all)]
		n.mu.Lock()
		nf.g.Tick(&nf.out)
		n.mu.Unlock()
		sent += nf.out.Size()
		n.sendNamed(0, nf, &nf.out, &nf.wrap)
		if sent >= namedTickBytes {
			n.namedTurn += uint64(i + 1)
			return
		}
	}
}

// sendNamed sends out's frames wrapped for nf's name, then sealed.
func (n *Node) sendNamed(reader int, nf *namedFilter, out *gossip.Outbox, scratch *[]byte) {
	var wrapped gossip.Outbox
	for to, frame := range out.All() {
		b, err := wire.AppendNamed((*scratch)[:0], nf.name, frame)
		if err != nil {
			continue
		}
		*scratch = b
		wrapped.Add(to, b)
	}
	out.Reset()
	var seal []byte
	n.send(reader, &wrapped, &seal)
}

// namedSync serves a row sync or row ack of a named filter: the version
// whose fingerprint it carries, if it lives here; rows of a dropped
// version, or of one this node does not have, are refused by their
// fingerprint.
func (n *Node) namedSync(w *worker, name []byte, inner []byte, from netip.AddrPort, out []byte) []byte {
	c := w.c
	if n.keyed() && !w.sealed {
		c.drop(Unauthenticated)
		return out
	}
	vs := n.named.lookup(name)
	switch wire.Type(inner[0]) {
	case wire.TypeRowSync:
		s, err := wire.DecodeRowSync(inner)
		if err != nil {
			return c.bad(out)
		}
		for _, nf := range vs {
			if nf.v.Def.FP != s.FP {
				continue
			}
			nf.mu.RLock()
			ack, changed, err := gossip.MergeRowSync(nf.f, s, nil)
			nf.mu.RUnlock()
			if err != nil {
				return n.mergeFailed(c, out, err)
			}
			c.inc(SyncFramesMerged)
			c.add(SyncRowsMerged, uint64(s.Runs.Rows()))
			c.add(SyncRowsChanged, uint64(changed))
			out, _ = wire.AppendNamed(out, string(name), ack)
			return out
		}
		c.drop(FingerprintMismatch) // dropped, or not made here (yet)
	case wire.TypeRowAck:
		a, err := wire.DecodeRowAck(inner)
		if err != nil {
			return c.bad(out)
		}
		if w.tcp {
			return out
		}
		for _, nf := range vs {
			var more gossip.Outbox
			n.mu.Lock()
			nf.g.RowAck(from, a, &more)
			n.mu.Unlock()
			var scratch []byte
			n.sendNamed(w.reader, nf, &more, &scratch)
		}
	default:
		c.drop(Unsupported)
	}
	return out
}
