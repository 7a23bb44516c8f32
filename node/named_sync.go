package node

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/rmbd/rmbd/filter"
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

// namedPull reports whether frame is a pull of a named filter, and
// returns the filter (the live version of the name whose fingerprint the
// pull asks for; else the default, whose fingerprint the pull then does
// not match, and the answer says so) and the pull.
func (n *Node) namedPull(frame []byte) (*filter.Filter, []byte, bool) {
	if len(frame) == 0 || wire.Type(frame[0]) != wire.TypeNamed {
		return nil, nil, false
	}
	nf, err := wire.DecodeNamed(frame)
	if err != nil || wire.Type(nf.Inner[0]) != wire.TypePull {
		return nil, nil, false
	}
	p, err := wire.DecodePull(nf.Inner)
	if err != nil {
		return n.f, nf.Inner, true // refused as it decodes
	}
	for _, v := range n.named.lookup(nf.Name) {
		if v.v.Def.FP == p.FP {
			return v.f, nf.Inner, true
		}
	}
	return n.f, nf.Inner, true
}

// appendNamedDigests appends every named filter's row digests, each
// digest frame in a named frame, for a push/pull state.
func (n *Node) appendNamedDigests(dst []byte) []byte {
	var own []byte
	frames := 0
	for _, nf := range n.named.all() {
		own = gossip.AppendDigests(own[:0], nf.f)
		for rest := own; len(rest) > 0 && frames < wire.MaxLocalStateNamed; frames++ {
			l, err := wire.FrameLen(rest)
			if err != nil || l > len(rest) {
				break
			}
			if out, err := wire.AppendNamed(dst, nf.name, rest[:l]); err == nil {
				dst = out
			}
			rest = rest[l:]
		}
	}
	return dst
}

// repairNamed compares a member's named digests with this node's filters
// and pulls, filter by filter, the rows that differ: what acks and
// resends missed (a partition, a restart) comes back this way.
func (n *Node) repairNamed(member string, addr netip.AddrPort, named []byte) {
	for rest := named; len(rest) > 0 && n.ctx.Err() == nil; {
		l, err := wire.FrameLen(rest)
		if err != nil || l > len(rest) {
			return // checked by the decoder: cannot happen
		}
		frame := rest[:l]
		rest = rest[l:]
		nd, err := wire.DecodeNamed(frame)
		if err != nil {
			continue
		}
		d, err := wire.DecodeDigest(nd.Inner)
		if err != nil {
			continue
		}
		var target *namedFilter
		for _, nf := range n.named.lookup(nd.Name) {
			if nf.v.Def.FP == d.FP {
				target = nf
			}
		}
		if target == nil {
			continue // not made here (yet), or dropped
		}
		runs, err := gossip.Differing(target.f, nd.Inner)
		if err != nil || len(runs) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, pullTimeout)
		rows, changed, err := n.pullInto(ctx, addr, target.f, target.name, runs)
		cancel()
		n.c.inc(AntiEntropyPulls)
		n.c.add(AntiEntropyRows, uint64(changed))
		if err != nil {
			n.c.inc(PullsFailed)
			n.log.Warn("anti-entropy pull of a named filter failed", "member", member, "filter", target.name, "err", err)
			continue
		}
		n.log.Debug("anti-entropy pull of a named filter", "member", member, "filter", target.name, "rows", rows, "changed", changed)
	}
}
