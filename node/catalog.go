package node

import (
	"cmp"
	"errors"
	"time"

	"github.com/rmbd/rmbd/access"
	"github.com/rmbd/rmbd/gossip"
	"github.com/rmbd/rmbd/internal/counter"
	"github.com/rmbd/rmbd/registry"
	"github.com/rmbd/rmbd/wire"
)

// The catalog of named filters, carried out. The registry decides each
// change under its lock and returns a plan; the node applies it (file I/O,
// outside any lock) and tells the members: each change in a broadcast,
// the whole catalog in every push/pull state. What members send is queued
// by memberlist's callbacks and applied by the catalog loop.

// catalogQueue bounds the catalog changes from members waiting to be
// merged; past it they are dropped (and counted): the next push/pull
// brings the whole catalog again.
const catalogQueue = 64

// maxBroadcast bounds what is broadcast: memberlist piggybacks messages
// on gossip packets of about 1,400 bytes. A larger entry waits for the
// next push/pull.
const maxBroadcast = 1000

// create creates name sized by s (or finds it so), and tells the
// members; created says whether it made a filter.
func (n *Node) create(name string, s registry.Sizing) (f *registry.Filter, created bool, err error) {
	p, err := n.reg.Create(name, s)
	if err != nil {
		return nil, false, n.change(p, err) // a refused create's plan, if any, is carried out too
	}
	res := n.reg.Apply(p)
	n.broadcast(p.Broadcast)
	if res.Filter == nil {
		return nil, false, res.Err
	}
	return res.Filter, p.Created(), nil
}

// dropFilter drops every version of name, everywhere.
func (n *Node) dropFilter(name string) error { return n.change(n.reg.Drop(name)) }

// setDeadline sets when name is dropped everywhere (zero: never), if cond (nil: always) holds.
func (n *Node) setDeadline(name string, deadline time.Time, cond func(time.Time) bool) error {
	return n.change(n.reg.SetDeadline(name, deadline, cond))
}

// change applies a catalog change's plan, if any (even a refused one's), and tells the members.
func (n *Node) change(p *registry.Plan, err error) error {
	if p != nil {
		res := n.reg.Apply(p)
		n.broadcast(p.Broadcast)
		err = cmp.Or(err, res.Err)
	}
	return err
}

// broadcast tells the members of changed catalog entries: in
// memberlist's gossip, and in a datagram to each member (gossip reaches
// some members only after several rounds, or at the next push/pull; a
// placed filter's owners must know it to take its adds).
func (n *Node) broadcast(entries []gossip.Entry) {
	m := n.mem.Load()
	if m == nil {
		return
	}
	members := n.repl.MemberData()
	var sealed []byte
	for _, e := range entries {
		b, err := gossip.AppendCatalog(nil, []gossip.Entry{e})
		if err != nil {
			continue
		}
		if b, err = wire.AppendCatalogFrame(nil, b); err == nil && len(b) <= maxBroadcast {
			m.Broadcast(b)
			for _, a := range members {
				sealed = n.sealFor(sealed[:0], b, a)
				n.sendTo(0, sealed, a)
			}
		}
	}
}

// catalogDatagram takes a change to the catalog a member sent: queued as
// its broadcast would be. (With a key, it came sealed; without, it must
// come from a member's data address.)
func (n *Node) catalogDatagram(q *request) reply {
	if !q.sealed && !n.repl.IsMember(q.from) {
		q.w.c.Drop(counter.Forbidden)
		return reply{}
	}
	entries, err := wire.DecodeCatalogFrame(q.frame)
	if err != nil {
		return n.bad(q)
	}
	n.queueCatalog(entries)
	return reply{}
}

// queueCatalog queues catalog bytes from a member (a copy) for the
// catalog loop. It never blocks: memberlist calls it.
func (n *Node) queueCatalog(b []byte) {
	select {
	case n.gates.catalog <- append([]byte(nil), b...):
	default:
		n.meters.c.Inc(counter.CatalogDropped) // the next push/pull brings it again
	}
}

// catalogLoop merges what members send into the catalog and makes the
// filters follow, and places filters again when members come or go,
// until the node stops.
func (n *Node) catalogLoop() {
	for {
		select {
		case <-n.life.ctx.Done():
			return
		case b := <-n.gates.catalog:
			n.mergeCatalog(b)
		case <-n.placing.changed:
			n.placeMembers()
		}
	}
}

// mergeCatalog folds catalog entries a member sent into this node's and
// applies the plan. Entries that do not decode are counted.
func (n *Node) mergeCatalog(b []byte) {
	entries, err := gossip.DecodeCatalog(b)
	if err != nil {
		n.meters.c.Inc(counter.MemberBadState)
		n.log.Debug("catalog from a member refused", "err", err)
		return
	}
	res := n.reg.Apply(n.reg.Merge(entries))
	if res.Err != nil {
		n.log.Warn("a filter from the cluster could not be made here", "err", res.Err)
	}
	if len(res.Opened) > 0 {
		n.placeSoon() // placed ones fill at once
	}
}

// appendCatalogFrame appends the whole catalog as a catalog frame, if
// there is anything in it.
func (n *Node) appendCatalogFrame(dst []byte) []byte {
	entries := n.reg.Entries()
	if len(entries) == 0 {
		return dst
	}
	b, err := gossip.AppendCatalog(nil, entries)
	if err != nil {
		return dst
	}
	if out, err := wire.AppendCatalogFrame(dst, b); err == nil {
		return out
	}
	return dst
}

// expireRequest asks for (readers) or sets (admins) a filter's deadline.
func (n *Node) expireRequest(q *request) reply {
	eq, err := wire.DecodeExpireRequest(q.frame)
	op, name := access.Read, string(eq.Name)
	if eq.Op != wire.ExpireAsk { // set at, set in, and whatever a later build adds
		op = access.Admin
	}
	switch {
	case err != nil:
		return n.bad(q)
	case !n.may(q, op):
		return n.refuse(q, wire.CodeForbidden, "expire: this address may not ask ("+op.Flag()+")")
	case !q.tcp && len(q.frame) < wire.ExpirySize:
		return reply{frame: n.tooLarge(q.w, q.w.buf[:0], q.frame, len(q.frame))}
	case eq.Op != wire.ExpireAsk:
		err = n.setDeadline(name, eq.Time(time.Now()), nil)
	}
	deadline, ok := n.reg.Deadline(name)
	if err == nil && !ok && eq.Op == wire.ExpireAsk {
		err = errors.New("no filter " + name)
	}
	if err != nil {
		return n.refuse(q, wire.CodeRefused, err.Error())
	}
	out, _ := wire.AppendExpiry(q.w.buf[:0], wire.Expiry{ReqID: eq.ReqID, Deadline: max(deadline.UnixMilli(), 0), Now: time.Now().UnixMilli()})
	return reply{frame: out}
}
